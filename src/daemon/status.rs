//! The state the reconcile loop shares with the HTTP server: a snapshot
//! rebuilt after each reconcile (`/status`, `/readyz`) and the loop's
//! progress (`/healthz`). The server only reads; the loop is the one writer.

use crate::daemon::inventory::{Inventory, SourceSlot};
use crate::daemon::ledger::PublishLedger;
use crate::output::publish::Publisher;
use crate::output::retain::Retention;
use crate::trust::base::BaseSpec;
use crate::trust::bundle::{Bundle, Dropped, Entry};
use crate::trust::cert::{hex, rfc3339};
use crate::trust::summary::CertSummary;
use crate::trust::warning::Warning;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `/status` as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub version: &'static str,
    /// What `/readyz` reports: a bundle was published in which every source
    /// that exists read without error (the same rule as `run --once`'s exit
    /// 0). Latched: once true it stays true, so a Secret broken later never
    /// takes a running pod out of service (its last good CAs stay published).
    pub ready: bool,
    pub bundle: BundleStatus,
    pub base: BaseStatus,
    pub sources: Vec<SourceStatus>,
    /// Every custom certificate in the bundle.
    pub custom_certificates: Vec<CertStatus>,
    /// Certificates left out by the policy (expired).
    pub dropped_certificates: Vec<DroppedStatus>,
    /// `--retain-removed`: certificates that left the sources and stay until
    /// `leaves_at` (empty when off).
    pub retained_certificates: Vec<crate::output::retain::RetainedStatus>,
    /// The last `--on-change-*` notifications (filled in by the daemon: the
    /// hooks run in their own task, not in the reconciler).
    pub notifications: NotificationsStatus,
}

/// The last notification of each kind; `null` until one was sent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NotificationsStatus {
    pub last_url: Option<NotificationStatus>,
    pub last_signal: Option<NotificationStatus>,
}

/// One notification's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotificationStatus {
    /// RFC 3339 time at which the outcome was known.
    pub time: String,
    /// `ok` or `error`.
    pub outcome: NotificationOutcome,
    /// What happened: the HTTP status and attempts, the processes signalled,
    /// or the error.
    pub detail: String,
    /// The bundle the notification was about.
    pub bundle_sha256: String,
}

/// How a notification ended; also the `outcome` label of
/// `trust_injector_notifications_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum NotificationOutcome {
    /// The application answered 2xx, or at least one process was signalled.
    Ok,
    /// Every attempt failed, or no process was found.
    Error,
}

impl NotificationOutcome {
    /// `Ok` if `ok`, else `Error`.
    pub(crate) fn of(ok: bool) -> Self {
        if ok {
            NotificationOutcome::Ok
        } else {
            NotificationOutcome::Error
        }
    }

    /// The name in `/status` and in the metric label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            NotificationOutcome::Ok => "ok",
            NotificationOutcome::Error => "error",
        }
    }
}

/// The published bundle.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BundleStatus {
    pub path: String,
    pub certs_dir: String,
    pub sha256: Option<String>,
    pub certificates: usize,
    pub custom_certificates: usize,
    /// RFC 3339 time of the last publish that wrote something.
    pub last_publish: Option<String>,
    /// The last publish failure, cleared by the next success.
    pub last_error: Option<String>,
    /// RFC 3339 time of the next attempt after a failed publish (backoff from
    /// 1 s, capped at 30 s; independent of `--resync`); `null` when the last
    /// publish succeeded.
    pub next_retry: Option<String>,
}

/// The base roots.
#[derive(Debug, Clone, Serialize)]
pub struct BaseStatus {
    /// `system`, `embedded`, `none` or `path`, as configured.
    pub requested: BaseRequested,
    /// What is actually used: a file path or the embedded roots.
    pub source: String,
    /// SHA-256 of the base's bytes (the file, or the concatenated embedded DER).
    pub sha256: Option<String>,
    pub certificates: usize,
    pub last_error: Option<String>,
}

/// What `--base` asked for, without the path (which `source` shows): the
/// user may ask for `system` and get the embedded roots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum BaseRequested {
    /// The distro bundle, else the embedded roots (`source` says which).
    System,
    /// The roots compiled into the binary.
    Embedded,
    /// No base: the custom CAs alone.
    None,
    /// A bundle file (its path is in `source`).
    Path,
}

impl From<&BaseSpec> for BaseRequested {
    fn from(spec: &BaseSpec) -> Self {
        match spec {
            BaseSpec::System => BaseRequested::System,
            BaseSpec::Embedded => BaseRequested::Embedded,
            BaseSpec::None => BaseRequested::None,
            BaseSpec::Path(_) => BaseRequested::Path,
        }
    }
}

/// One `--source`.
#[derive(Debug, Clone, Serialize)]
pub struct SourceStatus {
    pub path: String,
    /// `ok`, `missing` (waited for), or `error` (itself or one of its files).
    pub state: SourceState,
    pub last_error: Option<String>,
    pub files: Vec<FileStatus>,
    /// Entries deliberately not read (loops, links leaving the source,
    /// FIFOs, files not matched by `--include`), with the reason.
    pub skipped: Vec<SkippedStatus>,
}

/// How a source reads now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SourceState {
    /// It and all its files read without error.
    Ok,
    /// It does not exist (yet): waited for, not an error.
    Missing,
    /// It or one of its files is in error (last good certificates kept).
    Error,
}

/// An entry of a directory source that was not read, and why.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SkippedStatus {
    pub path: String,
    pub reason: String,
}

/// One file of a source.
#[derive(Debug, Clone, Serialize)]
pub struct FileStatus {
    pub path: String,
    /// `ok`, `error` (last good certificates kept) or `empty` (no certificates,
    /// e.g. only a private key).
    pub state: FileState,
    pub certificates: usize,
    pub private_keys_skipped: usize,
    pub other_blocks_ignored: usize,
    pub error: Option<String>,
}

/// How a source file reads now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FileState {
    /// Parsed, with certificates.
    Ok,
    /// Unreadable or unparsable: its last good certificates are kept.
    Error,
    /// Parsed, without a certificate (only a private key, say).
    Empty,
}

/// A certificate in the bundle.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CertStatus {
    /// Subject, issuer and validity, as `inspect` and `verify` show them.
    #[serde(flatten)]
    pub cert: CertSummary,
    /// Its SHA-256 fingerprint: the identity to compare with `inspect`.
    pub sha256: String,
    /// The file (or the base) it came from, so a bad CA can be traced.
    pub source: String,
    pub ca: bool,
    pub self_signed: bool,
    /// What the policy found worth saying: a code and a message, as
    /// `inspect --json` and the log say it.
    pub warnings: Vec<Warning>,
}

/// A certificate the policy left out. Only its subject and fingerprint:
/// enough to find it in its source (the reason says the rest).
#[derive(Debug, Clone, Default, Serialize)]
pub struct DroppedStatus {
    pub subject: String,
    /// Its SHA-256 fingerprint: the identity to compare with `inspect`.
    pub sha256: String,
    /// The file it came from.
    pub source: String,
    /// Why it was left out (e.g. "expired at …").
    pub reason: String,
}

/// What the `/status` projection reads: the reconciler's state, borrowed
/// piece by piece so that this module needs nothing of the reconciler.
pub(crate) struct StatusInputs<'a> {
    /// Where the bundle and the hashed directory are published.
    pub publisher: &'a Publisher,
    /// The bundle last published successfully.
    pub published: Option<&'a Bundle>,
    /// When publishes wrote or failed, and readiness.
    pub ledger: &'a PublishLedger,
    /// `--base` as configured.
    pub base_requested: BaseRequested,
    /// The last good base and sources.
    pub inventory: &'a Inventory,
    /// `--retain-removed`, when on.
    pub retention: Option<&'a Retention>,
}

impl Status {
    /// The `/status` snapshot of what the reconciler holds (the hooks'
    /// outcomes are added by the daemon).
    pub(crate) fn project(inputs: StatusInputs<'_>) -> Status {
        let bundle = inputs.published;
        Status {
            version: env!("CARGO_PKG_VERSION"),
            ready: inputs.ledger.ready(),
            bundle: BundleStatus::project(inputs.publisher, bundle, inputs.ledger),
            base: BaseStatus::project(inputs.base_requested, inputs.inventory),
            sources: inputs
                .inventory
                .sources
                .iter()
                .map(SourceStatus::project)
                .collect(),
            custom_certificates: bundle
                .iter()
                .flat_map(|b| b.entries.iter())
                .filter(|e| e.origin.is_custom())
                .map(CertStatus::project)
                .collect(),
            dropped_certificates: bundle
                .iter()
                .flat_map(|b| b.dropped.iter())
                .map(DroppedStatus::project)
                .collect(),
            retained_certificates: inputs.retention.map(Retention::status).unwrap_or_default(),
            notifications: NotificationsStatus::default(),
        }
    }
}

impl BundleStatus {
    /// Where the bundle is, what it holds and how its publishes went.
    fn project(publisher: &Publisher, bundle: Option<&Bundle>, ledger: &PublishLedger) -> Self {
        BundleStatus {
            path: publisher.bundle_path().display().to_string(),
            certs_dir: publisher.certs_path().display().to_string(),
            sha256: bundle.map(|b| b.sha256.clone()),
            certificates: bundle.map_or(0, |b| b.entries.len()),
            custom_certificates: bundle.map_or(0, Bundle::custom_count),
            last_publish: ledger.last_publish().map(rfc3339),
            last_error: ledger.last_error().map(str::to_string),
            next_retry: ledger.next_retry().map(rfc3339),
        }
    }
}

impl BaseStatus {
    /// The base asked for and the one in use, as last loaded.
    fn project(requested: BaseRequested, inventory: &Inventory) -> Self {
        BaseStatus {
            requested,
            source: inventory.base.describe(),
            sha256: inventory.base_state.digest.map(|d| hex(&d)),
            certificates: inventory.base_state.certs.len(),
            last_error: inventory.base_state.error.clone(),
        }
    }
}

impl SourceStatus {
    /// One source as `/status` shows it, from its last good state.
    pub fn project(s: &SourceSlot) -> Self {
        let files: Vec<FileStatus> = s
            .files
            .iter()
            .map(|(path, f)| FileStatus {
                path: path.display().to_string(),
                state: if f.error.is_some() {
                    FileState::Error
                } else if f.certs.is_empty() {
                    FileState::Empty
                } else {
                    FileState::Ok
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
                SourceState::Missing
            } else if s.error.is_some() || file_error {
                SourceState::Error
            } else {
                SourceState::Ok
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
}

impl CertStatus {
    /// A published custom certificate as `/status` shows it.
    pub fn project(e: &Entry) -> Self {
        CertStatus {
            cert: CertSummary::of(&e.cert),
            sha256: e.cert.sha256.clone(),
            source: e.origin.describe(),
            ca: e.cert.is_ca,
            self_signed: e.cert.self_signed,
            warnings: e.concerns.iter().map(|c| Warning::of(c, &e.cert)).collect(),
        }
    }
}

impl DroppedStatus {
    /// A certificate the policy left out, as `/status` shows it.
    pub fn project(d: &Dropped) -> Self {
        DroppedStatus {
            subject: d.cert.subject.clone(),
            sha256: d.cert.sha256.clone(),
            source: d.origin.describe(),
            reason: d.reason.clone(),
        }
    }
}

/// Whether the reconcile loop makes progress, for `/healthz`. The loop marks
/// when it starts and ends each reconcile; the server reads it without asking
/// the loop anything, so a loop that is busy publishing back-to-back answers
/// at once, and an idle loop costs nothing (no heartbeat timer). Only a
/// reconcile that has not returned for a long time means "stuck".
#[derive(Debug)]
pub struct Progress {
    /// The origin of the millisecond counts below (monotonic: a wall-clock
    /// jump must not look like a stuck loop).
    epoch: Instant,
    /// Milliseconds since `epoch` at which the running reconcile began, plus
    /// one; 0 while the loop is between reconciles.
    busy_since: AtomicU64,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            epoch: Instant::now(),
            busy_since: AtomicU64::new(0),
        }
    }
}

impl Progress {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    /// A reconcile begins.
    pub fn begin(&self) {
        self.busy_since.store(self.now_ms() + 1, Ordering::Release);
    }

    /// The reconcile returned.
    pub fn end(&self) {
        self.busy_since.store(0, Ordering::Release);
    }

    /// How long the running reconcile has been running; `None` between
    /// reconciles.
    pub fn busy_for(&self) -> Option<Duration> {
        match self.busy_since.load(Ordering::Acquire) {
            0 => None,
            since => Some(Duration::from_millis(
                self.now_ms().saturating_sub(since - 1),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json<T: Serialize>(value: T) -> String {
        serde_json::to_string(&value).unwrap()
    }

    #[test]
    fn states_serialise_to_the_strings_of_the_status_contract() {
        assert_eq!(
            [SourceState::Ok, SourceState::Missing, SourceState::Error].map(json),
            [r#""ok""#, r#""missing""#, r#""error""#]
        );
        assert_eq!(
            [FileState::Ok, FileState::Error, FileState::Empty].map(json),
            [r#""ok""#, r#""error""#, r#""empty""#]
        );
        let outcomes = [NotificationOutcome::Ok, NotificationOutcome::Error];
        assert_eq!(outcomes.map(json), [r#""ok""#, r#""error""#]);
        assert_eq!(
            outcomes.map(|o| format!("\"{}\"", o.as_str())),
            outcomes.map(json)
        );
    }

    #[test]
    fn the_requested_base_is_named_without_its_path() {
        let specs = [
            BaseSpec::System,
            BaseSpec::Embedded,
            BaseSpec::None,
            BaseSpec::Path("/etc/ssl/certs/ca-certificates.crt".into()),
        ];
        assert_eq!(
            specs.each_ref().map(|s| json(BaseRequested::from(s))),
            [r#""system""#, r#""embedded""#, r#""none""#, r#""path""#]
        );
    }
}
