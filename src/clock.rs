//! The wall clock, in one place every folder may use: the trust pipeline
//! compares it with expiry dates, the outputs stamp trust stores with it, and
//! the daemon reports it. It lives outside `daemon/` so that the trust
//! pipeline and the outputs import nothing from the daemon.
//!
//! The daemon's timers run on the monotonic clock, which a step of the wall
//! clock (set by hand or by NTP, a VM resumed) does not move. [`StepDetector`]
//! notices such a step, so an expiry it jumped past is acted on at once.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; negative for a clock set before it
/// (the true value, not 0, which would read as 1970 and as a valid time).
fn now_millis() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

/// Current time, Unix seconds.
pub fn now_unix() -> i64 {
    now_millis() / 1000
}

/// A wall-clock step smaller than this is not reported: expiry deadlines
/// are kept to the second, and NTP's slewing moves the clock far less
/// between two looks.
pub(crate) const STEP_TOLERANCE: Duration = Duration::from_secs(1);

/// Compares how far the wall clock and the monotonic clock moved between two
/// looks. Polling rather than a kernel notification (a `CLOCK_REALTIME`
/// timerfd cancelled on set): it sees the clock the way the process reads
/// it, so it works the same under libfaketime, which the tests step.
#[derive(Debug)]
pub(crate) struct StepDetector {
    /// The wall clock at the last look.
    wall: SystemTime,
    /// The monotonic clock at the same look.
    mono: Instant,
}

impl StepDetector {
    /// Starts watching from now.
    pub(crate) fn new() -> Self {
        StepDetector {
            wall: SystemTime::now(),
            mono: Instant::now(),
        }
    }

    /// How far the wall clock was stepped since the last look, in seconds
    /// (negative: back), if by more than [`STEP_TOLERANCE`]. Looks again
    /// from now either way.
    pub(crate) fn stepped(&mut self) -> Option<i64> {
        let (wall, mono) = (SystemTime::now(), Instant::now());
        let step = step_between(self.wall, wall, mono.duration_since(self.mono));
        (self.wall, self.mono) = (wall, mono);
        step
    }
}

/// The step, in whole seconds, when the wall clock went from `before` to
/// `after` while `elapsed` passed on the monotonic clock; `None` within
/// [`STEP_TOLERANCE`].
fn step_between(before: SystemTime, after: SystemTime, elapsed: Duration) -> Option<i64> {
    let expected = before + elapsed;
    let (gap, sign) = match after.duration_since(expected) {
        Ok(ahead) => (ahead, 1),
        Err(behind) => (behind.duration(), -1),
    };
    (gap > STEP_TOLERANCE).then(|| sign * gap.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_the_wall_clock_moving_apart_from_the_monotonic_one() {
        let t = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let second = Duration::from_secs(1);
        assert_eq!(step_between(t, t + second, second), None, "in step");
        let slewed = t + second + Duration::from_millis(400);
        assert_eq!(step_between(t, slewed, second), None, "within tolerance");
        let hours = Duration::from_secs(7200);
        assert_eq!(step_between(t, t + hours, second), Some(7199), "forward");
        assert_eq!(step_between(t, t - hours, second), Some(-7201), "back");
    }

    #[test]
    fn a_detector_reports_nothing_while_the_clocks_agree() {
        let mut d = StepDetector::new();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(d.stepped(), None);
    }
}
