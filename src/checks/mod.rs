//! Backend checks (`run --check URL`): a TLS handshake to each configured
//! backend that trusts only the bundle the sidecar published, with
//! `verify`'s diagnosis, after every publish that changed the bundle and
//! on `--check-interval`.
//!
//! The checker is its own thread, beside the reconcile loop: the loop only
//! sends it a wake-up (which never blocks), so a slow or hanging backend
//! can never delay a publish. It reads the published `ca-certificates.crt`
//! itself, as an application would. [`url`] is the URL a check takes,
//! [`round`] runs the handshakes a few at a time, [`retained`] tells which
//! backends only a CA in its grace still anchors, [`backoff`] spaces out a
//! failing backend, [`outcome`] is one result and [`board`] keeps the latest
//! ones and logs each change.

pub(crate) mod backoff;
pub(crate) mod board;
pub(crate) mod outcome;
pub(crate) mod retained;
pub(crate) mod round;
pub(crate) mod url;

use crate::config::ChecksConfig;
use crate::handshake::load_bundle;
use backoff::Backoff;
use board::Board;
use outcome::{BackendStatus, CheckResult};
use retained::{only_by_retained, RetainedCa};
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Instant;
use tracing::warn;

/// Told after each round, with the round's results and then the latest of
/// every backend: the daemon turns them into metrics (checks import nothing
/// of the daemon).
pub type Sink = Box<dyn Fn(&[BackendStatus], &[BackendStatus]) + Send>;

/// The handle the reconcile loop keeps: wakes the checker thread.
#[derive(Debug)]
pub struct Checker {
    wake: Sender<Vec<RetainedCa>>,
}

impl Checker {
    /// Starts the checker thread for `config`, reading the bundle at
    /// `bundle_path`, storing results in `board` and telling `sink`.
    pub fn spawn(
        config: ChecksConfig,
        bundle_path: PathBuf,
        board: Arc<Board>,
        sink: Sink,
    ) -> std::io::Result<Checker> {
        let (wake, woken) = mpsc::channel();
        let worker = Worker {
            config,
            bundle_path,
            board,
            sink,
            retained: Vec::new(),
            bundle_error: None,
        };
        std::thread::Builder::new()
            .name("checks".into())
            .spawn(move || worker.run(woken))?;
        Ok(Checker { wake })
    }

    /// The bundle changed (or is there for the first time): check every
    /// backend now. `retained` are the CAs in their grace period. Never
    /// blocks; a checker busy with a round checks again after it.
    pub fn bundle_changed(&self, retained: Vec<RetainedCa>) {
        if self.wake.send(retained).is_err() {
            // Only if the thread panicked; the log of that panic said why.
            warn!("backend checks stopped: the checker thread is gone");
        }
    }
}

/// The checker thread's state.
struct Worker {
    config: ChecksConfig,
    bundle_path: PathBuf,
    board: Arc<Board>,
    sink: Sink,
    /// From the latest wake-up.
    retained: Vec<RetainedCa>,
    /// Why the last round could not read the bundle: said once, not every round.
    bundle_error: Option<String>,
}

impl Worker {
    /// Waits for a changed bundle or the interval, then checks. Returns when
    /// the daemon drops its [`Checker`].
    fn run(mut self, woken: Receiver<Vec<RetainedCa>>) {
        let mut schedule = vec![Backoff::default(); self.config.targets.len()];
        loop {
            let forced = match self.config.interval {
                Some(i) => match woken.recv_timeout(i) {
                    Ok(r) => Some(r),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
                None => match woken.recv() {
                    Ok(r) => Some(r),
                    Err(_) => return,
                },
            };
            let forced = forced.map(|r| woken.try_iter().last().unwrap_or(r));
            let all = forced.is_some();
            if let Some(r) = forced {
                self.retained = r;
            }
            let now = Instant::now();
            let due: Vec<usize> = (0..schedule.len())
                .filter(|i| all || schedule[*i].due(now))
                .collect();
            if !due.is_empty() {
                self.round(&due, &mut schedule);
            }
        }
    }

    /// Checks the backends at `due` and shares the results.
    fn round(&mut self, due: &[usize], schedule: &mut [Backoff]) {
        let bundle = match load_bundle(&self.bundle_path) {
            Ok(b) => b.certs,
            Err(e) => {
                let e = e.to_string();
                if self.bundle_error.as_ref() != Some(&e) {
                    warn!(error = %e, "backend checks skipped: the published bundle cannot be read");
                    self.bundle_error = Some(e);
                }
                return;
            }
        };
        self.bundle_error = None;
        let targets: Vec<_> = due.iter().map(|i| &self.config.targets[*i]).collect();
        let reports = round::check_all(&targets, &self.bundle_path, &bundle, self.config.timeout);
        let now = crate::clock::now_unix();
        let at = Instant::now();
        let mut fresh = Vec::with_capacity(reports.len());
        for ((i, target), report) in due.iter().zip(&targets).zip(reports) {
            let mut status = match report {
                Ok(r) => {
                    let retained = only_by_retained(&r, target, &bundle, &self.retained, now);
                    BackendStatus::of(r, retained, now)
                }
                Err(e) => BackendStatus::failed(&target.url, e.to_string(), now),
            };
            schedule[*i].record(
                status.result == CheckResult::Trusted,
                at,
                self.config.interval,
            );
            status.consecutive_failures = schedule[*i].failures;
            fresh.push(status);
        }
        let order: Vec<&str> = self.config.targets.iter().map(|t| t.url.as_str()).collect();
        self.board.record(fresh.clone(), &order);
        (self.sink)(&fresh, &self.board.snapshot());
    }
}
