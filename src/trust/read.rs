//! The one reader for every file taken as trust input: a Secret's files (capped
//! at 1 MiB, [`crate::trust::source::MAX_FILE_BYTES`]), a base bundle and a
//! bundle named to `inspect` or `verify` (capped at [`MAX_BUNDLE_BYTES`]).
//! Regular files only, opened non-blocking: a FIFO put where a file was
//! expected can neither hang the loop nor, past the cap, exhaust memory.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A base bundle, or a bundle file named on the command line, may be larger
/// than a Secret: 16 MiB is ten times the biggest distro bundle.
pub(crate) const MAX_BUNDLE_BYTES: u64 = 16 * 1024 * 1024;

/// An I/O error as a [`ReadError`] keeps it. `io::Error` is neither `Clone`
/// nor comparable, which read results must be (they are kept between
/// reconciles and compared in tests), so its kind and OS code are kept for
/// the decisions made on them (a file that vanished in a kubelet swap, a
/// permission problem worth a hint) and its text for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text}")]
pub struct IoError {
    /// What went wrong, as the standard library classifies it.
    kind: io::ErrorKind,
    /// The `errno`, when the error came from the kernel: finer than the kind
    /// (`EACCES` and `EPERM` are both `PermissionDenied`).
    os_code: Option<i32>,
    /// `io::Error`'s own text, e.g. "Permission denied (os error 13)": what
    /// the log and `/status` have always shown.
    text: String,
}

impl IoError {
    /// The standard library's classification of the error.
    pub(crate) fn kind(&self) -> io::ErrorKind {
        self.kind
    }

    /// The `errno`, if the kernel reported the error.
    pub(crate) fn os_code(&self) -> Option<i32> {
        self.os_code
    }
}

impl From<io::Error> for IoError {
    fn from(e: io::Error) -> Self {
        IoError {
            kind: e.kind(),
            os_code: e.raw_os_error(),
            text: e.to_string(),
        }
    }
}

/// Why a source or one of its files could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] IoError),
    /// Over the reader's cap: refused without reading it all.
    #[error("file is larger than {max} bytes")]
    TooLarge {
        /// The cap, in bytes.
        max: u64,
    },
    /// A directory source holding more files than any Secret can.
    #[error("more than {max} files in the directory")]
    TooManyFiles {
        /// The cap, in files.
        max: usize,
    },
    /// `..data` leads out of the source: following it would make any file
    /// elsewhere on the node a trusted CA, so the whole source is refused.
    #[error("{} points to {}, outside the source directory {}; refusing to read it", link.display(), target.display(), root.display())]
    DataEscapes {
        /// The `..data` link.
        link: PathBuf,
        /// Where it resolves to.
        target: PathBuf,
        /// The canonical source directory it should stay inside.
        root: PathBuf,
    },
    /// `..data` points somewhere that cannot be resolved (other than gone
    /// in a swap, which is read again).
    #[error("{} -> {}: {source}", link.display(), target.display())]
    DataUnresolvable {
        /// The `..data` link.
        link: PathBuf,
        /// What it points to, as written in the link.
        target: PathBuf,
        /// Why resolving failed.
        source: IoError,
    },
    /// The kubelet replaced the files while they were read, on every try.
    #[error("changed while reading")]
    Changed,
    /// `..data` moved to a new version while the old one was read, on every try.
    #[error("..data was swapped while reading")]
    Swapped,
    /// Opening a FIFO blocks until a writer comes, a device may be endless:
    /// only regular files hold certificates.
    #[error("not a regular file ({0}); only regular files are read")]
    NotRegular(&'static str),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e.into())
    }
}

impl ReadError {
    /// The I/O error behind this one, if there is one.
    pub(crate) fn io(&self) -> Option<&IoError> {
        match self {
            ReadError::Io(e) | ReadError::DataUnresolvable { source: e, .. } => Some(e),
            _ => None,
        }
    }
}

/// `None` for a regular file (or a directory), else what it is, for messages.
pub(crate) fn kind_of(t: &fs::FileType) -> Option<&'static str> {
    if t.is_file() || t.is_dir() {
        None
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_symlink() {
        Some("a symlink")
    } else {
        Some("unknown type")
    }
}

/// Reads the regular file at `path` (following symlinks), refusing anything
/// over `max` bytes without reading it all. Opened non-blocking, so a FIFO
/// put in its place after a type check cannot hang the caller, then checked
/// again on the open descriptor.
pub(crate) fn read_capped(path: &Path, max: u64) -> Result<Vec<u8>, ReadError> {
    read_open(open_nonblocking(path, false)?, max)
}

/// The SHA-256 of the regular file at `path`, with [`read_capped`]'s checks
/// and errors, read through a buffer on the stack. The daemon reads its base
/// bundle on every reconcile only to see whether it changed, which it almost
/// never has: a buffer the size of the bundle per reconcile need not be
/// allocated.
pub(crate) fn digest_capped(path: &Path, max: u64) -> Result<[u8; 32], ReadError> {
    use sha2::{Digest, Sha256};
    let mut file = open_nonblocking(path, false)?;
    regular(&file)?;
    let mut hash = Sha256::new();
    let mut total = 0u64;
    let within = each_chunk(&mut file, |chunk| {
        total += chunk.len() as u64;
        hash.update(chunk);
        total <= max
    })?;
    if !within {
        return Err(ReadError::TooLarge { max });
    }
    Ok(hash.finalize().into())
}

/// Hands `reader`'s bytes to `f` one stack buffer at a time (retrying on
/// EINTR) until the end, `Ok(true)`, or until `f` returns false, `Ok(false)`:
/// for looking at a file without a heap buffer its size.
pub(crate) fn each_chunk(
    reader: &mut impl Read,
    mut f: impl FnMut(&[u8]) -> bool,
) -> io::Result<bool> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            return Ok(true);
        }
        if !f(&buf[..n]) {
            return Ok(false);
        }
    }
}

/// The metadata of an opened file, if it is a regular one (or a directory,
/// whose read then fails with the kernel's error).
fn regular(file: &fs::File) -> Result<fs::Metadata, ReadError> {
    let meta = file.metadata()?;
    match kind_of(&meta.file_type()) {
        Some(kind) => Err(ReadError::NotRegular(kind)),
        None => Ok(meta),
    }
}

/// Opens `path` read-only without blocking (a FIFO would block until a
/// writer comes); `nofollow` also refuses a symlink as the last component.
pub(crate) fn open_nonblocking(path: &Path, nofollow: bool) -> io::Result<fs::File> {
    let flags = libc::O_NONBLOCK | if nofollow { libc::O_NOFOLLOW } else { 0 };
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
}

/// Reads an opened file if it is a regular one, up to `max` bytes.
pub(crate) fn read_open(file: fs::File, max: u64) -> Result<Vec<u8>, ReadError> {
    let meta = regular(&file)?;
    // Sized from the file, plus one byte to see the end (or growth past the
    // cap): `Take` hides the size from `read_to_end`, which then probes with
    // small reads, several read(2) calls per certificate instead of one and
    // the end-of-file read.
    let expected = meta.len().min(max) as usize + 1;
    let mut bytes = Vec::with_capacity(expected);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(ReadError::TooLarge { max });
    }
    Ok(bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Makes a FIFO at `path`: what a reader must never block on.
    pub(crate) fn make_fifo(path: &Path) {
        use rustix::fs::{mkfifoat, Mode, CWD};
        mkfifoat(CWD, path, Mode::from_raw_mode(0o644)).unwrap();
    }

    #[test]
    fn a_file_over_the_cap_is_refused_and_one_at_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bundle.pem");
        fs::write(&file, vec![b'a'; 11]).unwrap();
        assert_eq!(read_capped(&file, 11).unwrap().len(), 11);
        let e = read_capped(&file, 10).unwrap_err();
        assert_eq!(e, ReadError::TooLarge { max: 10 });
        assert_eq!(e.to_string(), "file is larger than 10 bytes");
    }

    #[test]
    fn the_digest_is_of_what_read_capped_reads_and_fails_alike() {
        use sha2::{Digest, Sha256};
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bundle.pem");
        let bytes: Vec<u8> = (0..40_000u32).map(|i| (i % 253) as u8).collect();
        fs::write(&file, &bytes).unwrap();
        let want: [u8; 32] = Sha256::digest(&bytes).into();
        assert_eq!(digest_capped(&file, 40_000).unwrap(), want);
        assert_eq!(
            digest_capped(&file, 39_999),
            Err(ReadError::TooLarge { max: 39_999 })
        );
        let missing = dir.path().join("missing");
        assert_eq!(
            digest_capped(&missing, 10).unwrap_err(),
            read_capped(&missing, 10).unwrap_err()
        );
        let fifo = dir.path().join("pipe.pem");
        make_fifo(&fifo);
        assert_eq!(
            digest_capped(&fifo, 10),
            Err(ReadError::NotRegular("a FIFO"))
        );
    }

    #[test]
    fn io_errors_keep_their_kind_code_and_text() {
        let e = read_capped(Path::new("/nonexistent/trust-injector"), 10).unwrap_err();
        let io = e.io().expect("an I/O error");
        assert_eq!(io.kind(), io::ErrorKind::NotFound);
        assert_eq!(io.os_code(), Some(libc::ENOENT));
        assert_eq!(e.to_string(), "No such file or directory (os error 2)");
    }

    #[test]
    fn a_permission_error_keeps_the_text_the_log_has_always_shown() {
        // What the inventory's permission hint is decided on (EACCES), and
        // what it prints before the hint.
        let e = ReadError::from(io::Error::from_raw_os_error(libc::EACCES));
        let io = e.io().expect("an I/O error");
        assert_eq!(
            (io.kind(), io.os_code()),
            (io::ErrorKind::PermissionDenied, Some(libc::EACCES))
        );
        assert_eq!(e.to_string(), "Permission denied (os error 13)");
        let e = ReadError::DataUnresolvable {
            link: "/s/..data".into(),
            target: "..2026".into(),
            source: io::Error::from_raw_os_error(libc::EACCES).into(),
        };
        assert_eq!(e.io().and_then(IoError::os_code), Some(libc::EACCES));
        assert_eq!(
            e.to_string(),
            "/s/..data -> ..2026: Permission denied (os error 13)"
        );
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.pem");
        make_fifo(&fifo);
        assert_eq!(
            read_capped(&fifo, MAX_BUNDLE_BYTES),
            Err(ReadError::NotRegular("a FIFO"))
        );
    }
}
