//! The Java truststore (`--pkcs12`): every certificate of the bundle as a
//! trusted entry of a PKCS#12 file, `truststore.p12`.
//!
//! Why the encoding is done here, on RustCrypto's ASN.1 types, rather than by a
//! keystore crate: a truststore holds only public certificates, and the ones
//! that exist (`p12-keystore`) always encrypt the certificate bags with the
//! password. Java loads a truststore without `javax.net.ssl.trustStorePassword`
//! by passing a null password, and then *skips* encrypted bags: the store
//! would look empty. So the bags are left unencrypted (what the JDK itself
//! writes with `keystore.pkcs12.certProtectionAlgorithm=NONE`), and a password,
//! when one is given, only protects integrity through the MAC.
//!
//! The output is deterministic: the MAC salt is derived from the content, so
//! the same certificates and password always give the same bytes. That lets
//! the publisher compare the file on disk byte for byte, exactly like the PEM
//! bundle: nothing is rewritten when nothing changed, and a deleted or altered
//! truststore is put back. The salt still differs whenever the content does.

use crate::trust::bundle::Bundle;
use cms::content_info::ContentInfo;
use der::asn1::{Any, BmpString, ObjectIdentifier, OctetString, SetOfVec};
use der::{Decode, Encode};
use hmac::{Hmac, Mac};
use pkcs12::cert_type::CertBag;
use pkcs12::digest_info::DigestInfo;
use pkcs12::kdf::{derive_key_utf8, Pkcs12KeyType};
use pkcs12::mac_data::MacData;
use pkcs12::pfx::{Pfx, Version};
use pkcs12::safe_bag::SafeBag;
use sha2::{Digest, Sha256};
use x509_cert::attr::Attribute;
use x509_cert::spki::AlgorithmIdentifierOwned;

/// The truststore's file name in `--out-dir`.
pub const TRUSTSTORE_FILE: &str = "truststore.p12";

/// PKCS#7 `data` content type.
const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// PKCS#9 friendlyName: Java uses it as the entry's alias.
const FRIENDLY_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.20");
/// PKCS#9 x509Certificate cert type.
const X509_CERTIFICATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");
/// Oracle's trusted-key-usage bag attribute: without it Java's PKCS12 KeyStore
/// does not treat a certificate bag as a `trustedCertEntry`.
const ORACLE_TRUSTED_KEY_USAGE: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("2.16.840.1.113894.746875.1.1");
/// anyExtendedKeyUsage: trusted for every purpose, as `keytool -importcert` does.
const ANY_EXTENDED_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37.0");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

/// MAC key derivation rounds: the JDK's own default for PKCS#12 MACs.
const MAC_ITERATIONS: i32 = 10_000;

/// `--pkcs12` as configured.
#[derive(Clone, PartialEq, Eq)]
pub struct Pkcs12Config {
    /// Empty: no MAC (Java then needs no `javax.net.ssl.trustStorePassword`).
    pub password: String,
}

/// The configuration is printed in debug logs; the password never is.
impl std::fmt::Debug for Pkcs12Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let password = if self.password.is_empty() {
            "(none)"
        } else {
            "(set)"
        };
        f.debug_struct("Pkcs12Config")
            .field("password", &password)
            .finish()
    }
}

/// `--pkcs12` state kept by the reconciler: the configuration and the last
/// encoding with the bundle SHA-256 it was built from, so a resync (which
/// usually changes nothing) does not re-encode.
#[derive(Debug)]
pub struct Truststore {
    config: Pkcs12Config,
    encoded: Option<(String, Vec<u8>)>,
}

impl Truststore {
    pub fn new(config: Pkcs12Config) -> Self {
        Truststore {
            config,
            encoded: None,
        }
    }

    /// The truststore for `bundle`, encoded again only if the bundle changed.
    pub fn encode(&mut self, bundle: &Bundle) -> Result<&[u8], TruststoreError> {
        let fresh = self
            .encoded
            .as_ref()
            .is_some_and(|(sha, _)| *sha == bundle.sha256);
        if !fresh {
            let bytes = render(bundle, &self.config.password)?;
            self.encoded = Some((bundle.sha256.clone(), bytes));
        }
        Ok(self.encoded.as_ref().map_or(&[][..], |(_, b)| b))
    }
}

/// Why the truststore could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum TruststoreError {
    /// A certificate or the store's structure could not be DER-encoded.
    #[error("cannot encode the PKCS#12 truststore: {0}")]
    Encode(#[from] der::Error),
    /// The HMAC refused the derived key's length (it takes any, so this
    /// is here only because the API returns a `Result`).
    #[error("cannot compute the PKCS#12 MAC: {0}")]
    Mac(#[from] hmac::digest::InvalidLength),
}

/// Encodes every certificate of `bundle` as a trusted entry. An empty
/// `password` gives a store without MAC, which Java loads with no
/// `javax.net.ssl.trustStorePassword` set.
pub fn render(bundle: &Bundle, password: &str) -> Result<Vec<u8>, TruststoreError> {
    let bags = bundle
        .entries
        .iter()
        .map(|e| cert_bag(&e.cert.der, &alias(&e.cert.subject, &e.cert.sha256)))
        .collect::<Result<Vec<SafeBag>, TruststoreError>>()?;
    // One unencrypted SafeContents inside a `data` ContentInfo.
    let safe_contents = octets(bags.to_der()?)?;
    let auth_safe_content = vec![ContentInfo {
        content_type: ID_DATA,
        content: safe_contents,
    }]
    .to_der()?;
    let mac_data = if password.is_empty() {
        None
    } else {
        Some(mac(&auth_safe_content, password)?)
    };
    let pfx = Pfx {
        version: Version::V3,
        auth_safe: ContentInfo {
            content_type: ID_DATA,
            content: octets(auth_safe_content)?,
        },
        mac_data,
    };
    Ok(pfx.to_der()?)
}

/// `bytes` as the DER of an OCTET STRING, ready to be a ContentInfo's content.
fn octets(bytes: Vec<u8>) -> Result<Any, TruststoreError> {
    Ok(Any::from_der(&OctetString::new(bytes)?.to_der()?)?)
}

fn cert_bag(der: &[u8], alias: &str) -> Result<SafeBag, TruststoreError> {
    let friendly = Attribute {
        oid: FRIENDLY_NAME,
        values: SetOfVec::try_from(vec![Any::from_der(
            &BmpString::from_utf8(alias)?.to_der()?,
        )?])?,
    };
    let trusted = Attribute {
        oid: ORACLE_TRUSTED_KEY_USAGE,
        values: SetOfVec::try_from(vec![Any::from_der(&ANY_EXTENDED_KEY_USAGE.to_der()?)?])?,
    };
    let bag = CertBag {
        cert_id: X509_CERTIFICATE,
        cert_value: OctetString::new(der)?,
    };
    Ok(SafeBag {
        bag_id: pkcs12::PKCS_12_CERT_BAG_OID,
        bag_value: bag.to_der()?,
        bag_attributes: Some(SetOfVec::try_from(vec![friendly, trusted])?),
    })
}

/// A unique, readable alias: the subject, then the start of the SHA-256
/// (Java lower-cases aliases, and two CAs may share a subject). A friendlyName
/// is a BMPString, so characters beyond the BMP are replaced.
fn alias(subject: &str, sha256: &str) -> String {
    let subject: String = crate::trust::cert::escape_line(subject)
        .chars()
        .map(|c| if u32::from(c) > 0xFFFF { '?' } else { c })
        .collect();
    format!("{subject} [{}]", &sha256[..sha256.len().min(16)])
}

/// HMAC-SHA256 over the authenticated safe, keyed by the PKCS#12 KDF.
fn mac(content: &[u8], password: &str) -> Result<MacData, TruststoreError> {
    // Derived from the content: deterministic output (see the module comment),
    // and still a different salt for every different truststore.
    let mut h = Sha256::new();
    h.update(b"trust-injector truststore MAC salt\0");
    h.update(content);
    let salt = &h.finalize()[..16];
    let key = derive_key_utf8::<Sha256>(password, salt, Pkcs12KeyType::Mac, MAC_ITERATIONS, 32)?;
    let mut hmac = Hmac::<Sha256>::new_from_slice(&key)?;
    hmac.update(content);
    Ok(MacData {
        mac: DigestInfo {
            algorithm: AlgorithmIdentifierOwned {
                oid: SHA256,
                parameters: Some(Any::null()),
            },
            digest: OctetString::new(hmac.finalize().into_bytes().to_vec())?,
        },
        mac_salt: OctetString::new(salt)?,
        iterations: MAC_ITERATIONS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(n: usize) -> Bundle {
        let (roots, _) = crate::trust::base::embedded_roots();
        crate::trust::bundle::assemble(
            &roots[..n],
            std::iter::empty(),
            crate::trust::policy::Policy { keep_expired: true },
            crate::clock::now_unix(),
        )
    }

    #[test]
    fn deterministic_and_sensitive_to_content_and_password() {
        let b = bundle(3);
        assert_eq!(render(&b, "").unwrap(), render(&b, "").unwrap());
        assert_eq!(render(&b, "pw").unwrap(), render(&b, "pw").unwrap());
        assert_ne!(render(&b, "pw").unwrap(), render(&b, "other").unwrap());
        assert_ne!(render(&b, "").unwrap(), render(&bundle(2), "").unwrap());
    }

    #[test]
    fn every_certificate_is_a_trusted_bag_and_no_mac_without_password() {
        let b = bundle(3);
        let pfx = Pfx::from_der(&render(&b, "").unwrap()).unwrap();
        assert!(pfx.mac_data.is_none());
        let outer = OctetString::from_der(&pfx.auth_safe.content.to_der().unwrap()).unwrap();
        let safes = Vec::<ContentInfo>::from_der(outer.as_bytes()).unwrap();
        assert_eq!(safes.len(), 1);
        assert_eq!(safes[0].content_type, ID_DATA);
        let inner = OctetString::from_der(&safes[0].content.to_der().unwrap()).unwrap();
        let bags = Vec::<SafeBag>::from_der(inner.as_bytes()).unwrap();
        assert_eq!(bags.len(), 3);
        for (bag, entry) in bags.iter().zip(&b.entries) {
            // Decoding keeps the bag value's [0] wrapper: unwrap it.
            let wrapped = Any::from_der(&bag.bag_value).unwrap();
            let cert = CertBag::from_der(wrapped.value()).unwrap();
            assert_eq!(cert.cert_value.as_bytes(), &entry.cert.der[..]);
            let attrs = bag.bag_attributes.as_ref().unwrap();
            assert!(attrs.iter().any(|a| a.oid == ORACLE_TRUSTED_KEY_USAGE));
        }
        assert!(Pfx::from_der(&render(&b, "pw").unwrap())
            .unwrap()
            .mac_data
            .is_some());
    }

    #[test]
    fn alias_is_unique_and_bmp_only() {
        let a = alias("CN=Root", "0123456789abcdef0123");
        assert_eq!(a, "CN=Root [0123456789abcdef]");
        let a = alias("CN=Root \u{1F512}", "0123456789abcdef0123");
        assert!(a.chars().all(|c| u32::from(c) <= 0xFFFF), "{a}");
        assert!(BmpString::from_utf8(&a).is_ok());
    }
}
