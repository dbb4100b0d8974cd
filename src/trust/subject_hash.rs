//! OpenSSL's subject-name hash (`X509_NAME_hash_ex`), the `<hash>` in the
//! `<hash>.<n>` file names of a hashed directory (`openssl rehash`,
//! `SSL_CERT_DIR`), and with it OpenSSL's rule for which names it can load.
//!
//! OpenSSL hashes a *canonical* encoding of the name, not its DER: every
//! string value is converted to UTF-8, stripped of leading and trailing white
//! space, inner white-space runs folded to one space, and ASCII lower-cased;
//! each RDN is re-encoded as a DER `SET OF` (so its members are sorted), an
//! empty RDN contributes nothing, and the outer `SEQUENCE` header is dropped.
//! The hash is the first four bytes of the SHA-1 of that, read little-endian.
//! Getting any step wrong means a client using `SSL_CERT_DIR` silently cannot
//! find the CA, hence the care here and the tests against the `openssl` CLI.
//!
//! OpenSSL builds that encoding while it *decodes* a certificate
//! (`x509_name_ex_d2i` calls `x509_name_canon`), so a name it cannot
//! canonicalise is a certificate it cannot load at all: `PEM_read`, `curl
//! --cacert` and Python's `load_verify_locations` then refuse the whole
//! bundle. [`canonical_encoding`] therefore also enforces what that decoding
//! enforces (each value one of the types of OpenSSL's `ASN1_PRINTABLE`, a
//! well-formed attribute OID, strings that convert to UTF-8), and an error
//! from it means "OpenSSL cannot load this certificate".

use crate::trust::der::{self, DerError, Tlv};
use sha1::{Digest, Sha1};

/// Why OpenSSL could not decode a name. Each message says what is wrong
/// without quoting the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("malformed name: {0}")]
    Der(#[from] DerError),
    #[error("malformed name: expected {expected} but found tag 0x{found:02x}")]
    UnexpectedTag { expected: &'static str, found: u8 },
    #[error("an attribute has more than a type and a value")]
    ExtraElement,
    #[error("an attribute type is not a well-formed OBJECT IDENTIFIER")]
    BadOid,
    #[error("an attribute value has tag 0x{0:02x}, a type OpenSSL does not take in a name")]
    ValueType(u8),
    #[error("an attribute value is a {0} that is not valid in its type")]
    BadString(&'static str),
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const BIT_STRING: u8 = 0x03;
const UTF8_STRING: u8 = 0x0c;
const PRINTABLE_STRING: u8 = 0x13;
const T61_STRING: u8 = 0x14;
const IA5_STRING: u8 = 0x16;
const UNIVERSAL_STRING: u8 = 0x1c;
const BMP_STRING: u8 = 0x1e;

/// The primitive universal tags OpenSSL takes as an attribute value: the
/// `ASN1_PRINTABLE` multi-string (`B_ASN1_PRINTABLE` through `ASN1_tag2bit`),
/// that is NumericString, PrintableString, T61String, IA5String,
/// UniversalString, BMPString, UTF8String, BIT STRING, and the tags it
/// classes as `B_ASN1_UNKNOWN` (7, 8, 9, 11, 13, 14, 15, 29). VisibleString,
/// VideotexString, GraphicString, GeneralString, INTEGER, OCTET STRING, the
/// times, NULL, BOOLEAN, OID, ENUMERATED and SET are not in the mask, and a
/// non-universal class is refused outright. SEQUENCE is taken only
/// constructed ([`SEQUENCE`]); constructed (BER) strings, which OpenSSL
/// would reassemble, are refused rather than reassembled.
const VALUE_TAGS: &[u8] = &[
    0x03, 0x07, 0x08, 0x09, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x12, 0x13, 0x14, 0x16, 0x1c, 0x1d, 0x1e,
];

/// The subject hash of a DER-encoded `Name`, as `openssl x509 -hash` prints it.
pub fn subject_hash(name_der: &[u8]) -> Result<u32, NameError> {
    Ok(hash_of_canonical(&canonical_encoding(name_der)?))
}

/// The hash of a name already in [`canonical_encoding`].
pub fn hash_of_canonical(canon: &[u8]) -> u32 {
    let digest = Sha1::digest(canon);
    u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// OpenSSL's canonical encoding of a DER `Name` (`x509_name_canon`), or why
/// OpenSSL cannot decode the name.
pub fn canonical_encoding(name_der: &[u8]) -> Result<Vec<u8>, NameError> {
    let mut out = Vec::new();
    canonical_encoding_into(name_der, &mut NameScratch::default(), &mut out)?;
    Ok(out)
}

/// Buffers [`canonical_encoding_into`] reuses from attribute to attribute
/// and from name to name: a bundle's every certificate has two names, and
/// under musl a buffer made and dropped per attribute can cost a `mmap` and
/// `munmap` each time (docs/performance.md).
#[derive(Debug, Default)]
pub(crate) struct NameScratch {
    /// One attribute's canonical encoding.
    atv: Vec<u8>,
    /// One value's text, converted to UTF-8 and then folded in place.
    text: Vec<u8>,
}

/// [`canonical_encoding`] into `out` (emptied first), with `scratch`'s
/// buffers instead of new ones.
pub(crate) fn canonical_encoding_into(
    name_der: &[u8],
    scratch: &mut NameScratch,
    out: &mut Vec<u8>,
) -> Result<(), NameError> {
    out.clear();
    let (name, _) = der::read_tlv(name_der)?;
    expect(&name, SEQUENCE, "a Name SEQUENCE")?;
    out.reserve(name.content.len());
    // One attribute is never much longer than the whole name: sized once,
    // rather than grown from empty for the first name of each file.
    scratch.atv.reserve(name.content.len());
    scratch.text.reserve(name.content.len());
    for rdn in der::children(name.content) {
        let rdn = rdn?;
        expect(&rdn, SET, "an RDN SET")?;
        let mut atvs = der::children(rdn.content);
        // OpenSSL keeps a name as a flat list of attributes, each tagged
        // with its RDN's index, and re-groups them by that index: an empty
        // RDN has no attribute to be re-grouped, so it is not encoded.
        let Some(first) = atvs.next() else {
            continue;
        };
        scratch.atv.clear();
        canonical_atv(&first?, &mut scratch.text, &mut scratch.atv)?;
        let Some(second) = atvs.next() else {
            // Nearly every RDN holds one attribute: its encoding is the content.
            der::write_tlv(out, SET, &scratch.atv);
            continue;
        };
        let mut members = vec![scratch.atv.clone()];
        for atv in std::iter::once(second).chain(atvs) {
            let mut member = Vec::new();
            canonical_atv(&atv?, &mut scratch.text, &mut member)?;
            members.push(member);
        }
        // DER orders SET OF members by their encodings (OpenSSL's der_cmp:
        // bytewise, then shorter first).
        members.sort();
        der::write_tlv(out, SET, &members.concat());
    }
    Ok(())
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

/// Appends one attribute's canonical encoding to `out`; `text` is scratch.
fn canonical_atv(atv: &Tlv<'_>, text: &mut Vec<u8>, out: &mut Vec<u8>) -> Result<(), NameError> {
    expect(atv, SEQUENCE, "an AttributeTypeAndValue SEQUENCE")?;
    let mut parts = der::children(atv.content);
    let oid = parts.next().ok_or(DerError::Truncated)??;
    expect(&oid, OID, "an attribute OID")?;
    if !der::oid_ok(oid.content) {
        return Err(NameError::BadOid);
    }
    let value = parts.next().ok_or(DerError::Truncated)??;
    if parts.next().is_some() {
        return Err(NameError::ExtraElement);
    }
    check_value_type(&value)?;
    text.clear();
    if to_utf8(&value, text)? {
        canonicalise(text);
        let value_len = der::encoded_len(text.len());
        der::write_header(out, SEQUENCE, oid.raw.len() + value_len);
        out.extend_from_slice(oid.raw);
        der::write_tlv(out, UTF8_STRING, text);
    } else {
        // Types outside OpenSSL's canonical mask are copied untouched.
        der::write_header(out, SEQUENCE, oid.raw.len() + value.raw.len());
        out.extend_from_slice(oid.raw);
        out.extend_from_slice(value.raw);
    }
    Ok(())
}

/// Whether OpenSSL's `ASN1_PRINTABLE` takes `value` (see [`VALUE_TAGS`]),
/// with the content checks its decoder makes (`asn1_ex_c2i`): a BIT STRING
/// has its unused-bits octet, at most 7. String contents are checked when
/// they are converted ([`to_utf8`]).
fn check_value_type(value: &Tlv<'_>) -> Result<(), NameError> {
    if value.tag != SEQUENCE && !VALUE_TAGS.contains(&value.tag) {
        return Err(NameError::ValueType(value.tag));
    }
    if value.tag == BIT_STRING && value.content.first().is_none_or(|&unused| unused > 7) {
        return Err(NameError::BadString("BIT STRING"));
    }
    Ok(())
}

/// `ASN1_STRING_to_UTF8` for the types in OpenSSL's `ASN1_MASK_CANON`,
/// appended to `text`; false, and nothing appended, for every other type.
fn to_utf8(value: &Tlv<'_>, text: &mut Vec<u8>) -> Result<bool, NameError> {
    let bytes = value.content;
    match value.tag {
        // OpenSSL's UTF8_getc and is_unicode_valid refuse what Rust's
        // decoder refuses: overlong forms, surrogates, anything past U+10FFFF.
        UTF8_STRING => {
            let s = std::str::from_utf8(bytes).map_err(|_| NameError::BadString("UTF8String"))?;
            text.extend_from_slice(s.as_bytes());
        }
        // One byte, one code point (OpenSSL's MBSTRING_ASC), even above 0x7f.
        PRINTABLE_STRING | T61_STRING | IA5_STRING => {
            for &b in bytes {
                push_char(text, char::from(b));
            }
        }
        // Each 16-bit unit is one code point: a surrogate, even in a pair,
        // is not a character OpenSSL converts.
        BMP_STRING => {
            let bad = NameError::BadString("BMPString");
            if !bytes.len().is_multiple_of(2) {
                return Err(bad);
            }
            for c in bytes.chunks_exact(2) {
                let unit = u32::from(u16::from_be_bytes([c[0], c[1]]));
                push_char(text, char::from_u32(unit).ok_or(bad.clone())?);
            }
        }
        UNIVERSAL_STRING => {
            let bad = NameError::BadString("UniversalString");
            if !bytes.len().is_multiple_of(4) {
                return Err(bad);
            }
            for c in bytes.chunks_exact(4) {
                let point = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                push_char(text, char::from_u32(point).ok_or(bad.clone())?);
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn push_char(text: &mut Vec<u8>, c: char) {
    text.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
}

/// OpenSSL's `ossl_isspace`: the C locale's white space.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Trim, fold white-space runs to one space and lower-case ASCII, byte by
/// byte exactly like `asn1_string_canon` (bytes above 0x7f pass through).
/// In place: each byte read writes at most one, never ahead of the reading.
fn canonicalise(utf8: &mut Vec<u8>) {
    let start = utf8
        .iter()
        .position(|&b| !is_space(b))
        .unwrap_or(utf8.len());
    let end = utf8
        .iter()
        .rposition(|&b| !is_space(b))
        .map_or(start, |i| i + 1);
    let mut written = 0;
    let mut in_space = false;
    for read in start..end {
        let b = utf8[read];
        if is_space(b) {
            if !in_space {
                utf8[written] = b' ';
                written += 1;
            }
            in_space = true;
        } else {
            utf8[written] = b.to_ascii_lowercase();
            written += 1;
            in_space = false;
        }
    }
    utf8.truncate(written);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_string_trims_folds_and_lowercases() {
        let canonical = |s: &[u8]| {
            let mut v = s.to_vec();
            canonicalise(&mut v);
            v
        };
        assert_eq!(canonical(b"  Foo \t\n Bar  "), b"foo bar");
        assert_eq!(canonical(b"   "), b"");
        assert_eq!(canonical("ÄBC".as_bytes()), "Äbc".as_bytes());
    }

    #[test]
    fn empty_name_hashes_like_openssl() {
        // SHA-1("") = da39a3ee...; OpenSSL reads the first four bytes little-endian.
        assert_eq!(subject_hash(&[0x30, 0x00]).unwrap(), 0xeea339da);
    }

    #[test]
    fn printable_and_utf8_with_same_text_collide() {
        fn name(tag: u8, text: &[u8]) -> Vec<u8> {
            let mut value = Vec::new();
            der::write_tlv(&mut value, tag, text);
            name_with(&value)
        }
        let a = subject_hash(&name(PRINTABLE_STRING, b"Example  CA")).unwrap();
        let b = subject_hash(&name(UTF8_STRING, b" example ca")).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn reused_buffers_encode_each_name_as_fresh_ones_do() {
        let long = [b'A'; 300];
        let mut long_value = Vec::new();
        der::write_tlv(&mut long_value, PRINTABLE_STRING, &long);
        // Two attributes in one RDN, given out of order.
        let mut two = Vec::new();
        for text in [&b"Zed"[..], b"  Alpha  Beta "] {
            let mut atv = Vec::new();
            der::write_tlv(&mut atv, OID, &[0x55, 0x04, 0x03]);
            der::write_tlv(&mut atv, UTF8_STRING, text);
            der::write_tlv(&mut two, SEQUENCE, &atv);
        }
        let mut set = Vec::new();
        der::write_tlv(&mut set, SET, &two);
        let mut multi = Vec::new();
        der::write_tlv(&mut multi, SEQUENCE, &set);
        let names = [
            name_with(&long_value),
            name_with(b"\x1e\x03\x00a\x00"),
            multi,
            name_with(b"\x03\x02\x00\xff"),
            name_with(b"\x13\x04 Ab "),
        ];
        let mut scratch = NameScratch::default();
        let mut out = Vec::new();
        for name in &names {
            let reused =
                canonical_encoding_into(name, &mut scratch, &mut out).map(|()| out.clone());
            assert_eq!(reused, canonical_encoding(name), "{name:x?}");
        }
        // The long value is encoded with a long-form length, and its text folded.
        let first = canonical_encoding(&names[0]).unwrap();
        assert!(first.windows(3).any(|w| w == [UTF8_STRING, 0x82, 0x01]));
    }

    /// A one-RDN name holding `value` (a whole TLV) under commonName.
    fn name_with(value: &[u8]) -> Vec<u8> {
        let mut atv = Vec::new();
        der::write_tlv(&mut atv, OID, &[0x55, 0x04, 0x03]);
        atv.extend_from_slice(value);
        let mut seq = Vec::new();
        der::write_tlv(&mut seq, SEQUENCE, &atv);
        let mut set = Vec::new();
        der::write_tlv(&mut set, SET, &seq);
        let mut out = Vec::new();
        der::write_tlv(&mut out, SEQUENCE, &set);
        out
    }

    #[test]
    fn values_openssl_cannot_decode_are_errors() {
        let refused: &[(&[u8], NameError)] = &[
            (b"\x1a\x01a", NameError::ValueType(0x1a)),
            (b"\x1b\x01a", NameError::ValueType(0x1b)),
            (b"\x15\x01a", NameError::ValueType(0x15)),
            (b"\x02\x01\x01", NameError::ValueType(0x02)),
            (b"\x04\x01a", NameError::ValueType(0x04)),
            (b"\x80\x01a", NameError::ValueType(0x80)),
            (b"\x2c\x03\x0c\x01a", NameError::ValueType(0x2c)),
            (b"\x03\x00", NameError::BadString("BIT STRING")),
            (b"\x0c\x02\xc0\xaf", NameError::BadString("UTF8String")),
            (b"\x0c\x03\xed\xa0\x80", NameError::BadString("UTF8String")),
            (b"\x1e\x03\x00a\x00", NameError::BadString("BMPString")),
            (b"\x1e\x02\xd8\x00", NameError::BadString("BMPString")),
            (
                b"\x1c\x04\x00\x11\x00\x00",
                NameError::BadString("UniversalString"),
            ),
        ];
        for (value, want) in refused {
            assert_eq!(
                subject_hash(&name_with(value)).as_ref(),
                Err(want),
                "{value:x?}"
            );
        }
        for taken in [
            &b"\x30\x03\x0c\x01a"[..],
            b"\x03\x02\x00a",
            b"\x07\x01a",
            b"\x12\x01x",
        ] {
            assert!(subject_hash(&name_with(taken)).is_ok(), "{taken:x?}");
        }
    }

    #[test]
    fn malformed_attribute_types_are_errors() {
        for oid in [&[][..], &[0x55, 0x80, 0x04], &[0x55, 0x84], &[0x80, 0x01]] {
            let mut atv = Vec::new();
            der::write_tlv(&mut atv, OID, oid);
            der::write_tlv(&mut atv, UTF8_STRING, b"a");
            let (mut seq, mut set, mut name) = (Vec::new(), Vec::new(), Vec::new());
            der::write_tlv(&mut seq, SEQUENCE, &atv);
            der::write_tlv(&mut set, SET, &seq);
            der::write_tlv(&mut name, SEQUENCE, &set);
            assert_eq!(subject_hash(&name), Err(NameError::BadOid), "{oid:x?}");
        }
        assert_eq!(
            subject_hash(&name_with(b"\x0c\x01a\x0c\x01b")),
            Err(NameError::ExtraElement)
        );
    }

    #[test]
    fn empty_rdns_are_left_out_like_openssl() {
        // `SEQUENCE { SET {} }` has no attribute: OpenSSL hashes it as the
        // empty name, and an empty RDN beside others changes nothing.
        assert_eq!(subject_hash(&[0x30, 0x02, 0x31, 0x00]).unwrap(), 0xeea339da);
        let plain = name_with(b"\x0c\x01a");
        let mut padded = vec![0x31, 0x00];
        padded.extend_from_slice(&plain[2..]);
        padded.extend_from_slice(&[0x31, 0x00]);
        let mut with_empty = Vec::new();
        der::write_tlv(&mut with_empty, SEQUENCE, &padded);
        assert_eq!(subject_hash(&with_empty), subject_hash(&plain));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(subject_hash(&[]).is_err());
        assert!(subject_hash(&[0x31, 0x00]).is_err());
        assert!(subject_hash(&[0x30, 0x03, 0x31, 0x01, 0x30]).is_err());
    }
}
