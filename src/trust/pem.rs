//! PEM as OpenSSL reads it (`PEM_X509_INFO_read_bio`, what loads a CA file
//! for curl, Python's `ssl` and `openssl verify`), so that what OpenSSL
//! takes from a file is what we take, and what it would skip or refuse is
//! an error of the file rather than a certificate silently missing.
//!
//! OpenSSL 3 takes a block whose BEGIN line starts a line, after at most one
//! UTF-8 byte-order mark; trailing white space (a CR) on the marker lines is
//! fine. It silently skips a BEGIN marker anywhere else in a line, and it
//! refuses the whole file when a block's END line does not match its BEGIN
//! (two files joined without a newline: `-----END CERTIFICATE----------BEGIN
//! CERTIFICATE-----`). Any of these that would have held a certificate is
//! an error here: a CA nobody sees dropped is worse than a clear error.

/// The UTF-8 byte-order mark some editors put before the first line.
const BOM: &[u8] = b"\xef\xbb\xbf";
const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"-----END ";
const DASHES: &[u8] = b"-----";
/// The certificate labels OpenSSL reads: `PEM_STRING_X509`, `_X509_OLD`.
const CERTIFICATE_LABELS: [&[u8]; 2] = [b"CERTIFICATE", b"X509 CERTIFICATE"];
/// `PEM_STRING_X509_TRUSTED`: a certificate followed by OpenSSL's trust
/// settings (`X509_CERT_AUX`).
const TRUSTED_LABEL: &[u8] = b"TRUSTED CERTIFICATE";
/// Labels that name "certificate" but are not one (requests).
const NOT_CERTIFICATES: [&[u8]; 2] = [b"CERTIFICATE REQUEST", b"NEW CERTIFICATE REQUEST"];

/// What a block holds, as far as its label says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A certificate, DER in the body.
    Certificate,
    /// A certificate followed by OpenSSL's trust settings.
    TrustedCertificate,
    /// A private key of any kind: counted, never decoded.
    PrivateKey,
    /// Anything else (CRLs, requests, parameters): ignored, like OpenSSL.
    Other,
}

/// One PEM block: its kind and, for certificates, its decoded body.
#[derive(Debug)]
pub(crate) struct Block {
    pub kind: Kind,
    /// The decoded body of a certificate block; empty for other kinds,
    /// whose bytes (a key) are never decoded.
    pub der: Vec<u8>,
}

/// Why a file's PEM is not what OpenSSL reads. Lines are 1-based; messages
/// never quote content beyond a block's label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    #[error("line {line}: a {label} block has no END line (truncated?)")]
    NoEnd { line: usize, label: String },
    #[error(
        "line {line}: the END line of a {label} block does not match it, and OpenSSL then \
         refuses the whole file (two PEM files joined without a newline?)"
    )]
    BadEnd { line: usize, label: String },
    #[error(
        "line {line}: a certificate's BEGIN marker that does not start its line, which OpenSSL \
         skips; put it at the start of a line of its own"
    )]
    MisplacedBegin { line: usize },
    #[error("line {line}: a block labelled {label}, which OpenSSL does not read as a certificate")]
    UnknownLabel { line: usize, label: String },
    #[error("line {line}: invalid base64 inside a {label} block")]
    Base64 { line: usize, label: String },
}

impl PemError {
    /// A certificate-looking block that OpenSSL skips while reading on: the
    /// reader can go on after it too, as a tolerant reader (the base bundle)
    /// does. The other errors end the reading.
    pub fn is_skipped_block(&self) -> bool {
        matches!(
            self,
            PemError::MisplacedBegin { .. } | PemError::UnknownLabel { .. }
        )
    }
}

/// The blocks of `bytes` in file order, each decoded only when reached (a
/// 16 MiB base is never held twice), and each reason OpenSSL would not read
/// them as we do; the iteration ends after an error unless OpenSSL itself
/// reads on ([`PemError::is_skipped_block`]).
pub(crate) fn blocks(bytes: &[u8]) -> Blocks<'_> {
    Blocks {
        rest: Some(bytes),
        line: 0,
        body: Vec::new(),
    }
}

/// The iterator of [`blocks`].
pub(crate) struct Blocks<'a> {
    /// What is left to read; `None` at the end or after an error.
    rest: Option<&'a [u8]>,
    /// The 1-based number of the line last read.
    line: usize,
    /// The base64 of the block being read, without line breaks: one buffer
    /// for every block of the file, sized before it is filled. A new one per
    /// block, grown by doubling line after line, cost musl's allocator a
    /// map and an unmap per certificate (docs/performance.md).
    body: Vec<u8>,
}

impl<'a> Iterator for Blocks<'a> {
    type Item = Result<Block, PemError>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.next_block().transpose();
        if matches!(&next, Some(Err(e)) if !e.is_skipped_block()) {
            self.rest = None;
        }
        next
    }
}

impl<'a> Blocks<'a> {
    /// The next line without its `\n`, and its number.
    fn next_line(&mut self) -> Option<(usize, &'a [u8])> {
        let rest = self.rest?;
        self.line += 1;
        match rest.iter().position(|&b| b == b'\n') {
            Some(at) => {
                self.rest = Some(&rest[at + 1..]);
                Some((self.line, &rest[..at]))
            }
            None => {
                self.rest = None;
                Some((self.line, rest))
            }
        }
    }

    /// Skips to the next BEGIN line and reads its block.
    fn next_block(&mut self) -> Result<Option<Block>, PemError> {
        while let Some((line, raw)) = self.next_line() {
            let trimmed = raw.strip_prefix(BOM).unwrap_or(raw).trim_ascii_end();
            if let Some(label) = begin_label(trimmed) {
                return self.read_block(line, label).map(Some);
            }
            if let Some(at) = find(raw, BEGIN) {
                if names_certificate(&raw[at + BEGIN.len()..]) {
                    return Err(PemError::MisplacedBegin { line });
                }
            }
        }
        Ok(None)
    }

    /// Reads the block labelled `label` whose BEGIN is on line `begin`, up
    /// to its END line; only a certificate's body is decoded.
    fn read_block(&mut self, begin: usize, label: &[u8]) -> Result<Block, PemError> {
        let kind = kind_of(label, begin)?;
        let certificate = matches!(kind, Kind::Certificate | Kind::TrustedCertificate);
        let shown = || show(label);
        self.body.clear();
        if certificate && self.body.capacity() == 0 {
            // Sized at the first block: base64 has no '-', so the body ends
            // before the next one (the END line's). Later blocks of a bundle
            // reuse it, growing it at most a few times.
            let rest = self.rest.unwrap_or_default();
            self.body
                .reserve(rest.iter().position(|&b| b == b'-').unwrap_or(rest.len()));
        }
        let (end, end_line) = loop {
            let Some((line, next)) = self.next_line() else {
                return Err(PemError::NoEnd {
                    line: begin,
                    label: shown(),
                });
            };
            if next.starts_with(END) {
                break (line, next.trim_ascii_end());
            }
            if certificate {
                self.body
                    .extend(next.iter().filter(|b| !b.is_ascii_whitespace()));
            }
        };
        if end_line
            .strip_prefix(END)
            .and_then(|l| l.strip_suffix(DASHES))
            != Some(label)
        {
            return Err(PemError::BadEnd {
                line: end,
                label: shown(),
            });
        }
        let der = if certificate {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(&self.body)
                .map_err(|_| PemError::Base64 {
                    line: begin,
                    label: shown(),
                })?
        } else {
            Vec::new()
        };
        Ok(Block { kind, der })
    }
}

/// The label of a BEGIN line (`-----BEGIN LABEL-----`), if `line` is one.
fn begin_label(line: &[u8]) -> Option<&[u8]> {
    line.strip_prefix(BEGIN)?.strip_suffix(DASHES)
}

/// What a block labelled `label` (BEGIN on `line`) holds.
fn kind_of(label: &[u8], line: usize) -> Result<Kind, PemError> {
    if CERTIFICATE_LABELS.contains(&label) {
        Ok(Kind::Certificate)
    } else if label == TRUSTED_LABEL {
        Ok(Kind::TrustedCertificate)
    } else if find(label, b"PRIVATE KEY").is_some() {
        Ok(Kind::PrivateKey)
    } else if names_certificate(label) {
        Err(PemError::UnknownLabel {
            line,
            label: show(label),
        })
    } else {
        Ok(Kind::Other)
    }
}

/// Whether text after a BEGIN marker names a certificate (in any case) and
/// not a certificate request.
fn names_certificate(after_begin: &[u8]) -> bool {
    let label = after_begin
        .split(|&b| b == b'-')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    find(&label, b"CERTIFICATE").is_some() && !NOT_CERTIFICATES.contains(&label.as_slice())
}

/// A label for messages: printable ASCII, at most 40 characters.
fn show(label: &[u8]) -> String {
    let text: String = label
        .iter()
        .take(40)
        .map(|&b| {
            if (b' '..=b'~').contains(&b) {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect();
    format!("\"{text}\"")
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n";

    fn kinds(text: &str) -> Result<Vec<Kind>, PemError> {
        blocks(text.as_bytes()).map(|b| b.map(|b| b.kind)).collect()
    }

    #[test]
    fn openssl_labels_a_bom_and_trailing_blanks_are_read() {
        let text = format!(
            "\u{feff}{CERT}{}{}\r\n",
            CERT.replace("CERTIFICATE", "X509 CERTIFICATE"),
            CERT.replace("CERTIFICATE", "TRUSTED CERTIFICATE")
                .replace("-----\n", "----- \r\n")
                .trim_end()
        );
        assert_eq!(
            kinds(&text).unwrap(),
            [
                Kind::Certificate,
                Kind::Certificate,
                Kind::TrustedCertificate
            ]
        );
        let first = blocks(CERT.as_bytes()).next().unwrap().unwrap();
        assert_eq!(first.der, [0, 1, 2]);
    }

    #[test]
    fn what_openssl_skips_or_refuses_is_an_error() {
        let joined = format!("{}{CERT}", CERT.trim_end());
        assert!(matches!(
            kinds(&joined),
            Err(PemError::BadEnd { line: 3, .. })
        ));
        let misplaced = format!("{CERT}x{CERT}");
        assert_eq!(kinds(&misplaced), Err(PemError::MisplacedBegin { line: 4 }));
        let lower = CERT.replace("CERTIFICATE", "Certificate");
        assert!(matches!(
            kinds(&lower),
            Err(PemError::UnknownLabel { line: 1, .. })
        ));
        let bad = CERT.replace("AAEC", "AA!C");
        assert!(matches!(kinds(&bad), Err(PemError::Base64 { line: 1, .. })));
    }

    #[test]
    fn reading_goes_on_only_after_a_block_openssl_skips() {
        let text = format!(
            "x{CERT}{}{CERT}",
            CERT.replace("CERTIFICATE", "Certificate")
        );
        let read: Vec<_> = blocks(text.as_bytes()).collect();
        assert!(matches!(read[0], Err(PemError::MisplacedBegin { line: 1 })));
        assert!(matches!(
            read[1],
            Err(PemError::UnknownLabel { line: 4, .. })
        ));
        assert_eq!(read[2].as_ref().map(|b| b.kind), Ok(Kind::Certificate));
        assert_eq!(read.len(), 3);
        let broken = format!("{}{CERT}{CERT}", CERT.trim_end());
        assert_eq!(blocks(broken.as_bytes()).count(), 1);
    }

    #[test]
    fn keys_and_other_blocks_are_classified_not_decoded() {
        let text = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nnot base64!\n\
                    -----END ENCRYPTED PRIVATE KEY-----\n\
                    -----BEGIN CERTIFICATE REQUEST-----\n!!\n-----END CERTIFICATE REQUEST-----\n\
                    text -----BEGIN PUBLIC KEY----- in a line is skipped\n";
        let b: Vec<Block> = blocks(text.as_bytes()).collect::<Result<_, _>>().unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].kind, b[1].kind), (Kind::PrivateKey, Kind::Other));
        assert!(b.iter().all(|b| b.der.is_empty()));
    }
}
