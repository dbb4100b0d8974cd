//! Turns the bytes of one source file into certificates.
//!
//! Tolerant where tolerance is safe, strict where it is not: private keys and
//! unrelated PEM blocks are skipped and counted (so the caller can warn), but a
//! damaged certificate block fails the whole file, because publishing half of a
//! file the operator edited would be a surprise. The caller keeps the file's
//! previous certificates in that case.

use crate::trust::cert::{CertError, CertScratch, Certificate};
use crate::trust::pem::{self, Kind, PemError};
use crate::trust::trusted::{self, TrustedError};

/// At most this many certificates are taken from one file. A 1 MiB Secret holds
/// about a thousand; the cap bounds memory for anything stranger.
pub const MAX_CERTS_PER_FILE: usize = 10_000;

/// What a readable file held.
#[derive(Debug, Default)]
pub struct ParsedFile {
    /// The certificates, in file order.
    pub certs: Vec<Certificate>,
    /// Private-key blocks skipped. Counted, never kept: their bytes are
    /// never even decoded.
    pub private_keys: usize,
    /// Other PEM blocks (CRLs, CSRs, public keys …) that were ignored.
    pub other_blocks: usize,
}

/// Why a file yielded nothing usable. Messages never include file content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("file is empty")]
    Empty,
    #[error("neither PEM nor a DER certificate")]
    NotCertificate,
    #[error("bad PEM: {0}")]
    Pem(#[from] PemError),
    #[error("certificate block {index}: {source}")]
    Certificate {
        /// 1-based position among the file's certificate blocks.
        index: usize,
        source: CertError,
    },
    #[error("certificate block {index} (TRUSTED CERTIFICATE): {source}")]
    Trusted {
        /// 1-based position among the file's certificate blocks.
        index: usize,
        source: TrustedError,
    },
    #[error("more than {MAX_CERTS_PER_FILE} certificates")]
    TooManyCertificates,
}

/// Parses a file that is PEM (any number of blocks) or a single DER certificate.
pub fn parse_file(bytes: &[u8]) -> Result<ParsedFile, ParseError> {
    parse_file_reusing(bytes, &mut CertScratch::default())
}

/// [`parse_file`] with `scratch`'s buffers, for a caller parsing many files:
/// fresh buffers per file cost musl's allocator groups it maps and unmaps
/// file after file (docs/performance.md).
pub(crate) fn parse_file_reusing(
    bytes: &[u8],
    scratch: &mut CertScratch,
) -> Result<ParsedFile, ParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::Empty);
    }
    // DER is tried first when the file starts with a SEQUENCE tag: a DER
    // certificate may well contain "-----BEGIN " inside its subject.
    if bytes.first() == Some(&0x30) {
        match Certificate::from_der(bytes) {
            Ok(cert) => {
                return Ok(ParsedFile {
                    certs: vec![cert],
                    ..ParsedFile::default()
                })
            }
            // A certificate, but one OpenSSL cannot load: say so, rather
            // than that the file is no certificate at all.
            Err(source @ (CertError::Name { .. } | CertError::Encoding(_))) => {
                return Err(ParseError::Certificate { index: 1, source })
            }
            Err(_) => {}
        }
    }
    if !contains(bytes, b"-----BEGIN ") {
        return Err(ParseError::NotCertificate);
    }
    let mut parsed = ParsedFile::default();
    for block in pem::blocks(bytes) {
        let block = block?;
        match block.kind {
            Kind::Certificate | Kind::TrustedCertificate => {
                if parsed.certs.len() == MAX_CERTS_PER_FILE {
                    return Err(ParseError::TooManyCertificates);
                }
                let index = parsed.certs.len() + 1;
                parsed.certs.push(certificate_of(block, index, scratch)?);
            }
            Kind::PrivateKey => parsed.private_keys += 1,
            Kind::Other => parsed.other_blocks += 1,
        }
    }
    Ok(parsed)
}

/// The certificate of a certificate block, the `index`-th of its file; a
/// trusted certificate's settings are dropped if that is safe.
fn certificate_of(
    block: pem::Block,
    index: usize,
    scratch: &mut CertScratch,
) -> Result<Certificate, ParseError> {
    let der = match block.kind {
        Kind::TrustedCertificate => trusted::certificate(&block.der)
            .map_err(|source| ParseError::Trusted { index, source })?
            .to_vec(),
        _ => block.der,
    };
    Certificate::from_der_vec(der, scratch)
        .map_err(|source| ParseError::Certificate { index, source })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Parses a base bundle tolerantly: a certificate block that does not parse
/// is skipped and counted instead of failing the whole base, because the base
/// is someone else's curated list and one odd root must not cost all of them.
/// A structurally broken PEM file is still an error, and so is one of more
/// than [`MAX_CERTS_PER_FILE`] certificates: a distribution's bundle holds a
/// few hundred, and the cap bounds what every reconcile may hold and hash.
pub fn parse_bundle_lenient(bytes: &[u8]) -> Result<(Vec<Certificate>, usize), ParseError> {
    if !contains(bytes, b"-----BEGIN ") {
        return parse_file(bytes).map(|p| (p.certs, 0));
    }
    let mut certs = Vec::new();
    let mut skipped = 0;
    let mut scratch = CertScratch::default();
    for block in pem::blocks(bytes) {
        let block = match block {
            Ok(block) => block,
            // Someone else's list: a block OpenSSL skips is skipped and
            // counted, not the end of every root after it.
            Err(e) if e.is_skipped_block() => {
                skipped += 1;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if matches!(block.kind, Kind::Certificate | Kind::TrustedCertificate) {
            if certs.len() + skipped == MAX_CERTS_PER_FILE {
                return Err(ParseError::TooManyCertificates);
            }
            match certificate_of(block, certs.len() + 1, &mut scratch) {
                Ok(c) => certs.push(c),
                Err(_) => skipped += 1,
            }
        }
    }
    Ok((certs, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_garbage_are_errors() {
        assert_eq!(parse_file(b"").unwrap_err(), ParseError::Empty);
        assert_eq!(parse_file(b" \n\t").unwrap_err(), ParseError::Empty);
        assert_eq!(
            parse_file(b"hello world").unwrap_err(),
            ParseError::NotCertificate
        );
        assert_eq!(
            parse_file(&[0x30, 0x82, 0xff]).unwrap_err(),
            ParseError::NotCertificate
        );
    }

    #[test]
    fn truncated_block_is_an_error() {
        let err = parse_file(b"-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap_err();
        assert!(
            matches!(err, ParseError::Pem(PemError::NoEnd { line: 1, .. })),
            "{err:?}"
        );
    }

    #[test]
    fn keys_are_counted_not_kept() {
        let pem = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n\
                    -----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let parsed = parse_file(pem).unwrap();
        assert_eq!(parsed.private_keys, 2);
        assert!(parsed.certs.is_empty());
    }

    #[test]
    fn bad_base64_error_does_not_echo_content() {
        let pem = b"-----BEGIN CERTIFICATE-----\nSECRET!!@@\n-----END CERTIFICATE-----\n";
        let err = parse_file(pem).unwrap_err().to_string();
        assert!(!err.contains("SECRET"), "{err}");
    }

    #[test]
    fn other_blocks_are_counted_known_and_unknown_labels_alike() {
        // What /status reports as other_blocks_ignored; found uncounted by
        // the mutation audit (docs/testing.md).
        let pem = b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n\
                    -----BEGIN DH PARAMETERS-----\nAAAA\n-----END DH PARAMETERS-----\n\
                    -----BEGIN PKCS7-----\nAAAA\n-----END PKCS7-----\n\
                    -----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let parsed = parse_file(pem).unwrap();
        assert_eq!(parsed.other_blocks, 3);
        assert_eq!(parsed.private_keys, 1);
        assert!(parsed.certs.is_empty());
    }

    #[test]
    fn a_base_skips_what_openssl_skips_and_a_source_file_refuses_it() {
        let (roots, _) = crate::trust::base::embedded_roots();
        let (a, b) = (roots[0].to_pem(), roots[1].to_pem());
        let text = format!("{a}# see -----BEGIN CERTIFICATE-----\n{b}");
        let (certs, skipped) = parse_bundle_lenient(text.as_bytes()).unwrap();
        assert_eq!((certs.len(), skipped), (2, 1));
        let line = a.lines().count() + 1;
        assert_eq!(
            parse_file(text.as_bytes()).unwrap_err(),
            ParseError::Pem(PemError::MisplacedBegin { line })
        );
    }
}
