//! The state the reconcile loop shares with the HTTP server: a snapshot
//! rebuilt after each reconcile (`/status`, `/readyz`) and the loop's
//! progress (`/healthz`). The server only reads; the loop is the one writer.

use crate::daemon::inventory::SourceSlot;
use crate::trust::bundle::{Dropped, Entry};
use crate::trust::summary::CertSummary;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// `/status` as JSON.
#[derive(Debug, Clone, Default, Serialize)]
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
    pub outcome: &'static str,
    /// What happened: the HTTP status and attempts, the processes signalled,
    /// or the error.
    pub detail: String,
    /// The bundle the notification was about.
    pub bundle_sha256: String,
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
#[derive(Debug, Clone, Default, Serialize)]
pub struct BaseStatus {
    /// `system`, `embedded`, `none` or `path`, as configured.
    pub requested: String,
    /// What is actually used: a file path or the embedded roots.
    pub source: String,
    /// SHA-256 of the base's bytes (the file, or the concatenated embedded DER).
    pub sha256: Option<String>,
    pub certificates: usize,
    pub last_error: Option<String>,
}

/// One `--source`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceStatus {
    pub path: String,
    /// `ok`, `missing` (waited for), or `error` (itself or one of its files).
    pub state: &'static str,
    pub last_error: Option<String>,
    pub files: Vec<FileStatus>,
    /// Entries deliberately not read (loops, links leaving the source,
    /// FIFOs, files not matched by `--include`), with the reason.
    pub skipped: Vec<SkippedStatus>,
}

/// An entry of a directory source that was not read, and why.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SkippedStatus {
    pub path: String,
    pub reason: String,
}

/// One file of a source.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileStatus {
    pub path: String,
    /// `ok`, `error` (last good certificates kept) or `empty` (no certificates,
    /// e.g. only a private key).
    pub state: &'static str,
    pub certificates: usize,
    pub private_keys_skipped: usize,
    pub other_blocks_ignored: usize,
    pub error: Option<String>,
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
    /// What the policy found worth saying, in words.
    pub warnings: Vec<String>,
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

impl SourceStatus {
    /// One source as `/status` shows it, from its last good state.
    pub fn project(s: &SourceSlot) -> Self {
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
            warnings: e.concerns.iter().map(|c| c.explain(&e.cert)).collect(),
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
