//! A faithful reproduction of the kubelet's AtomicWriter
//! (kubernetes/pkg/volume/util/atomic_writer.go), which is how a Secret or
//! ConfigMap volume is laid out and updated inside a pod:
//!
//! ```text
//! dir/..2026_11_27_16_43_00.123456789/ca.crt   real file, mode 0644
//! dir/..data -> ..2026_11_27_16_43_00.123456789
//! dir/ca.crt -> ..data/ca.crt
//! ```
//!
//! An update writes a new timestamped directory, points `..data_tmp` at it, renames
//! `..data_tmp` over `..data` (the atomic switch), then creates the user-visible
//! symlinks of new keys, removes those of deleted keys, and removes the old
//! timestamped directory.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const DATA_DIR: &str = "..data";
const NEW_DATA_DIR: &str = "..data_tmp";

static SEQ: AtomicU64 = AtomicU64::new(0);

#[derive(Clone)]
pub struct AtomicWriter {
    dir: PathBuf,
}

impl AtomicWriter {
    /// A volume at `dir`. The directory is created empty, which is also what an
    /// optional Secret that does not exist looks like.
    pub fn new(dir: &Path) -> AtomicWriter {
        fs::create_dir_all(dir).unwrap();
        AtomicWriter {
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Publish a new payload (the complete set of keys), kubelet style.
    pub fn write(&self, payload: &[(&str, &[u8])]) {
        for (key, _) in payload {
            assert!(
                !key.is_empty() && !key.starts_with("..") && !key.starts_with('/'),
                "invalid key {key:?}"
            );
        }
        // 1. Where does ..data point now, and which keys does the old payload have?
        let old_ts = fs::read_link(self.dir.join(DATA_DIR)).ok();
        let old_keys: BTreeSet<String> = match &old_ts {
            Some(ts) => walk_files(&self.dir.join(ts)),
            None => BTreeSet::new(),
        };
        let new_keys: BTreeSet<String> = payload.iter().map(|(k, _)| k.to_string()).collect();

        // 2. Write the payload into a fresh timestamped directory.
        let ts_name = self.new_ts_dir_name();
        let ts_dir = self.dir.join(&ts_name);
        fs::create_dir(&ts_dir).unwrap();
        fs::set_permissions(&ts_dir, fs::Permissions::from_mode(0o755)).unwrap();
        for (key, bytes) in payload {
            let path = ts_dir.join(key);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).unwrap();
            }
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o644)
                .open(&path)
                .unwrap();
            f.write_all(bytes).unwrap();
            drop(f);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        }

        // 3. ..data_tmp -> new dir (relative), then rename over ..data: the atomic switch.
        let tmp_link = self.dir.join(NEW_DATA_DIR);
        let _ = fs::remove_file(&tmp_link);
        symlink(&ts_name, &tmp_link).unwrap();
        fs::rename(&tmp_link, self.dir.join(DATA_DIR)).unwrap();

        // 4. User-visible symlinks for the top-level component of every key.
        let new_top: BTreeSet<String> = new_keys.iter().map(|k| top(k)).collect();
        for name in &new_top {
            let visible = self.dir.join(name);
            if fs::symlink_metadata(&visible).is_err() {
                symlink(Path::new(DATA_DIR).join(name), &visible).unwrap();
            }
        }

        // 5. Remove user-visible paths of keys that are gone.
        let old_top: BTreeSet<String> = old_keys.iter().map(|k| top(k)).collect();
        for name in old_top.difference(&new_top) {
            let _ = fs::remove_file(self.dir.join(name));
        }

        // 6. Remove the old timestamped directory.
        if let Some(ts) = old_ts {
            fs::remove_dir_all(self.dir.join(ts)).unwrap();
        }
    }

    /// `..YYYY_MM_DD_HH_MM_SS.<random digits>` like `os.MkdirTemp(dir, ts + ".")`.
    fn new_ts_dir_name(&self) -> String {
        let now = time::OffsetDateTime::now_utc();
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        format!(
            "..{:04}_{:02}_{:02}_{:02}_{:02}_{:02}.{}{:04}",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.nanosecond(),
            seq % 10_000
        )
    }
}

fn top(key: &str) -> String {
    key.split('/').next().unwrap().to_string()
}

/// Relative paths of all regular files under `root`.
fn walk_files(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, rel: &Path, out: &mut BTreeSet<String>) {
        let Ok(rd) = fs::read_dir(root.join(rel)) else {
            return;
        };
        for e in rd {
            let e = e.unwrap();
            let r = rel.join(e.file_name());
            if e.file_type().unwrap().is_dir() {
                walk(root, &r, out);
            } else {
                out.insert(r.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, Path::new(""), &mut out);
    out
}
