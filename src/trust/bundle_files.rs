//! What the one-shot commands read: a file named on the command line, or a
//! directory of bundle files.

use crate::trust::read::{read_capped, ReadError, MAX_BUNDLE_BYTES};
use crate::trust::source::{read_source, FileRead, SourceRead};
use std::path::Path;

/// Why nothing could be read behind a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleFilesError {
    /// Neither a file nor a directory is there.
    #[error("no such file or directory")]
    Missing,
    /// The directory could not be read as a source.
    #[error(transparent)]
    Source(#[from] ReadError),
    /// A directory without a single file: nothing to inspect or trust.
    #[error("directory holds no files")]
    Empty,
}

/// Reads the files behind `path`: the file itself (up to
/// [`MAX_BUNDLE_BYTES`]: it may be a whole base bundle, so it gets the
/// base's limit rather than a Secret's 1 MiB), or every file of a directory
/// the way the sidecar reads a source (kubelet layout, hidden entries
/// skipped, symlinks kept inside; a hashed directory's `certs/` symlink
/// resolves to its version).
pub(crate) fn read_path(path: &Path) -> Result<Vec<FileRead>, BundleFilesError> {
    if path.is_file() {
        return Ok(vec![FileRead {
            path: path.to_path_buf(),
            bytes: read_capped(path, MAX_BUNDLE_BYTES),
        }]);
    }
    match read_source(path) {
        SourceRead::Missing => Err(BundleFilesError::Missing),
        SourceRead::Failed(e) => Err(e.into()),
        SourceRead::Files(l) if l.files.is_empty() => Err(BundleFilesError::Empty),
        SourceRead::Files(l) => Ok(l.files),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_a_directory_nothing_and_an_empty_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            read_path(&dir.path().join("gone")).unwrap_err(),
            BundleFilesError::Missing
        );
        assert_eq!(read_path(dir.path()).unwrap_err(), BundleFilesError::Empty);
        let file = dir.path().join("ca.crt");
        std::fs::write(&file, b"x").unwrap();
        let named = read_path(&file).unwrap();
        assert_eq!(
            (named[0].path.as_path(), named[0].bytes.as_deref()),
            (file.as_path(), Ok(&b"x"[..]))
        );
        assert_eq!(read_path(dir.path()).unwrap().len(), 1);
    }
}
