//! The last-good inventory: what every source file and the base contributed
//! the last time each could be read. A file that breaks keeps its last good
//! certificates here (and its error beside them), so publishing never loses
//! what was already trusted. The reconciler reads it to assemble the bundle
//! and `/status`; nothing here publishes.

use crate::daemon::metrics::Metrics;
use crate::trust::base::{Base, Load};
use crate::trust::cert::{display_line, CertScratch, Certificate};
use crate::trust::include::Include;
use crate::trust::parse::parse_file_reusing;
use crate::trust::read::{IoError, ReadError};
use crate::trust::source::{read_source_with, FileRead, SkipReason, Skipped, SourceRead};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tracing::{error, info, warn};

/// The last known state of one source file.
#[derive(Debug, Default)]
pub struct FileSlot {
    /// SHA-256 of the bytes last parsed, to skip re-parsing unchanged files.
    pub digest: Option<[u8; 32]>,
    /// The certificates of the last successful parse: what stays published
    /// while the file is broken.
    pub certs: Vec<Certificate>,
    /// The current error, if the file is broken now.
    pub error: Option<String>,
    pub private_keys: usize,
    pub other_blocks: usize,
}

/// The last known state of one `--source`.
#[derive(Debug)]
pub struct SourceSlot {
    pub path: PathBuf,
    pub missing: bool,
    /// An error listing the source itself (its files are kept meanwhile).
    pub error: Option<String>,
    /// Files by the path users see; the map's order is the bundle order.
    pub files: BTreeMap<PathBuf, FileSlot>,
    /// Entries not read, with why: kept to log each only when it first
    /// appears (a resync must not repeat it) and to show it in `/status`.
    pub skipped: BTreeMap<PathBuf, String>,
}

/// The base roots as last loaded: kept while a base file is broken.
#[derive(Debug, Default)]
pub struct BaseState {
    /// The roots of the last successful load: what stays published while
    /// the base file is broken.
    pub certs: Vec<Certificate>,
    /// The digest of those roots' bytes (`None` before the first load), so
    /// an unchanged base file is not parsed again.
    pub digest: Option<[u8; 32]>,
    /// The current error, if the base file is broken now; kept as the text
    /// the log and `/status` show, so each new error is logged once.
    pub error: Option<String>,
}

/// Every source's and the base's last good state, refreshed by reading.
#[derive(Debug)]
pub struct Inventory {
    /// Which base roots, resolved once at start (`--base`).
    pub base: Base,
    /// The base roots as last loaded.
    pub base_state: BaseState,
    /// One slot per `--source`, in command-line order (the bundle order).
    pub sources: Vec<SourceSlot>,
    /// `--include`: which files of a directory source are taken.
    include: Include,
    /// Read errors are counted here (`trust_injector_source_errors_total`).
    metrics: Arc<Metrics>,
}

impl Inventory {
    /// An empty inventory: nothing read yet, every source waiting.
    pub fn new(base: Base, sources: &[PathBuf], include: Include, metrics: Arc<Metrics>) -> Self {
        Inventory {
            base,
            base_state: BaseState::default(),
            sources: sources
                .iter()
                .map(|p| SourceSlot {
                    path: p.clone(),
                    missing: false,
                    error: None,
                    files: BTreeMap::new(),
                    skipped: BTreeMap::new(),
                })
                .collect(),
            include,
            metrics,
        }
    }

    /// Reads the base and every source again; unchanged files are not re-parsed.
    pub fn refresh(&mut self) {
        self.refresh_base();
        for i in 0..self.sources.len() {
            self.refresh_source(i);
        }
    }

    /// The base file and source paths, for the watcher.
    pub fn watched_paths(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = self.sources.iter().map(|s| s.path.clone()).collect();
        if let Base::File(p) = &self.base {
            paths.push(p.clone());
        }
        paths
    }

    /// Each source file with its last good certificates, in bundle order.
    pub fn custom(&self) -> impl Iterator<Item = (&PathBuf, &[Certificate])> {
        self.sources
            .iter()
            .flat_map(|s| s.files.iter().map(|(p, f)| (p, &f.certs[..])))
    }

    /// Every certificate the sources contribute now (for `--retain-removed`).
    pub fn present(&self) -> impl Iterator<Item = &Certificate> {
        self.sources
            .iter()
            .flat_map(|s| s.files.values().flat_map(|f| f.certs.iter()))
    }

    /// Source files in error now (`trust_injector_files_in_error`).
    pub fn files_in_error(&self) -> usize {
        self.sources
            .iter()
            .map(|s| s.files.values().filter(|f| f.error.is_some()).count())
            .sum()
    }

    /// Loads the base again, keeping the last good roots when it fails:
    /// a base file being rewritten must not drop every public root.
    fn refresh_base(&mut self) {
        let path = self.base.describe();
        match self.base.load(self.base_state.digest.as_ref()) {
            Ok(Load::Unchanged) => self.base_state.error = None,
            Ok(Load::Loaded(loaded)) => {
                let skipped = loaded.skipped;
                if let Base::File(_) = self.base {
                    if skipped > 0 {
                        warn!(path = %path, skipped, "base certificates that could not be parsed were skipped");
                    }
                    info!(path = %path, certificates = loaded.certs.len(), "read base bundle");
                } else if skipped > 0 {
                    warn!(
                        skipped,
                        "embedded roots that could not be parsed were skipped"
                    );
                }
                self.base_state = BaseState {
                    certs: loaded.certs,
                    digest: Some(loaded.digest),
                    error: None,
                };
            }
            Err(e) => {
                let e = e.to_string();
                if self.base_state.error.as_deref() != Some(e.as_str()) {
                    match self.base_state.certs.len() {
                        0 => {
                            error!(path = %path, error = %e, "cannot read the base bundle; publishing without base roots until it can be read")
                        }
                        n => {
                            error!(path = %path, error = %e, kept_certificates = n, "cannot read the base bundle; keeping the last good base")
                        }
                    }
                    self.metrics.source_errors.inc();
                }
                self.base_state.error = Some(e);
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
                let present: HashSet<&Path> = files.iter().map(|f| f.path.as_path()).collect();
                slot.files.retain(|path, _| {
                    let keep = present.contains(path.as_path());
                    if !keep {
                        info!(file = %path.display(), "file disappeared; its certificates are removed");
                    }
                    keep
                });
                let mut scratch = CertScratch::default();
                for FileRead { path, bytes } in files {
                    if let Some(known) = slot.files.get_mut(&path) {
                        refresh_file(&path, known, bytes, &metrics, &mut scratch);
                    } else {
                        let mut fresh = FileSlot::default();
                        refresh_file(&path, &mut fresh, bytes, &metrics, &mut scratch);
                        slot.files.insert(path, fresh);
                    }
                }
            }
        }
    }

    /// The base, sources and files in error now ([`super::ledger::Report::errors`]).
    pub fn error_count(&self) -> usize {
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
}

/// Updates one file's slot from what was just read.
fn refresh_file(
    path: &Path,
    slot: &mut FileSlot,
    bytes: Result<Vec<u8>, ReadError>,
    metrics: &Metrics,
    scratch: &mut CertScratch,
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
    match parse_file_reusing(&bytes, scratch) {
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
                certs: parsed.certs,
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
    // EACCES, not every `PermissionDenied`: EPERM (an LSM or a seccomp
    // profile refusing) is not fixed by the volume's mode.
    if e.io().and_then(IoError::os_code) != Some(libc::EACCES) {
        return msg;
    }
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One directory source, no base, no publisher: the inventory alone.
    fn inventory_of(dir: &Path) -> Inventory {
        Inventory::new(
            Base::None,
            &[dir.to_path_buf()],
            Include::all(),
            Arc::new(Metrics::new()),
        )
    }

    fn certificates(inventory: &Inventory) -> usize {
        inventory.custom().map(|(_, certs)| certs.len()).sum()
    }

    #[test]
    fn a_permission_error_names_the_user_and_group_we_run_as() {
        use std::os::unix::fs::MetadataExt;
        // A file we create is owned by our effective uid and gid.
        let dir = tempfile::tempdir().unwrap();
        let meta = std::fs::metadata(dir.path()).unwrap();
        let denied = ReadError::from(std::io::Error::from_raw_os_error(libc::EACCES));
        let msg = read_error_message(Path::new("/secret/ca.crt"), &denied);
        let who = format!("is not readable by uid {} (gid {})", meta.uid(), meta.gid());
        assert!(msg.contains(&who), "{msg}");
        let other = ReadError::from(std::io::Error::from_raw_os_error(libc::EPERM));
        assert!(!read_error_message(Path::new("/x"), &other).contains("uid"));
    }

    #[test]
    fn a_broken_file_keeps_its_last_good_certificates_until_it_disappears() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ca.crt");
        std::fs::write(&file, webpki_root_certs::TLS_SERVER_ROOT_CERTS[0].as_ref()).unwrap();
        let mut inventory = inventory_of(dir.path());
        inventory.refresh();
        assert_eq!(certificates(&inventory), 1);
        assert_eq!(inventory.error_count(), 0);

        std::fs::write(&file, b"not a certificate").unwrap();
        inventory.refresh();
        assert_eq!(
            certificates(&inventory),
            1,
            "the last good certificate stays"
        );
        assert_eq!(
            (inventory.error_count(), inventory.files_in_error()),
            (1, 1)
        );

        std::fs::remove_file(&file).unwrap();
        inventory.refresh();
        assert_eq!(
            inventory.custom().count(),
            0,
            "a file that left adds nothing"
        );
        assert_eq!(inventory.error_count(), 0);
    }

    #[test]
    fn a_missing_source_is_waited_for_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut inventory = inventory_of(&dir.path().join("not-yet"));
        inventory.refresh();
        assert!(inventory.sources[0].missing);
        assert_eq!(inventory.error_count(), 0);
        assert_eq!(inventory.watched_paths(), [dir.path().join("not-yet")]);
    }
}
