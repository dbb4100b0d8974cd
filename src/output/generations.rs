//! `certs/`, the hashed directory, published as generations: `certs` is a
//! symlink to a hidden versioned directory (`.certs-<sha>-<stamp>`), which is
//! built completely under a temporary name, renamed to its versioned name,
//! and swapped in by renaming a new symlink over `certs`.

use crate::output::dir::Dir;
use crate::output::publish::{ctx, sync_dir, tmp_path, unique_stamp, PublishError, TMP_PREFIX};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// The hashed directory's name in `--out-dir` (a symlink).
pub(crate) const CERTS_LINK: &str = "certs";
/// Prefix of the versioned hashed directories.
const CERTS_DIR_PREFIX: &str = ".certs-";

/// The generations of `certs/` in one out-dir. Only the [`Publisher`]
/// (crate::output::publish::Publisher) holds one.
#[derive(Debug)]
pub(crate) struct Generations {
    out_dir: PathBuf,
}

impl Generations {
    /// The generations in `out_dir`.
    pub(crate) fn new(out_dir: PathBuf) -> Self {
        Generations { out_dir }
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
    pub(crate) fn swap(&self, sha: &str, files: &[(String, &[u8])]) -> Result<(), PublishError> {
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
        ctx("sync", &self.out_dir, sync_dir(&self.out_dir))?;
        // Every other versioned directory is now unreferenced: the previous
        // one, and any orphaned when `certs` itself was deleted by someone.
        self.clean_leftovers()?;
        Ok(())
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
