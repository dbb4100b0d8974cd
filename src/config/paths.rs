//! Paths compared as the kernel will open them.

use std::path::{Path, PathBuf};

/// The canonical absolute form of `path`, whether it exists or not, so the
/// overlap checks compare what the kernel will open, not how it was spelled
/// (`.`, `./out`, `o1/../o1`, a symlink to the out-dir). A path that does not
/// exist yet (a source waited for, an out-dir to be created) has its nearest
/// existing ancestor canonicalised and the rest appended; `..` in that rest
/// cannot cross a symlink (nothing there exists), so it is removed lexically.
pub(super) fn canonical_lenient(path: &Path) -> std::io::Result<PathBuf> {
    use std::path::Component;
    let mut canonical = PathBuf::from("/");
    // How many trailing components of `canonical` do not exist: those are
    // appended as spelled; the rest is canonical (no symlink in it).
    let mut missing = 0usize;
    for part in std::path::absolute(path)?.components() {
        match part {
            Component::Prefix(_) | Component::RootDir | Component::CurDir => {}
            // The existing part holds no symlink, and a missing name is not
            // one: either way the parent is the lexical one.
            Component::ParentDir => {
                canonical.pop();
                missing = missing.saturating_sub(1);
            }
            Component::Normal(name) if missing > 0 => {
                canonical.push(name);
                missing += 1;
            }
            Component::Normal(name) => match std::fs::canonicalize(canonical.join(name)) {
                Ok(c) => canonical = c,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    canonical.push(name);
                    missing = 1;
                }
                Err(e) => return Err(e),
            },
        }
    }
    Ok(canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_lenient_sees_through_spellings_and_missing_parts() {
        let tmp = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(tmp.path()).unwrap();
        std::fs::create_dir(root.join("out")).unwrap();
        std::os::unix::fs::symlink("out", root.join("link")).unwrap();
        let c = |p: &str| canonical_lenient(&root.join(p)).unwrap();
        assert_eq!(c("out"), root.join("out"));
        assert_eq!(c("./out/."), root.join("out"));
        assert_eq!(c("link"), root.join("out"));
        assert_eq!(c("link/new/ca.crt"), root.join("out/new/ca.crt"));
        assert_eq!(c("missing/../out"), root.join("out"));
        // Back out of a missing part into an existing symlink: resolved.
        assert_eq!(c("missing/../link/x"), root.join("out/x"));
        assert_eq!(c("missing/a/../../link"), root.join("out"));
    }
}
