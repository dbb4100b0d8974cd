//! Publishing into `--out-dir`, atomically.
//!
//! `ca-certificates.crt` is replaced by rename(2) of a fully written and
//! fsynced temporary file in the same directory, so a reader opens either the
//! whole old bundle or the whole new one. `certs/` is a symlink to a hidden
//! versioned directory; a new directory is built completely, then a new
//! symlink is renamed over `certs`, and the old directory is kept a while for
//! readers that were scanning it ([`generations`](crate::output::generations)).
//! The hashed directory is swapped before the bundle, because the bundle's
//! modification time is what applications such as .NET watch.
//!
//! Every step first compares what is on disk with what should be there, so an
//! unchanged bundle is never rewritten and a deleted or altered file is put
//! back on the next reconcile.

use crate::output::dir::Dir;
use crate::output::generations::Generations;
use crate::output::truststore::TruststoreError;
use crate::trust::bundle::Bundle;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The bundle's file name in `--out-dir`.
pub const BUNDLE_FILE: &str = "ca-certificates.crt";
/// Prefix of every temporary entry; all are removed at start-up.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// A publishing failure, with the path it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}: {source}", path.display())]
pub struct PublishError {
    /// What we were doing ("write", "rename", "encode", …).
    pub action: &'static str,
    /// The file or directory concerned.
    pub path: PathBuf,
    /// Why, typed until the log and `/status` turn it into text.
    #[source]
    pub source: PublishCause,
}

/// Why a publishing step failed. Each variant shows exactly its inner error
/// (`transparent`), so the text in the log and in `/status` is what it was
/// when the truststore's error travelled inside an `io::Error`.
#[derive(Debug, thiserror::Error)]
pub enum PublishCause {
    /// The file system refused (ENOSPC, EROFS, EACCES, …); the `ErrorKind`
    /// and errno survive for whoever needs them.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// `--pkcs12`: the truststore could not be encoded, so nothing was
    /// written.
    #[error(transparent)]
    Truststore(#[from] TruststoreError),
}

impl PublishError {
    /// `action` on `path` failed because of `cause` (an `io::Error` or a
    /// `TruststoreError`).
    pub fn new(action: &'static str, path: &Path, cause: impl Into<PublishCause>) -> Self {
        PublishError {
            action,
            path: path.to_path_buf(),
            source: cause.into(),
        }
    }
}

pub(crate) fn ctx<T, E: Into<PublishCause>>(
    action: &'static str,
    path: &Path,
    r: Result<T, E>,
) -> Result<T, PublishError> {
    r.map_err(|cause| PublishError::new(action, path, cause))
}

/// What a publish changed on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// `ca-certificates.crt` was (re)written.
    pub bundle_written: bool,
    /// `certs/` was rebuilt.
    pub certs_written: bool,
    /// `truststore.p12` was (re)written (`--pkcs12`).
    pub truststore_written: bool,
}

impl Outcome {
    /// Whether anything was written.
    pub fn wrote(&self) -> bool {
        self.bundle_written || self.certs_written || self.truststore_written
    }
}

/// What [`Publisher::recover`] found at start, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// `certs` was put back to the bundle's generation (or removed with no
    /// bundle): the previous process stopped between the two swaps.
    pub certs_moved: bool,
    /// Leftovers removed: temporary entries and unreferenced generations.
    pub removed: usize,
}

/// Owns the output directory. Only the reconcile loop holds one.
#[derive(Debug)]
pub struct Publisher {
    out_dir: PathBuf,
    /// `certs/` and its versioned directories.
    certs: Generations,
}

impl Publisher {
    /// A publisher for `out_dir`, which must exist.
    pub fn new(out_dir: impl Into<PathBuf>) -> Self {
        let out_dir = out_dir.into();
        Publisher {
            certs: Generations::new(out_dir.clone()),
            out_dir,
        }
    }

    /// The bundle's path.
    pub fn bundle_path(&self) -> PathBuf {
        self.out_dir.join(BUNDLE_FILE)
    }

    /// The hashed directory's path.
    pub fn certs_path(&self) -> PathBuf {
        self.certs.link_path()
    }

    /// Proves at start-up that the directory exists and is writable, so a
    /// misconfiguration fails fast with the path instead of at first publish.
    pub fn check_writable(&self) -> Result<(), PublishError> {
        let meta = ctx("open", &self.out_dir, fs::metadata(&self.out_dir))?;
        if !meta.is_dir() {
            return Err(PublishError::new(
                "use",
                &self.out_dir,
                io::Error::new(io::ErrorKind::InvalidInput, "not a directory"),
            ));
        }
        let probe = tmp_path(&self.out_dir, "probe");
        ctx("write", &probe, File::create(&probe))?;
        ctx("remove", &probe, fs::remove_file(&probe))
    }

    /// At start, before anything else: makes `certs/` agree with the bundle
    /// on disk (a process killed between the two swaps left them a
    /// generation apart), then removes what a crash can leave: temporary
    /// entries and versioned directories that `certs` does not point at.
    pub fn recover(&mut self) -> Result<Recovery, PublishError> {
        let path = self.bundle_path();
        let certs_moved = match fs::read(&path) {
            Ok(pem) => {
                let sha = crate::trust::cert::hex(&Sha256::digest(&pem));
                self.certs.agree_with(Some(&sha))?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => self.certs.agree_with(None)?,
            // Unreadable: nothing to agree with; the first publish rewrites both.
            Err(_) => false,
        };
        let removed = self.certs.clean_leftovers()?;
        Ok(Recovery {
            certs_moved,
            removed,
        })
    }

    /// Makes `--out-dir` hold `bundle`, writing only what differs.
    pub fn publish(&mut self, bundle: &Bundle) -> Result<Outcome, PublishError> {
        self.certs.sweep();
        let files = bundle.hashed_files();
        let certs_written = if self.certs.up_to_date(&files) {
            false
        } else {
            self.certs.swap(&bundle.sha256, &files)?;
            true
        };
        let bundle_written = !self.holds(BUNDLE_FILE, &bundle.pem);
        if bundle_written {
            self.write_atomically(&self.bundle_path(), &bundle.pem)?;
        }
        Ok(Outcome {
            bundle_written,
            certs_written,
            truststore_written: false,
        })
    }

    // --- `--pkcs12`: one more file next to the bundle, published the same way.

    /// The Java truststore's path.
    pub fn truststore_path(&self) -> PathBuf {
        self.out_dir
            .join(crate::output::truststore::TRUSTSTORE_FILE)
    }

    /// Makes `truststore.p12` hold `bytes` (a deterministic encoding, so equal
    /// bytes mean nothing changed), writing only when it differs. Returns
    /// whether it was written.
    pub fn publish_truststore(&self, bytes: &[u8]) -> Result<bool, PublishError> {
        if self.holds(crate::output::truststore::TRUSTSTORE_FILE, bytes) {
            return Ok(false);
        }
        self.write_atomically(&self.truststore_path(), bytes)
            .map(|()| true)
    }

    /// Whether `name` in `--out-dir` holds exactly `bytes`; an out-dir that
    /// cannot be opened holds nothing (writing then names the error).
    fn holds(&self, name: &str, bytes: &[u8]) -> bool {
        Dir::open(&self.out_dir).is_ok_and(|d| d.holds(name, bytes))
    }

    /// Makes the hidden file `name` in `--out-dir` hold `bytes` (the
    /// `--retain-removed` state), atomically like every published file.
    pub fn publish_state(&self, name: &str, bytes: &[u8]) -> Result<(), PublishError> {
        self.write_atomically(&self.out_dir.join(name), bytes)
    }

    /// Writes `bytes` to `path` by temp file, fsync, rename, fsync of the
    /// directory. On failure (a full disk, say) the temp file is removed and
    /// the old file is untouched.
    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), PublishError> {
        let name = tmp_name(&format!("bundle-{}", unique_stamp()));
        let tmp = self.out_dir.join(&name);
        let write = || -> Result<(), PublishError> {
            // A missing out-dir reads as before: "create <temporary file>".
            let dir = ctx("create", &tmp, Dir::open(&self.out_dir))?;
            let mut f = ctx("create", &tmp, dir.create(&name))?;
            ctx("write", &tmp, f.write_all(bytes))?;
            ctx("sync", &tmp, f.sync_all())?;
            ctx("rename", path, fs::rename(&tmp, path))?;
            ctx("sync", &self.out_dir, dir.sync())
        };
        write().inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
    }
}

/// The temporary entry `what` in `out_dir`.
pub(crate) fn tmp_path(out_dir: &Path, what: &str) -> PathBuf {
    out_dir.join(tmp_name(what))
}

fn tmp_name(what: &str) -> String {
    format!("{TMP_PREFIX}{what}-{}", std::process::id())
}

pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A stamp unique within this process and across restarts.
pub(crate) fn unique_stamp() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    // A clock before 1970 gives its distance to it: still distinct across
    // restarts, which is all a stamp needs.
    let nanos = match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(after) => after.as_nanos(),
        Err(before) => before.duration().as_nanos(),
    };
    format!("{nanos:x}{:x}", SEQ.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text before the cause was typed: the truststore's error inside an
    /// `io::Error`, and an `io::Error` as itself. The log and `/status` show
    /// this, and tests grep for it.
    fn old_text(action: &str, path: &Path, cause: &dyn std::fmt::Display) -> String {
        format!("{action} {}: {cause}", path.display())
    }

    #[test]
    fn a_truststore_failure_reads_as_when_it_was_an_io_error() {
        let path = Path::new("/out/truststore.p12");
        let errors = || {
            [
                TruststoreError::Mac(hmac::digest::InvalidLength),
                TruststoreError::Encode(der::Error::from(der::ErrorKind::Overflow)),
            ]
        };
        for (typed, boxed) in errors().into_iter().zip(errors()) {
            let old = old_text("encode", path, &io::Error::other(boxed));
            let new = PublishError::new("encode", path, typed);
            assert_eq!(new.to_string(), old);
            assert!(matches!(new.source, PublishCause::Truststore(_)));
        }
    }

    #[test]
    fn an_io_failure_keeps_its_text_and_its_errno() {
        let path = Path::new("/out/ca-certificates.crt");
        let io = || io::Error::from_raw_os_error(libc::ENOSPC);
        let new = PublishError::new("write", path, io());
        assert_eq!(new.to_string(), old_text("write", path, &io()));
        let PublishCause::Io(e) = &new.source else {
            panic!("not an io error: {new:?}");
        };
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        let dir = PublishError::new(
            "use",
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "not a directory"),
        );
        assert_eq!(
            dir.to_string(),
            "use /out/ca-certificates.crt: not a directory"
        );
    }

    #[test]
    fn the_source_chain_is_the_same_length_as_before() {
        // `transparent` forwards `source()`, so a chain walker sees the
        // cause once, as it did through `io::Error::other`.
        let path = Path::new("/out/truststore.p12");
        let new = PublishError::new(
            "encode",
            path,
            TruststoreError::Mac(hmac::digest::InvalidLength),
        );
        let old = io::Error::other(TruststoreError::Mac(hmac::digest::InvalidLength));
        let cause = std::error::Error::source(&new).map(ToString::to_string);
        assert_eq!(cause, Some(old.to_string()));
        let below = std::error::Error::source(&new).and_then(std::error::Error::source);
        assert_eq!(below.is_some(), std::error::Error::source(&old).is_some());
    }
}
