//! Reads the files of one source: a single file, a plain directory, or a
//! directory laid out by the kubelet for a Secret/ConfigMap volume.
//!
//! The kubelet's AtomicWriter keeps the real files in a hidden timestamped
//! directory, points the `..data` symlink at it and exposes every key as a
//! symlink through `..data`. An update writes a new timestamped directory and
//! renames a new symlink over `..data`. Reading keys through `..data` one at a
//! time could mix two versions if the swap happens in between; so we resolve
//! `..data` once and read every key from that one immutable directory.
//!
//! Symlink rule for plain directories: a symlink is followed only when its
//! target stays inside the source directory. This is what the kubelet layout
//! needs, and it stops a writable volume from pulling in arbitrary files.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// Largest file we read. A Secret holds at most 1 MiB in total.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Largest number of files taken from one directory source.
pub const MAX_FILES_PER_SOURCE: usize = 4096;

/// Subdirectories deeper than this are not read (ConfigMap `items` paths
/// rarely nest more than one level).
const MAX_DEPTH: usize = 8;

/// Why a source or one of its files could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(String),
    #[error("file is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge,
    #[error("more than {MAX_FILES_PER_SOURCE} files in the directory")]
    TooManyFiles,
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e.to_string())
    }
}

/// One file of a source, as read now.
#[derive(Debug)]
pub struct FileRead {
    /// Path shown to people and used as the file's identity: the path under
    /// the source as the user sees it (`/secret/ca.crt`), never the hidden
    /// timestamped directory, so identity survives a kubelet swap.
    pub path: PathBuf,
    /// The bytes, or why they could not be read.
    pub bytes: Result<Vec<u8>, ReadError>,
}

/// The result of reading one source.
#[derive(Debug)]
pub enum SourceRead {
    /// The path does not exist (yet): waited for, not an error.
    Missing,
    /// The files found, sorted by path (the bundle order relies on it).
    Files(Vec<FileRead>),
    /// The source itself could not be listed.
    Failed(ReadError),
}

/// Reads every file of the source at `path`.
pub fn read_source(path: &Path) -> SourceRead {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return SourceRead::Missing,
        Err(e) => return SourceRead::Failed(e.into()),
    };
    if !meta.is_dir() {
        return SourceRead::Files(vec![FileRead {
            path: path.to_path_buf(),
            bytes: read_capped(path),
        }]);
    }
    // A kubelet swap can delete the directory we resolved between listing and
    // reading; a fresh resolve then sees the new one. Three tries is plenty:
    // the kubelet does not swap faster than we read.
    let mut last = None;
    for _ in 0..3 {
        match read_dir_source(path) {
            Ok(files) => return SourceRead::Files(files),
            Err(Retry::Again(e)) => last = Some(e),
            Err(Retry::Fatal(e)) => return SourceRead::Failed(e),
        }
    }
    SourceRead::Failed(last.unwrap_or_else(|| ReadError::Io("changed while reading".into())))
}

enum Retry {
    Again(ReadError),
    Fatal(ReadError),
}

fn read_dir_source(root: &Path) -> Result<Vec<FileRead>, Retry> {
    let data_link = root.join("..data");
    let resolved = fs::read_link(&data_link).ok();
    let (read_from, kubelet) = match &resolved {
        Some(target) => (root.join(target), true),
        None => (root.to_path_buf(), false),
    };
    let canonical_root = fs::canonicalize(root).map_err(|e| Retry::Fatal(e.into()))?;
    let mut files = Vec::new();
    collect(
        &read_from,
        Path::new(""),
        root,
        &canonical_root,
        kubelet,
        0,
        &mut files,
    )?;
    // The old timestamped directory is removed right after a swap, and a
    // directory deleted while being listed just lists fewer (or no) entries,
    // without an error: the keys would look deleted and the bundle would lose
    // them until the next event. If `..data` moved meanwhile, read again.
    if kubelet && fs::read_link(&data_link).ok() != resolved {
        return Err(Retry::Again(ReadError::Io(
            "..data was swapped while reading".into(),
        )));
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// Lists `dir` (relative position `rel` below the source) into `out`.
fn collect(
    dir: &Path,
    rel: &Path,
    root: &Path,
    canonical_root: &Path,
    kubelet: bool,
    depth: usize,
    out: &mut Vec<FileRead>,
) -> Result<(), Retry> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        // The timestamped directory vanished under us: a swap. Resolve again.
        Err(e) if kubelet && e.kind() == io::ErrorKind::NotFound => {
            return Err(Retry::Again(e.into()))
        }
        Err(e) => return Err(Retry::Fatal(e.into())),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Retry::Again(e.into()))?;
        let name = entry.file_name();
        // Hidden entries are the kubelet's machinery (..data, ..2024_…) or
        // editor litter; never certificates.
        if name.as_encoded_bytes().first() == Some(&b'.') {
            continue;
        }
        let full = dir.join(&name);
        let rel_path = rel.join(&name);
        let file_type = entry.file_type().map_err(|e| Retry::Again(e.into()))?;
        let followed = if file_type.is_symlink() {
            match fs::canonicalize(&full) {
                Ok(target) if target.starts_with(canonical_root) => {}
                // Dangling or pointing outside: not ours to read.
                _ => continue,
            }
            match fs::metadata(&full) {
                Ok(m) => m.file_type(),
                Err(_) => continue,
            }
        } else {
            file_type
        };
        if followed.is_dir() {
            if depth + 1 < MAX_DEPTH {
                collect(
                    &full,
                    &rel_path,
                    root,
                    canonical_root,
                    kubelet,
                    depth + 1,
                    out,
                )?;
            }
            continue;
        }
        if !followed.is_file() {
            continue;
        }
        if out.len() == MAX_FILES_PER_SOURCE {
            return Err(Retry::Fatal(ReadError::TooManyFiles));
        }
        let bytes = match read_capped(&full) {
            Err(ReadError::Io(_)) if kubelet && !full.exists() => {
                return Err(Retry::Again(ReadError::Io("changed while reading".into())))
            }
            other => other,
        };
        out.push(FileRead {
            path: root.join(&rel_path),
            bytes,
        });
    }
    Ok(())
}

/// Reads a file, refusing anything over [`MAX_FILE_BYTES`] without reading it
/// all (a huge file must not be able to exhaust memory).
pub fn read_capped(path: &Path) -> Result<Vec<u8>, ReadError> {
    let file = fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge);
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn missing_source_is_not_an_error() {
        assert!(matches!(
            read_source(Path::new("/nonexistent/trust-injector")),
            SourceRead::Missing
        ));
    }

    #[test]
    fn kubelet_layout_reads_resolved_dir_and_reports_user_paths() {
        let dir = tempfile::tempdir().unwrap();
        let ts = dir.path().join("..2026_01_01_00_00_00.1");
        fs::create_dir(&ts).unwrap();
        fs::write(ts.join("ca.crt"), b"x").unwrap();
        symlink("..2026_01_01_00_00_00.1", dir.path().join("..data")).unwrap();
        symlink("..data/ca.crt", dir.path().join("ca.crt")).unwrap();
        let SourceRead::Files(files) = read_source(dir.path()) else {
            panic!("expected files")
        };
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].path, dir.path().join("ca.crt"));
        assert_eq!(files[0].bytes.as_deref().unwrap(), b"x");
    }

    #[test]
    fn plain_dir_does_not_follow_symlinks_outside() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), b"s").unwrap();
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.crt"), b"a").unwrap();
        fs::write(dir.path().join(".hidden"), b"h").unwrap();
        symlink(outside.path().join("secret"), dir.path().join("evil.crt")).unwrap();
        symlink("a.crt", dir.path().join("b.crt")).unwrap();
        let SourceRead::Files(files) = read_source(dir.path()) else {
            panic!("expected files")
        };
        let names: Vec<_> = files.iter().map(|f| f.path.clone()).collect();
        assert_eq!(
            names,
            vec![dir.path().join("a.crt"), dir.path().join("b.crt")]
        );
    }

    #[test]
    fn oversize_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.pem");
        fs::write(&big, vec![b'a'; MAX_FILE_BYTES as usize + 1]).unwrap();
        assert_eq!(read_capped(&big), Err(ReadError::TooLarge));
    }
}
