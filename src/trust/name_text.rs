//! A name as people read it in logs and `/status`: exactly the text of
//! x509-parser's `Display` for `X509Name`, written into one `String`.
//!
//! Why not that `Display`: it builds a `String` per attribute, per RDN and
//! per join, about a dozen allocations for a usual name, and every
//! certificate of the base and the sources has two names formatted on each
//! read. musl's allocator pays for each (docs/performance.md); the text is
//! the same, which the tests below check against x509-parser itself.

use std::fmt::Write;
use x509_parser::asn1_rs::{Any, BmpString, Tag};
use x509_parser::objects::{oid2abbrev, oid_registry};
use x509_parser::x509::X509Name;

/// What x509-parser writes for a name it cannot turn into text.
const INVALID: &str = "<X509Error: Invalid X.509 name>";

/// `name` as `name.to_string()` writes it.
pub(crate) fn name_text(name: &X509Name<'_>) -> String {
    let mut out = String::with_capacity(name.as_raw().len());
    for rdn in name.iter_rdn() {
        // x509-parser joins with ", " after any non-empty text; an RDN is
        // never empty (its SET is parsed with `many1`).
        if !out.is_empty() {
            out.push_str(", ");
        }
        for (i, atv) in rdn.iter().enumerate() {
            if i > 0 {
                out.push_str(" + ");
            }
            match oid2abbrev(atv.attr_type(), oid_registry()) {
                Ok(abbrev) => out.push_str(abbrev),
                // Writing to a String cannot fail.
                Err(_) => {
                    let _ = write!(out, "{:?}", atv.attr_type());
                }
            }
            out.push('=');
            if push_value(&mut out, atv.attr_value()).is_none() {
                return INVALID.to_string();
            }
        }
    }
    out
}

/// Appends an attribute's value as x509-parser's `attribute_value_to_string`
/// renders it: strings as they are, BMPString decoded, anything else as
/// upper-case hex. `None` where that function fails (a string type whose
/// bytes are not UTF-8, a BMPString that does not decode).
fn push_value(out: &mut String, value: &Any<'_>) -> Option<()> {
    match value.tag() {
        Tag::NumericString
        | Tag::VisibleString
        | Tag::PrintableString
        | Tag::GeneralString
        | Tag::ObjectDescriptor
        | Tag::GraphicString
        | Tag::T61String
        | Tag::VideotexString
        | Tag::Utf8String
        | Tag::Ia5String => out.push_str(std::str::from_utf8(value.data).ok()?),
        Tag::BmpString => out.push_str(&BmpString::try_from(value.clone()).ok()?.string()),
        _ => {
            const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
            for &b in value.as_bytes() {
                out.push(char::from(DIGITS[usize::from(b >> 4)]));
                out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
            }
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::der::write_tlv;
    use x509_parser::prelude::FromDer;

    const SEQUENCE: u8 = 0x30;
    const SET: u8 = 0x31;
    const OID: u8 = 0x06;

    /// DER of an OID's content, from the arcs the tests use.
    fn oid(arcs: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        write_tlv(&mut out, OID, arcs);
        out
    }

    /// One attribute: its type's OID arcs (DER content), its value's tag and bytes.
    type Attribute<'a> = (&'a [u8], u8, &'a [u8]);

    /// A Name whose RDNs hold the given attributes.
    fn name(rdns: &[&[Attribute<'_>]]) -> Vec<u8> {
        let mut body = Vec::new();
        for rdn in rdns {
            let mut set = Vec::new();
            for (ty, tag, value) in *rdn {
                let mut atv = oid(ty);
                write_tlv(&mut atv, *tag, value);
                write_tlv(&mut set, SEQUENCE, &atv);
            }
            write_tlv(&mut body, SET, &set);
        }
        let mut out = Vec::new();
        write_tlv(&mut out, SEQUENCE, &body);
        out
    }

    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const O: &[u8] = &[0x55, 0x04, 0x0a];
    const C: &[u8] = &[0x55, 0x04, 0x06];
    const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];
    const UNKNOWN: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x3c];

    #[test]
    fn the_text_is_x509_parsers_own() {
        let bmp: Vec<u8> = "Zürich €"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        let cases: Vec<Vec<u8>> = vec![
            name(&[]),
            name(&[&[(CN, 0x0c, b"Only")]]),
            name(&[
                &[(C, 0x13, b"DE")],
                &[(O, 0x0c, "Bäckerei".as_bytes())],
                &[(CN, 0x13, b"Root CA")],
            ]),
            // A multi-valued RDN, an unknown type, an e-mail address.
            name(&[
                &[(CN, 0x0c, b"a"), (O, 0x0c, b"b")],
                &[(UNKNOWN, 0x0c, b"custom")],
                &[(EMAIL, 0x16, b"pki@example.com")],
            ]),
            // A BMPString; a value that is not a string (hex); T61String.
            name(&[
                &[(O, 0x1e, &bmp)],
                &[(CN, 0x02, &[0x01, 0xff])],
                &[(CN, 0x14, b"t61")],
            ]),
            // Bytes that are not UTF-8: x509-parser says the name is invalid.
            name(&[&[(CN, 0x13, b"ok")], &[(CN, 0x0c, &[0xff, 0xfe])]]),
        ];
        for der in cases {
            let (_, parsed) = X509Name::from_der(&der).unwrap();
            assert_eq!(name_text(&parsed), parsed.to_string(), "{der:02x?}");
        }
        let bad = name(&[&[(CN, 0x0c, &[0xff])]]);
        let (_, bad) = X509Name::from_der(&bad).unwrap();
        assert_eq!(name_text(&bad), INVALID);
    }
}
