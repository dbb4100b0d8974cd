//! `trust-injector roots`: the two init containers that take the public roots from any
//! application image, even one with no shell and no `cp` (distroless, Chainguard,
//! scratch), and with its bundle at any distribution's path.
//!
//! `roots --install DIR` runs in our own image and copies this static binary into a
//! shared `emptyDir`; `roots --out DIR` then runs that copy inside the application's
//! image, finds the bundle at the distributions' well-known paths (the list `--base
//! system` searches, [`SYSTEM_BUNDLE_PATHS`]) and writes it as `DIR/ca-certificates.crt`
//! for the sidecar. An image without one (scratch) gets nothing written: the sidecar,
//! which looks for exactly that file, then uses its embedded Mozilla roots and says so
//! in its log and `/status`. docs/inject.md explains the design.

use crate::trust::base::SYSTEM_BUNDLE_PATHS;
use crate::trust::read::{read_capped, ReadError, MAX_BUNDLE_BYTES};
use clap::Args;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file `--out` writes, and the name the sidecar looks for.
pub const BUNDLE_NAME: &str = "ca-certificates.crt";
/// The file `--install` writes.
pub const BINARY_NAME: &str = "trust-injector";

/// `roots` options: exactly one of `--install` and `--out`.
#[derive(Debug, Clone, Args)]
#[command(group = clap::ArgGroup::new("action").required(true).args(["install", "out"]))]
pub struct RootsArgs {
    /// Copy this binary into DIR (run in trust-injector's image, first).
    #[arg(long, value_name = "DIR")]
    pub install: Option<PathBuf>,
    /// Find the image's CA bundle and write it as DIR/ca-certificates.crt (run inside
    /// the application's image, from the copy `--install` made).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Look for the bundle under DIR instead of / (an image unpacked on disk, tests).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,
}

/// Why `roots` failed. The init container then fails and the kubelet retries it: a
/// transient error never silently costs the application its image's roots.
#[derive(Debug, thiserror::Error)]
pub enum RootsError {
    #[error("cannot find this program's own file: {0}")]
    SelfPath(std::io::Error),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Read { path: PathBuf, source: ReadError },
}

/// The first bundle of [`SYSTEM_BUNDLE_PATHS`] that is a file under `root`.
pub fn find_bundle(root: &Path) -> Option<PathBuf> {
    SYSTEM_BUNDLE_PATHS
        .iter()
        .map(|p| root.join(p.trim_start_matches('/')))
        .find(|p| p.is_file())
}

/// Writes `bytes` to `dir/name` through a temporary file and a rename, so the sidecar
/// never reads half a file, with `mode`.
fn write_into(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<PathBuf, RootsError> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let io = |p: &Path| {
        let path = p.to_path_buf();
        move |source| RootsError::Io { path, source }
    };
    let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(path)
}

/// `--install DIR`: this binary, executable by any user (the application image's init
/// container may run as another UID).
fn install(dir: &Path) -> Result<String, RootsError> {
    let me = std::env::current_exe().map_err(RootsError::SelfPath)?;
    let bytes = std::fs::read(&me).map_err(|source| RootsError::Io { path: me, source })?;
    let to = write_into(dir, BINARY_NAME, &bytes, 0o555)?;
    Ok(format!("installed {}", to.display()))
}

/// `--out DIR`: the image's bundle, or nothing and a line saying what happens instead.
fn copy_roots(root: &Path, dir: &Path) -> Result<String, RootsError> {
    let Some(found) = find_bundle(root) else {
        return Ok(format!(
            "no CA bundle at the well-known paths ({}): the sidecar uses its embedded Mozilla roots",
            SYSTEM_BUNDLE_PATHS.join(", ")
        ));
    };
    let bytes = read_capped(&found, MAX_BUNDLE_BYTES).map_err(|source| RootsError::Read {
        path: found.clone(),
        source,
    })?;
    let to = write_into(dir, BUNDLE_NAME, &bytes, 0o444)?;
    Ok(format!("copied {} to {}", found.display(), to.display()))
}

/// Runs `roots`: 0 done (also when the image has no bundle), 1 an I/O error.
pub fn run(args: &RootsArgs) -> u8 {
    let done = match (&args.install, &args.out) {
        (Some(dir), _) => install(dir),
        (None, Some(dir)) => copy_roots(&args.root, dir),
        // clap's group requires one of the two.
        (None, None) => return 2,
    };
    match done {
        Ok(line) => {
            println!("trust-injector roots: {line}");
            0
        }
        Err(e) => {
            eprintln!("trust-injector roots: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every distribution's layout is found; an image with none gets nothing written.
    #[test]
    fn each_layout_is_found_and_scratch_writes_nothing() {
        for layout in [
            "etc/ssl/certs/ca-certificates.crt",
            "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
            "etc/pki/tls/certs/ca-bundle.crt",
            "var/lib/ca-certificates/ca-bundle.pem",
            "etc/ssl/cert.pem",
        ] {
            let root = tempfile::tempdir().unwrap();
            let out = tempfile::tempdir().unwrap();
            let at = root.path().join(layout);
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::fs::write(&at, b"roots of this image\n").unwrap();
            let line = copy_roots(root.path(), out.path()).unwrap();
            assert!(line.contains(layout), "{line}");
            let got = std::fs::read(out.path().join(BUNDLE_NAME)).unwrap();
            assert_eq!(got, b"roots of this image\n");
        }
        let scratch = tempfile::tempdir().unwrap();
        let out = tempfile::tempdir().unwrap();
        let line = copy_roots(scratch.path(), out.path()).unwrap();
        assert!(line.contains("embedded Mozilla roots"), "{line}");
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    }
}
