//! `--retain-removed`: a grace period for certificates that left the sources.
//!
//! Most teams rotate a CA by replacing the Secret's content; without a grace
//! period every backend still serving a chain from the old CA breaks at that
//! instant. With one, a certificate that leaves the sources stays in the
//! bundle until a deadline fixed when it was last seen (`removed_at +
//! grace`), then goes. Expired certificates are never retained, and only
//! certificates are ever kept (a private key never reaches this module).
//!
//! The deadlines must survive a restart of the sidecar (a pod restart in the
//! middle of a rotation neither cuts the grace short nor extends it), so the
//! little state needed lives in `--out-dir` as [`STATE_FILE`], written
//! atomically by the publisher. It also lists the certificates present at the
//! last write, so one removed while the sidecar was down is retained from the
//! restart on (the moment it left is unknown; the grace then errs on the side
//! of trust). A damaged state file is ignored with a warning and rewritten:
//! nothing in it can extend a deadline beyond `removed_at + grace`, nor put a
//! removal in the future.

use crate::trust::cert::{display_line, rfc3339, Certificate};
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use tracing::{info, warn};

/// The state file's name in `--out-dir` (hidden: applications that list the
/// directory see only what they trust).
pub const STATE_FILE: &str = ".retained.json";

/// What is known about one custom certificate.
#[derive(Debug, Clone)]
struct Known {
    cert: Certificate,
    /// When it left the sources (Unix seconds); `None` while present.
    removed_at: Option<i64>,
    /// When it leaves the bundle; `None` while present.
    leaves_at: Option<i64>,
}

/// One certificate in the state file. Public data only: the DER of a
/// certificate that was published anyway.
#[derive(Debug, Serialize, Deserialize)]
struct StateEntry {
    /// Checked against the DER on load: a mismatch means a damaged entry.
    sha256: String,
    /// Base64 of the DER: after a restart the sources no longer hold it.
    der: String,
    /// As in [`Known`]: `None` for a certificate present at the last write.
    removed_at: Option<i64>,
    /// As in [`Known`]; capped on load at `removed_at + grace`.
    leaves_at: Option<i64>,
}

/// The state file.
#[derive(Debug, Serialize, Deserialize)]
struct StateDoc {
    /// Format version, so a future change can refuse an old layout cleanly.
    version: u32,
    /// Present and retained certificates, by SHA-256.
    certificates: Vec<StateEntry>,
}

/// The only layout written so far.
const STATE_VERSION: u32 = 1;

/// A retained certificate, for `/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetainedStatus {
    /// Subject DN, as in `custom_certificates`.
    pub subject: String,
    /// SHA-256 of the DER, hex: the identity used everywhere else.
    pub sha256: String,
    /// When it left the sources (RFC 3339).
    pub removed_at: String,
    /// When it leaves the bundle (RFC 3339).
    pub leaves_at: String,
}

/// The grace-period bookkeeping. Owned by the reconciler, like everything
/// else it publishes.
#[derive(Debug)]
pub struct Retention {
    /// The grace period in seconds.
    grace: i64,
    /// Every custom certificate seen, present or retained, by SHA-256 (a
    /// BTreeMap so the retained ones join the bundle in a stable order).
    known: BTreeMap<String, Known>,
    /// The state bytes last written, so an unchanged state is not rewritten.
    written: Option<Vec<u8>>,
}

/// Parses `--retain-removed`: a number with an optional unit (`s`, `m`, `h`,
/// `d`; seconds without one). `0` and `off` turn it off (`None`).
pub fn parse_duration(text: &str) -> Result<Option<u64>, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a duration such as 90s, 30m, 24h or 7d"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use s, m, h or d)"
            ))
        }
    };
    // Ten years bounds the arithmetic; no CA should linger longer.
    let secs = number
        .checked_mul(scale)
        .filter(|s| *s <= 10 * 365 * 86_400)
        .ok_or_else(|| format!("{text:?}: longer than ten years"))?;
    Ok((secs > 0).then_some(secs))
}

/// With retention off, a previous run's state is removed, so that turning
/// it on later cannot resume deadlines from long ago.
pub fn forget(out_dir: &Path) {
    let path = out_dir.join(STATE_FILE);
    if std::fs::remove_file(&path).is_ok() {
        info!(path = %path.display(), "--retain-removed is off; removed the retention state of a previous run");
    }
}

impl Retention {
    /// Retention with a grace of `grace_secs`, resuming the deadlines kept in
    /// `out_dir` by a previous run (at `now`).
    pub fn load(grace_secs: u64, out_dir: &Path, now: i64) -> Retention {
        let mut r = Retention {
            grace: i64::try_from(grace_secs).unwrap_or(i64::MAX),
            known: BTreeMap::new(),
            written: None,
        };
        let path = out_dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => match r.restore(&bytes, now) {
                Ok(skipped) => {
                    r.keep_only_published(out_dir);
                    if skipped > 0 {
                        warn!(path = %path.display(), skipped, "retention state: entries that are not valid certificates were ignored");
                    }
                    info!(path = %path.display(), retained = r.count(), "resumed the retention deadlines of the previous run");
                }
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "retention state is damaged and was ignored; it is rewritten at the next change");
                    r.known.clear();
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                warn!(path = %path.display(), error = %e, "cannot read the retention state; starting without it");
            }
        }
        r
    }

    /// Forgets what the bundle on disk no longer holds: retention keeps
    /// trust that is still published, it never brings back a certificate
    /// (say one removed while retention was off, or by a run without it).
    /// A published bundle that cannot be read resumes nothing, and says so.
    fn keep_only_published(&mut self, out_dir: &Path) {
        let path = out_dir.join(crate::output::publish::BUNDLE_FILE);
        let read = std::fs::read(&path).map_err(|e| (e.kind(), e.to_string()));
        let on_disk: HashSet<String> = match read.and_then(|b| {
            crate::trust::parse::parse_bundle_lenient(&b)
                .map_err(|e| (std::io::ErrorKind::InvalidData, e.to_string()))
        }) {
            Ok((certs, _)) => certs.into_iter().map(|c| c.sha256.clone()).collect(),
            // Nothing published yet: nothing to keep.
            Err((std::io::ErrorKind::NotFound, _)) => HashSet::new(),
            Err((_, error)) => {
                warn!(path = %path.display(), %error, "cannot read the published bundle; the retention deadlines of the previous run are not resumed");
                HashSet::new()
            }
        };
        self.known.retain(|sha, _| on_disk.contains(sha));
    }

    /// Reads a state document. Returns how many entries were skipped.
    fn restore(&mut self, bytes: &[u8], now: i64) -> Result<usize, String> {
        let doc: StateDoc = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if doc.version != STATE_VERSION {
            return Err(format!("unknown version {}", doc.version));
        }
        let mut skipped = 0;
        for e in doc.certificates {
            let cert = base64::engine::general_purpose::STANDARD
                .decode(&e.der)
                .ok()
                .and_then(|der| Certificate::from_der(&der).ok())
                .filter(|c| c.sha256 == e.sha256);
            let Some(cert) = cert else {
                skipped += 1;
                continue;
            };
            // Nothing in the file may put a removal in the future or a
            // deadline beyond removal + grace (a shorter grace applies at
            // once; a restart itself changes nothing).
            let removed_at = e.removed_at.map(|t| t.min(now));
            let leaves_at = removed_at.map(|r| {
                let cap = r.saturating_add(self.grace);
                e.leaves_at.map_or(cap, |l| l.min(cap))
            });
            self.known.insert(
                cert.sha256.clone(),
                Known {
                    cert,
                    removed_at,
                    leaves_at,
                },
            );
        }
        Ok(skipped)
    }

    /// Brings the bookkeeping up to date with the certificates `present` in
    /// the sources at `now`, logging what starts and ends a grace period.
    /// Returns the certificates to keep publishing although they are gone.
    pub fn update<'a>(
        &mut self,
        present: impl IntoIterator<Item = &'a Certificate>,
        now: i64,
    ) -> Vec<Certificate> {
        let mut seen = HashSet::new();
        for cert in present {
            if !seen.insert(cert.sha256.clone()) {
                continue;
            }
            let back = self
                .known
                .get(&cert.sha256)
                .is_some_and(|k| k.removed_at.is_some());
            if back {
                info!(subject = %display_line(&cert.subject), sha256 = %cert.sha256, "certificate is back in the sources; no longer retained");
            }
            self.known.insert(
                cert.sha256.clone(),
                Known {
                    cert: cert.clone(),
                    removed_at: None,
                    leaves_at: None,
                },
            );
        }
        let grace = self.grace;
        self.known.retain(|sha, k| {
            if seen.contains(sha) {
                return true;
            }
            let subject = display_line(&k.cert.subject);
            if k.removed_at.is_none() {
                if k.cert.is_expired(now) {
                    info!(%subject, sha256 = %sha, "certificate left the sources; it has expired, so it is not retained");
                    return false;
                }
                k.removed_at = Some(now);
                k.leaves_at = Some(now.saturating_add(grace));
                info!(%subject, sha256 = %sha, leaves_at = %rfc3339(now.saturating_add(grace)), "certificate left the sources; retained in the bundle until its grace period ends");
            }
            let leaves_at = k.leaves_at.unwrap_or(now);
            if now >= leaves_at {
                info!(%subject, sha256 = %sha, "grace period over; retained certificate removed from the bundle");
                false
            } else if k.cert.is_expired(now) {
                info!(%subject, sha256 = %sha, "retained certificate expired; removed from the bundle");
                false
            } else {
                true
            }
        });
        self.known
            .values()
            .filter(|k| k.removed_at.is_some())
            .map(|k| k.cert.clone())
            .collect()
    }

    /// When the next retained certificate leaves (Unix seconds): the daemon
    /// wakes then, without waiting for an event.
    pub fn next_deadline(&self) -> Option<i64> {
        self.known.values().filter_map(|k| k.leaves_at).min()
    }

    /// How many certificates are retained now.
    pub fn count(&self) -> usize {
        self.known
            .values()
            .filter(|k| k.removed_at.is_some())
            .count()
    }

    /// The retained certificates, for `/status`.
    pub fn status(&self) -> Vec<RetainedStatus> {
        self.known
            .values()
            .filter_map(|k| {
                Some(RetainedStatus {
                    subject: k.cert.subject.clone(),
                    sha256: k.cert.sha256.clone(),
                    removed_at: rfc3339(k.removed_at?),
                    leaves_at: rfc3339(k.leaves_at?),
                })
            })
            .collect()
    }

    /// The state to write, if it differs from what was last written.
    pub fn state_to_write(&self) -> Option<Vec<u8>> {
        let doc = StateDoc {
            version: STATE_VERSION,
            certificates: self
                .known
                .iter()
                .map(|(sha, k)| StateEntry {
                    sha256: sha.clone(),
                    der: base64::engine::general_purpose::STANDARD.encode(&k.cert.der),
                    removed_at: k.removed_at,
                    leaves_at: k.leaves_at,
                })
                .collect(),
        };
        // Invariant: a StateDoc is strings, integers and a list of them, which
        // serde_json always serialises (it fails only on non-string map keys
        // or a failing Serialize impl). Skipping the write instead would lose
        // the retention deadlines at the next restart without a word.
        let bytes = serde_json::to_vec_pretty(&doc).expect("a StateDoc always serialises");
        (self.written.as_deref() != Some(&bytes[..])).then_some(bytes)
    }

    /// Records that `bytes` (from [`Self::state_to_write`]) reached the disk.
    pub fn mark_written(&mut self, bytes: Vec<u8>) {
        self.written = Some(bytes);
    }
}

#[cfg(test)]
mod tests;
