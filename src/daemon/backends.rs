//! Wiring `run --check` into the daemon: the checker thread started beside
//! the loop, its results into the metrics, and the loop's news (a changed
//! bundle, the CAs in their grace) to it.

use super::metrics::Metrics;
use super::status::Status;
use crate::checks::board::Board;
use crate::checks::retained::RetainedCa;
use crate::checks::Checker;
use crate::config::RunConfig;
use crate::output::publish::BUNDLE_FILE;
use std::sync::Arc;

/// The checker, when backends are configured, and the board `/status` reads
/// (empty without checks).
pub struct Backends {
    checker: Option<Checker>,
    pub board: Arc<Board>,
    /// Whether the first round is still to be asked for: the loop's first
    /// publish may find the bundle unchanged on disk, yet it must be checked.
    first: bool,
}

impl Backends {
    /// Starts the checker thread if `config` lists backends.
    pub fn start(config: &RunConfig, metrics: &Arc<Metrics>) -> std::io::Result<Backends> {
        let board = Arc::new(Board::default());
        let checker = if config.checks.targets.is_empty() {
            None
        } else {
            let metrics = Arc::clone(metrics);
            let sink = Box::new(move |checked: &[_], all: &[_]| {
                metrics.backends.record(checked, all);
            });
            let bundle = config.out_dir.join(BUNDLE_FILE);
            Some(Checker::spawn(
                config.checks.clone(),
                bundle,
                Arc::clone(&board),
                sink,
            )?)
        };
        Ok(Backends {
            checker,
            board,
            first: true,
        })
    }

    /// After a cycle: wakes the checker when the bundle `changed` (and
    /// after the first cycle), telling it the CAs in their grace.
    pub fn after_cycle(&mut self, changed: bool, status: &Status) {
        let Some(checker) = &self.checker else {
            return;
        };
        if !(changed || self.first) || status.bundle.sha256.is_none() {
            return;
        }
        self.first = false;
        let retained = status
            .retained_certificates
            .iter()
            .map(|r| RetainedCa {
                subject: r.subject.clone(),
                sha256: r.sha256.clone(),
                leaves_at: r.leaves_at.clone(),
            })
            .collect();
        checker.bundle_changed(retained);
    }
}
