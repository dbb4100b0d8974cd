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
//! Trust never comes from outside a source: every path read, `..data`
//! included, is resolved to its canonical form and must lie inside the
//! source's canonical directory. `..data` leading out fails the whole source
//! (the reconciler keeps its last good certificates); a symlink leading out,
//! a loop, a dangling link or anything but a regular file is skipped with a
//! reason ([`Skipped`]) for the log and `/status`. Each directory is entered
//! once (by device and inode), so a loop cannot multiply files, and a FIFO is
//! never opened, so it cannot block the loop.

use crate::trust::include::Include;
use crate::trust::read::{kind_of, open_nonblocking, read_capped, read_open, ReadError};
use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// Largest file we read. A Secret holds at most 1 MiB in total.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Largest number of files taken from one directory source.
pub const MAX_FILES_PER_SOURCE: usize = 4096;

/// Subdirectories deeper than this are not read (ConfigMap `items` paths
/// rarely nest more than one level).
const MAX_DEPTH: usize = 8;

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

/// An entry of a directory source that was deliberately not read. Not an
/// error of the source (a token in a projected volume, a loop someone made
/// by mistake), but said in the log and `/status` so nobody wonders why a
/// file is not in the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The path users see, as for [`FileRead::path`].
    pub path: PathBuf,
    /// Why it was not read.
    pub reason: SkipReason,
}

/// Why an entry was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SkipReason {
    #[error("symlink loop (too many levels of symbolic links)")]
    FileLoop,
    #[error("directory loop: it leads back to {}, already read", .0.display())]
    DirLoop(PathBuf),
    #[error("dangling symlink")]
    Dangling,
    #[error("symlink to {}, outside the source directory", .0.display())]
    Outside(PathBuf),
    #[error("not a regular file ({0})")]
    NotRegular(&'static str),
    #[error("more than {MAX_DEPTH} directory levels deep")]
    TooDeep,
    #[error("not matched by --include")]
    Excluded,
    #[error("cannot resolve: {0}")]
    Unresolvable(String),
}

/// What a directory listing produced.
#[derive(Debug, Default)]
pub struct Listing {
    /// The files read, sorted by path.
    pub files: Vec<FileRead>,
    /// The entries not read, sorted by path.
    pub skipped: Vec<Skipped>,
}

/// The result of reading one source.
#[derive(Debug)]
pub enum SourceRead {
    /// The path does not exist (yet): waited for, not an error.
    Missing,
    /// The files found, sorted by path (the bundle order relies on it).
    Files(Listing),
    /// The source itself could not be listed.
    Failed(ReadError),
}

/// Reads every file of the source at `path`.
pub fn read_source(path: &Path) -> SourceRead {
    read_source_with(path, &Include::all())
}

/// Reads the files of the source at `path` that `include` takes. The filter
/// applies to directory sources; a file named as a source is always read.
pub fn read_source_with(path: &Path, include: &Include) -> SourceRead {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return SourceRead::Missing,
        Err(e) => return SourceRead::Failed(e.into()),
    };
    if !meta.is_dir() {
        let bytes = match kind_of(&meta.file_type()) {
            None => read_capped(path, MAX_FILE_BYTES),
            Some(kind) => Err(ReadError::NotRegular(kind)),
        };
        return SourceRead::Files(Listing {
            files: vec![FileRead {
                path: path.to_path_buf(),
                bytes,
            }],
            skipped: Vec::new(),
        });
    }
    // A kubelet swap can delete the directory we resolved between listing and
    // reading; a fresh resolve then sees the new one. Three tries is plenty:
    // the kubelet does not swap faster than we read.
    let mut last = None;
    for _ in 0..3 {
        match read_dir_source(path, include) {
            Ok(listing) => return SourceRead::Files(listing),
            Err(Retry::Again(e)) => last = Some(e),
            Err(Retry::Fatal(e)) => return SourceRead::Failed(e),
        }
    }
    SourceRead::Failed(last.unwrap_or(ReadError::Changed))
}

enum Retry {
    Again(ReadError),
    Fatal(ReadError),
}

/// What stays fixed while one directory source is walked.
struct Walk<'a> {
    /// The source as the user named it: the prefix of every reported path.
    root: &'a Path,
    /// The source's canonical path: every path read must lie inside it.
    canonical_root: PathBuf,
    /// That directory, opened: files are opened relative to it with
    /// `openat2(RESOLVE_BENEATH)`, so the kernel holds them inside it.
    root_dir: fs::File,
    /// Read through `..data`: an entry vanishing means a swap, not an error.
    kubelet: bool,
    include: &'a Include,
    /// Directories entered, by (device, inode): a symlink leading back to one
    /// of them is a loop (or a second name for files already read).
    visited: HashSet<(u64, u64)>,
    out: Listing,
}

fn read_dir_source(root: &Path, include: &Include) -> Result<Listing, Retry> {
    let canonical_root = fs::canonicalize(root).map_err(|e| Retry::Fatal(e.into()))?;
    let data_link = root.join("..data");
    let resolved = fs::read_link(&data_link).ok();
    let read_from = match &resolved {
        Some(target) => resolve_data(&data_link, target, &canonical_root)?,
        None => canonical_root.clone(),
    };
    // O_PATH: a handle on the directory for openat2, not a read of it.
    let root_dir = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(&canonical_root)
        .map_err(|e| Retry::Fatal(e.into()))?;
    let mut walk = Walk {
        root,
        root_dir,
        canonical_root,
        kubelet: resolved.is_some(),
        include,
        visited: HashSet::new(),
        out: Listing::default(),
    };
    // The source directory itself counts as read (a link back to it from
    // the timestamped directory is a loop), as does where reading starts.
    for dir in [&walk.canonical_root, &read_from] {
        let meta = fs::metadata(dir).map_err(|e| walk.vanished(e))?;
        walk.visited.insert((meta.dev(), meta.ino()));
    }
    walk.collect(&read_from, Path::new(""), 0)?;
    // The old timestamped directory is removed right after a swap, and a
    // directory deleted while being listed just lists fewer (or no) entries,
    // without an error: the keys would look deleted and the bundle would lose
    // them until the next event. If `..data` moved meanwhile, read again.
    if walk.kubelet && fs::read_link(&data_link).ok() != resolved {
        return Err(Retry::Again(ReadError::Swapped));
    }
    walk.out.files.sort_by(|a, b| a.path.cmp(&b.path));
    walk.out.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(walk.out)
}

/// The canonical directory `..data` (pointing at `target`) leads to, which
/// must lie inside the source: otherwise a writable volume could make every
/// file under, say, `/etc/ssl/certs` a trusted CA.
fn resolve_data(link: &Path, target: &Path, canonical_root: &Path) -> Result<PathBuf, Retry> {
    let dir = link.parent().unwrap_or(Path::new("/")).join(target);
    match fs::canonicalize(&dir) {
        Ok(dir) if dir.starts_with(canonical_root) => Ok(dir),
        Ok(dir) => Err(Retry::Fatal(ReadError::DataEscapes {
            link: link.to_path_buf(),
            target: dir,
            root: canonical_root.to_path_buf(),
        })),
        // Deleted right after a swap: resolve again.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Retry::Again(e.into())),
        Err(e) => Err(Retry::Fatal(ReadError::DataUnresolvable {
            link: link.to_path_buf(),
            target: target.to_path_buf(),
            source: e.into(),
        })),
    }
}

impl Walk<'_> {
    /// An I/O error on something that existed: a swap in a kubelet volume
    /// (resolve again), an error otherwise.
    fn vanished(&self, e: io::Error) -> Retry {
        if self.kubelet && e.kind() == io::ErrorKind::NotFound {
            Retry::Again(e.into())
        } else {
            Retry::Fatal(e.into())
        }
    }

    fn skip(&mut self, rel: &Path, reason: SkipReason) {
        self.out.skipped.push(Skipped {
            path: self.root.join(rel),
            reason,
        });
    }

    /// Lists `dir` (canonical; at `rel` below the source) into `self.out`.
    /// Every path opened is canonical and inside the source, so a file is
    /// opened with `O_NOFOLLOW`: a symlink swapped in after the check is
    /// refused by the kernel instead of followed.
    fn collect(&mut self, dir: &Path, rel: &Path, depth: usize) -> Result<(), Retry> {
        let mut entries = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| self.vanished(e))? {
            let entry = entry.map_err(|e| Retry::Again(e.into()))?;
            let name = entry.file_name();
            // Hidden entries are the kubelet's machinery (..data, ..2024_…)
            // or editor litter; never certificates.
            if name.as_encoded_bytes().first() != Some(&b'.') {
                let file_type = entry.file_type().map_err(|e| Retry::Again(e.into()))?;
                entries.push((name, file_type));
            }
        }
        // Sorted, so which of two names of one directory is read (the other
        // being reported as a loop) never changes between reads.
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, file_type) in entries {
            let rel_path = joined(rel, &name);
            let Some((target, kind)) = self.resolve(joined(dir, &name), file_type, &rel_path)?
            else {
                continue;
            };
            if kind.is_dir() {
                self.enter(&target, &rel_path, depth)?;
            } else if let Some(kind) = kind_of(&kind) {
                self.skip(&rel_path, SkipReason::NotRegular(kind));
            } else if !self.include.takes(&rel_path) {
                self.skip(&rel_path, SkipReason::Excluded);
            } else {
                self.read(&target, &rel_path)?;
            }
        }
        Ok(())
    }

    /// The canonical path and type of the entry at `full` (what a symlink
    /// leads to); `None` (after recording why) for what must not be followed.
    /// Only symlinks cost a system call: a plain entry's type comes with the
    /// directory listing.
    fn resolve(
        &mut self,
        full: PathBuf,
        file_type: fs::FileType,
        rel: &Path,
    ) -> Result<Option<(PathBuf, fs::FileType)>, Retry> {
        let target = if file_type.is_symlink() {
            match fs::canonicalize(&full) {
                Ok(t) if t.starts_with(&self.canonical_root) => t,
                Ok(t) => {
                    self.skip(rel, SkipReason::Outside(t));
                    return Ok(None);
                }
                Err(e) => {
                    let reason = match e.raw_os_error() {
                        Some(libc::ELOOP) => SkipReason::FileLoop,
                        Some(libc::ENOENT) => SkipReason::Dangling,
                        _ => SkipReason::Unresolvable(e.to_string()),
                    };
                    self.skip(rel, reason);
                    return Ok(None);
                }
            }
        } else {
            return Ok(Some((full, file_type)));
        };
        match fs::symlink_metadata(&target) {
            Ok(meta) => Ok(Some((target, meta.file_type()))),
            Err(e) => Err(self.vanished(e)),
        }
    }

    fn enter(&mut self, dir: &Path, rel: &Path, depth: usize) -> Result<(), Retry> {
        if depth + 1 >= MAX_DEPTH {
            self.skip(rel, SkipReason::TooDeep);
            return Ok(());
        }
        let meta = fs::metadata(dir).map_err(|e| self.vanished(e))?;
        if !self.visited.insert((meta.dev(), meta.ino())) {
            let shown = dir
                .strip_prefix(&self.canonical_root)
                .map(|r| self.root.join(r))
                .unwrap_or_else(|_| dir.to_path_buf());
            self.skip(rel, SkipReason::DirLoop(shown));
            return Ok(());
        }
        self.collect(dir, rel, depth + 1)
    }

    fn read(&mut self, target: &Path, rel: &Path) -> Result<(), Retry> {
        if self.out.files.len() == MAX_FILES_PER_SOURCE {
            return Err(Retry::Fatal(ReadError::TooManyFiles {
                max: MAX_FILES_PER_SOURCE,
            }));
        }
        let bytes = match self
            .open(target)
            .and_then(|file| read_open(file, MAX_FILE_BYTES))
        {
            // Gone from the immutable timestamped directory: a swap removed
            // it while we read, so read the new version.
            Err(ReadError::Io(e)) if self.kubelet && e.kind() == io::ErrorKind::NotFound => {
                return Err(Retry::Again(ReadError::Changed))
            }
            other => other,
        };
        self.out.files.push(FileRead {
            path: joined(self.root, rel.as_os_str()),
            bytes,
        });
        Ok(())
    }
}

impl Walk<'_> {
    /// Opens the canonical path `target` (inside the source) for reading.
    /// The check that `target` lies inside the source was made on paths; a
    /// directory on the way could be swapped for a symlink before the open.
    /// `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS` closes that
    /// window: the kernel refuses any symlink and any step out of the source.
    /// Where it is missing (Linux before 5.6, a seccomp profile refusing it),
    /// `O_NOFOLLOW` still protects the last component.
    fn open(&self, target: &Path) -> Result<fs::File, ReadError> {
        let beneath = target
            .strip_prefix(&self.canonical_root)
            .ok()
            .and_then(|rel| open_beneath(&self.root_dir, rel));
        match beneath {
            Some(opened) => Ok(opened?),
            None => Ok(open_nonblocking(target, true)?),
        }
    }
}

/// `base` joined with `name` (as `Path::join` does) in one allocation:
/// `join` copies `base` and then grows the copy, two allocations for every
/// file of every source read.
fn joined(base: &Path, name: &std::ffi::OsStr) -> PathBuf {
    let mut path = PathBuf::with_capacity(base.as_os_str().len() + 1 + name.len());
    path.push(base);
    path.push(name);
    path
}

/// Set once `openat2` proved unavailable, so later opens skip straight to
/// the fallback instead of failing one system call per file.
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// Opens `rel` below the directory `dir` read-only and non-blocking, letting
/// the kernel refuse symlinks and any path leaving `dir`. `None` when
/// `openat2` is not available here.
fn open_beneath(dir: &fs::File, rel: &Path) -> Option<io::Result<fs::File>> {
    use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};
    use rustix::io::Errno;
    if NO_OPENAT2.load(Ordering::Relaxed) || rel.as_os_str().is_empty() {
        return None;
    }
    let opened = openat2(
        dir,
        rel,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    );
    match opened {
        Ok(fd) => Some(Ok(fs::File::from(fd))),
        // ENOSYS: kernel before 5.6; EPERM: a seccomp profile refusing it.
        Err(Errno::NOSYS | Errno::PERM) => {
            NO_OPENAT2.store(true, Ordering::Relaxed);
            None
        }
        Err(e) => Some(Err(e.into())),
    }
}

#[cfg(test)]
mod tests;
