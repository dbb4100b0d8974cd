//! The base bundle of public roots that custom CAs are merged into: which
//! one (`--base`, resolved once at start) and loading it. Keeping the last
//! good base while the file is broken is the daemon's decision, not made here.

use crate::trust::cert::Certificate;
use crate::trust::parse::{parse_bundle_lenient, ParseError, MAX_CERTS_PER_FILE};
use crate::trust::read::{digest_capped, read_capped, ReadError, MAX_BUNDLE_BYTES};
use sha2::{Digest, Sha256};
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
    pub fn parse(value: &str) -> Result<Self, BaseSpecError> {
        match value {
            "system" => Ok(BaseSpec::System),
            "embedded" => Ok(BaseSpec::Embedded),
            "none" => Ok(BaseSpec::None),
            "" => Err(BaseSpecError::Empty),
            path => Ok(BaseSpec::Path(PathBuf::from(path))),
        }
    }
}

/// Why a `--base` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseSpecError {
    /// An empty value, as an unset variable in a manifest gives: more likely
    /// a mistake than a wish for no base, which is spelt `none`.
    #[error("--base: empty value (use system, embedded, none or a path)")]
    Empty,
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

/// The base roots as read now.
#[derive(Debug)]
pub(crate) struct LoadedBase {
    /// The roots that parsed.
    pub certs: Vec<Certificate>,
    /// SHA-256 of the base's bytes (the file, or the concatenated embedded
    /// DER): shown in `/status`, and how an unchanged file is recognised
    /// without parsing it again.
    pub digest: [u8; 32],
    /// Roots that could not be parsed and were left out (worth a warning,
    /// not a failure: one odd root must not cost all the others).
    pub skipped: usize,
}

/// What loading the base found.
#[derive(Debug)]
pub(crate) enum Load {
    /// Nothing new: no base, the embedded roots already loaded (they cannot
    /// change), or a file whose bytes have the digest last loaded.
    Unchanged,
    /// Roots to use from now on.
    Loaded(LoadedBase),
}

/// Why the base file could not be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BaseError {
    /// Over [`MAX_BUNDLE_BYTES`]. Kept apart from [`ReadError::TooLarge`]
    /// because the base has always said it without "file is".
    #[error("larger than {max} bytes")]
    TooLarge {
        /// The cap, in bytes.
        max: u64,
    },
    /// Could not be opened or read, or is not a regular file.
    #[error(transparent)]
    Read(ReadError),
    /// Holds no usable certificate.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// Holds more certificates than one file may: named, because this is
    /// the operator's file, not a Secret's, and the log line may be all
    /// they see.
    #[error("{}: more than {MAX_CERTS_PER_FILE} certificates in one file; a base bundle holds a few hundred", path.display())]
    TooManyCertificates {
        /// The `--base` file.
        path: PathBuf,
    },
}

impl From<ReadError> for BaseError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::TooLarge { max } => BaseError::TooLarge { max },
            other => BaseError::Read(other),
        }
    }
}

impl Base {
    /// Loads the base roots. `last` is the digest of the roots loaded last
    /// (`None` before the first load): roots with that digest are not read
    /// or parsed again ([`Load::Unchanged`]).
    pub(crate) fn load(&self, last: Option<&[u8; 32]>) -> Result<Load, BaseError> {
        match self {
            Base::None => Ok(Load::Unchanged),
            Base::Embedded if last.is_some() => Ok(Load::Unchanged),
            Base::Embedded => {
                let (certs, skipped) = embedded_roots();
                let mut h = Sha256::new();
                for c in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
                    h.update(c.as_ref());
                }
                Ok(Load::Loaded(LoadedBase {
                    certs,
                    digest: h.finalize().into(),
                    skipped,
                }))
            }
            Base::File(path) => {
                // Hashed first, without keeping the bytes: unchanged is by
                // far the common case, and then nothing is copied.
                if last.is_some() && last == Some(&digest_capped(path, MAX_BUNDLE_BYTES)?) {
                    return Ok(Load::Unchanged);
                }
                let bytes = read_capped(path, MAX_BUNDLE_BYTES)?;
                let digest: [u8; 32] = Sha256::digest(&bytes).into();
                if last == Some(&digest) {
                    return Ok(Load::Unchanged);
                }
                let (certs, skipped) = parse_bundle_lenient(&bytes).map_err(|e| match e {
                    ParseError::TooManyCertificates => {
                        BaseError::TooManyCertificates { path: path.clone() }
                    }
                    other => BaseError::Parse(other),
                })?;
                Ok(Load::Loaded(LoadedBase {
                    certs,
                    digest,
                    skipped,
                }))
            }
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
    fn a_file_base_is_parsed_once_until_its_bytes_change() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("base.pem");
        std::fs::write(&file, webpki_root_certs::TLS_SERVER_ROOT_CERTS[0].as_ref()).unwrap();
        let base = Base::File(file.clone());
        let Ok(Load::Loaded(first)) = base.load(None) else {
            panic!("the first load reads the file")
        };
        assert_eq!((first.certs.len(), first.skipped), (1, 0));
        assert!(matches!(
            base.load(Some(&first.digest)),
            Ok(Load::Unchanged)
        ));
        std::fs::write(&file, b"not a bundle").unwrap();
        assert!(matches!(
            base.load(Some(&first.digest)),
            Err(BaseError::Parse(_))
        ));
    }

    #[test]
    fn an_oversized_or_missing_base_says_so_as_it_always_has() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("base.pem");
        let f = std::fs::File::create(&file).unwrap();
        f.set_len(MAX_BUNDLE_BYTES + 1).unwrap();
        let e = Base::File(file).load(None).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("larger than {MAX_BUNDLE_BYTES} bytes")
        );
        let e = Base::File(dir.path().join("gone.pem"))
            .load(None)
            .unwrap_err();
        assert_eq!(e.to_string(), "No such file or directory (os error 2)");
    }

    #[test]
    fn embedded_roots_load_once() {
        let Ok(Load::Loaded(roots)) = Base::Embedded.load(None) else {
            panic!("the embedded roots load")
        };
        assert!(roots.certs.len() > 100);
        assert!(matches!(
            Base::Embedded.load(Some(&roots.digest)),
            Ok(Load::Unchanged)
        ));
        assert!(matches!(Base::None.load(None), Ok(Load::Unchanged)));
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
