//! The reconciler: refreshes the [`Inventory`] (the base and every source),
//! applies the policy, assembles the bundle and publishes it. It is the only
//! writer of the output and the only owner of the inventory, so there is
//! nothing to lock: the daemon calls it from one task, `run --once` calls it
//! once.

use crate::clock::now_unix;
use crate::config::RunConfig;
use crate::daemon::inventory::Inventory;
use crate::daemon::journal::Journal;
use crate::daemon::ledger::{PublishLedger, Report};
use crate::daemon::metrics::Metrics;
use crate::daemon::status::{BaseRequested, Status, StatusInputs};
use crate::output::publish::{Outcome, PublishError, Publisher};
use crate::output::retain::{Retention, STATE_FILE};
use crate::output::truststore::Truststore;
use crate::trust::base::{Base, BaseSpec};
use crate::trust::bundle::{assemble, Bundle};
use crate::trust::cert::Certificate;
use crate::trust::policy::Policy;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info};

/// The origin shown for `--retain-removed` certificates (logs, `/status`).
const RETAINED_ORIGIN: &str = "(retained after leaving the sources)";

/// Owns reading, merging and publishing.
#[derive(Debug)]
pub struct Reconciler {
    /// The last good state of the base and of every source file.
    inventory: Inventory,
    /// `--base` as configured, for `/status`.
    base_requested: BaseRequested,
    policy: Policy,
    publisher: Publisher,
    /// The bundle last published successfully.
    published: Option<Bundle>,
    /// When publishes wrote or failed, the retry backoff and the `/readyz`
    /// latch (set by the first [`Report::complete`] reconcile).
    ledger: PublishLedger,
    /// Which warnings were logged already.
    journal: Journal,
    metrics: Arc<Metrics>,
    /// Whether a probe server will serve the metrics: the bundle's series
    /// (one per custom certificate) are built only for someone to read.
    scraped: bool,
    /// `--pkcs12`: the Java truststore published next to the bundle.
    truststore: Option<Truststore>,
    /// `--retain-removed`: certificates kept for a while after they left.
    retention: Option<Retention>,
}

impl Reconciler {
    /// A reconciler for `config`. Checks that the out-dir is writable and,
    /// before reading anything, brings it back to one whole generation and
    /// removes a previous run's leftovers; then resolves the base (logged).
    pub fn new(config: &RunConfig, metrics: Arc<Metrics>) -> Result<Self, PublishError> {
        let mut publisher = Publisher::new(&config.out_dir);
        publisher.check_writable()?;
        let recovery = publisher.recover()?;
        if recovery.certs_moved {
            info!(out_dir = %config.out_dir.display(), "certs/ put back to the generation of the bundle: the previous run stopped between the two swaps");
        }
        if recovery.removed > 0 {
            let removed = recovery.removed;
            info!(removed, out_dir = %config.out_dir.display(), "removed leftovers of an interrupted run");
        }
        let base = Base::resolve(&config.base, &config.out_dir);
        if config.base == BaseSpec::System && base == Base::Embedded {
            info!("no system CA bundle found at the well-known paths; using the embedded Mozilla roots");
        }
        info!(base = %base.describe(), "base roots");
        Ok(Reconciler {
            inventory: Inventory::new(
                base,
                &config.sources,
                config.include.clone(),
                Arc::clone(&metrics),
            ),
            base_requested: BaseRequested::from(&config.base),
            policy: Policy {
                keep_expired: config.keep_expired,
            },
            publisher,
            published: None,
            ledger: PublishLedger::default(),
            journal: Journal::new(config.listen.is_some() && !config.once),
            metrics,
            scraped: config.listen.is_some() && !config.once,
            truststore: config.pkcs12.clone().map(Truststore::new),
            retention: match config.retain_removed {
                Some(grace) => Some(Retention::load(grace, &config.out_dir, now_unix())),
                None => {
                    crate::output::retain::forget(&config.out_dir);
                    None
                }
            },
        })
    }

    /// The base file and source paths, for the watcher.
    pub fn watched_paths(&self) -> Vec<PathBuf> {
        self.inventory.watched_paths()
    }

    /// When the earliest published certificate expires (Unix seconds).
    pub fn next_expiry(&self) -> Option<i64> {
        let expiry = self.published.as_ref().and_then(|b| b.next_expiry);
        // A retained certificate's grace ends like an expiry: on a timer.
        let retained = self.retention.as_ref().and_then(Retention::next_deadline);
        expiry.into_iter().chain(retained).min()
    }

    /// How long to wait before retrying the failed last publish; `None` when
    /// it succeeded. The daemon's own timer, so recovery never waits for an
    /// event or `--resync` (which may be off).
    pub fn retry_after(&self) -> Option<Duration> {
        self.ledger.retry_after()
    }

    /// Reads everything, publishes what differs from the disk, and reports.
    pub fn reconcile(&mut self) -> Report {
        let now = now_unix();
        self.metrics.record_reconcile();
        self.inventory.refresh();
        let retained = self.retained(now);
        let retained_origin = PathBuf::from(RETAINED_ORIGIN);
        let custom = self
            .inventory
            .custom()
            .chain(std::iter::once((&retained_origin, &retained[..])));
        let bundle = assemble(&self.inventory.base_state.certs, custom, self.policy, now);
        self.journal.warn_once(&bundle);

        let mut report = Report {
            errors: self.inventory.error_count(),
            ..Report::default()
        };
        let published = self
            .publisher
            .publish(&bundle)
            .and_then(|outcome| self.publish_truststore(&bundle, outcome));
        match published {
            Ok(outcome) => self.published(bundle, outcome, now, &mut report),
            Err(e) => {
                let msg = e.to_string();
                let retry = self.ledger.failed(now, msg.clone());
                error!(error = %e, retry_in_seconds = retry.as_secs(), "publishing failed; the previous bundle stays in place");
                self.metrics.record_publish_failure();
                report.publish_error = Some(msg);
            }
        }
        if report.complete() && self.ledger.become_ready() {
            info!("ready: every source that exists was read and published");
        }
        report
    }

    /// Books a successful publish of `bundle`: logs and counts what it
    /// wrote, and keeps `bundle` as the one on disk.
    fn published(&mut self, mut bundle: Bundle, outcome: Outcome, now: i64, report: &mut Report) {
        report.outcome = outcome;
        report.first = self.published.is_none();
        report.changed = self
            .published
            .as_ref()
            .is_some_and(|old| old.sha256 != bundle.sha256);
        if outcome.wrote() {
            self.metrics.record_publish(now);
            Journal::log_publish(self.published.as_ref(), &bundle, outcome);
        } else if report.first {
            info!(certificates = bundle.entries.len(), custom = bundle.custom_count(), sha256 = %bundle.sha256, "unchanged: the published bundle is already up to date");
        }
        self.ledger.succeeded(now, outcome.wrote());
        if self.scraped {
            self.metrics
                .record_bundle(&bundle, self.inventory.files_in_error());
        }
        bundle.forget_bytes();
        self.published = Some(bundle);
    }

    /// `--retain-removed`: the certificates that left the sources but are
    /// still in their grace period; the state is saved when it changed (a
    /// failure is logged and retried at the next reconcile: the bundle does
    /// not wait for it).
    fn retained(&mut self, now: i64) -> Vec<Certificate> {
        let Some(retention) = &mut self.retention else {
            return Vec::new();
        };
        let certs = retention.update(self.inventory.present(), now);
        if let Some(bytes) = retention.state_to_write() {
            match self.publisher.publish_state(STATE_FILE, &bytes) {
                Ok(()) => retention.mark_written(bytes),
                Err(e) => {
                    error!(error = %e, "cannot save the retention state; retrying at the next reconcile")
                }
            }
        }
        self.metrics.record_retained(certs.len());
        certs
    }

    /// `--pkcs12`: brings `truststore.p12` in line with `bundle`. Runs after
    /// the bundle: nothing watches the truststore (Java reads it at start).
    fn publish_truststore(
        &mut self,
        bundle: &Bundle,
        mut outcome: Outcome,
    ) -> Result<Outcome, PublishError> {
        let Some(truststore) = &mut self.truststore else {
            return Ok(outcome);
        };
        let bytes = truststore
            .encode(bundle)
            .map_err(|e| PublishError::new("encode", &self.publisher.truststore_path(), e))?;
        outcome.truststore_written = self.publisher.publish_truststore(bytes)?;
        Ok(outcome)
    }

    /// A snapshot for `/status`.
    pub fn status(&self) -> Status {
        Status::project(StatusInputs {
            publisher: &self.publisher,
            published: self.published.as_ref(),
            ledger: &self.ledger,
            base_requested: self.base_requested,
            inventory: &self.inventory,
            retention: self.retention.as_ref(),
        })
    }
}

#[cfg(test)]
mod tests;
