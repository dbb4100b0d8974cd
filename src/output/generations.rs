//! `certs/`, the hashed directory, published as generations: `certs` is a
//! symlink to a hidden versioned directory (`.certs-<sha>-<stamp>`), which is
//! built completely under a temporary name, renamed to its versioned name,
//! and swapped in by renaming a new symlink over `certs`.
//!
//! The generation swapped out is not removed at once: a program that listed
//! `SSL_CERT_DIR` just before the swap reads its files just after (Go's
//! crypto/x509 does), and a directory deleted under it reads as empty. It is
//! *retired*, and removed by a later publish once [`RETIRED_GRACE`] has
//! passed (or when more than [`MAX_RETIRED`] are waiting, oldest first, so a
//! storm of publishes cannot fill a memory-backed out-dir).

use crate::output::dir::Dir;
use crate::output::publish::{ctx, sync_dir, tmp_path, unique_stamp, PublishError, TMP_PREFIX};
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tracing::warn;

/// The hashed directory's name in `--out-dir` (a symlink).
pub(crate) const CERTS_LINK: &str = "certs";
/// Prefix of the versioned hashed directories.
const CERTS_DIR_PREFIX: &str = ".certs-";
/// How long a retired generation is kept at least: longer than any scan of
/// a directory of certificates takes, short enough that a removed CA's file
/// does not linger.
pub(crate) const RETIRED_GRACE: Duration = Duration::from_secs(5);
/// Retired generations kept at most, whatever their age.
pub(crate) const MAX_RETIRED: usize = 2;

/// The generations of `certs/` in one out-dir. Only the
/// [`Publisher`](crate::output::publish::Publisher) holds one.
#[derive(Debug)]
pub(crate) struct Generations {
    out_dir: PathBuf,
    /// Generations `certs` pointed at before, oldest first, with when they
    /// stopped being current (monotonic: a clock step neither keeps nor
    /// drops them early).
    retired: VecDeque<(OsString, Instant)>,
}

impl Generations {
    /// The generations in `out_dir`.
    pub(crate) fn new(out_dir: PathBuf) -> Self {
        Generations {
            out_dir,
            retired: VecDeque::new(),
        }
    }

    /// The path of the `certs` symlink.
    pub(crate) fn link_path(&self) -> PathBuf {
        self.out_dir.join(CERTS_LINK)
    }

    /// Name of the versioned directory `certs` points at, if it is ours.
    fn current(&self) -> Option<OsString> {
        let target = fs::read_link(self.link_path()).ok()?;
        let name = target.file_name()?;
        name.to_string_lossy()
            .starts_with(CERTS_DIR_PREFIX)
            .then(|| name.to_os_string())
    }

    /// Whether the current generation holds exactly `files`.
    pub(crate) fn up_to_date(&self, files: &[(String, &[u8])]) -> bool {
        let Some(dir) = self.current() else {
            return false;
        };
        let dir = self.out_dir.join(dir);
        let Ok(listing) = fs::read_dir(&dir) else {
            return false;
        };
        if listing.count() != files.len() {
            return false;
        }
        let Ok(dir) = Dir::open(&dir) else {
            return false;
        };
        files.iter().all(|(name, pem)| dir.holds(name, pem))
    }

    /// Publishes `files` as a new generation named after `sha`. On failure
    /// nothing of the new generation is left behind, even when the process
    /// is out of file descriptors (`EMFILE`): the clean-up removes known
    /// names by path and needs no descriptor.
    pub(crate) fn swap(
        &mut self,
        sha: &str,
        files: &[(String, &[u8])],
    ) -> Result<(), PublishError> {
        let stamp = unique_stamp();
        let final_name = format!("{CERTS_DIR_PREFIX}{}-{stamp}", &sha[..sha.len().min(12)]);
        let final_dir = self.out_dir.join(&final_name);
        self.build(&stamp, &final_dir, files)?;

        let link_tmp = tmp_path(&self.out_dir, &format!("link-{stamp}"));
        let link = self.link_path();
        let swap = || -> Result<(), PublishError> {
            ctx("symlink", &link_tmp, symlink(&final_name, &link_tmp))?;
            // A real directory (from an older tool) cannot be replaced by
            // rename; it is removed once, and from then on `certs` is ours.
            if link.is_dir() && !link.is_symlink() {
                ctx("remove", &link, fs::remove_dir_all(&link))?;
            }
            ctx("rename", &link, fs::rename(&link_tmp, &link))
        };
        if let Err(e) = swap() {
            let _ = fs::remove_file(&link_tmp);
            discard(&final_dir, files);
            return Err(e);
        }
        // The new generation is published: nothing below may take it back,
        // whatever fails.
        self.retire_all_but(OsStr::new(&final_name));
        self.sweep();
        ctx("sync", &self.out_dir, sync_dir(&self.out_dir))
    }

    /// Retires every versioned directory but `current` that is not retired
    /// yet: the one just swapped out, and any orphaned when `certs` itself
    /// was deleted by someone.
    fn retire_all_but(&mut self, current: &OsStr) {
        let now = Instant::now();
        let Ok(listing) = fs::read_dir(&self.out_dir) else {
            return;
        };
        for entry in listing.flatten() {
            let name = entry.file_name();
            // A directory (file_type does not follow a symlink): anything
            // else of that name would stall the sweep.
            let ours = name.to_string_lossy().starts_with(CERTS_DIR_PREFIX)
                && entry.file_type().is_ok_and(|t| t.is_dir());
            if ours && name != current && !self.retired.iter().any(|(n, _)| *n == name) {
                self.retired.push_back((name, now));
            }
        }
    }

    /// Removes the retired generations that are due: past [`RETIRED_GRACE`],
    /// or beyond [`MAX_RETIRED`]. One that cannot be removed is tried again
    /// at the next publish.
    pub(crate) fn sweep(&mut self) {
        let now = Instant::now();
        while let Some((name, since)) = self.retired.front() {
            let due = self.retired.len() > MAX_RETIRED
                || now.saturating_duration_since(*since) >= RETIRED_GRACE;
            if !due {
                break;
            }
            let path = self.out_dir.join(name);
            match fs::remove_dir_all(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    warn!(path = %path.display(), error = %e, "cannot remove a retired certs/ generation; trying again at the next publish");
                    break;
                }
                _ => {
                    self.retired.pop_front();
                }
            }
        }
    }

    /// Writes `files` into a new directory under a temporary name, so an
    /// interrupted build is recognisably a leftover, then renames it to
    /// `final_dir` once complete. On failure it is removed.
    fn build(
        &self,
        stamp: &str,
        final_dir: &Path,
        files: &[(String, &[u8])],
    ) -> Result<(), PublishError> {
        let building = tmp_path(&self.out_dir, &format!("certs-{stamp}"));
        ctx("create", &building, fs::create_dir(&building))?;
        let fill = || -> Result<(), PublishError> {
            let dir = ctx("open", &building, Dir::open(&building))?;
            for (name, pem) in files {
                // The path is built only for an error: hundreds of files.
                let fail = |action, e| PublishError::new(action, &dir.join(name), e);
                let mut f = dir.create(name).map_err(|e| fail("create", e))?;
                f.write_all(pem).map_err(|e| fail("write", e))?;
            }
            // No fsync per file: hundreds of them would dominate a publish,
            // and durability is not needed here. After a crash every start
            // compares certs/ byte for byte with what it should hold and
            // rebuilds it, before the startup probe lets the application run.
            ctx("sync", &building, dir.sync())?;
            ctx("rename", final_dir, fs::rename(&building, final_dir))
        };
        fill().inspect_err(|_| discard(&building, files))
    }

    /// At start, before anything else: makes `certs` name the generation of
    /// the bundle on disk (`bundle_sha`, `None` when there is none). A publish
    /// swaps `certs` first and the bundle second, so a process killed between
    /// the two left `certs` one generation ahead. The bundle is what was
    /// published last, so `certs` goes back to its generation, still there
    /// (retired, not removed); with no bundle nothing was published whole,
    /// and the `certs` link goes. A bundle that matches no generation (an
    /// older tool's, or edited by hand) is left to the first publish. Returns
    /// whether `certs` changed.
    pub(crate) fn agree_with(&self, bundle_sha: Option<&str>) -> Result<bool, PublishError> {
        let Some(current) = self.current() else {
            return Ok(false);
        };
        let link = self.link_path();
        let Some(sha) = bundle_sha else {
            ctx("remove", &link, fs::remove_file(&link))?;
            return Ok(true);
        };
        let prefix = format!("{CERTS_DIR_PREFIX}{}-", &sha[..sha.len().min(12)]);
        if current.to_string_lossy().starts_with(&prefix) {
            return Ok(false);
        }
        let Some(target) = self.newest_named(&prefix) else {
            return Ok(false);
        };
        let link_tmp = tmp_path(&self.out_dir, &format!("link-{}", unique_stamp()));
        ctx("symlink", &link_tmp, symlink(&target, &link_tmp))?;
        if let Err(e) = fs::rename(&link_tmp, &link) {
            let _ = fs::remove_file(&link_tmp);
            return Err(PublishError::new("rename", &link, e));
        }
        ctx("sync", &self.out_dir, sync_dir(&self.out_dir))?;
        Ok(true)
    }

    /// The newest versioned directory whose name starts with `prefix` (the
    /// stamp after it grows with time).
    fn newest_named(&self, prefix: &str) -> Option<OsString> {
        fs::read_dir(&self.out_dir)
            .ok()?
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name())
            .filter(|n| n.to_string_lossy().starts_with(prefix))
            .max_by_key(|n| (n.len(), n.clone()))
    }

    /// Removes what a crash can leave: temporary files and versioned
    /// directories that `certs` does not point at. Returns how many.
    pub(crate) fn clean_leftovers(&self) -> Result<usize, PublishError> {
        let current = self.current();
        let mut removed = 0;
        for entry in ctx("list", &self.out_dir, fs::read_dir(&self.out_dir))? {
            let entry = ctx("list", &self.out_dir, entry)?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let path = entry.path();
            if name.starts_with(TMP_PREFIX) {
                let r = if path.is_dir() && !path.is_symlink() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                ctx("remove", &path, r)?;
                removed += 1;
            } else if name.starts_with(CERTS_DIR_PREFIX)
                && current.as_deref() != Some(OsStr::new(&*name))
            {
                ctx("remove", &path, fs::remove_dir_all(&path))?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Removes the directory `dir` that was to hold `files`, however far it got.
/// Unlinks each name by path and then the directory itself: no file
/// descriptor is needed (`remove_dir_all` opens the directory, which fails
/// with `EMFILE` exactly when a build failed for want of descriptors).
fn discard(dir: &Path, files: &[(String, &[u8])]) {
    for (name, _) in files {
        let _ = fs::remove_file(dir.join(name));
    }
    let _ = fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generations_on_disk(out: &Path) -> usize {
        fs::read_dir(out)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with(CERTS_DIR_PREFIX)
            })
            .count()
    }

    #[test]
    fn the_swapped_out_generation_is_kept_and_a_storm_keeps_at_most_the_cap() {
        let tmp = tempfile::tempdir().unwrap();
        let mut g = Generations::new(tmp.path().to_path_buf());
        let files = |n: u8| vec![(format!("0000000{n}.0"), &b"pem"[..])];
        g.swap(&"a".repeat(64), &files(1)).unwrap();
        g.swap(&"b".repeat(64), &files(2)).unwrap();
        assert_eq!(generations_on_disk(tmp.path()), 2, "the previous one stays");
        g.sweep();
        assert_eq!(generations_on_disk(tmp.path()), 2, "within its grace");
        for n in 3..8 {
            g.swap(&format!("{n}").repeat(64), &files(n)).unwrap();
        }
        assert_eq!(generations_on_disk(tmp.path()), 1 + MAX_RETIRED);
        assert!(g.up_to_date(&files(7)));
    }

    #[test]
    fn at_start_certs_follows_the_bundle_back_or_goes_without_one() {
        let tmp = tempfile::tempdir().unwrap();
        let mut g = Generations::new(tmp.path().to_path_buf());
        let (old, new) = ("a".repeat(64), "b".repeat(64));
        g.swap(&old, &[("00000001.0".into(), b"old")]).unwrap();
        g.swap(&new, &[("00000002.0".into(), b"new")]).unwrap();
        assert!(!g.agree_with(Some(&new)).unwrap(), "already agrees");
        assert!(g.agree_with(Some(&old)).unwrap(), "back to the bundle's");
        assert!(g.up_to_date(&[("00000001.0".into(), b"old")]));
        assert!(
            !g.agree_with(Some(&"c".repeat(64))).unwrap(),
            "unknown: left"
        );
        assert!(g.agree_with(None).unwrap(), "no bundle: no certs");
        assert!(g.current().is_none());
        assert_eq!(g.clean_leftovers().unwrap(), 2);
    }
}
