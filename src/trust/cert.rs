//! One parsed certificate: the DER we publish plus the few facts that policy,
//! status and the hashed directory need, extracted once.

use crate::trust::der;
use crate::trust::name_text::name_text;
use crate::trust::subject_hash::{
    canonical_encoding_into, hash_of_canonical, NameError, NameScratch,
};
use crate::trust::tbs::{self, TbsError};
use sha2::{Digest, Sha256};
use std::fmt::Write;
use std::sync::Arc;
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

/// Why DER bytes are not a certificate we can publish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("not a valid X.509 certificate: {0}")]
    Parse(String),
    #[error("{0} trailing bytes after the certificate")]
    TrailingBytes(usize),
    /// A field OpenSSL decodes more strictly than x509-parser (an INTEGER,
    /// an OBJECT IDENTIFIER) that it cannot decode: as for a name, below.
    #[error("{0}; OpenSSL cannot load this certificate")]
    Encoding(TbsError),
    /// A name OpenSSL cannot decode: OpenSSL then cannot load the
    /// certificate, and a client loading a bundle that holds it (curl,
    /// Python's `ssl`, `openssl verify`) refuses the whole bundle.
    #[error("{field}: {source}; OpenSSL cannot load this certificate")]
    Name {
        /// `subject` or `issuer`.
        field: &'static str,
        source: NameError,
    },
}

/// Buffers [`Certificate::from_der_reusing`] keeps from one certificate to
/// the next: the canonical encodings of its two names and what builds them.
/// Parsing a bundle with one set, rather than fresh buffers per name, spares
/// musl's allocator a `mmap` and `munmap` per few roots (docs/performance.md).
#[derive(Debug, Default)]
pub(crate) struct CertScratch {
    names: NameScratch,
    subject: Vec<u8>,
    issuer: Vec<u8>,
}

/// A certificate and what we know about it: its fields, read through
/// `Deref` as `cert.subject`, `cert.der` ….
///
/// Cheap to clone, one reference count: the same certificate lives in a
/// file's last-good set, in the bundle and in the status snapshot at once,
/// and a deep copy cost three `String`s and the DER each time the bundle
/// was assembled. Immutable once parsed, so sharing it is sound.
#[derive(Debug, Clone)]
pub struct Certificate(Arc<CertificateData>);

impl std::ops::Deref for Certificate {
    type Target = CertificateData;

    fn deref(&self) -> &CertificateData {
        &self.0
    }
}

/// What [`Certificate`] shares between its clones.
#[derive(Debug)]
pub struct CertificateData {
    /// The exact bytes that are published; deduplicated by their digest.
    pub der: Box<[u8]>,
    /// SHA-256 of the DER, lower-case hex: what `/status` and metrics call it.
    pub sha256: String,
    /// Subject in RFC 4514-like form, for humans only (logs, status).
    pub subject: String,
    /// Issuer, likewise for humans.
    pub issuer: String,
    /// Validity start, seconds since the Unix epoch.
    pub not_before: i64,
    /// Validity end, seconds since the Unix epoch.
    pub not_after: i64,
    /// Whether a verifier may use it as an issuer (basicConstraints CA, or an
    /// old v1 self-signed root, which OpenSSL also accepts as a CA).
    pub is_ca: bool,
    /// Issuer name equals subject name (canonically): the only kind of
    /// certificate .NET on Linux accepts as a trust anchor from a bundle.
    pub self_signed: bool,
    /// OpenSSL subject hash for the hashed directory. Always `Some` since a
    /// name OpenSSL cannot hash is a certificate [`Certificate::from_der`]
    /// refuses; still an `Option` for the readers that predate that rule.
    pub subject_hash: Option<u32>,
    /// OpenSSL hash of the issuer name, to find the issuer in a bundle;
    /// `Some` like [`Certificate::subject_hash`].
    pub issuer_hash: Option<u32>,
}

impl Certificate {
    /// Parses one DER certificate. Trailing bytes are refused: a certificate
    /// with junk after it is a sign of a damaged file.
    pub fn from_der(der: &[u8]) -> Result<Self, CertError> {
        Self::from_der_vec(der.to_vec(), &mut CertScratch::default())
    }

    /// [`Certificate::from_der`] of bytes the caller gives away (a PEM
    /// block's decoded body), kept as they are instead of copied, with
    /// `scratch`'s buffers for the names' canonical encodings, for a caller
    /// parsing many certificates.
    pub(crate) fn from_der_vec(der: Vec<u8>, scratch: &mut CertScratch) -> Result<Self, CertError> {
        let (rest, x509) =
            X509Certificate::from_der(&der).map_err(|e| CertError::Parse(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CertError::TrailingBytes(rest.len()));
        }
        let (issuer_raw, subject_raw) = tbs::names(&der).map_err(CertError::Encoding)?;
        let CertScratch {
            names,
            subject: subject_canon,
            issuer: issuer_canon,
        } = scratch;
        canonical_encoding_into(subject_raw, names, subject_canon).map_err(|source| {
            CertError::Name {
                field: "subject",
                source,
            }
        })?;
        canonical_encoding_into(issuer_raw, names, issuer_canon).map_err(|source| {
            CertError::Name {
                field: "issuer",
                source,
            }
        })?;
        let self_signed = subject_canon == issuer_canon;
        let is_ca = match x509.basic_constraints() {
            Ok(Some(bc)) => bc.value.ca,
            // No extension: only a v1 self-signed root acts as a CA.
            Ok(None) => x509.version().0 == 0 && self_signed,
            Err(_) => false,
        };
        let validity = x509.validity();
        let subject = display_name(x509.subject(), subject_raw);
        // A root's issuer is nearly always its subject's very bytes, and so
        // the same text: copied rather than formatted again, which allocates
        // for every attribute (docs/performance.md).
        let issuer = if issuer_raw == subject_raw {
            subject.clone()
        } else {
            display_name(x509.issuer(), issuer_raw)
        };
        Ok(Certificate(Arc::new(CertificateData {
            sha256: hex(&Sha256::digest(&der)),
            subject,
            issuer,
            not_before: validity.not_before.timestamp(),
            not_after: validity.not_after.timestamp(),
            is_ca,
            self_signed,
            subject_hash: Some(hash_of_canonical(subject_canon)),
            issuer_hash: Some(hash_of_canonical(issuer_canon)),
            der: der.into_boxed_slice(),
        })))
    }

    /// Whole days from `now` (Unix seconds) to notAfter, rounded down, so
    /// negative once expired: the "days left" every report shows.
    pub fn days_left(&self, now: i64) -> i64 {
        (self.not_after - now).div_euclid(86_400)
    }

    /// Whether the certificate is past its notAfter at `now` (Unix seconds).
    pub fn is_expired(&self, now: i64) -> bool {
        self.not_after < now
    }

    /// The certificate as one PEM block, 64 columns, ending in a newline.
    pub fn to_pem(&self) -> String {
        let mut out = String::with_capacity(self.der.len() * 4 / 3 + self.der.len() / 48 + 60);
        self.write_pem(&mut out);
        out
    }

    /// Appends [`Certificate::to_pem`] to `out` without allocating: the
    /// bundle is rendered on every change, certificate after certificate.
    pub fn write_pem(&self, out: &mut String) {
        use base64::Engine;
        out.push_str("-----BEGIN CERTIFICATE-----\n");
        // 48 bytes of DER are one full 64-column line of base64, and as 48 is
        // a multiple of 3, only the last line can carry padding: the lines
        // are exactly those of the whole DER encoded at once.
        let mut line = [0u8; 64];
        for chunk in self.der.chunks(48) {
            // Invariant: 64 bytes hold the base64 of 48, and base64 is ASCII,
            // so neither step can fail; if one did, a line would be missing
            // from the published PEM. (`encode_string` has no such step, but
            // its chunked writer made every certificate slower to render.)
            let n = base64::engine::general_purpose::STANDARD
                .encode_slice(chunk, &mut line)
                .expect("64 bytes hold the base64 of 48");
            out.push_str(std::str::from_utf8(&line[..n]).expect("base64 is ASCII"));
            out.push('\n');
        }
        out.push_str("-----END CERTIFICATE-----\n");
    }
}

/// A name for humans (RFC 4514-like), empty RDNs left out: x509-parser's
/// own rendering would stop at the first one and hide what follows.
fn display_name(parsed: &X509Name<'_>, raw: &[u8]) -> String {
    // x509-parser's name is whole unless it stopped at an empty RDN: the
    // common case costs nothing more than before.
    if parsed.as_raw() == raw {
        return name_text(parsed);
    }
    let Ok((name, _)) = der::read_tlv(raw) else {
        return String::new();
    };
    let rdns: Vec<u8> = der::children(name.content)
        .filter_map(Result::ok)
        .filter(|rdn| !rdn.content.is_empty())
        .flat_map(|rdn| rdn.raw.iter().copied())
        .collect();
    let mut without_empty = Vec::with_capacity(raw.len());
    der::write_tlv(&mut without_empty, name.tag, &rdns);
    match X509Name::from_der(&without_empty) {
        Ok((_, name)) => name_text(&name),
        // Not reached for a name canonical_encoding accepted, whose every
        // RDN is well formed; the empty string says "no readable name".
        Err(_) => String::new(),
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    // A table, not `write!("{b:02x}")` per byte: every certificate's SHA-256 goes
    // through here, and core::fmt's machinery (memcpy-heavy under musl) dominated it.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// Formats Unix seconds as RFC 3339 (UTC), for status and logs.
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// Makes certificate-derived text safe to put on one line of a file or a log:
/// control characters, non-ASCII, backslashes and `-----` runs are escaped,
/// so a crafted subject can never add a line or a PEM marker.
pub fn escape_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_escaped_line(&mut out, text);
    out
}

/// Appends [`escape_line`]'s text to `out`: the bundle's comment lines are
/// written straight into it rather than each through a `String` of its own.
pub fn push_escaped_line(out: &mut String, text: &str) {
    let start = out.len();
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            // Writing to a String cannot fail.
            c if (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    if out[start..].contains("-----") {
        let dashes = out[start..].replace('-', "\\x2d");
        out.truncate(start);
        out.push_str(&dashes);
    }
}

/// Makes certificate-derived text safe for one line of a log or a terminal,
/// keeping it readable: only control characters (and the Unicode line and
/// paragraph separators) are escaped, so a crafted name can never start a
/// new line, while `Türkiye` stays `Türkiye`. Files use [`escape_line`].
pub fn display_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_lines_are_those_of_the_whole_der_encoded_at_once() {
        use base64::Engine;
        let (roots, _) = crate::trust::base::embedded_roots();
        let mut lengths = std::collections::HashSet::new();
        for root in &roots {
            let b64 = base64::engine::general_purpose::STANDARD.encode(&root.der);
            let mut want = String::from("-----BEGIN CERTIFICATE-----\n");
            for line in b64.as_bytes().chunks(64) {
                want.push_str(std::str::from_utf8(line).unwrap());
                want.push('\n');
            }
            want.push_str("-----END CERTIFICATE-----\n");
            assert_eq!(root.to_pem(), want);
            let mut appended = String::from("x");
            root.write_pem(&mut appended);
            assert_eq!(appended[1..], want);
            lengths.insert(root.der.len() % 48);
        }
        // Every last-line length and padding occurs among the roots.
        assert!(lengths.len() > 20, "{lengths:?}");
    }

    #[test]
    fn escape_line_never_adds_lines_or_markers() {
        let nasty = "CN=a\n-----BEGIN CERTIFICATE-----\r\u{2028}é\\";
        let escaped = escape_line(nasty);
        assert!(!escaped.contains('\n') && !escaped.contains('\r'));
        assert!(!escaped.contains("-----"));
        assert!(escaped.is_ascii());
        assert_eq!(escape_line("CN=plain-name"), "CN=plain-name");
    }

    #[test]
    fn display_line_keeps_unicode_but_not_line_breaks() {
        assert_eq!(display_line("E-Tuğra"), "E-Tuğra");
        let shown = display_line("a\nb\r\u{2028}c\u{7}");
        assert!(
            !shown.contains(['\n', '\r', '\u{2028}', '\u{7}']),
            "{shown}"
        );
        assert_eq!(shown, "a\\u{a}b\\u{d}\\u{2028}c\\u{7}");
    }

    #[test]
    fn garbage_is_refused() {
        assert!(Certificate::from_der(b"not a cert").is_err());
        assert!(Certificate::from_der(&[]).is_err());
    }
}
