//! The parts of a certificate OpenSSL's `d2i_X509` checks more strictly than
//! x509-parser, walked with our own DER reader: a certificate x509-parser
//! takes but OpenSSL cannot decode would make every OpenSSL client refuse
//! the whole bundle.
//!
//! OpenSSL decodes every INTEGER with `c2i_ibuf` (no empty content, no
//! redundant leading 0x00 or 0xff octet), every OBJECT IDENTIFIER with
//! `ossl_c2i_ASN1_OBJECT` (some content, no sub-identifier padded with
//! 0x80, the last octet ending one), a BOOLEAN of exactly one octet, a NULL
//! of none, and the primitive values inside an AlgorithmIdentifier's ANY
//! parameters the same way. Extension values are not decoded when a
//! certificate is loaded (they are when it is used to verify a chain, which
//! affects that certificate only). The names are checked by
//! [`crate::trust::subject_hash::canonical_encoding`].

use crate::trust::der::{self, integer_ok, oid_ok, DerError, Tlv};

/// What OpenSSL cannot decode in a certificate, named for the message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TbsError {
    #[error("malformed certificate: {0}")]
    Der(#[from] DerError),
    #[error("its {0} is not an encoding OpenSSL decodes")]
    Field(&'static str),
}

const INTEGER: u8 = 0x02;
const BOOLEAN: u8 = 0x01;
const NULL: u8 = 0x05;
const OID: u8 = 0x06;
const EXPLICIT_VERSION: u8 = 0xa0;
const EXPLICIT_EXTENSIONS: u8 = 0xa3;

/// The issuer and subject `Name`s (their DER) of a DER certificate whose
/// other fields OpenSSL decodes. Read here rather than from x509-parser,
/// whose `Name` also silently ends at an empty RDN (`SET {}`), which
/// OpenSSL keeps and hashes past.
pub(crate) fn names(der: &[u8]) -> Result<(&[u8], &[u8]), TbsError> {
    parts(der).map(|p| (p.issuer, p.subject))
}

/// The fields of a certificate read elsewhere, each its whole DER element.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Parts<'a> {
    pub issuer: &'a [u8],
    pub subject: &'a [u8],
    /// The SubjectPublicKeyInfo.
    pub key: &'a [u8],
    /// The certificate's (outer) signature AlgorithmIdentifier.
    pub signature_algorithm: &'a [u8],
}

/// The [`Parts`] of a DER certificate whose other fields OpenSSL decodes.
pub(crate) fn parts(der: &[u8]) -> Result<Parts<'_>, TbsError> {
    let (cert, _) = der::read_tlv(der)?;
    let mut outer = der::children(cert.content);
    let tbs = next(&mut outer)?;
    let signature_algorithm = next(&mut outer)?;
    algorithm(&signature_algorithm, "signature algorithm")?;

    let mut fields = der::children(tbs.content);
    let mut field = next(&mut fields)?;
    if field.tag == EXPLICIT_VERSION {
        let (version, _) = der::read_tlv(field.content)?;
        primitive(&version, INTEGER, "version")?;
        field = next(&mut fields)?;
    }
    primitive(&field, INTEGER, "serial number")?;
    algorithm(&next(&mut fields)?, "signature algorithm")?;
    let issuer = next(&mut fields)?;
    let _validity = next(&mut fields)?;
    let subject = next(&mut fields)?;
    let key = next(&mut fields)?;
    algorithm(&next(&mut der::children(key.content))?, "key algorithm")?;
    for field in fields {
        let field = field?;
        if field.tag == EXPLICIT_EXTENSIONS {
            extensions(field.content)?;
        }
    }
    Ok(Parts {
        issuer: issuer.raw,
        subject: subject.raw,
        key: key.raw,
        signature_algorithm: signature_algorithm.raw,
    })
}

fn next<'a>(it: &mut impl Iterator<Item = Result<Tlv<'a>, DerError>>) -> Result<Tlv<'a>, DerError> {
    it.next().unwrap_or(Err(DerError::Truncated))
}

/// An AlgorithmIdentifier: its OID, and its parameters as OpenSSL's ANY.
fn algorithm(alg: &Tlv<'_>, what: &'static str) -> Result<(), TbsError> {
    let mut parts = der::children(alg.content);
    primitive(&next(&mut parts)?, OID, what)?;
    for param in parts {
        let param = param?;
        if !any_value_ok(&param) {
            return Err(TbsError::Field(what));
        }
    }
    Ok(())
}

/// The `[3]` extensions: each OID and critical flag (values are not decoded).
fn extensions(explicit: &[u8]) -> Result<(), TbsError> {
    let (list, _) = der::read_tlv(explicit)?;
    for ext in der::children(list.content) {
        let mut parts = der::children(ext?.content);
        primitive(&next(&mut parts)?, OID, "extension type")?;
        for part in parts {
            let part = part?;
            if part.tag == BOOLEAN && !any_value_ok(&part) {
                return Err(TbsError::Field("extension critical flag"));
            }
        }
    }
    Ok(())
}

/// `tlv` has tag `tag` and content OpenSSL decodes as that type.
fn primitive(tlv: &Tlv<'_>, tag: u8, what: &'static str) -> Result<(), TbsError> {
    if tlv.tag == tag && any_value_ok(tlv) {
        Ok(())
    } else {
        Err(TbsError::Field(what))
    }
}

/// Whether OpenSSL's `asn1_ex_c2i` takes the content of this universal
/// primitive (other tags are kept as they are, so they pass).
fn any_value_ok(tlv: &Tlv<'_>) -> bool {
    let c = tlv.content;
    match tlv.tag {
        BOOLEAN => c.len() == 1,
        NULL => c.is_empty(),
        INTEGER | 0x0a => integer_ok(c),
        OID => oid_ok(c),
        0x03 => c.first().is_some_and(|&unused| unused <= 7),
        0x1e => c.len().is_multiple_of(2),
        0x1c => c.len().is_multiple_of(4),
        _ => true,
    }
}
