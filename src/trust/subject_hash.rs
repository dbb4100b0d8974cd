//! OpenSSL's subject-name hash (`X509_NAME_hash_ex`), the `<hash>` in the
//! `<hash>.<n>` file names of a hashed directory (`openssl rehash`,
//! `SSL_CERT_DIR`).
//!
//! OpenSSL hashes a *canonical* encoding of the name, not its DER: every
//! string value is converted to UTF-8, stripped of leading and trailing white
//! space, inner white-space runs folded to one space, and ASCII lower-cased;
//! each RDN is re-encoded as a DER `SET OF` (so its members are sorted) and the
//! outer `SEQUENCE` header is dropped. The hash is the first four bytes of the
//! SHA-1 of that, read little-endian. Getting any step wrong means a client
//! using `SSL_CERT_DIR` silently cannot find the CA, hence the care here and
//! the tests against the `openssl` CLI.

use crate::trust::der::{self, DerError, Tlv};
use sha1::{Digest, Sha1};

/// Why a name could not be canonicalised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("malformed name: {0}")]
    Der(#[from] DerError),
    #[error("malformed name: expected {expected} but found tag 0x{found:02x}")]
    UnexpectedTag { expected: &'static str, found: u8 },
    #[error("name holds a string that is not valid in its declared type")]
    BadString,
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const T61_STRING: u8 = 0x14;
const IA5_STRING: u8 = 0x16;
const VISIBLE_STRING: u8 = 0x1a;
const UNIVERSAL_STRING: u8 = 0x1c;
const BMP_STRING: u8 = 0x1e;

/// The subject hash of a DER-encoded `Name`, as `openssl x509 -hash` prints it.
pub fn subject_hash(name_der: &[u8]) -> Result<u32, NameError> {
    let canon = canonical_encoding(name_der)?;
    let digest = Sha1::digest(&canon);
    Ok(u32::from_le_bytes([
        digest[0], digest[1], digest[2], digest[3],
    ]))
}

/// OpenSSL's canonical encoding of a DER `Name` (`x509_name_canon`).
pub fn canonical_encoding(name_der: &[u8]) -> Result<Vec<u8>, NameError> {
    let (name, _) = der::read_tlv(name_der)?;
    expect(&name, SEQUENCE, "a Name SEQUENCE")?;
    let mut out = Vec::with_capacity(name.content.len());
    for rdn in der::children(name.content) {
        let rdn = rdn?;
        expect(&rdn, SET, "an RDN SET")?;
        let mut members = Vec::new();
        for atv in der::children(rdn.content) {
            members.push(canonical_atv(&atv?)?);
        }
        // DER orders SET OF members by their encodings (OpenSSL's der_cmp:
        // bytewise, then shorter first).
        members.sort();
        let content: Vec<u8> = members.concat();
        der::write_tlv(&mut out, SET, &content);
    }
    Ok(out)
}

fn expect(tlv: &Tlv<'_>, tag: u8, expected: &'static str) -> Result<(), NameError> {
    if tlv.tag == tag {
        Ok(())
    } else {
        Err(NameError::UnexpectedTag {
            expected,
            found: tlv.tag,
        })
    }
}

fn canonical_atv(atv: &Tlv<'_>) -> Result<Vec<u8>, NameError> {
    expect(atv, SEQUENCE, "an AttributeTypeAndValue SEQUENCE")?;
    let mut parts = der::children(atv.content);
    let oid = parts.next().ok_or(DerError::Truncated)??;
    expect(&oid, OID, "an attribute OID")?;
    let value = parts.next().ok_or(DerError::Truncated)??;
    let mut content = oid.raw.to_vec();
    match to_utf8(&value)? {
        Some(text) => der::write_tlv(&mut content, UTF8_STRING, &canonical_string(&text)),
        // Types outside OpenSSL's canonical mask are copied untouched.
        None => content.extend_from_slice(value.raw),
    }
    let mut out = Vec::with_capacity(content.len() + 4);
    der::write_tlv(&mut out, SEQUENCE, &content);
    Ok(out)
}

/// `ASN1_STRING_to_UTF8` for the types in OpenSSL's `ASN1_MASK_CANON`;
/// `None` for every other type.
fn to_utf8(value: &Tlv<'_>) -> Result<Option<Vec<u8>>, NameError> {
    let bytes = value.content;
    let chars: Vec<char> = match value.tag {
        UTF8_STRING => {
            let s = std::str::from_utf8(bytes).map_err(|_| NameError::BadString)?;
            return Ok(Some(s.as_bytes().to_vec()));
        }
        // One byte, one code point (OpenSSL's MBSTRING_ASC), even above 0x7f.
        PRINTABLE_STRING | T61_STRING | IA5_STRING | VISIBLE_STRING => {
            bytes.iter().map(|&b| char::from(b)).collect()
        }
        BMP_STRING => {
            if !bytes.len().is_multiple_of(2) {
                return Err(NameError::BadString);
            }
            bytes
                .chunks_exact(2)
                .map(|c| char::from_u32(u32::from(u16::from_be_bytes([c[0], c[1]]))))
                .collect::<Option<_>>()
                .ok_or(NameError::BadString)?
        }
        UNIVERSAL_STRING => {
            if !bytes.len().is_multiple_of(4) {
                return Err(NameError::BadString);
            }
            bytes
                .chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect::<Option<_>>()
                .ok_or(NameError::BadString)?
        }
        _ => return Ok(None),
    };
    Ok(Some(chars.into_iter().collect::<String>().into_bytes()))
}

/// OpenSSL's `ossl_isspace`: the C locale's white space.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Trim, fold white-space runs to one space and lower-case ASCII, byte by
/// byte exactly like `asn1_string_canon` (bytes above 0x7f pass through).
fn canonical_string(utf8: &[u8]) -> Vec<u8> {
    let start = utf8
        .iter()
        .position(|&b| !is_space(b))
        .unwrap_or(utf8.len());
    let end = utf8
        .iter()
        .rposition(|&b| !is_space(b))
        .map_or(start, |i| i + 1);
    let mut out = Vec::with_capacity(end - start);
    let mut in_space = false;
    for &b in &utf8[start..end] {
        if is_space(b) {
            if !in_space {
                out.push(b' ');
            }
            in_space = true;
        } else {
            out.push(b.to_ascii_lowercase());
            in_space = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_string_trims_folds_and_lowercases() {
        assert_eq!(canonical_string(b"  Foo \t\n Bar  "), b"foo bar");
        assert_eq!(canonical_string(b"   "), b"");
        assert_eq!(canonical_string("ÄBC".as_bytes()), "Äbc".as_bytes());
    }

    #[test]
    fn empty_name_hashes_like_openssl() {
        // SHA-1("") = da39a3ee...; OpenSSL reads the first four bytes little-endian.
        assert_eq!(subject_hash(&[0x30, 0x00]).unwrap(), 0xeea339da);
    }

    #[test]
    fn printable_and_utf8_with_same_text_collide() {
        fn name(tag: u8, text: &[u8]) -> Vec<u8> {
            let mut atv = Vec::new();
            der::write_tlv(&mut atv, OID, &[0x55, 0x04, 0x03]);
            der::write_tlv(&mut atv, tag, text);
            let mut seq = Vec::new();
            der::write_tlv(&mut seq, SEQUENCE, &atv);
            let mut set = Vec::new();
            der::write_tlv(&mut set, SET, &seq);
            let mut out = Vec::new();
            der::write_tlv(&mut out, SEQUENCE, &set);
            out
        }
        let a = subject_hash(&name(PRINTABLE_STRING, b"Example  CA")).unwrap();
        let b = subject_hash(&name(UTF8_STRING, b" example ca")).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(subject_hash(&[]).is_err());
        assert!(subject_hash(&[0x31, 0x00]).is_err());
        assert!(subject_hash(&[0x30, 0x03, 0x31, 0x01, 0x30]).is_err());
    }
}
