//! What the one-shot commands read: a file named on the command line, or a
//! directory of bundle files.

use crate::trust::read::ReadError;
use crate::trust::source::{read_source, FileRead, SourceRead};
use std::io::Read;
use std::path::Path;

/// A single file named on the command line may be a whole base bundle, so
/// it gets the base's limit rather than a Secret's 1 MiB.
pub const MAX_BUNDLE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads the files behind `path`: the file itself (up to
/// [`MAX_BUNDLE_BYTES`]), or every file of a directory the way the sidecar
/// reads a source (kubelet layout, hidden entries skipped, symlinks kept
/// inside; a hashed directory's `certs/` symlink resolves to its version).
pub fn read_path(path: &Path) -> Result<Vec<FileRead>, String> {
    if path.is_file() {
        return Ok(vec![FileRead {
            path: path.to_path_buf(),
            bytes: read_bundle_file(path),
        }]);
    }
    match read_source(path) {
        SourceRead::Missing => Err("no such file or directory".into()),
        SourceRead::Failed(e) => Err(e.to_string()),
        SourceRead::Files(l) if l.files.is_empty() => Err("directory holds no files".into()),
        SourceRead::Files(l) => Ok(l.files),
    }
}

fn read_bundle_file(path: &Path) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BUNDLE_BYTES {
        return Err(ReadError::TooLarge {
            max: MAX_BUNDLE_BYTES,
        });
    }
    Ok(bytes)
}
