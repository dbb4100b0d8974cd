//! The publish ledger: what the publishes so far have done, for the retry
//! timer and `/status`.

use std::time::Duration;

/// First wait before retrying a failed publish; doubled per failure in a row.
/// A disk freed or a permission fixed is picked up within about a second.
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// Longest wait between retries: a disk that stays full costs one attempt
/// (and one log line) per half minute, not a busy loop.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// The wait before retry number `failures` (1-based): 1 s, 2 s, 4 s, ... 30 s.
pub(crate) fn retry_delay(failures: u32) -> Duration {
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
}
