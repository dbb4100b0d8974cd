//! What wakes the reconcile loop: file events (debounced), SIGHUP, timers.

use crate::clock::now_unix;
use std::time::Duration;
use tokio::sync::{self, Notify};
use tokio::time::{sleep_until, Instant};

/// A storm of events delays the re-read by at most this much past the first
/// event, so a busy volume cannot starve publishing.
const MAX_DEBOUNCE_DELAY: Duration = Duration::from_secs(1);

/// Waits until no event arrived for `quiet` (at most [`MAX_DEBOUNCE_DELAY`]
/// in all). Returns false if shutdown was requested meanwhile.
pub(crate) async fn debounce(
    events: &Notify,
    quiet: Duration,
    shutdown: &mut sync::watch::Receiver<bool>,
) -> bool {
    if quiet.is_zero() {
        return true;
    }
    let give_up = Instant::now() + MAX_DEBOUNCE_DELAY.max(quiet);
    loop {
        let until = (Instant::now() + quiet).min(give_up);
        tokio::select! {
            _ = sleep_until(until) => return true,
            _ = events.notified() => {
                if Instant::now() >= give_up {
                    return true;
                }
            }
            _ = shutdown.changed() => return false,
        }
    }
}

/// The instant just after the next certificate expires, if one does.
pub(crate) fn expiry_deadline(next_expiry: Option<i64>) -> Option<Instant> {
    let secs = next_expiry?.checked_sub(now_unix())?.checked_add(1)?;
    let secs = u64::try_from(secs).unwrap_or(0);
    // Timers far in the future are pointless: the resync or the next event
    // comes first, and a week bounds the arithmetic.
    Some(Instant::now() + Duration::from_secs(secs.min(7 * 24 * 3600)))
}

pub(crate) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 24 * 3600)
}
