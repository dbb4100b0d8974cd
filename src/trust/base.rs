//! The base bundle of public roots that custom CAs are merged into.

use crate::trust::cert::Certificate;
use std::path::{Path, PathBuf};

/// Where distributions keep their bundle, in the order we look. Mirrors the
/// list Go's crypto/x509 and rustls-native-certs search.
pub const SYSTEM_BUNDLE_PATHS: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Gentoo, Alpine (ca-certificates)
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // RHEL 7+, Fedora, CentOS
    "/etc/pki/tls/certs/ca-bundle.crt",   // older RHEL and Fedora
    "/etc/ssl/ca-bundle.pem",             // openSUSE, SLES
    "/var/lib/ca-certificates/ca-bundle.pem", // openSUSE
    "/etc/ssl/cert.pem",                  // Alpine (libressl), macOS-like layouts
];

/// What `--base` asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseSpec {
    /// The first distro bundle found, else the embedded roots.
    System,
    /// The Mozilla roots compiled into the binary.
    Embedded,
    /// No base: publish the custom CAs alone.
    None,
    /// A bundle file chosen by the operator.
    Path(PathBuf),
}

impl BaseSpec {
    /// Parses the `--base` value.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value {
            "system" => Ok(BaseSpec::System),
            "embedded" => Ok(BaseSpec::Embedded),
            "none" => Ok(BaseSpec::None),
            "" => Err("--base: empty value (use system, embedded, none or a path)".into()),
            path => Ok(BaseSpec::Path(PathBuf::from(path))),
        }
    }
}

/// The base as decided at start-up: fixed for the process's life, so the
/// bundle never flips between two bases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// Read from this file on every reconcile (it can be updated).
    File(PathBuf),
    /// The compiled-in Mozilla roots.
    Embedded,
    /// No base.
    None,
}

impl Base {
    /// Resolves `spec`; for `system` the first of [`SYSTEM_BUNDLE_PATHS`] that
    /// exists and is not inside `out_dir`. `SSL_CERT_FILE` is never consulted:
    /// in the pod it points at our own output.
    pub fn resolve(spec: &BaseSpec, out_dir: &Path) -> Base {
        match spec {
            BaseSpec::System => SYSTEM_BUNDLE_PATHS
                .iter()
                .map(Path::new)
                .find(|p| p.is_file() && !is_inside(p, out_dir))
                .map(|p| Base::File(p.to_path_buf()))
                .unwrap_or(Base::Embedded),
            BaseSpec::Embedded => Base::Embedded,
            BaseSpec::None => Base::None,
            BaseSpec::Path(p) => Base::File(p.clone()),
        }
    }

    /// A short description for logs and `/status`.
    pub fn describe(&self) -> String {
        match self {
            Base::File(p) => p.display().to_string(),
            Base::Embedded => "embedded Mozilla roots (webpki-root-certs)".to_string(),
            Base::None => "none".to_string(),
        }
    }
}

/// The compiled-in Mozilla roots, parsed. Roots that fail to parse are
/// returned as the count skipped rather than failing the base.
pub fn embedded_roots() -> (Vec<Certificate>, usize) {
    let mut skipped = 0;
    let certs = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter_map(|der| match Certificate::from_der(der.as_ref()) {
            Ok(c) => Some(c),
            Err(_) => {
                skipped += 1;
                None
            }
        })
        .collect();
    (certs, skipped)
}

/// Whether `path` lies inside `dir`, comparing canonical forms where they
/// exist so `..` and symlinks cannot sneak around the check.
pub fn is_inside(path: &Path, dir: &Path) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| absolute(p));
    let path = match path.parent() {
        // Canonicalise the parent: the file itself may not exist yet.
        Some(parent) => canon(parent).join(path.file_name().unwrap_or_default()),
        None => canon(path),
    };
    path.starts_with(canon(dir))
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_roots_all_parse() {
        let (certs, skipped) = embedded_roots();
        assert!(certs.len() > 100, "{}", certs.len());
        assert_eq!(skipped, 0);
        assert!(certs.iter().all(|c| c.self_signed && c.is_ca));
    }

    #[test]
    fn inside_check_sees_through_dotdot() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        assert!(is_inside(&out.join("x.crt"), &out));
        assert!(is_inside(&out.join("sub/../x.crt"), &out) || !out.join("sub").exists());
        assert!(!is_inside(&dir.path().join("x.crt"), &out));
    }
}
