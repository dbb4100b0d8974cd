//! The wall clock, in one place every folder may use: the trust pipeline
//! compares it with expiry dates, the outputs stamp trust stores with it, and
//! the daemon reports it. It lives outside `daemon/` so that the trust
//! pipeline and the outputs import nothing from the daemon.

use std::time::{SystemTime, UNIX_EPOCH};

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Current time, Unix seconds.
pub fn now_unix() -> i64 {
    now_millis() / 1000
}
