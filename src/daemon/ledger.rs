//! The publish ledger: what one reconcile did ([`Report`]) and what the
//! publishes so far have done ([`PublishLedger`]), for the retry timer,
//! `/status`, `/readyz` and `run --once`'s exit code. Pure bookkeeping (times
//! are passed in, nothing is read or written), so the rules for retrying and
//! for readiness are tested without a publisher.

use crate::output::publish::Outcome;
use std::time::Duration;

/// First wait before retrying a failed publish; doubled per failure in a row.
/// A disk freed or a permission fixed is picked up within about a second.
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// Longest wait between retries: a disk that stays full costs one attempt
/// (and one log line) per half minute, not a busy loop.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// What one reconcile did.
#[derive(Debug, Default)]
pub struct Report {
    /// What was written.
    pub outcome: Outcome,
    /// The bundle's bytes differ from the previously published bundle (false
    /// for the first publish and for a restore of deleted files).
    pub changed: bool,
    /// Whether this was the first successful publish.
    pub first: bool,
    /// Base, sources or files currently in error.
    pub errors: usize,
    /// Set when publishing failed; the previous output is intact.
    pub publish_error: Option<String>,
}

impl Report {
    /// A publish succeeded and every source that exists (and the base) read
    /// without error: `run --once` exits 0, and the daemon becomes ready.
    /// One rule for both, so the init-container and native-sidecar variants
    /// hold the gateway back in the same cases.
    pub fn complete(&self) -> bool {
        self.publish_error.is_none() && self.errors == 0
    }
}

/// What the publishes so far have done. Owned by the reconciler, read by the
/// `/status` projection.
#[derive(Debug, Default)]
pub(crate) struct PublishLedger {
    /// Unix time of the last publish that wrote something (`last_publish`):
    /// one that found the disk up to date does not count.
    last_publish: Option<i64>,
    /// The last failure, cleared by the next success (`last_error`).
    last_error: Option<String>,
    /// Failed publishes in a row (0 after a success): the retry backoff.
    failures: u32,
    /// Unix time of the next retry, for `/status` (`next_retry`).
    next_retry: Option<i64>,
    /// Latched by the first complete reconcile (`/readyz`): a Secret broken
    /// later never takes a running pod out of service.
    ready: bool,
}

impl PublishLedger {
    /// A publish succeeded at `now`; `wrote` says whether it changed the
    /// disk. Ends any failure streak.
    pub(crate) fn succeeded(&mut self, now: i64, wrote: bool) {
        if wrote {
            self.last_publish = Some(now);
        }
        self.last_error = None;
        self.failures = 0;
        self.next_retry = None;
    }

    /// A publish failed at `now` with `error`. Returns the wait before the
    /// retry, which grows with the failures in a row.
    pub(crate) fn failed(&mut self, now: i64, error: String) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let retry = retry_delay(self.failures);
        self.next_retry = Some(now.saturating_add(retry.as_secs() as i64));
        self.last_error = Some(error);
        retry
    }

    /// How long to wait before retrying the failed last publish; `None` when
    /// it succeeded.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        (self.failures > 0).then(|| retry_delay(self.failures))
    }

    /// Latches readiness after a complete reconcile. True only the first
    /// time, when "ready" is worth a log line.
    pub(crate) fn become_ready(&mut self) -> bool {
        !std::mem::replace(&mut self.ready, true)
    }

    /// Whether a complete reconcile happened (`/readyz`).
    pub(crate) fn ready(&self) -> bool {
        self.ready
    }

    /// Unix time of the last publish that wrote something.
    pub(crate) fn last_publish(&self) -> Option<i64> {
        self.last_publish
    }

    /// The last publish failure, until the next success.
    pub(crate) fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Unix time of the next retry after a failure.
    pub(crate) fn next_retry(&self) -> Option<i64> {
        self.next_retry
    }
}

/// The wait before retry number `failures` (1-based): 1 s, 2 s, 4 s, ... 30 s.
fn retry_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (RETRY_FIRST * 2u32.pow(doublings)).min(RETRY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_retries_back_off_from_one_second_to_thirty() {
        let waits: Vec<u64> = (1..=8).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(retry_delay(u32::MAX), RETRY_MAX);
    }

    #[test]
    fn failures_in_a_row_back_off_and_a_success_ends_the_streak() {
        let mut ledger = PublishLedger::default();
        assert_eq!(ledger.retry_after(), None);
        assert_eq!(
            ledger.failed(100, "disk full".into()),
            Duration::from_secs(1)
        );
        assert_eq!(
            ledger.failed(101, "disk full".into()),
            Duration::from_secs(2)
        );
        assert_eq!(ledger.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(ledger.next_retry(), Some(103));
        assert_eq!(ledger.last_error(), Some("disk full"));

        ledger.succeeded(110, true);
        assert_eq!(ledger.retry_after(), None);
        assert_eq!((ledger.next_retry(), ledger.last_error()), (None, None));
        assert_eq!(ledger.last_publish(), Some(110));
        assert_eq!(
            ledger.failed(120, "disk full".into()),
            Duration::from_secs(1),
            "a new streak starts from one second"
        );
    }

    #[test]
    fn a_publish_that_wrote_nothing_keeps_the_last_publish_time() {
        let mut ledger = PublishLedger::default();
        ledger.succeeded(100, false);
        assert_eq!(ledger.last_publish(), None);
        ledger.succeeded(200, true);
        ledger.succeeded(300, false);
        assert_eq!(ledger.last_publish(), Some(200));
    }

    #[test]
    fn a_failure_keeps_the_last_publish_time() {
        let mut ledger = PublishLedger::default();
        ledger.succeeded(100, true);
        ledger.failed(200, "read-only file system".into());
        assert_eq!(ledger.last_publish(), Some(100));
    }

    #[test]
    fn readiness_latches_and_is_announced_once() {
        let mut ledger = PublishLedger::default();
        assert!(!ledger.ready());
        assert!(ledger.become_ready());
        assert!(!ledger.become_ready());
        ledger.failed(100, "disk full".into());
        assert!(ledger.ready(), "a later failure never clears readiness");
    }
}
