//! The wall clock, in one place every folder may use: the trust pipeline
//! compares it with expiry dates, the outputs stamp trust stores with it, and
//! the daemon reports it. It lives outside `daemon/` so that the trust
//! pipeline and the outputs import nothing from the daemon.

use std::time::{SystemTime, UNIX_EPOCH};

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
