//! A certificate's key and signature algorithm, and whether TLS clients
//! refuse them: all the policy judges of a certificate's content, and part
//! of what [`CertFacts`](super::CertFacts) shows.

use super::{MIN_EC_BITS, MIN_RSA_BITS};
use crate::trust::cert::Certificate;
use crate::trust::tbs;
use std::fmt::Write;
use x509_parser::asn1_rs::Oid;
use x509_parser::prelude::{AlgorithmIdentifier, FromDer, SubjectPublicKeyInfo};
use x509_parser::public_key::PublicKey;

/// The key and signature algorithm of one certificate, named for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Strength {
    /// `RSA`, `EC`, `Ed25519`, `DSA`, or the algorithm's OID.
    pub key_algorithm: String,
    /// Key size in bits; for EC the curve's size; 0 when unknown.
    pub key_bits: u32,
    /// Signature algorithm name (`sha256WithRSAEncryption` …) or OID.
    pub signature_algorithm: String,
    /// Whether the signature uses SHA-1, MD5 or MD2.
    pub weak_signature: bool,
}

impl Strength {
    /// Of `cert`, from its key and signature algorithm alone. The policy
    /// judges every custom certificate each time the bundle is assembled,
    /// and decoding the names and extensions, as a whole parse does, was
    /// most of that cost.
    pub(crate) fn of(cert: &Certificate) -> Strength {
        // Invariant: `Certificate::from_der`, its only constructor, walked
        // these bytes with `tbs::parts` and parsed both fields with this
        // very parser; a failure here is a bug, and answering "strong"
        // would hide a weak key.
        const BUILT: &str = "a Certificate's DER was parsed when it was built";
        let parts = tbs::parts(&cert.der).expect(BUILT);
        let (_, key) = SubjectPublicKeyInfo::from_der(parts.key).expect(BUILT);
        let (_, signature) = AlgorithmIdentifier::from_der(parts.signature_algorithm).expect(BUILT);
        Strength::from_fields(&key, &signature)
    }

    /// Of a certificate's parsed key and signature algorithm.
    pub(crate) fn from_fields(
        key: &SubjectPublicKeyInfo<'_>,
        signature: &AlgorithmIdentifier<'_>,
    ) -> Strength {
        let (key_algorithm, key_bits) = key_name(key);
        let oid = dotted(&signature.algorithm);
        let (name, weak_signature) = signature_name(&oid);
        Strength {
            key_algorithm,
            key_bits,
            signature_algorithm: name.to_string(),
            weak_signature,
        }
    }

    /// Whether TLS clients refuse this key.
    pub(crate) fn weak_key(&self) -> bool {
        weak_key(&self.key_algorithm, self.key_bits)
    }
}

/// Whether TLS clients refuse a key of `algorithm` ([`Strength::key_algorithm`]) and `bits`.
pub(super) fn weak_key(algorithm: &str, bits: u32) -> bool {
    match algorithm {
        "RSA" => bits < MIN_RSA_BITS,
        "EC" => bits < MIN_EC_BITS,
        // No current TLS stack verifies DSA certificate signatures.
        "DSA" => true,
        _ => false,
    }
}

/// A key's algorithm as people name it, and its size in bits.
fn key_name(spki: &SubjectPublicKeyInfo<'_>) -> (String, u32) {
    match spki.parsed() {
        Ok(PublicKey::RSA(rsa)) => ("RSA".to_string(), bit_length(rsa.modulus)),
        Ok(PublicKey::EC(point)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| dotted(&o));
            let bits = match curve.as_deref() {
                Some("1.2.840.10045.3.1.1") => 192,
                Some("1.3.132.0.33") => 224,
                Some("1.2.840.10045.3.1.7") => 256,
                Some("1.3.132.0.34") => 384,
                Some("1.3.132.0.35") => 521,
                _ => u32::try_from(point.key_size()).unwrap_or(0),
            };
            ("EC".to_string(), bits)
        }
        Ok(PublicKey::DSA(y)) => ("DSA".to_string(), bit_length(y)),
        _ => match dotted(&spki.algorithm.algorithm).as_str() {
            "1.3.101.112" => ("Ed25519".to_string(), 256),
            "1.3.101.113" => ("Ed448".to_string(), 456),
            other => (other.to_string(), 0),
        },
    }
}

/// An OID in dotted form, as `Oid::to_id_string` writes it, in one
/// allocation: that function makes a `String` per arc and joins them, and
/// every custom certificate's signature algorithm is named on each assemble.
pub(super) fn dotted(oid: &Oid<'_>) -> String {
    let Some(arcs) = oid.iter() else {
        // An arc beyond 64 bits: its hex form, from asn1-rs itself.
        return oid.to_id_string();
    };
    let mut out = String::with_capacity(3 * oid.as_bytes().len());
    for (i, arc) in arcs.enumerate() {
        if i > 0 {
            out.push('.');
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{arc}");
    }
    out
}

/// Significant bits of a big-endian unsigned integer (leading zeros ignored;
/// x509-parser's own RSA key size miscounts moduli without a zero byte).
pub(super) fn bit_length(be: &[u8]) -> u32 {
    let trimmed: &[u8] = match be.iter().position(|&b| b != 0) {
        Some(i) => &be[i..],
        None => return 0,
    };
    let len = u32::try_from(trimmed.len()).unwrap_or(u32::MAX / 8);
    len * 8 - trimmed[0].leading_zeros()
}

/// A readable name for a signature algorithm OID, and whether its hash is
/// one that clients refuse.
pub(super) fn signature_name(oid: &str) -> (&str, bool) {
    match oid {
        "1.2.840.113549.1.1.2" => ("md2WithRSAEncryption", true),
        "1.2.840.113549.1.1.4" => ("md5WithRSAEncryption", true),
        "1.2.840.113549.1.1.5" => ("sha1WithRSAEncryption", true),
        "1.3.14.3.2.29" => ("sha1WithRSASignature", true),
        "1.2.840.10045.4.1" => ("ecdsa-with-SHA1", true),
        "1.2.840.10040.4.3" => ("dsa-with-SHA1", true),
        "1.2.840.113549.1.1.11" => ("sha256WithRSAEncryption", false),
        "1.2.840.113549.1.1.12" => ("sha384WithRSAEncryption", false),
        "1.2.840.113549.1.1.13" => ("sha512WithRSAEncryption", false),
        "1.2.840.113549.1.1.10" => ("rsassa-pss", false),
        "1.2.840.10045.4.3.2" => ("ecdsa-with-SHA256", false),
        "1.2.840.10045.4.3.3" => ("ecdsa-with-SHA384", false),
        "1.2.840.10045.4.3.4" => ("ecdsa-with-SHA512", false),
        "1.3.101.112" => ("Ed25519", false),
        "1.3.101.113" => ("Ed448", false),
        other => (other, false),
    }
}
