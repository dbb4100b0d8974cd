//! Spacing out the checks of a backend that keeps failing: each failure in
//! a row doubles its wait, up to a cap, so a backend that is down costs
//! little and is still seen again soon after it is fixed.

use std::time::{Duration, Instant};

/// Doublings of the interval at most: a broken backend is still checked
/// every few intervals.
const MAX_DOUBLINGS: u32 = 3;

/// One backend's schedule. A changed bundle checks every backend at once,
/// whatever its schedule: that is when a verdict may change.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    /// Checks in a row that did not end trusted.
    pub failures: u32,
    /// When the timer next checks it; `None`: at the next round.
    next: Option<Instant>,
}

impl Backoff {
    /// Whether the interval's round should check this backend at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.next.is_none_or(|next| now >= next)
    }

    /// Records a check at `now` that ended `trusted` (or not); `interval`
    /// is the timer's.
    pub fn record(&mut self, trusted: bool, now: Instant, interval: Option<Duration>) {
        if trusted {
            self.failures = 0;
            self.next = None;
            return;
        }
        self.failures = self.failures.saturating_add(1);
        // The first failure keeps the normal pace; later ones wait longer.
        let doublings = (self.failures - 1).min(MAX_DOUBLINGS);
        // The round after the interval must find it due: a little slack.
        self.next = interval.map(|i| now + i * (1 << doublings) - i / 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_in_a_row_wait_longer_up_to_a_cap_and_success_resets() {
        let i = Duration::from_secs(60);
        let t0 = Instant::now();
        let mut b = Backoff::default();
        assert!(b.due(t0));
        b.record(false, t0, Some(i));
        assert!(b.due(t0 + i) && !b.due(t0 + i / 4));
        for _ in 0..10 {
            b.record(false, t0, Some(i));
        }
        assert!(!b.due(t0 + i * 7) && b.due(t0 + i * 8));
        b.record(true, t0, Some(i));
        assert!(b.due(t0) && b.failures == 0);
    }
}
