//! The reconciler: reads the base and every source, applies the policy,
//! assembles the bundle and publishes it. It is the only writer of the output
//! and the only owner of the per-file "last good" state, so there is nothing
//! to lock: the daemon calls it from one task, `run --once` calls it once.

use crate::clock::now_unix;
use crate::config::RunConfig;
use crate::daemon::metrics::{label_value, CertLabels, Metrics};
use crate::daemon::status::{
    BaseStatus, BundleStatus, CertStatus, DroppedStatus, FileStatus, SkippedStatus, SourceStatus,
    Status,
};
use crate::output::publish::{Outcome, PublishError, Publisher};
use crate::output::retain::{Retention, STATE_FILE};
use crate::output::truststore::Truststore;
use crate::trust::base::{embedded_roots, Base, BaseSpec};
use crate::trust::bundle::{assemble, Bundle};
use crate::trust::cert::{display_line, hex, rfc3339, Certificate};
use crate::trust::include::Include;
use crate::trust::parse::{parse_bundle_lenient, parse_file};
use crate::trust::policy::{Concern, Policy};
use crate::trust::source::{read_source_with, ReadError, SkipReason, Skipped, SourceRead};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tracing::{error, info, warn};

/// A base bundle file may be larger than a Secret; 16 MiB is ten times the
/// biggest distro bundle.
const MAX_BASE_BYTES: u64 = 16 * 1024 * 1024;

/// The origin shown for `--retain-removed` certificates (logs, `/status`).
const RETAINED_ORIGIN: &str = "(retained after leaving the sources)";

/// Subjects listed by name in a publish log line; the rest are counted.
const MAX_NAMES_LOGGED: usize = 20;

/// First wait before retrying a failed publish; doubled per failure in a row.
/// A disk freed or a permission fixed is picked up within about a second.
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// Longest wait between retries: a disk that stays full costs one attempt
/// (and one log line) per half minute, not a busy loop.
const RETRY_MAX: Duration = Duration::from_secs(30);

/// The last known state of one source file.
#[derive(Debug, Default)]
struct FileSlot {
    /// SHA-256 of the bytes last parsed, to skip re-parsing unchanged files.
    digest: Option<[u8; 32]>,
    /// The certificates of the last successful parse: what stays published
    /// while the file is broken.
    certs: Arc<[Certificate]>,
    /// The current error, if the file is broken now.
    error: Option<String>,
    private_keys: usize,
    other_blocks: usize,
}

/// The last known state of one `--source`.
#[derive(Debug)]
struct SourceSlot {
    path: PathBuf,
    missing: bool,
    /// An error listing the source itself (its files are kept meanwhile).
    error: Option<String>,
    /// Files by the path users see; the map's order is the bundle order.
    files: BTreeMap<PathBuf, FileSlot>,
    /// Entries not read, with why: kept to log each only when it first
    /// appears (a resync must not repeat it) and to show it in `/status`.
    skipped: BTreeMap<PathBuf, String>,
}

/// The base roots as last loaded.
#[derive(Debug, Default)]
struct BaseState {
    certs: Arc<[Certificate]>,
    digest: Option<[u8; 32]>,
    error: Option<String>,
}

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

/// Owns reading, merging and publishing.
#[derive(Debug)]
pub struct Reconciler {
    sources: Vec<SourceSlot>,
    base: Base,
    base_requested: String,
    base_state: BaseState,
    policy: Policy,
    publisher: Publisher,
    /// The bundle last published successfully.
    published: Option<Bundle>,
    last_publish: Option<i64>,
    last_publish_error: Option<String>,
    /// Failed publishes in a row (0 after a success): the retry backoff.
    publish_failures: u32,
    /// Unix time of the next retry, for `/status`.
    next_retry: Option<i64>,
    /// Latched by the first [`Report::complete`] reconcile (`/readyz`).
    ready: bool,
    /// Warnings already logged (by key), so a resync every minute does not
    /// repeat them.
    warned: HashSet<String>,
    metrics: Arc<Metrics>,
    /// `--pkcs12`: the Java truststore published next to the bundle.
    truststore: Option<Truststore>,
    /// `--include`: which files of a directory source are taken.
    include: Include,
    /// `--retain-removed`: certificates kept for a while after they left.
    retention: Option<Retention>,
}

impl Reconciler {
    /// A reconciler for `config`. Resolves the base now (logged), checks that
    /// the out-dir is writable and removes a previous run's leftovers.
    pub fn new(config: &RunConfig, metrics: Arc<Metrics>) -> Result<Self, PublishError> {
        let publisher = Publisher::new(&config.out_dir);
        publisher.check_writable()?;
        let removed = publisher.clean_leftovers()?;
        if removed > 0 {
            info!(removed, out_dir = %config.out_dir.display(), "removed leftovers of an interrupted run");
        }
        let base = Base::resolve(&config.base, &config.out_dir);
        if config.base == BaseSpec::System && base == Base::Embedded {
            info!("no system CA bundle found at the well-known paths; using the embedded Mozilla roots");
        }
        info!(base = %base.describe(), "base roots");
        Ok(Reconciler {
            sources: config
                .sources
                .iter()
                .map(|p| SourceSlot {
                    path: p.clone(),
                    missing: false,
                    error: None,
                    files: BTreeMap::new(),
                    skipped: BTreeMap::new(),
                })
                .collect(),
            base_requested: match &config.base {
                BaseSpec::System => "system",
                BaseSpec::Embedded => "embedded",
                BaseSpec::None => "none",
                BaseSpec::Path(_) => "path",
            }
            .to_string(),
            base,
            base_state: BaseState::default(),
            policy: Policy {
                keep_expired: config.keep_expired,
            },
            publisher,
            published: None,
            last_publish: None,
            last_publish_error: None,
            publish_failures: 0,
            next_retry: None,
            ready: false,
            warned: HashSet::new(),
            metrics,
            truststore: config.pkcs12.clone().map(Truststore::new),
            include: config.include.clone(),
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
        let mut paths: Vec<PathBuf> = self.sources.iter().map(|s| s.path.clone()).collect();
        if let Base::File(p) = &self.base {
            paths.push(p.clone());
        }
        paths
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
        (self.publish_failures > 0).then(|| retry_delay(self.publish_failures))
    }

    /// Reads everything, publishes what differs from the disk, and reports.
    pub fn reconcile(&mut self) -> Report {
        let now = now_unix();
        self.metrics.reconciles.inc();
        self.refresh_base();
        for i in 0..self.sources.len() {
            self.refresh_source(i);
        }
        let retained = self.retained(now);
        let retained_origin = PathBuf::from(RETAINED_ORIGIN);
        let custom = self
            .sources
            .iter()
            .flat_map(|s| s.files.iter().map(|(p, f)| (p, &f.certs[..])))
            .chain(std::iter::once((&retained_origin, &retained[..])));
        let bundle = assemble(&self.base_state.certs, custom, self.policy, now);
        self.warn_once(&bundle);

        let mut report = Report {
            errors: self.error_count(),
            ..Report::default()
        };
        let published = self
            .publisher
            .publish(&bundle)
            .and_then(|outcome| self.publish_truststore(&bundle, outcome));
        match published {
            Ok(outcome) => {
                report.outcome = outcome;
                report.first = self.published.is_none();
                report.changed = self
                    .published
                    .as_ref()
                    .is_some_and(|old| old.sha256 != bundle.sha256);
                if outcome.wrote() {
                    self.metrics.publishes.inc();
                    self.last_publish = Some(now);
                    self.metrics.last_publish.set(now as f64);
                    self.log_publish(&bundle, outcome);
                } else if report.first {
                    info!(certificates = bundle.entries.len(), custom = bundle.custom_count(), sha256 = %bundle.sha256, "unchanged: the published bundle is already up to date");
                }
                self.last_publish_error = None;
                self.publish_failures = 0;
                self.next_retry = None;
                self.update_gauges(&bundle);
                self.published = Some(bundle);
            }
            Err(e) => {
                self.publish_failures = self.publish_failures.saturating_add(1);
                let retry = retry_delay(self.publish_failures);
                self.next_retry = Some(now.saturating_add(retry.as_secs() as i64));
                error!(error = %e, retry_in_seconds = retry.as_secs(), "publishing failed; the previous bundle stays in place");
                self.metrics.publish_errors.inc();
                let msg = e.to_string();
                report.publish_error = Some(msg.clone());
                self.last_publish_error = Some(msg);
            }
        }
        if report.complete() && !self.ready {
            self.ready = true;
            info!("ready: every source that exists was read and published");
        }
        report
    }

    /// `--retain-removed`: the certificates that left the sources but are
    /// still in their grace period; the state is saved when it changed (a
    /// failure is logged and retried at the next reconcile: the bundle does
    /// not wait for it).
    fn retained(&mut self, now: i64) -> Vec<Certificate> {
        let Some(retention) = &mut self.retention else {
            return Vec::new();
        };
        let present = self
            .sources
            .iter()
            .flat_map(|s| s.files.values().flat_map(|f| f.certs.iter()));
        let certs = retention.update(present, now);
        if let Some(bytes) = retention.state_to_write() {
            match self.publisher.publish_state(STATE_FILE, &bytes) {
                Ok(()) => retention.mark_written(bytes),
                Err(e) => {
                    error!(error = %e, "cannot save the retention state; retrying at the next reconcile")
                }
            }
        }
        self.metrics.retained.set(certs.len() as i64);
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
        let bytes = truststore.encode(bundle).map_err(|e| PublishError {
            action: "encode",
            path: self.publisher.truststore_path(),
            source: std::io::Error::other(e),
        })?;
        outcome.truststore_written = self.publisher.publish_truststore(bytes)?;
        Ok(outcome)
    }

    fn refresh_base(&mut self) {
        match &self.base {
            Base::None => {}
            Base::Embedded => {
                if self.base_state.digest.is_none() {
                    let (certs, skipped) = embedded_roots();
                    if skipped > 0 {
                        warn!(
                            skipped,
                            "embedded roots that could not be parsed were skipped"
                        );
                    }
                    let mut h = Sha256::new();
                    for c in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
                        h.update(c.as_ref());
                    }
                    self.base_state = BaseState {
                        certs: certs.into(),
                        digest: Some(h.finalize().into()),
                        error: None,
                    };
                }
            }
            Base::File(path) => {
                let path = path.clone();
                let result = read_limited(&path, MAX_BASE_BYTES).and_then(|bytes| {
                    let digest: [u8; 32] = Sha256::digest(&bytes).into();
                    if self.base_state.digest == Some(digest) {
                        return Ok(None);
                    }
                    parse_bundle_lenient(&bytes)
                        .map(|parsed| Some((digest, parsed)))
                        .map_err(|e| e.to_string())
                });
                match result {
                    Ok(None) => self.base_state.error = None,
                    Ok(Some((digest, (certs, skipped)))) => {
                        if skipped > 0 {
                            warn!(path = %path.display(), skipped, "base certificates that could not be parsed were skipped");
                        }
                        info!(path = %path.display(), certificates = certs.len(), "read base bundle");
                        self.base_state = BaseState {
                            certs: certs.into(),
                            digest: Some(digest),
                            error: None,
                        };
                    }
                    Err(e) => {
                        if self.base_state.error.as_deref() != Some(e.as_str()) {
                            match self.base_state.certs.len() {
                                0 => {
                                    error!(path = %path.display(), error = %e, "cannot read the base bundle; publishing without base roots until it can be read")
                                }
                                n => {
                                    error!(path = %path.display(), error = %e, kept_certificates = n, "cannot read the base bundle; keeping the last good base")
                                }
                            }
                            self.metrics.source_errors.inc();
                        }
                        self.base_state.error = Some(e);
                    }
                }
            }
        }
    }

    fn refresh_source(&mut self, index: usize) {
        let metrics = Arc::clone(&self.metrics);
        let slot = &mut self.sources[index];
        match read_source_with(&slot.path, &self.include) {
            SourceRead::Missing => {
                if !slot.missing {
                    warn!(source = %slot.path.display(), "source does not exist (yet); waiting for it, publishing without it meanwhile");
                    for path in slot.files.keys() {
                        info!(file = %path.display(), "file disappeared; its certificates are removed");
                    }
                }
                slot.missing = true;
                slot.error = None;
                slot.files.clear();
                slot.skipped.clear();
            }
            SourceRead::Failed(e) => {
                let msg = read_error_message(&slot.path, &e);
                if slot.error.as_deref() != Some(msg.as_str()) {
                    error!(source = %slot.path.display(), error = %msg, "cannot read source; keeping its last good certificates");
                    metrics.source_errors.inc();
                }
                slot.missing = false;
                slot.error = Some(msg);
            }
            SourceRead::Files(listing) => {
                let files = listing.files;
                note_skipped(slot, listing.skipped);
                if slot.missing {
                    info!(source = %slot.path.display(), "source appeared");
                }
                slot.missing = false;
                slot.error = None;
                let present: HashSet<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
                slot.files.retain(|path, _| {
                    let keep = present.contains(path);
                    if !keep {
                        info!(file = %path.display(), "file disappeared; its certificates are removed");
                    }
                    keep
                });
                for file in files {
                    let entry = slot.files.entry(file.path.clone()).or_default();
                    refresh_file(&file.path, entry, file.bytes, &metrics);
                }
            }
        }
    }

    fn error_count(&self) -> usize {
        let files = self
            .sources
            .iter()
            .map(|s| {
                usize::from(s.error.is_some())
                    + s.files.values().filter(|f| f.error.is_some()).count()
            })
            .sum::<usize>();
        files + usize::from(self.base_state.error.is_some())
    }

    /// Logs drops and concerns the first time each is seen.
    fn warn_once(&mut self, bundle: &Bundle) {
        // Expired base roots are the image's curated list ageing, which the
        // operator cannot act on: one INFO line with a count, not a WARN each.
        let mut base_dropped = 0;
        for d in &bundle.dropped {
            if self.warned.insert(format!("drop:{}", d.cert.sha256)) {
                if d.origin.is_custom() {
                    warn!(subject = %display_line(&d.cert.subject), sha256 = %d.cert.sha256, source = %d.origin.describe(), reason = %d.reason, "certificate dropped");
                } else {
                    base_dropped += 1;
                }
            }
        }
        if base_dropped > 0 {
            info!(
                dropped = base_dropped,
                "dropped expired base certificates (listed under dropped_certificates in /status)"
            );
        }
        for e in &bundle.entries {
            for c in &e.concerns {
                if self.warned.insert(format!("{c:?}:{}", e.cert.sha256)) {
                    warn!(subject = %display_line(&e.cert.subject), sha256 = %e.cert.sha256, source = %e.origin.describe(), concern = %c.code(), "{}", c.explain(&e.cert));
                }
            }
        }
    }

    fn log_publish(&self, bundle: &Bundle, outcome: Outcome) {
        let old: HashSet<&str> = self
            .published
            .iter()
            .flat_map(|b| b.entries.iter().map(|e| e.cert.sha256.as_str()))
            .collect();
        let new: HashSet<&str> = bundle
            .entries
            .iter()
            .map(|e| e.cert.sha256.as_str())
            .collect();
        // On the first publish the whole base is "added"; naming the custom
        // certificates is what an operator wants to see then.
        let first = self.published.is_none();
        let added = names(
            bundle
                .entries
                .iter()
                .filter(|e| !first || e.origin.is_custom())
                .map(|e| &e.cert)
                .filter(|c| !old.contains(c.sha256.as_str())),
        );
        let removed = names(
            self.published
                .iter()
                .flat_map(|b| b.entries.iter().map(|e| &e.cert))
                .filter(|c| !new.contains(c.sha256.as_str())),
        );
        let what = match (
            self.published.as_ref().map(|b| b.sha256 == bundle.sha256),
            outcome.bundle_written,
        ) {
            (Some(true), _) => "restored published files that were missing or altered",
            (_, true) => "published bundle",
            (_, false) => "rebuilt hashed directory",
        };
        info!(
            certificates = bundle.entries.len(),
            custom = bundle.custom_count(),
            added = %added,
            removed = %removed,
            sha256 = %bundle.sha256,
            bundle_written = outcome.bundle_written,
            certs_dir_written = outcome.certs_written,
            truststore_written = outcome.truststore_written,
            "{what}"
        );
    }

    fn update_gauges(&self, bundle: &Bundle) {
        let m = &self.metrics;
        m.bundle_certificates.set(bundle.entries.len() as i64);
        m.custom_certificates.set(bundle.custom_count() as i64);
        let in_error = self
            .sources
            .iter()
            .map(|s| s.files.values().filter(|f| f.error.is_some()).count())
            .sum::<usize>();
        m.files_in_error.set(in_error as i64);
        // Same rule as the warnings (policy::Concern::ExpiresSoon); an expired
        // certificate kept by --keep-expired needs rotating even more.
        m.expiring_soon.set(
            bundle
                .entries
                .iter()
                .filter(|e| {
                    e.concerns.iter().any(|c| {
                        matches!(c, Concern::ExpiresSoon)
                            || (e.origin.is_custom() && matches!(c, Concern::ExpiredKept))
                    })
                })
                .count() as i64,
        );
        m.expiry.clear();
        for e in bundle.entries.iter().filter(|e| e.origin.is_custom()) {
            m.expiry
                .get_or_create(&CertLabels {
                    subject: label_value(&e.cert.subject),
                    sha256: e.cert.sha256.clone(),
                })
                .set(e.cert.not_after);
        }
    }

    /// A snapshot for `/status`.
    pub fn status(&self) -> Status {
        let bundle = self.published.as_ref();
        Status {
            version: env!("CARGO_PKG_VERSION"),
            ready: self.ready,
            bundle: BundleStatus {
                path: self.publisher.bundle_path().display().to_string(),
                certs_dir: self.publisher.certs_path().display().to_string(),
                sha256: bundle.map(|b| b.sha256.clone()),
                certificates: bundle.map_or(0, |b| b.entries.len()),
                custom_certificates: bundle.map_or(0, Bundle::custom_count),
                last_publish: self.last_publish.map(rfc3339),
                last_error: self.last_publish_error.clone(),
                next_retry: self.next_retry.map(rfc3339),
            },
            base: BaseStatus {
                requested: self.base_requested.clone(),
                source: self.base.describe(),
                sha256: self.base_state.digest.map(|d| hex(&d)),
                certificates: self.base_state.certs.len(),
                last_error: self.base_state.error.clone(),
            },
            sources: self.sources.iter().map(source_status).collect(),
            custom_certificates: bundle
                .iter()
                .flat_map(|b| b.entries.iter())
                .filter(|e| e.origin.is_custom())
                .map(|e| CertStatus {
                    subject: e.cert.subject.clone(),
                    issuer: e.cert.issuer.clone(),
                    not_before: rfc3339(e.cert.not_before),
                    not_after: rfc3339(e.cert.not_after),
                    sha256: e.cert.sha256.clone(),
                    source: e.origin.describe(),
                    ca: e.cert.is_ca,
                    self_signed: e.cert.self_signed,
                    warnings: e.concerns.iter().map(|c| c.explain(&e.cert)).collect(),
                })
                .collect(),
            dropped_certificates: bundle
                .iter()
                .flat_map(|b| b.dropped.iter())
                .map(|d| DroppedStatus {
                    subject: d.cert.subject.clone(),
                    sha256: d.cert.sha256.clone(),
                    source: d.origin.describe(),
                    reason: d.reason.clone(),
                })
                .collect(),
            retained_certificates: self
                .retention
                .as_ref()
                .map(Retention::status)
                .unwrap_or_default(),
            notifications: Default::default(),
        }
    }
}

/// Updates one file's slot from what was just read.
fn refresh_file(
    path: &Path,
    slot: &mut FileSlot,
    bytes: Result<Vec<u8>, ReadError>,
    metrics: &Metrics,
) {
    let bytes = match bytes {
        Ok(b) => b,
        Err(e) => {
            fail_file(path, slot, read_error_message(path, &e), metrics);
            // Re-parse once the file reads again, even if its bytes match.
            slot.digest = None;
            return;
        }
    };
    let digest: [u8; 32] = Sha256::digest(&bytes).into();
    if slot.digest == Some(digest) {
        return;
    }
    slot.digest = Some(digest);
    match parse_file(&bytes) {
        Ok(parsed) => {
            if parsed.private_keys > 0 {
                warn!(file = %path.display(), private_keys = parsed.private_keys, "private key block(s) skipped; keys are never published or logged");
            }
            if parsed.certs.is_empty() {
                warn!(file = %path.display(), other_blocks = parsed.other_blocks, "file holds no certificate");
            } else {
                info!(file = %path.display(), certificates = parsed.certs.len(), "read source file");
            }
            if slot.error.is_some() {
                info!(file = %path.display(), "file is valid again");
            }
            *slot = FileSlot {
                digest: Some(digest),
                certs: parsed.certs.into(),
                error: None,
                private_keys: parsed.private_keys,
                other_blocks: parsed.other_blocks,
            };
        }
        Err(e) => fail_file(path, slot, e.to_string(), metrics),
    }
}

/// A read error as users see it. A permission error is the common
/// misconfiguration of a Secret volume (`defaultMode: 0400`, root-owned,
/// sidecar running as non-root): say who we are and how to fix it.
fn read_error_message(path: &Path, e: &ReadError) -> String {
    let msg = e.to_string();
    // ReadError keeps io errors as text; EACCES's text ends "(os error 13)".
    if !msg.contains("(os error 13)") {
        return msg;
    }
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    format!(
        "{msg}: {} is not readable by uid {uid} (gid {gid}), the user the sidecar runs as; \
         make the Secret or ConfigMap volume readable: `defaultMode: 0444` on the volume, \
         or set the Pod's `securityContext.fsGroup` (the kubelet then gives the files that group)",
        path.display()
    )
}

/// Records that the file at `path` is unusable. Logged and counted once per
/// kind of failure: a file that keeps being replaced with new bytes failing
/// the same way (a service-account token refreshed every hour in a projected
/// volume) is one ongoing problem, not a new one each time; a different
/// failure, or the same one after the file was valid, is new.
fn fail_file(path: &Path, slot: &mut FileSlot, msg: String, metrics: &Metrics) {
    if slot.error.as_deref() != Some(msg.as_str()) {
        if slot.certs.is_empty() {
            error!(file = %path.display(), error = %msg, "cannot use source file; it adds no certificate until it is fixed");
        } else {
            error!(file = %path.display(), error = %msg, kept_certificates = slot.certs.len(), "cannot use source file; keeping the certificates it last contributed");
        }
        metrics.source_errors.inc();
    } else {
        tracing::debug!(file = %path.display(), error = %msg, "source file changed and still fails the same way");
    }
    slot.error = Some(msg);
}

/// Replaces the source's skipped entries with `now`, logging those new or
/// skipped for a new reason. A file left out by `--include` is what the user
/// asked for (info); a loop, an escaping link or a FIFO is worth a warning.
fn note_skipped(slot: &mut SourceSlot, now: Vec<Skipped>) {
    let mut next = BTreeMap::new();
    for s in now {
        let reason = s.reason.to_string();
        if slot.skipped.get(&s.path) != Some(&reason) {
            // Names and link targets are chosen by whoever writes the volume:
            // escaped so that none can start a log line of its own.
            let file = display_line(&s.path.to_string_lossy());
            if s.reason == SkipReason::Excluded {
                info!(file = %file, "file skipped: {reason}");
            } else {
                warn!(file = %file, reason = %display_line(&reason), "file skipped; it is never read");
            }
        }
        next.insert(s.path, reason);
    }
    slot.skipped = next;
}

fn source_status(s: &SourceSlot) -> SourceStatus {
    let files: Vec<FileStatus> = s
        .files
        .iter()
        .map(|(path, f)| FileStatus {
            path: path.display().to_string(),
            state: if f.error.is_some() {
                "error"
            } else if f.certs.is_empty() {
                "empty"
            } else {
                "ok"
            },
            certificates: f.certs.len(),
            private_keys_skipped: f.private_keys,
            other_blocks_ignored: f.other_blocks,
            error: f.error.clone(),
        })
        .collect();
    let skipped = s
        .skipped
        .iter()
        .map(|(path, reason)| SkippedStatus {
            path: path.display().to_string(),
            reason: reason.clone(),
        })
        .collect();
    let file_error = files.iter().any(|f| f.error.is_some());
    SourceStatus {
        path: s.path.display().to_string(),
        state: if s.missing {
            "missing"
        } else if s.error.is_some() || file_error {
            "error"
        } else {
            "ok"
        },
        last_error: s.error.clone().or_else(|| {
            files
                .iter()
                .find_map(|f| f.error.as_ref().map(|e| format!("{}: {e}", f.path)))
        }),
        files,
        skipped,
    }
}

/// The wait before retry number `failures` (1-based): 1 s, 2 s, 4 s, ... 30 s.
fn retry_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (RETRY_FIRST * 2u32.pow(doublings)).min(RETRY_MAX)
}

fn names<'a>(certs: impl Iterator<Item = &'a Certificate>) -> String {
    let all: Vec<String> = certs.map(|c| display_line(&c.subject)).collect();
    if all.len() > MAX_NAMES_LOGGED {
        format!(
            "{}; and {} more",
            all[..MAX_NAMES_LOGGED].join("; "),
            all.len() - MAX_NAMES_LOGGED
        )
    } else {
        all.join("; ")
    }
}

fn read_limited(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max {
        return Err(format!("larger than {max} bytes"));
    }
    Ok(bytes)
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
