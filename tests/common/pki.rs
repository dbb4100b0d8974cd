//! Test PKI built with rcgen: root CA -> intermediate CA -> leaf (serverAuth,
//! SAN localhost and 127.0.0.1), plus expired and not-yet-valid CAs.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use std::path::Path;
use time::{Duration, OffsetDateTime};

/// A certificate with its private key.
pub struct Cert {
    pub cert: Certificate,
    pub key: KeyPair,
}

impl Cert {
    pub fn pem(&self) -> String {
        self.cert.pem()
    }
    pub fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }
    /// Lower-case hex SHA-256 of the DER, the identity used throughout the tests.
    pub fn sha256(&self) -> String {
        super::bundle::sha256_hex(&self.der())
    }
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }
    pub fn write_pem(&self, path: &Path) {
        super::write_file(path, self.pem());
    }

    /// An intermediate CA signed by this CA.
    pub fn intermediate(&self, cn: &str) -> Cert {
        let mut params = ca_params(dn(cn));
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        self.sign(params)
    }

    /// A TLS server certificate for localhost / 127.0.0.1 signed by this CA,
    /// valid for 30 days.
    pub fn leaf(&self, cn: &str) -> Cert {
        let mut params = leaf_params(cn);
        params.not_after = OffsetDateTime::now_utc() + Duration::days(30);
        self.sign(params)
    }

    fn sign(&self, mut params: CertificateParams) -> Cert {
        params.use_authority_key_identifier_extension = true;
        signed(params, self)
    }
}

/// Parameters of a good TLS server certificate for localhost / 127.0.0.1,
/// valid from yesterday for 90 days; tests bend one field each.
pub fn leaf_params(cn: &str) -> CertificateParams {
    let mut p =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    p.not_before = OffsetDateTime::now_utc() - Duration::days(1);
    p.not_after = OffsetDateTime::now_utc() + Duration::days(90);
    p.use_authority_key_identifier_extension = true;
    p
}

/// Signs `params` with `issuer`, as they are.
pub fn signed(params: CertificateParams, issuer: &Cert) -> Cert {
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer.cert, &issuer.key).unwrap();
    Cert { cert, key }
}

/// A distinguished name holding only a CommonName (UTF8String).
pub fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CommonName, cn);
    d
}

/// A distinguished name holding only a CommonName encoded as PrintableString.
pub fn dn_printable(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(
        DnType::CommonName,
        DnValue::PrintableString(cn.try_into().unwrap()),
    );
    d
}

/// A distinguished name with an Organization and a CommonName.
pub fn dn_org(org: &str, cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::OrganizationName, org);
    d.push(DnType::CommonName, cn);
    d
}

fn ca_params(dn: DistinguishedName) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = OffsetDateTime::now_utc() - Duration::days(1);
    params.not_after = OffsetDateTime::now_utc() + Duration::days(365);
    params
}

/// A self-signed root CA valid from yesterday for a year.
pub fn root(cn: &str) -> Cert {
    root_with_dn(dn(cn))
}

/// A self-signed root CA with an arbitrary subject.
pub fn root_with_dn(dn: DistinguishedName) -> Cert {
    self_signed(ca_params(dn))
}

/// A self-signed root CA with the given validity window.
pub fn root_valid(cn: &str, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Cert {
    let mut params = ca_params(dn(cn));
    params.not_before = not_before;
    params.not_after = not_after;
    self_signed(params)
}

/// A root CA signed by its own key whose issuer name is written differently
/// from its subject (in case, or in string type): OpenSSL matches names
/// canonically and calls it self-signed; .NET compares the two as text.
pub fn root_with_issuer_spelled(subject: DistinguishedName, issuer: DistinguishedName) -> Cert {
    let key = KeyPair::generate().unwrap();
    let issuer = ca_params(issuer).self_signed(&key).unwrap();
    let mut params = ca_params(subject);
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &issuer, &key).unwrap();
    Cert { cert, key }
}

/// A root CA that expired long ago.
pub fn expired_root(cn: &str) -> Cert {
    let now = OffsetDateTime::now_utc();
    root_valid(cn, now - Duration::days(400), now - Duration::days(30))
}

/// A root CA that only becomes valid in the future.
pub fn not_yet_valid_root(cn: &str) -> Cert {
    let now = OffsetDateTime::now_utc();
    root_valid(cn, now + Duration::days(30), now + Duration::days(400))
}

/// Self-signs `params`.
pub fn self_signed(params: CertificateParams) -> Cert {
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Cert { cert, key }
}

/// A complete chain for a TLS server.
pub struct Chain {
    pub root: Cert,
    pub intermediate: Cert,
    pub leaf: Cert,
}

impl Chain {
    pub fn new(tag: &str) -> Chain {
        let root = root(&format!("{tag} Test Root CA"));
        let intermediate = root.intermediate(&format!("{tag} Test Intermediate CA"));
        let leaf = intermediate.leaf("localhost");
        Chain {
            root,
            intermediate,
            leaf,
        }
    }

    /// What the HTTPS server needs: leaf, intermediate and the leaf's key in one PEM.
    pub fn server_pem(&self) -> String {
        format!(
            "{}{}{}",
            self.leaf.pem(),
            self.intermediate.pem(),
            self.leaf.key_pem()
        )
    }
}

/// A DER certificate as one PEM block, for certificates rcgen cannot make
/// (hand-built hostile encodings).
pub fn pem_of_der(der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}
