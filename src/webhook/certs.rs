//! `trust-injector webhook certs`: a CA and a serving certificate for the
//! webhook's Service, for clusters without cert-manager.
//!
//! The CA's key is never written: it signs the one serving certificate and is
//! dropped, so nothing on disk can mint further certificates the API server
//! would trust for this webhook. Renewal is running the command again (a new
//! CA, a new caBundle).

use crate::config::WebhookCertsArgs;
use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Why the files could not be made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CertsError {
    #[error("generating the certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// What was generated, PEM-encoded.
pub(crate) struct Generated {
    /// The CA: `ca.crt`, and base64-encoded the caBundle.
    pub ca_pem: String,
    /// The serving certificate: `tls.crt`.
    pub cert_pem: String,
    /// Its key: `tls.key`.
    pub key_pem: String,
}

/// The DNS names the API server uses for `service` in `namespace`.
pub(crate) fn service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_string(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// Makes the CA and the serving certificate.
pub(crate) fn generate(service: &str, namespace: &str, days: u32) -> Result<Generated, CertsError> {
    let now = time::OffsetDateTime::now_utc();
    // An hour back: a node whose clock runs slightly behind still accepts it.
    let not_before = now - time::Duration::hours(1);
    let not_after = now + time::Duration::days(i64::from(days));

    let mut ca = CertificateParams::default();
    ca.distinguished_name = name(&format!("trust-injector webhook CA ({namespace})"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca.self_signed(&ca_key)?;

    let names = service_names(service, namespace);
    let mut leaf = CertificateParams::new(names.clone())?;
    leaf.distinguished_name = name(&names[2]);
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = not_before;
    leaf.not_after = not_after;
    leaf.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate()?;
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key)?;
    Ok(Generated {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn name(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CommonName, cn);
    d
}

/// Writes ca.crt, tls.crt and tls.key (0600) into `dir`, refusing to
/// overwrite, and returns the caBundle (base64 of ca.crt).
pub(crate) fn run(args: &WebhookCertsArgs) -> Result<String, CertsError> {
    let g = generate(&args.service, &args.namespace, args.days)?;
    let dir = &args.out_dir;
    std::fs::create_dir_all(dir).map_err(|source| CertsError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    write_new(&dir.join("ca.crt"), &g.ca_pem, 0o644)?;
    write_new(&dir.join("tls.crt"), &g.cert_pem, 0o644)?;
    write_new(&dir.join("tls.key"), &g.key_pem, 0o600)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(g.ca_pem))
}

fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), CertsError> {
    let err = |source| CertsError::Write {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)
}
