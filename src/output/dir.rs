//! A directory of `--out-dir`, opened once, and the files in it created and
//! compared relative to that descriptor (`openat(2)`), through rustix's safe
//! system calls.
//!
//! A publish of the hashed directory touches every certificate file, hundreds
//! of them, so the per-file cost is what a swap costs. Through `std::fs` with
//! joined paths each file is an allocated path, a kernel walk of every
//! component of it, and, in the static musl binary the image ships, one more
//! `fcntl(F_SETFD)` after every open (musl's `open(3)` re-applies `O_CLOEXEC`
//! for kernels older than 2.6.23; its `openat(3)` does not). Comparisons read
//! into a buffer on the stack rather than a `Vec` the size of the file: the
//! bundle is a quarter of a megabyte, and memory the allocator has returned
//! to the OS costs a page fault per 4 KiB when it is allocated again.
//! docs/performance.md has the figures.

use rustix::fs::{Mode, OFlags, CWD};
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// An open directory.
#[derive(Debug)]
pub(crate) struct Dir {
    /// `O_DIRECTORY` descriptor every name is resolved against.
    fd: OwnedFd,
    /// Where it is, for error messages.
    path: PathBuf,
}

impl Dir {
    /// Opens the directory at `path`.
    pub(crate) fn open(path: &Path) -> io::Result<Dir> {
        // openat, not open: see the module comment on musl.
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        Ok(Dir {
            fd: rustix::fs::openat(CWD, path, flags, Mode::empty())?,
            path: path.to_path_buf(),
        })
    }

    /// The path of `name` in this directory, for messages.
    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Creates the new file `name`, readable by everyone (0644 whatever the
    /// umask: the reader runs as another user in another container). Fails
    /// if `name` exists, so a symlink planted there is never followed.
    pub(crate) fn create(&self, name: &str) -> io::Result<File> {
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC;
        let file = File::from(self.open_at(name, flags, PUBLIC)?);
        make_public(&file)?;
        Ok(file)
    }

    /// Whether `name` is a regular file holding exactly `expected`. Anything
    /// else (missing, unreadable, a symlink, a FIFO, other bytes) is `false`:
    /// the caller then writes it anew. Opened non-blocking and without
    /// following a symlink, because the application can write in this
    /// directory too.
    pub(crate) fn holds(&self, name: &str, expected: &[u8]) -> bool {
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let Ok(fd) = self.open_at(name, flags, Mode::empty()) else {
            return false;
        };
        let file = File::from(fd);
        match file.metadata() {
            Ok(m) if m.is_file() && m.len() == expected.len() as u64 => {}
            _ => return false,
        }
        same_bytes(file, expected).unwrap_or(false)
    }

    /// Flushes the directory's entries (new names, renames) to disk.
    pub(crate) fn sync(&self) -> io::Result<()> {
        Ok(rustix::fs::fsync(&self.fd)?)
    }

    fn open_at(&self, name: &str, flags: OFlags, mode: Mode) -> io::Result<OwnedFd> {
        Ok(rustix::fs::openat(&self.fd, name, flags, mode)?)
    }
}

/// The mode of every published file.
const PUBLIC: Mode = Mode::from_raw_mode(0o644);

/// Gives `file`, just created with mode [`PUBLIC`], that mode exactly when
/// the umask took bits of it away (an `fchmod` per file otherwise saved).
fn make_public(file: &File) -> io::Result<()> {
    if umask_narrows_public() {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(PUBLIC.as_raw_mode()))?;
    }
    Ok(())
}

/// Reads `file` to its end, comparing with `expected` as it goes.
fn same_bytes(mut file: File, expected: &[u8]) -> io::Result<bool> {
    let mut rest = expected;
    let whole = crate::trust::read::each_chunk(&mut file, |chunk| {
        // None: longer than expected, or different.
        rest.strip_prefix(chunk).map(|tail| rest = tail).is_some()
    })?;
    Ok(whole && rest.is_empty())
}

/// Whether the process's umask clears a bit of 0644, so a new file needs an
/// `fchmod` to be public. Read once from `/proc/self/status` (Linux 4.7+);
/// unknown means yes. Nothing in the process changes its umask.
fn umask_narrows_public() -> bool {
    static NARROWS: OnceLock<bool> = OnceLock::new();
    *NARROWS.get_or_init(|| {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
            .is_none_or(|mask| mask & PUBLIC.as_raw_mode() != 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn holds_is_true_only_for_a_regular_file_with_exactly_those_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(tmp.path().join("big"), &big).unwrap();
        assert!(dir.holds("big", &big));
        let mut other = big.clone();
        *other.last_mut().unwrap() ^= 1;
        assert!(!dir.holds("big", &other), "last byte differs");
        assert!(!dir.holds("big", &big[..big.len() - 1]), "shorter");
        assert!(!dir.holds("missing", b""));
        std::os::unix::fs::symlink("big", tmp.path().join("link")).unwrap();
        assert!(!dir.holds("link", &big), "a symlink is never followed");
        crate::trust::read::tests::make_fifo(&tmp.path().join("fifo"));
        assert!(!dir.holds("fifo", b""), "a FIFO neither blocks nor counts");
        std::fs::write(tmp.path().join("empty"), b"").unwrap();
        assert!(dir.holds("empty", b""));
    }

    #[test]
    fn created_files_are_public_and_never_replace_anything() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = Dir::open(tmp.path()).unwrap();
        let f = dir.create("new").unwrap();
        let mode = f.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let e = dir.create("new").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        std::os::unix::fs::symlink("/nonexistent/x", tmp.path().join("planted")).unwrap();
        assert!(
            dir.create("planted").is_err(),
            "a planted symlink is not followed"
        );
        assert!(!Path::new("/nonexistent/x").exists());
        dir.sync().unwrap();
        assert!(
            Dir::open(&tmp.path().join("new")).is_err(),
            "not a directory"
        );
    }
}
