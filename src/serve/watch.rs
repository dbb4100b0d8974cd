//! File-system watches that wake the reconcile loop.
//!
//! Every event, of any kind, just wakes the loop, which then re-reads
//! everything: the kubelet's `..data` swap shows up as a create, a rename or a
//! write depending on the kernel path, so filtering on kinds loses updates.
//! Wake-ups coalesce in a [`Notify`] (one stored permit), so a storm of events
//! costs one re-read, and a queue overflow (notify's rescan flag) is just
//! another wake-up.

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Notify;
use tracing::{debug, warn};

/// The set of watched directories, kept in line with the sources.
pub struct Watches {
    watcher: RecommendedWatcher,
    /// Watched directory → (device, inode) when the watch was added. A
    /// directory deleted and recreated has a new inode and needs a new watch.
    watched: HashMap<PathBuf, (u64, u64)>,
}

impl Watches {
    /// Creates the watcher; events wake `wake`.
    pub fn new(wake: Arc<Notify>) -> notify::Result<Self> {
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            // Opening or reading a file is never a change, and our own
            // re-read opens every source file: waking on those would make
            // each reconcile trigger the next, forever. Every other kind wakes
            // us, close-after-write included.
            if let Ok(event) = &res {
                if is_read_only_access(&event.kind) {
                    return;
                }
            }
            match &res {
                // An overflowed kernel queue (or any watcher error) means
                // events were lost: a full re-read is the answer either way.
                Ok(event) if event.need_rescan() => {
                    warn!("file event queue overflowed; re-reading everything")
                }
                Ok(_) => {}
                Err(e) => warn!(error = %e, "file watch error; re-reading everything"),
            }
            wake.notify_one();
        })?;
        Ok(Watches {
            watcher,
            watched: HashMap::new(),
        })
    }

    /// Watches the directories that can announce a change to `paths`: a
    /// directory itself, a file's parent, or the nearest existing ancestor of
    /// a path that does not exist yet. Drops watches no longer needed.
    /// Returns whether a new watch was added: changes made before it existed
    /// were not seen, so the caller must read again.
    pub fn update(&mut self, paths: &[PathBuf]) -> bool {
        let mut added = false;
        let mut wanted: HashMap<PathBuf, (u64, u64)> = HashMap::new();
        for p in paths {
            if let Some((dir, id)) = watch_target(p) {
                wanted.insert(dir, id);
            }
        }
        self.watched.retain(|dir, id| {
            let keep = wanted.get(dir) == Some(id);
            if !keep {
                let _ = self.watcher.unwatch(dir);
                debug!(dir = %dir.display(), "unwatched");
            }
            keep
        });
        for (dir, id) in wanted {
            if self.watched.contains_key(&dir) {
                continue;
            }
            match self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    debug!(dir = %dir.display(), "watching");
                    self.watched.insert(dir, id);
                    added = true;
                }
                Err(e) => {
                    warn!(dir = %dir.display(), error = %e, "cannot watch; relying on --resync")
                }
            }
        }
        added
    }
}

/// Whether an event only says that something was opened or read.
fn is_read_only_access(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Access(
            AccessKind::Open(_) | AccessKind::Read | AccessKind::Close(AccessMode::Read)
        )
    )
}

fn watch_target(path: &Path) -> Option<(PathBuf, (u64, u64))> {
    let mut candidate = match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => return Some((path.to_path_buf(), (m.dev(), m.ino()))),
        Ok(_) => path.parent()?.to_path_buf(),
        Err(_) => path.parent()?.to_path_buf(),
    };
    loop {
        let dir = if candidate.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            candidate.clone()
        };
        if let Ok(m) = std::fs::metadata(&dir) {
            if m.is_dir() {
                return Some((dir, (m.dev(), m.ino())));
            }
        }
        candidate = candidate.parent()?.to_path_buf();
    }
}
