//! The backends' latest results, shared between the checker (the one
//! writer) and the `/status` server, and the one log line per change of a
//! backend's verdict.

use super::outcome::{BackendStatus, CheckResult};
use std::sync::Mutex;
use tracing::{info, warn};

/// The last result of each backend checked so far, in the configured order.
#[derive(Debug, Default)]
pub struct Board {
    backends: Mutex<Vec<BackendStatus>>,
}

impl Board {
    /// A copy for `/status` and the metrics.
    pub fn snapshot(&self) -> Vec<BackendStatus> {
        // A poisoned lock means the checker panicked; the data is whole.
        self.backends
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stores a round's results (`order` is the configured URLs), logging
    /// each backend whose verdict changed, and only those.
    pub fn record(&self, fresh: Vec<BackendStatus>, order: &[&str]) {
        let mut backends = self.backends.lock().unwrap_or_else(|p| p.into_inner());
        for status in fresh {
            match backends.iter_mut().find(|b| b.url == status.url) {
                Some(old) => {
                    if old.verdict_key() != status.verdict_key() {
                        log_change(&status);
                    }
                    *old = status;
                }
                None => {
                    log_change(&status);
                    backends.push(status);
                }
            }
        }
        backends.sort_by_key(|b| order.iter().position(|u| *u == b.url));
    }
}

/// The line an operator reads when a backend's verdict changes.
fn log_change(s: &BackendStatus) {
    let cause = s.causes.first();
    let code = cause.map_or("", |c| c.code);
    let message = cause.map_or("", |c| c.message.as_str());
    let fix = cause.map_or("", |c| c.fix.as_str());
    match (&s.result, &s.trusted_only_by_retained) {
        (CheckResult::Trusted, None) => {
            info!(backend = %s.url, result = "trusted", "backend trusted")
        }
        (CheckResult::Trusted, Some(r)) => warn!(
            backend = %s.url,
            result = "trusted",
            retained_ca = %r.subject,
            until = %r.until,
            "backend trusted only through retained CA {} until {}: it breaks then; fix the \
             backend's chain or put its CA back in the Secret",
            r.subject,
            r.until
        ),
        (result, _) if result.reachable() => warn!(
            backend = %s.url,
            result = result.as_str(),
            cause = code,
            fix,
            "backend not trusted: {message}"
        ),
        (result, _) => warn!(
            backend = %s.url,
            result = result.as_str(),
            cause = code,
            fix,
            "backend not reachable: {message}"
        ),
    }
}
