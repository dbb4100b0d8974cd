//! The subject hash must be exactly what `openssl x509 -hash` prints, or clients
//! using SSL_CERT_DIR silently fail to find the CA. Judged by the openssl CLI on
//! every embedded Mozilla root and on names built to hit each canonicalisation rule.

mod common;

use common::tools::{clean_command, require};
use rcgen::{BmpString, CertificateParams, DistinguishedName, DnType, DnValue, KeyPair};
use trust_injector::cert::Certificate;

/// `openssl x509 -hash` of a DER certificate.
fn openssl_hash(der: &[u8]) -> u32 {
    let hash = common::openssl::x509_hash_der(der).expect("openssl x509 -hash failed");
    u32::from_str_radix(&hash, 16).unwrap()
}

fn ours(der: &[u8]) -> u32 {
    Certificate::from_der(der)
        .expect("parse")
        .subject_hash
        .expect("hashable name")
}

fn self_signed(dn: DistinguishedName) -> Vec<u8> {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    let key = KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().to_vec()
}

/// A certificate made by the openssl CLI itself, for name forms rcgen cannot
/// express (multi-valued RDNs).
fn openssl_cert(subj: &str) -> Vec<u8> {
    require("openssl");
    let dir = tempfile::tempdir().unwrap();
    let out = clean_command("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args([
            "-nodes",
            "-days",
            "2",
            "-utf8",
            "-multivalue-rdn",
            "-subj",
            subj,
        ])
        .arg("-keyout")
        .arg(dir.path().join("k.pem"))
        .args(["-outform", "DER", "-out"])
        .arg(dir.path().join("c.der"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl req failed for {subj}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(dir.path().join("c.der")).unwrap()
}

#[test]
fn matches_openssl_for_every_embedded_root() {
    let mut checked = 0;
    for der in webpki_root_certs_list() {
        assert_eq!(ours(&der), openssl_hash(&der), "root #{checked}");
        checked += 1;
    }
    assert!(checked > 100, "only {checked} roots checked");
}

fn webpki_root_certs_list() -> Vec<Vec<u8>> {
    let (certs, skipped) = trust_injector::base::embedded_roots();
    assert_eq!(skipped, 0);
    certs.iter().map(|c| c.der.to_vec()).collect()
}

#[test]
fn matches_openssl_for_tricky_names() {
    let subjects = [
        "/CN=Foo  Bar",
        "/CN=foo bar",
        "/CN=   padded\t name   ",
        "/O=Ünïcödé Øß/CN=ÄÖÜ Root",
        "/CN=a+O=b",
        "/O=b+CN=a",
        "/DC=com/DC=Example/CN=x",
        "/emailAddress=Admin@Example.COM/CN=mail",
        "/C=US/ST=New   York/L=x/O=y/OU=z/CN=full",
        "/serialNumber=0042/CN=serial",
    ];
    for subj in subjects {
        let der = openssl_cert(subj);
        assert_eq!(ours(&der), openssl_hash(&der), "subject {subj}");
    }
}

#[test]
fn case_and_whitespace_variants_collide_like_openssl() {
    let a = openssl_cert("/CN=Foo  Bar");
    let b = openssl_cert("/CN=foo bar");
    assert_eq!(openssl_hash(&a), openssl_hash(&b));
    assert_eq!(ours(&a), ours(&b));
}

#[test]
fn matches_openssl_for_every_string_type() {
    let values: Vec<DnValue> = vec![
        DnValue::PrintableString("Printable  CA".try_into().unwrap()),
        DnValue::Utf8String("Utf8 CA — ünïcode".into()),
        DnValue::BmpString(BmpString::try_from("Bmp CA Grüße").unwrap()),
        DnValue::UniversalString("Universal CA 𝔘".try_into().unwrap()),
        DnValue::TeletexString("Teletex CA".try_into().unwrap()),
        DnValue::Ia5String("ia5 CA".try_into().unwrap()),
    ];
    for v in values {
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Org");
        dn.push(DnType::CommonName, v.clone());
        let der = self_signed(dn);
        assert_eq!(ours(&der), openssl_hash(&der), "value {v:?}");
    }
}

/// A CA whose subject holds an empty RDN (`SET {}`), built byte by byte (no
/// tool writes one) around a real key, and a leaf it signs with `openssl x509
/// -req`, which copies the CA's subject bytes into the leaf's issuer.
fn ca_with_empty_rdn(dir: &std::path::Path, name: &[u8]) {
    use common::hostile_der::certificate;
    use common::openssl::{openssl, request, sign_request};
    openssl(
        dir,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ca.key",
        ],
    );
    openssl(
        dir,
        &[
            "pkey", "-in", "ca.key", "-pubout", "-outform", "DER", "-out", "ca.spki",
        ],
    );
    let spki = std::fs::read(dir.join("ca.spki")).unwrap();
    // Its own signature is a placeholder: no client checks a trust anchor's.
    let der = certificate(1, name, name, &spki, Some(&[]));
    common::write_file(&dir.join("source/ca.pem"), common::pki::pem_of_der(&der));
    std::fs::copy(dir.join("source/ca.pem"), dir.join("ca.pem")).unwrap();
    request(dir, "leaf", "localhost");
    common::write_file(&dir.join("leaf.ext"), "basicConstraints=CA:FALSE\n");
    sign_request(dir, "leaf", "ca", ("-sha256", 30), "leaf.ext", "leaf.pem");
}

#[test]
fn an_empty_rdn_is_named_as_openssl_rehash_names_it() {
    use common::hostile_der::{atv, cons, seq, tlv, CN, O};
    use common::tools::{openssl_verify, Trust};
    require("openssl");
    let cn = cons(0x31, &[atv(CN, tlv(0x0c, b"Empty RDN Root"))]);
    let org = cons(0x31, &[atv(O, tlv(0x13, b"Example"))]);
    let empty = cons(0x31, &[]);
    let names = [
        ("only an empty RDN", seq(std::slice::from_ref(&empty))),
        (
            "an empty RDN between two",
            seq(&[org.clone(), empty.clone(), cn.clone()]),
        ),
        ("empty RDNs around one", seq(&[empty.clone(), cn, empty])),
    ];
    for (label, name) in names {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        ca_with_empty_rdn(dir, &name);
        let out = dir.join("out");
        std::fs::create_dir(&out).unwrap();
        common::publish_once(&dir.join("source"), "none", &out, &[]);
        let ours: Vec<String> = common::bundle::hashed_dir_map(&out.join("certs"), true)
            .into_keys()
            .collect();
        std::fs::create_dir(dir.join("rehash")).unwrap();
        std::fs::copy(dir.join("ca.pem"), dir.join("rehash/ca.pem")).unwrap();
        common::openssl::openssl(dir, &["rehash", "rehash"]);
        let theirs: Vec<String> = common::bundle::hashed_dir_map(&dir.join("rehash"), true)
            .into_keys()
            .collect();
        assert_eq!(theirs.len(), 1, "{label}: openssl rehash made {theirs:?}");
        assert_eq!(ours, theirs, "{label}: certs/ against openssl rehash");
        let leaf = dir.join("leaf.pem");
        let v = openssl_verify(Trust::Dir(&out.join("certs")), &leaf, &leaf);
        assert!(v.ok(), "{label}: openssl verify -CApath:\n{}", v.text());
    }
}
