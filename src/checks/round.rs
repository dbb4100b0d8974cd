//! One round: a handshake to each due backend, a few at a time, so that a
//! hanging backend holds one worker for its timeout while the others go on.

use crate::handshake::{verify, Options, Report, Target, VerifyError};
use crate::trust::cert::Certificate;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Handshakes in flight at once: bounds the threads and sockets a round
/// takes, and lets a round of many backends overlap their waits.
pub const CONCURRENCY: usize = 8;

/// Checks each of `targets` trusting only `bundle` (read from
/// `bundle_path`); the results in the order of `targets`.
pub fn check_all(
    targets: &[&Target],
    bundle_path: &Path,
    bundle: &[Certificate],
    timeout: Duration,
) -> Vec<Result<Report, VerifyError>> {
    let options = Options { timeout };
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Result<Report, VerifyError>)>> = Mutex::new(Vec::new());
    let workers = CONCURRENCY.min(targets.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(target) = targets.get(i) else {
                    break;
                };
                let result = verify(target, bundle_path, bundle, &options);
                // A poisoned lock means another worker panicked; its data is whole.
                let mut done = results.lock().unwrap_or_else(|p| p.into_inner());
                done.push((i, result));
            });
        }
    });
    let mut done = results.into_inner().unwrap_or_else(|p| p.into_inner());
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}
