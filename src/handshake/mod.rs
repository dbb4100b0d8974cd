//! `verify URL --bundle FILE`: a TLS handshake to a backend trusting only
//! FILE, and the outcome explained in plain words.
//!
//! The handshake is a real rustls client whose certificate verifier records
//! the chain the server sends and then delegates to rustls's own webpki
//! verifier, so "trusted" means what a rustls client would say. The
//! explanation is then worked out from the recorded chain by [`diagnose`],
//! which runs webpki path building twice: once with every bundle certificate
//! as an anchor (the rule of OpenSSL with a partial chain allowed, curl, Go,
//! Python 3.13+), once with only self-signed ones as anchors (the rule of
//! .NET on Linux and of OpenSSL's defaults). Trusted means trusted by both,
//! because this project's first user is a .NET program.
//!
//! Blocking IO with timeouts: one connection, nothing to overlap, so an async
//! runtime would add size and nothing else.
//!
//! [`connect`] makes the connection and the recording handshake, [`diagnose`]
//! works out the causes, [`render`] writes the plain-words report.

mod connect;
mod diagnose;
mod explain;
mod render;
mod served_chain;

use connect::{connect, connect_failure, describe_tls_error, handshake, Recorder};
use diagnose::cert_info;
pub use diagnose::diagnose;
pub use render::render_text;

use crate::trust::bundle_files::{read_path, BundleFilesError};
use crate::trust::cert::Certificate;
use crate::trust::parse::{parse_file, ParseError};
use crate::trust::read::ReadError;
use crate::trust::summary::CertSummary;
use rustls::ClientConfig;
use rustls_pki_types::{CertificateDer, ServerName};
use serde::Serialize;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Why `verify` could not even start: always exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The URL cannot name a TLS backend.
    #[error("URL {url}: {why}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it, in words.
        why: &'static str,
    },
    #[error("--servername {0}: not a valid DNS name or IP address")]
    ServerName(String),
    /// The bundle, or one of its files, cannot be trusted as given.
    #[error("--bundle {path}: {why}")]
    Bundle {
        /// The bundle, or the file of it at fault.
        path: String,
        /// Why.
        why: BundleError,
    },
    /// rustls refused the client's configuration (a build without a
    /// usable crypto provider).
    #[error("cannot set up the TLS client: {0}")]
    Tls(#[from] rustls::Error),
    /// rustls refused to build the verifier from the bundle.
    #[error("cannot set up the TLS client: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
}

/// Why the bundle to trust cannot be used: "trusting only FILE" must not
/// silently trust less than the user thinks.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Nothing could be read behind the path.
    #[error(transparent)]
    Files(#[from] BundleFilesError),
    /// One of its files could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// One of its files is not certificates.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// Every file read, none held a certificate.
    #[error("holds no certificate")]
    NoCertificate,
}

/// Where to connect and which name to check.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given, for the report.
    pub url: String,
    pub host: String,
    pub port: u16,
    /// SNI and the name checked against the certificate.
    pub server_name: ServerName<'static>,
}

impl Target {
    /// Parses `https://host[:port][/path]`, `host:port`, `[v6]:port` or
    /// `host`. Another scheme is accepted with an explicit port (a TLS
    /// backend need not speak HTTP).
    pub fn parse(url: &str, servername: Option<&str>) -> Result<Target, VerifyError> {
        let bad = |why: &'static str| VerifyError::Url {
            url: url.to_string(),
            why,
        };
        let (scheme, rest) = match url.split_once("://") {
            Some((s, r)) => (Some(s.to_ascii_lowercase()), r),
            None => (None, url),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let authority = authority.rsplit('@').next().unwrap_or_default();
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unclosed [ in an IPv6 address"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(bad("unexpected text after ]")),
            };
            (h, port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let port = match (port, scheme.as_deref()) {
            (Some(p), _) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
            (None, None | Some("https")) => 443,
            (None, Some(_)) => return Err(bad("give the port: only https:// implies 443")),
        };
        let name = servername.unwrap_or(host);
        let server_name = ServerName::try_from(name.to_string()).map_err(|_| match servername {
            Some(s) => VerifyError::ServerName(s.to_string()),
            None => bad("the host is not a valid DNS name or IP address"),
        })?;
        Ok(Target {
            url: url.to_string(),
            host: host.to_string(),
            port,
            server_name,
        })
    }
}

/// The certificates to trust, and the files of a directory that were left
/// out, in words.
#[derive(Debug, Default)]
pub struct LoadedBundle {
    pub certs: Vec<Certificate>,
    /// One warning per broken file skipped.
    pub skipped: Vec<String>,
}

/// Reads the bundle to trust: a PEM/DER file, a hashed directory or a Secret
/// volume. A directory is read as the sidecar reads a source: a file that
/// cannot be read or parsed is left out with a warning naming it, so the
/// verdict is about what the sidecar would publish. A single file given as
/// the bundle must parse whole: "trusting only FILE" must not silently
/// trust less than the user thinks.
pub fn load_bundle(path: &Path) -> Result<LoadedBundle, VerifyError> {
    let bad = |p: &Path, why: BundleError| VerifyError::Bundle {
        path: p.display().to_string(),
        why,
    };
    let files = read_path(path).map_err(|why| bad(path, why.into()))?;
    let is_dir = path.is_dir();
    let mut loaded = LoadedBundle::default();
    let certs = &mut loaded.certs;
    for f in files {
        let parsed = match f
            .bytes
            .map_err(|e| bad(&f.path, e.into()))
            .and_then(|b| parse_file(&b).map_err(|e| bad(&f.path, e.into())))
        {
            Ok(parsed) => parsed,
            Err(e) if is_dir => {
                loaded.skipped.push(format!(
                    "{e}; left out, as the sidecar leaves it out of what it publishes \
                     (fix or remove the file)"
                ));
                continue;
            }
            Err(e) => return Err(e),
        };
        for c in parsed.certs {
            // A hashed directory next to its bundle holds every certificate twice.
            if !certs.iter().any(|k| k.der == c.der) {
                certs.push(c);
            }
        }
    }
    if certs.is_empty() {
        return Err(bad(path, BundleError::NoCertificate));
    }
    Ok(loaded)
}

/// Whether the backend is trusted, not trusted, or could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Trusted,
    NotTrusted,
    CouldNotConnect,
}

impl Verdict {
    /// The process exit code: 0 trusted, 1 not trusted, 3 could not connect.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Trusted => 0,
            Verdict::NotTrusted => 1,
            Verdict::CouldNotConnect => 3,
        }
    }
}

/// One reason for the verdict, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cause {
    /// Stable machine name, e.g. `unknown_issuer` (see the README).
    pub code: &'static str,
    /// What is wrong, naming the certificate.
    pub message: String,
    /// What to do.
    pub fix: String,
}

impl Cause {
    fn new(code: &'static str, message: String, fix: impl Into<String>) -> Cause {
        Cause {
            code,
            message,
            fix: fix.into(),
        }
    }
}

/// A certificate sent by the server, or the bundle's anchor.
#[derive(Debug, Clone, Serialize)]
pub struct CertInfo {
    /// Subject, issuer and validity, as `/status` and `inspect` show them.
    #[serde(flatten)]
    pub cert: CertSummary,
    pub days_left: i64,
    pub ca: bool,
    pub self_signed: bool,
    pub sha256: String,
    /// subjectAltName DNS names and IPs.
    pub names: Vec<String>,
    /// Whether this exact certificate is in the bundle.
    pub in_bundle: bool,
}

/// Everything `verify` found out.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub url: String,
    pub server_name: String,
    pub bundle: String,
    pub bundle_certificates: usize,
    /// The address the TCP connection reached.
    pub address: Option<String>,
    /// `TLSv1.3` / `TLSv1.2` once the handshake completed.
    pub protocol: Option<String>,
    /// The chain the server sent, leaf first.
    pub chain: Vec<CertInfo>,
    /// The same chain as sent: the backend checks diagnose it again without
    /// the retained CAs, to tell which backends only those still anchor.
    #[serde(skip)]
    pub chain_der: Vec<CertificateDer<'static>>,
    /// The bundle certificate the chain is anchored on, when it is.
    pub anchor: Option<CertInfo>,
    pub verdict: Verdict,
    /// Why it is not trusted or not reachable; empty when trusted.
    pub causes: Vec<Cause>,
    /// Things worth fixing that do not break trust today.
    pub warnings: Vec<String>,
}

/// What the recorded chain means, before any connection detail.
#[derive(Debug, Clone, Default)]
pub struct Diagnosis {
    /// Empty when trusted.
    pub causes: Vec<Cause>,
    /// Index in the bundle of the anchor of the best path found.
    pub anchor: Option<usize>,
    pub warnings: Vec<String>,
}

/// Options of one run.
#[derive(Debug, Clone)]
pub struct Options {
    /// For the TCP connect and for each read/write of the handshake.
    pub timeout: Duration,
}

/// Connects to `target`, trusting only `bundle`, and explains the outcome.
pub fn verify(
    target: &Target,
    bundle_path: &Path,
    bundle: &[Certificate],
    options: &Options,
) -> Result<Report, VerifyError> {
    let mut report = Report {
        url: target.url.clone(),
        server_name: target.server_name.to_str().into_owned(),
        bundle: bundle_path.display().to_string(),
        bundle_certificates: bundle.len(),
        address: None,
        protocol: None,
        chain: Vec::new(),
        chain_der: Vec::new(),
        anchor: None,
        verdict: Verdict::CouldNotConnect,
        causes: Vec::new(),
        warnings: Vec::new(),
    };
    let (recorder, config) = recording_client(bundle)?;
    let tcp = match connect(target, options.timeout) {
        Ok(s) => s,
        Err(cause) => {
            report.causes.push(cause);
            return Ok(report);
        }
    };
    report.address = tcp.peer_addr().ok().map(|a| a.to_string());
    let handshake = handshake(tcp, Arc::new(config), target.server_name.clone());
    match (recorder.take(), handshake) {
        (None, Err(e)) => {
            let address = report
                .address
                .clone()
                .unwrap_or_else(|| format!("{}:{}", target.host, target.port));
            report
                .causes
                .push(no_chain_cause(&e, target, &address, options.timeout));
        }
        (None, Ok(_)) => {
            // rustls always asks the verifier before finishing a handshake;
            // this is here so that a surprise is reported, not hidden.
            report.causes.push(Cause::new(
                "no_certificate",
                "the handshake finished without the server presenting a certificate".into(),
                "check that the URL points at the TLS backend",
            ));
        }
        (Some(chain), handshake) => {
            let now = crate::clock::now_unix();
            explain_chain(
                &mut report,
                &chain,
                handshake,
                bundle,
                &target.server_name,
                now,
            );
        }
    }
    Ok(report)
}

/// A rustls client trusting only `bundle`, whose verifier records the chain
/// the server sends.
fn recording_client(bundle: &[Certificate]) -> Result<(Arc<Recorder>, ClientConfig), VerifyError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let recorder = Arc::new(Recorder::new(bundle, provider.clone())?);
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    Ok((recorder, config))
}

/// Why a handshake failed before any certificate arrived.
fn no_chain_cause(e: &io::Error, target: &Target, address: &str, timeout: Duration) -> Cause {
    let mut cause = connect_failure(e, address, timeout);
    // Suggesting http:// to someone who typed it helps nobody: say
    // what verify needs instead.
    if cause.code == "not_tls" && target.url.to_ascii_lowercase().starts_with("http://") {
        cause.fix = "http:// is plain HTTP, which has no certificate to verify; give the \
                     backend's TLS port (https://host:port/)"
            .into();
    }
    cause
}

/// Fills in `report` from the chain the server sent and how the handshake
/// ended: the chain and anchor shown, the diagnosis, and the verdict.
fn explain_chain(
    report: &mut Report,
    chain: &[CertificateDer<'static>],
    handshake: io::Result<String>,
    bundle: &[Certificate],
    server_name: &ServerName<'_>,
    now: i64,
) {
    if let Ok(protocol) = &handshake {
        report.protocol = Some(protocol.clone());
    }
    let sent: Vec<Certificate> = chain
        .iter()
        .filter_map(|d| Certificate::from_der(d.as_ref()).ok())
        .collect();
    report.chain = sent.iter().map(|c| cert_info(c, bundle, now)).collect();
    report.chain_der = chain.to_vec();
    let diagnosis = diagnose(chain, bundle, server_name, now);
    report.anchor = diagnosis.anchor.map(|i| cert_info(&bundle[i], bundle, now));
    report.warnings.extend(diagnosis.warnings);
    report.causes = diagnosis.causes;
    if report.causes.is_empty() {
        report
            .warnings
            .extend(served_chain::omitted_intermediates(&sent, bundle));
    }
    if let (Err(e), true) = (&handshake, report.causes.is_empty()) {
        // The chain is trusted, but the server ended the handshake
        // later (e.g. it wants a client certificate). Trust is what
        // was asked; say what else happened.
        report.warnings.push(format!(
            "the chain is trusted, but the handshake then failed: {}",
            describe_tls_error(e)
        ));
    }
    report.verdict = if report.causes.is_empty() {
        Verdict::Trusted
    } else {
        Verdict::NotTrusted
    };
}

/// The whole command: parse, load, connect, explain. The report's verdict
/// gives the exit code; an error is a usage problem (exit 2).
pub fn run(
    url: &str,
    bundle: &Path,
    servername: Option<&str>,
    timeout: Duration,
) -> Result<Report, VerifyError> {
    let target = Target::parse(url, servername)?;
    let loaded = load_bundle(bundle)?;
    let mut report = verify(&target, bundle, &loaded.certs, &Options { timeout })?;
    // What the bundle left out comes first: it may be why the rest follows.
    report.warnings.splice(0..0, loaded.skipped);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("https://backend.internal:8443/api?x=1", None).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("backend.internal", 8443));
        let t = Target::parse("https://user@backend.internal/", None).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("backend.internal", 443));
        let t = Target::parse("[::1]:9443", None).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9443));
        let t = Target::parse("127.0.0.1:1", Some("localhost")).unwrap();
        assert_eq!(t.server_name.to_str(), "localhost");
        assert!(Target::parse("https://:443/", None).is_err());
        assert!(Target::parse("https://h:0/", None).is_err());
        assert!(Target::parse("https://h:x/", None).is_err());
        assert!(Target::parse("ldaps://h/", None).is_err());
        assert!(Target::parse("ldaps://h:636", None).is_ok());
        assert!(matches!(
            Target::parse("h:1", Some("bad name!")),
            Err(VerifyError::ServerName(_))
        ));
    }

    #[test]
    fn empty_chain_is_explained() {
        let name = ServerName::try_from("x").unwrap();
        let d = diagnose(&[], &[], &name, 0);
        assert_eq!(d.causes[0].code, "no_certificate");
    }
}
