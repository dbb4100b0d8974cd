//! What is allowed into the bundle, and what deserves a warning.
//!
//! This is the one set of checks behind the publish loop's warnings, the
//! `warnings` of `/status`, the `trust_injector_certificates_expiring_soon`
//! metric and `inspect`: a certificate must not be judged differently by two
//! of them.

use crate::trust::cert::Certificate;
use crate::trust::tbs;
use strength::Strength;
use x509_parser::prelude::{FromDer, GeneralName, ParsedExtension, X509Certificate, X509Name};

mod strength;

/// A custom certificate expiring within this many days gets a warning (and
/// counts in the expiring-soon metric): a month leaves time to rotate a CA.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

/// RSA keys below this size are weak: browsers, webpki and OpenSSL's default
/// security level 2 refuse signatures made with them.
pub const MIN_RSA_BITS: u32 = 2048;

/// Elliptic-curve keys below this size (P-192, P-224) are refused by every
/// mainstream TLS stack.
pub const MIN_EC_BITS: u32 = 256;

/// The knobs of the policy.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Keep expired certificates instead of dropping them (`--keep-expired`).
    pub keep_expired: bool,
}

/// Why a certificate is worth a warning. Kept certificates only; dropping is
/// reported separately.
///
/// Variants carry no time-dependent data, so that the publish loop, which
/// warns once per (concern, certificate), does not warn again every day.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Concern {
    /// Valid only from `not_before` on: clients refuse it until then.
    NotYetValid,
    /// Not a CA certificate: useless as an issuer, and a sign that a leaf was
    /// put into the CA Secret by mistake.
    NotCa,
    /// A CA that .NET on Linux does not take as an anchor ([`dotnet_anchor`])
    /// and whose issuer is not in the bundle: an intermediate without its root
    /// (OpenSSL would accept it as an anchor only with
    /// X509_V_FLAG_PARTIAL_CHAIN), or a root whose issuer name is spelled
    /// differently from its subject. .NET trusts nothing through it.
    MissingRoot,
    /// Expired but kept because of `--keep-expired`.
    ExpiredKept,
    /// Expires within [`EXPIRY_WARNING_DAYS`].
    ExpiresSoon,
    /// A public key too small (or of a kind) that TLS clients refuse.
    WeakKey {
        /// `RSA`, `EC`, `DSA` …
        algorithm: String,
        /// Key size in bits (0 when unknown).
        bits: u32,
    },
    /// Signed with SHA-1 (or MD5/MD2): clients refuse the signature.
    WeakSignature {
        /// The signature algorithm's name, e.g. `sha1WithRSAEncryption`.
        algorithm: String,
    },
}

impl Concern {
    /// A stable machine name (`inspect --json`, tests).
    pub fn code(&self) -> &'static str {
        match self {
            Concern::NotYetValid => "not_yet_valid",
            Concern::NotCa => "not_ca",
            Concern::MissingRoot => "missing_root",
            Concern::ExpiredKept => "expired",
            Concern::ExpiresSoon => "expires_soon",
            Concern::WeakKey { .. } => "weak_key",
            Concern::WeakSignature { .. } => "weak_signature",
        }
    }

    /// One sentence for logs and `/status`.
    pub fn explain(&self, cert: &Certificate) -> String {
        match self {
            Concern::NotYetValid => format!(
                "not valid before {}; clients will refuse it until then",
                crate::trust::cert::rfc3339(cert.not_before)
            ),
            Concern::NotCa => {
                "not a CA certificate (no basicConstraints CA:TRUE); it cannot issue anything"
                    .to_string()
            }
            // Self-signed to OpenSSL, yet no .NET anchor: the names differ in spelling.
            Concern::MissingRoot if cert.self_signed => format!(
                "root whose issuer name ({}) differs from its subject ({}) in spelling (case or \
                 spaces): OpenSSL calls it self-signed, but .NET compares the two as text, does \
                 not take it as a root and fails with UntrustedRoot; re-issue it with the issuer \
                 written exactly as the subject",
                crate::trust::cert::display_line(&cert.issuer),
                crate::trust::cert::display_line(&cert.subject)
            ),
            Concern::MissingRoot => format!(
                "intermediate whose root ({}) is not in the bundle; .NET anchors only \
                 self-signed certificates, so add the root to the Secret",
                crate::trust::cert::display_line(&cert.issuer)
            ),
            Concern::ExpiredKept => format!(
                "expired at {} (kept because of --keep-expired)",
                crate::trust::cert::rfc3339(cert.not_after)
            ),
            Concern::ExpiresSoon => format!(
                "expires at {} (in {} days); rotate it before then",
                crate::trust::cert::rfc3339(cert.not_after),
                (cert.not_after - crate::clock::now_unix()).max(0) / 86_400
            ),
            Concern::WeakKey { algorithm, bits } => format!(
                "weak key ({algorithm} {bits} bits); TLS clients refuse signatures made with it \
                 (use RSA >= {MIN_RSA_BITS} or EC P-256 or larger)"
            ),
            Concern::WeakSignature { algorithm } => format!(
                "signed with {algorithm}; TLS clients refuse SHA-1 and older signatures, \
                 so re-issue it with SHA-256"
            ),
        }
    }
}

impl Policy {
    /// Whether `cert` is published at `now`.
    pub fn admits(&self, cert: &Certificate, now: i64) -> bool {
        self.keep_expired || !cert.is_expired(now)
    }

    /// Concerns about a certificate that is published. `custom` says whether
    /// it came from a source (anchor, expiry-soon and strength checks apply
    /// to those only: the base is somebody else's curated list, and warning
    /// about it would bury the warnings an operator can act on). `has_issuer`
    /// says whether the bundle holds a certificate whose subject is this
    /// one's issuer.
    pub fn concerns(
        &self,
        cert: &Certificate,
        custom: bool,
        has_issuer: bool,
        now: i64,
    ) -> Vec<Concern> {
        let mut out = Vec::new();
        if cert.is_expired(now) {
            out.push(Concern::ExpiredKept);
        } else if custom && cert.not_after - now <= EXPIRY_WARNING_DAYS * 86_400 {
            out.push(Concern::ExpiresSoon);
        }
        if cert.not_before > now {
            out.push(Concern::NotYetValid);
        }
        if custom && !cert.is_ca {
            out.push(Concern::NotCa);
        }
        // A certificate that is self-signed to OpenSSL is its own issuer
        // (`has_issuer`), yet may still be no .NET anchor.
        if custom && cert.is_ca && !dotnet_anchor(cert) && (cert.self_signed || !has_issuer) {
            out.push(Concern::MissingRoot);
        }
        if custom {
            // Read again here rather than stored in every `Certificate`:
            // only custom certificates pay for it.
            let facts = Strength::of(cert);
            if facts.weak_key() {
                out.push(Concern::WeakKey {
                    algorithm: facts.key_algorithm.clone(),
                    bits: facts.key_bits,
                });
            }
            // A self-signature is never checked by a client (the
            // certificate is trusted as such), so SHA-1 there is harmless;
            // many long-lived public roots are SHA-1 self-signed.
            if facts.weak_signature && !cert.self_signed {
                out.push(Concern::WeakSignature {
                    algorithm: facts.signature_algorithm.clone(),
                });
            }
        }
        out
    }
}

/// The parts of a certificate that only diagnosis needs: key, signature
/// algorithm, names and extended key usages.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertFacts {
    /// `RSA`, `EC`, `Ed25519`, `DSA`, or the algorithm's OID.
    pub key_algorithm: String,
    /// Key size in bits; for EC the curve's size; 0 when unknown.
    pub key_bits: u32,
    /// Signature algorithm name (`sha256WithRSAEncryption`, `ecdsa-with-SHA256` …) or OID.
    pub signature_algorithm: String,
    /// Whether the signature uses SHA-1, MD5 or MD2.
    pub weak_signature: bool,
    /// subjectAltName DNS names and IP addresses, in certificate order.
    pub names: Vec<String>,
    /// Extended key usages (`serverAuth`, `clientAuth` … or OIDs); `None`
    /// when the extension is absent, which allows every usage.
    pub extended_key_usage: Option<Vec<String>>,
}

impl CertFacts {
    /// Facts of `cert`.
    pub fn of(cert: &Certificate) -> CertFacts {
        // Invariant: `Certificate::from_der`, its only constructor, parsed
        // these very bytes with this very parser; a failure here is a bug,
        // and answering "no facts" would hide a weak key or a name.
        let (_, x509) = X509Certificate::from_der(&cert.der)
            .expect("a Certificate's DER was parsed when it was built");
        Self::from_x509(&x509)
    }

    fn from_x509(x509: &X509Certificate<'_>) -> CertFacts {
        let strength = Strength::from_fields(x509.public_key(), &x509.signature_algorithm);
        let mut names = Vec::new();
        let mut extended_key_usage = None;
        for ext in x509.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectAlternativeName(san) => {
                    for n in &san.general_names {
                        match n {
                            GeneralName::DNSName(d) => names.push((*d).to_string()),
                            GeneralName::IPAddress(ip) => names.push(ip_string(ip)),
                            _ => {}
                        }
                    }
                }
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    let mut usages = Vec::new();
                    let flags = [
                        (eku.any, "anyExtendedKeyUsage"),
                        (eku.server_auth, "serverAuth"),
                        (eku.client_auth, "clientAuth"),
                        (eku.code_signing, "codeSigning"),
                        (eku.email_protection, "emailProtection"),
                        (eku.time_stamping, "timeStamping"),
                        (eku.ocsp_signing, "OCSPSigning"),
                    ];
                    usages.extend(
                        flags
                            .iter()
                            .filter(|(on, _)| *on)
                            .map(|(_, n)| n.to_string()),
                    );
                    usages.extend(eku.other.iter().map(|o| o.to_id_string()));
                    extended_key_usage = Some(usages);
                }
                _ => {}
            }
        }
        CertFacts {
            key_algorithm: strength.key_algorithm,
            key_bits: strength.key_bits,
            signature_algorithm: strength.signature_algorithm,
            weak_signature: strength.weak_signature,
            names,
            extended_key_usage,
        }
    }

    /// Whether TLS clients refuse this key.
    pub fn weak_key(&self) -> bool {
        strength::weak_key(&self.key_algorithm, self.key_bits)
    }

    /// Whether the certificate may be used by a TLS server (no EKU extension,
    /// or one listing serverAuth or anyExtendedKeyUsage).
    pub fn allows_server_auth(&self) -> bool {
        match &self.extended_key_usage {
            None => true,
            Some(u) => u
                .iter()
                .any(|n| n == "serverAuth" || n == "anyExtendedKeyUsage"),
        }
    }
}

/// Whether .NET on Linux takes `cert` from a bundle as a trust anchor (a
/// root). .NET 8's `OpenSslCachedSystemStoreProvider` files a certificate as
/// a root when its Subject and Issuer, formatted as text, are equal
/// (`StringComparer.Ordinal.Equals(cert.Subject, cert.Issuer)` in 8.0.4), and
/// as an intermediate otherwise. That is stricter
/// than [`Certificate::self_signed`], OpenSSL's canonical comparison, which
/// folds case and spaces: a root whose issuer is spelled `CN=EXAMPLE ROOT` and
/// subject `CN=Example Root` is self-signed to OpenSSL and only an
/// intermediate to .NET (which then reports `UntrustedRoot`; tests/dotnet.rs).
pub(crate) fn dotnet_anchor(cert: &Certificate) -> bool {
    if !cert.self_signed {
        // Names that differ canonically never format to the same text.
        return false;
    }
    // Names of the same bytes format to the same text, as in [`same_text`]:
    // found with the DER walker, without parsing the certificate again.
    if tbs::names(&cert.der).is_ok_and(|(issuer, subject)| issuer == subject) {
        return true;
    }
    match X509Certificate::from_der(&cert.der) {
        Ok((_, x509)) => same_text(x509.subject(), x509.issuer()),
        // `Certificate::from_der` parsed these bytes already.
        Err(_) => true,
    }
}

/// The names as .NET formats them are equal: same RDNs, same attribute types,
/// same decoded values, nothing folded. A value whose string type is not
/// decoded here is compared as bytes (an unneeded warning at worst, never a
/// missed one).
fn same_text(a: &X509Name<'_>, b: &X509Name<'_>) -> bool {
    if a.as_raw() == b.as_raw() {
        return true;
    }
    fn text(name: &X509Name<'_>) -> Vec<Vec<NameText>> {
        name.iter()
            .map(|rdn| {
                rdn.iter()
                    .map(|atv| {
                        let value = atv.attr_value();
                        let decoded = match atv.as_str() {
                            Ok(s) => Ok(s.to_string()),
                            Err(_)
                                if value.tag()
                                    == x509_parser::der_parser::asn1_rs::Tag::BmpString =>
                            {
                                utf16be(value.data).ok_or_else(|| value.data.to_vec())
                            }
                            Err(_) => Err([&value.tag().0.to_be_bytes()[..], value.data].concat()),
                        };
                        (atv.attr_type().to_id_string(), decoded)
                    })
                    .collect()
            })
            .collect()
    }
    text(a) == text(b)
}

/// One attribute of a name as .NET shows it: the type's OID, and the decoded
/// value (or, for a string type not decoded here, its tag and bytes).
type NameText = (String, Result<String, Vec<u8>>);

/// A BMPString's text, or `None` when it is not valid UTF-16.
fn utf16be(bytes: &[u8]) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
        .collect();
    String::from_utf16(&units).ok()
}

fn ip_string(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => {
            let mut a = [0u8; 4];
            a.copy_from_slice(bytes);
            std::net::Ipv4Addr::from(a).to_string()
        }
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(bytes);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => crate::trust::cert::hex(bytes),
    }
}

#[cfg(test)]
mod tests;
