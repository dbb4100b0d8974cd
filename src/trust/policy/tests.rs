use super::strength::{bit_length, dotted, signature_name};
use super::*;

#[test]
fn bit_length_ignores_leading_zeros() {
    assert_eq!(bit_length(&[0x00, 0x80, 0x00]), 16);
    assert_eq!(bit_length(&[0x01, 0x00]), 9);
    assert_eq!(bit_length(&[0xff; 128]), 1024);
    assert_eq!(bit_length(&[0, 0]), 0);
}

#[test]
fn sha1_is_weak_sha256_is_not() {
    assert!(signature_name("1.2.840.113549.1.1.5").1);
    assert!(signature_name("1.2.840.10045.4.1").1);
    assert!(!signature_name("1.2.840.10045.4.3.2").1);
}

#[test]
fn dotted_is_asn1_rs_own_text() {
    use x509_parser::asn1_rs::Oid;
    for arcs in [
        &[1, 2, 840, 113_549, 1, 1, 11][..],
        &[2, 5, 29, 19],
        &[1, 3, 6, 1, 4, 1, 311, 60, 2, 1, 3],
        &[1, 3, 999, 1 << 40],
    ] {
        let oid = Oid::from(arcs).unwrap();
        assert_eq!(dotted(&oid), oid.to_id_string());
    }
    // An arc beyond 64 bits: asn1-rs's own fallback text.
    let big = Oid::new(std::borrow::Cow::Borrowed(&[
        0x2a, 0x82, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
    ]));
    assert_eq!(dotted(&big), big.to_id_string());
}

/// A CA named `subject`, signed by its own key, with the issuer name `issuer`.
fn ca_named(subject: rcgen::DnValue, issuer: rcgen::DnValue) -> Certificate {
    use rcgen::{CertificateParams, DistinguishedName, DnType, IsCa, KeyPair};
    let params = |v: rcgen::DnValue| {
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, v);
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p
    };
    let key = KeyPair::generate().unwrap();
    let issuer = params(issuer).self_signed(&key).unwrap();
    let cert = params(subject).signed_by(&key, &issuer, &key).unwrap();
    Certificate::from_der(cert.der()).unwrap()
}

fn utf8(s: &str) -> rcgen::DnValue {
    rcgen::DnValue::Utf8String(s.into())
}

#[test]
fn dotnet_anchors_only_roots_whose_names_are_the_same_text() {
    let same = ca_named(utf8("Example Root"), utf8("Example Root"));
    assert!(same.self_signed && dotnet_anchor(&same));
    // Another string type, the same text: .NET formats both alike.
    let printable = rcgen::DnValue::PrintableString("Example Root".try_into().unwrap());
    let types = ca_named(utf8("Example Root"), printable);
    assert!(types.self_signed && dotnet_anchor(&types));
    // Case differs: self-signed to OpenSSL, an intermediate to .NET.
    let case = ca_named(utf8("Example Root"), utf8("EXAMPLE ROOT"));
    assert!(case.self_signed && !dotnet_anchor(&case));
    let concerns = Policy::default().concerns(&case, true, true, 0);
    assert!(concerns.contains(&Concern::MissingRoot), "{concerns:?}");
    assert!(Concern::MissingRoot.explain(&case).contains("spelling"));
    let concerns = Policy::default().concerns(&same, true, true, 0);
    assert!(!concerns.contains(&Concern::MissingRoot), "{concerns:?}");
}

#[test]
fn every_embedded_root_is_a_dotnet_anchor() {
    let (roots, _) = crate::trust::base::embedded_roots();
    for c in roots {
        assert!(dotnet_anchor(&c), "{}", c.subject);
    }
}

#[test]
fn embedded_roots_are_not_weak() {
    let (roots, _) = crate::trust::base::embedded_roots();
    for c in roots {
        let facts = CertFacts::of(&c);
        assert!(!facts.weak_key(), "{}: {facts:?}", c.subject);
    }
}

#[test]
fn the_strength_read_alone_is_the_whole_parse_s() {
    // What `concerns` judges (the key and signature algorithm, read without
    // the names and extensions) against what `inspect` shows: RSA and EC
    // keys of every size and SHA-1 to SHA-384 signatures among the roots.
    let (roots, _) = crate::trust::base::embedded_roots();
    let mut seen = std::collections::HashSet::new();
    for c in &roots {
        let (alone, facts) = (Strength::of(c), CertFacts::of(c));
        let whole = (
            facts.key_algorithm.as_str(),
            facts.key_bits,
            facts.signature_algorithm.as_str(),
            facts.weak_signature,
        );
        let read = (
            alone.key_algorithm.as_str(),
            alone.key_bits,
            alone.signature_algorithm.as_str(),
            alone.weak_signature,
        );
        assert_eq!(read, whole, "{}", c.subject);
        assert_eq!(alone.weak_key(), facts.weak_key());
        seen.insert((facts.key_algorithm.clone(), facts.key_bits));
    }
    assert!(seen.len() >= 4, "{seen:?}");
}
