//! Reading one file, capped, without ever blocking on it.

use crate::trust::source::{MAX_FILES_PER_SOURCE, MAX_FILE_BYTES};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a source or one of its files could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(String),
    #[error("file is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge,
    #[error("more than {MAX_FILES_PER_SOURCE} files in the directory")]
    TooManyFiles,
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
    /// Opening a FIFO blocks until a writer comes, a device may be endless:
    /// only regular files hold certificates.
    #[error("not a regular file ({0}); only regular files are read")]
    NotRegular(&'static str),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e.to_string())
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

/// Reads a file, refusing anything over [`MAX_FILE_BYTES`] without reading it
/// all (a huge file must not be able to exhaust memory).
pub fn read_capped(path: &Path) -> Result<Vec<u8>, ReadError> {
    read_regular(path, false)
}

/// Reads the regular file at `path`. Opened non-blocking, so a FIFO put in
/// its place after the type check cannot hang the loop, then checked again on
/// the open descriptor; `nofollow` also refuses a symlink put there.
pub(crate) fn read_regular(path: &Path, nofollow: bool) -> Result<Vec<u8>, ReadError> {
    read_open(open_nonblocking(path, nofollow)?)
}

pub(crate) fn open_nonblocking(path: &Path, nofollow: bool) -> io::Result<fs::File> {
    let flags = libc::O_NONBLOCK | if nofollow { libc::O_NOFOLLOW } else { 0 };
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
}

/// Reads an opened file if it is a regular one, up to [`MAX_FILE_BYTES`].
pub(crate) fn read_open(file: fs::File) -> Result<Vec<u8>, ReadError> {
    if let Some(kind) = kind_of(&file.metadata()?.file_type()) {
        return Err(ReadError::NotRegular(kind));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}
