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

use crate::cert::{display_line, rfc3339, Certificate};
use crate::parse::parse_file;
use crate::policy::{CertFacts, Concern, Policy};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use serde::Serialize;
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use webpki::{EndEntityCert, KeyUsage};

/// Why `verify` could not even start: always exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("URL {url}: {why}")]
    Url { url: String, why: String },
    #[error("--servername {0}: not a valid DNS name or IP address")]
    ServerName(String),
    #[error("--bundle {path}: {why}")]
    Bundle { path: String, why: String },
    #[error("cannot set up the TLS client: {0}")]
    Tls(String),
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
        let bad = |why: &str| VerifyError::Url {
            url: url.to_string(),
            why: why.to_string(),
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

/// Reads the bundle to trust: a PEM/DER file, a hashed directory or a Secret
/// volume. Any unreadable file is an error: "trusting only FILE" must not
/// silently trust less than the user thinks.
pub fn load_bundle(path: &Path) -> Result<Vec<Certificate>, VerifyError> {
    let bad = |p: &Path, why: String| VerifyError::Bundle {
        path: p.display().to_string(),
        why,
    };
    let files = crate::inspect::read_path(path).map_err(|why| bad(path, why))?;
    let mut certs: Vec<Certificate> = Vec::new();
    for f in files {
        let bytes = f.bytes.map_err(|e| bad(&f.path, e.to_string()))?;
        let parsed = parse_file(&bytes).map_err(|e| bad(&f.path, e.to_string()))?;
        for c in parsed.certs {
            // A hashed directory next to its bundle holds every certificate twice.
            if !certs.iter().any(|k| k.der == c.der) {
                certs.push(c);
            }
        }
    }
    if certs.is_empty() {
        return Err(bad(path, "holds no certificate".into()));
    }
    Ok(certs)
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
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
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
        anchor: None,
        verdict: Verdict::CouldNotConnect,
        causes: Vec::new(),
        warnings: Vec::new(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let recorder = Arc::new(Recorder::new(bundle, provider.clone())?);
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| VerifyError::Tls(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();

    let tcp = match connect(target, options.timeout) {
        Ok(s) => s,
        Err(cause) => {
            report.causes.push(cause);
            return Ok(report);
        }
    };
    report.address = tcp.peer_addr().ok().map(|a| a.to_string());
    let address = report
        .address
        .clone()
        .unwrap_or_else(|| format!("{}:{}", target.host, target.port));
    let handshake = handshake(tcp, Arc::new(config), target.server_name.clone());
    let chain = recorder.take();
    let now = crate::status::now_unix();
    match (chain, handshake) {
        (None, Err(e)) => {
            report
                .causes
                .push(connect_failure(&e, &address, options.timeout));
            return Ok(report);
        }
        (None, Ok(_)) => {
            // rustls always asks the verifier before finishing a handshake;
            // this is here so that a surprise is reported, not hidden.
            report.causes.push(Cause::new(
                "no_certificate",
                "the handshake finished without the server presenting a certificate".into(),
                "check that the URL points at the TLS backend",
            ));
            return Ok(report);
        }
        (Some(chain), handshake) => {
            if let Ok(protocol) = &handshake {
                report.protocol = Some(protocol.clone());
            }
            let parsed: Vec<Option<Certificate>> = chain
                .iter()
                .map(|d| Certificate::from_der(d.as_ref()).ok())
                .collect();
            report.chain = parsed
                .iter()
                .flatten()
                .map(|c| cert_info(c, bundle, now))
                .collect();
            let diagnosis = diagnose(&chain, bundle, &target.server_name, now);
            report.anchor = diagnosis.anchor.map(|i| cert_info(&bundle[i], bundle, now));
            report.warnings = diagnosis.warnings;
            report.causes = diagnosis.causes;
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
    }
    Ok(report)
}

/// Connects to the first address of `target` that answers.
fn connect(target: &Target, timeout: Duration) -> Result<TcpStream, Cause> {
    let where_ = format!("{}:{}", target.host, target.port);
    let addrs: Vec<SocketAddr> = match (target.host.as_str(), target.port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            return Err(Cause::new(
                "unresolvable",
                format!("cannot resolve {}: {e}", target.host),
                "check the host name, and the DNS seen from where this runs",
            ))
        }
    };
    let mut last: Option<io::Error> = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(s) => {
                // Without these a silent server would hang the handshake forever.
                let timeouts = s
                    .set_read_timeout(Some(timeout))
                    .and_then(|()| s.set_write_timeout(Some(timeout)));
                if let Err(e) = timeouts {
                    last = Some(e);
                    continue;
                }
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) if e.kind() == ErrorKind::ConnectionRefused => Cause::new(
            "connection_refused",
            format!("connection refused by {where_}: nothing listens on that port"),
            "check the host and port, and that the backend is running",
        ),
        Some(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => Cause::new(
            "timeout",
            format!(
                "no answer from {where_} within {}s while connecting",
                timeout.as_secs_f32()
            ),
            "check the host, the port and any firewall or NetworkPolicy in between",
        ),
        Some(e) => Cause::new(
            "connect_failed",
            format!("cannot connect to {where_}: {e}"),
            "check the host, the port and the network path",
        ),
        None => Cause::new(
            "unresolvable",
            format!("{} resolves to no address", target.host),
            "check the host name",
        ),
    })
}

/// Runs the handshake; returns the negotiated protocol.
fn handshake(
    mut sock: TcpStream,
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
) -> Result<String, io::Error> {
    let mut conn = ClientConnection::new(config, server_name).map_err(io::Error::other)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)?;
    }
    let protocol = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_string(),
    };
    // Polite close; the outcome is known already, so errors do not matter.
    conn.send_close_notify();
    let _ = conn.complete_io(&mut sock);
    Ok(protocol)
}

/// The rustls error inside an IO error, if any.
fn tls_error(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
}

fn describe_tls_error(e: &io::Error) -> String {
    match tls_error(e) {
        Some(rustls::Error::AlertReceived(alert)) => format!("the server sent the alert {alert:?}"),
        Some(t) => t.to_string(),
        None => e.to_string(),
    }
}

/// Explains a handshake that failed before any certificate arrived.
fn connect_failure(e: &io::Error, address: &str, timeout: Duration) -> Cause {
    if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) {
        return Cause::new(
            "timeout",
            format!(
                "{address} accepted the connection but sent nothing for {}s during the TLS handshake",
                timeout.as_secs_f32()
            ),
            "the port may expect another protocol that waits for the client, or the server is stuck; check the port",
        );
    }
    match tls_error(e) {
        Some(rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. }) => {
            Cause::new(
                "not_tls",
                format!("{address} does not speak TLS: its answer is not a TLS handshake (plain HTTP, or another protocol)"),
                "use the backend's TLS port, or http:// if it really has no TLS",
            )
        }
        Some(rustls::Error::AlertReceived(alert)) => Cause::new(
            "handshake_refused",
            format!("{address} refused the TLS handshake (alert {alert:?}): no TLS version or cipher in common, or it wants another server name"),
            "check the backend's TLS versions (1.2 or 1.3 needed) and the server name (--servername)",
        ),
        Some(rustls::Error::PeerIncompatible(p)) => Cause::new(
            "handshake_refused",
            format!("{address} offers nothing this client accepts: {p:?}"),
            "enable TLS 1.2 or 1.3 with modern ciphers on the backend",
        ),
        Some(other) => Cause::new(
            "handshake_failed",
            format!("the TLS handshake with {address} failed: {other}"),
            "check that the port is the backend's TLS port",
        ),
        None if matches!(
            e.kind(),
            ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
        ) =>
        {
            Cause::new(
                "not_tls",
                format!("{address} closed the connection without answering the TLS handshake: it is not a TLS port, or it refuses this client"),
                "use the backend's TLS port; check its logs for the refused handshake",
            )
        }
        None => Cause::new(
            "handshake_failed",
            format!("the TLS handshake with {address} failed: {e}"),
            "check the network path and that the port is the backend's TLS port",
        ),
    }
}

/// A certificate verifier that records what the server sent, then lets
/// rustls's own webpki verifier decide. `diagnose` explains the decision
/// afterwards from the recording.
#[derive(Debug)]
struct Recorder {
    inner: Arc<WebPkiServerVerifier>,
    chain: Mutex<Option<Vec<CertificateDer<'static>>>>,
}

impl Recorder {
    fn new(bundle: &[Certificate], provider: Arc<CryptoProvider>) -> Result<Self, VerifyError> {
        let mut roots = RootCertStore::empty();
        // Every bundle certificate is a root here (what rustls and OpenSSL
        // with a partial chain do); the self-signed rule is `diagnose`'s job.
        roots
            .add_parsable_certificates(bundle.iter().map(|c| CertificateDer::from(c.der.to_vec())));
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| VerifyError::Tls(e.to_string()))?;
        Ok(Recorder {
            inner,
            chain: Mutex::new(None),
        })
    }

    fn take(&self) -> Option<Vec<CertificateDer<'static>>> {
        // A poisoned lock only means a panic elsewhere; the data is still whole.
        match self.chain.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        }
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let chain = std::iter::once(end_entity)
            .chain(intermediates)
            .map(|c| c.clone().into_owned())
            .collect();
        match self.chain.lock() {
            Ok(mut g) => *g = Some(chain),
            Err(p) => *p.into_inner() = Some(chain),
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

fn cert_info(c: &Certificate, bundle: &[Certificate], now: i64) -> CertInfo {
    CertInfo {
        subject: c.subject.clone(),
        issuer: c.issuer.clone(),
        not_before: rfc3339(c.not_before),
        not_after: rfc3339(c.not_after),
        days_left: (c.not_after - now).div_euclid(86_400),
        ca: c.is_ca,
        self_signed: c.self_signed,
        sha256: c.sha256.clone(),
        names: CertFacts::of(c).map(|f| f.names).unwrap_or_default(),
        in_bundle: bundle.iter().any(|b| b.der == c.der),
    }
}

/// Whether `issuer` is named as `cert`'s issuer (canonical name hash when
/// available, the display form otherwise).
fn names_issuer(issuer: &Certificate, cert: &Certificate) -> bool {
    match (issuer.subject_hash, cert.issuer_hash) {
        (Some(a), Some(b)) => a == b && issuer.subject == cert.issuer,
        _ => issuer.subject == cert.issuer,
    }
}

fn q(name: &str) -> String {
    format!("\"{}\"", display_line(name))
}

/// Explains whether `chain` (leaf first, as the server sent it) is trusted
/// by `bundle` for `server_name` at `now`. Pure: no IO, unit-testable.
pub fn diagnose(
    chain: &[CertificateDer<'_>],
    bundle: &[Certificate],
    server_name: &ServerName<'_>,
    now: i64,
) -> Diagnosis {
    let mut d = Diagnosis::default();
    let Some(leaf_der) = chain.first() else {
        d.causes.push(Cause::new(
            "no_certificate",
            "the server presented no certificate".into(),
            "configure a certificate on the backend",
        ));
        return d;
    };
    let sent: Vec<Certificate> = match chain
        .iter()
        .enumerate()
        .map(|(i, c)| Certificate::from_der(c.as_ref()).map_err(|e| (i, e)))
        .collect()
    {
        Ok(v) => v,
        Err((i, e)) => {
            d.causes.push(Cause::new(
                "bad_certificate",
                format!("certificate {i} sent by the server cannot be parsed: {e}"),
                "fix the certificate files configured on the backend",
            ));
            return d;
        }
    };
    let leaf = &sent[0];
    let ee = match EndEntityCert::try_from(leaf_der) {
        Ok(ee) => ee,
        Err(e) => {
            d.causes.push(Cause::new(
                "bad_certificate",
                format!(
                    "the server's certificate {} is not usable for TLS: {e:?}",
                    q(&leaf.subject)
                ),
                "re-issue it as an X.509 v3 certificate",
            ));
            return d;
        }
    };
    let algs = rustls::crypto::ring::default_provider()
        .signature_verification_algorithms
        .all;
    let time = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now).unwrap_or(0)));
    let bundle_ders: Vec<CertificateDer<'_>> = bundle
        .iter()
        .map(|c| CertificateDer::from(&c.der[..]))
        .collect();
    let sent_intermediates: Vec<CertificateDer<'_>> = chain[1..].to_vec();

    // Partial-chain rule: every bundle certificate is an anchor.
    let (lenient_idx, lenient_anchors) = anchors(&bundle_ders, |_| true, bundle);
    let lenient = ee
        .verify_for_usage(
            algs,
            &lenient_anchors,
            &sent_intermediates,
            time,
            KeyUsage::server_auth(),
            None,
            None,
        )
        .map(|p| anchor_index(p.anchor(), &lenient_anchors, &lenient_idx));

    // .NET rule: only self-signed bundle certificates anchor; the others can
    // still serve as intermediates.
    let (strict_idx, strict_anchors) = anchors(&bundle_ders, |c| c.self_signed, bundle);
    let mut strict_intermediates = sent_intermediates.clone();
    strict_intermediates.extend(
        bundle
            .iter()
            .zip(&bundle_ders)
            .filter(|(c, _)| !c.self_signed)
            .map(|(_, der)| der.clone()),
    );
    let strict = ee
        .verify_for_usage(
            algs,
            &strict_anchors,
            &strict_intermediates,
            time,
            KeyUsage::server_auth(),
            None,
            None,
        )
        .map(|p| anchor_index(p.anchor(), &strict_anchors, &strict_idx));

    match (&lenient, &strict) {
        (_, Ok(anchor)) => d.anchor = *anchor,
        (Ok(anchor), Err(_)) => {
            d.anchor = *anchor;
            let (name, issuer) = anchor
                .map(|i| (q(&bundle[i].subject), q(&bundle[i].issuer)))
                .unwrap_or_else(|| ("a bundle certificate".into(), "its issuer".into()));
            d.causes.push(Cause::new(
                "partial_chain_only",
                format!(
                    "trusted only through {name}, a bundle certificate that is not self-signed \
                     (its issuer {issuer} is not in the bundle): clients that accept a partial chain \
                     (curl, Go, Python 3.13+) trust this backend; .NET on Linux and OpenSSL's default \
                     rules do not"
                ),
                format!(
                    "add the root {issuer} to the bundle (with trust-injector: to the CA Secret); \
                     .NET anchors only self-signed certificates"
                ),
            ));
        }
        (Err(e), Err(_)) => d.causes.push(explain_chain_error(e, &sent, bundle, now)),
    }

    // webpki does not check an anchor's validity; OpenSSL and .NET do.
    if let Some(i) = d.anchor {
        let a = &bundle[i];
        if a.is_expired(now) {
            d.causes.push(Cause::new(
                "expired",
                format!(
                    "the bundle's anchor {} expired at {}",
                    q(&a.subject),
                    rfc3339(a.not_after)
                ),
                "put the CA's renewed certificate in the bundle",
            ));
        } else if a.not_before > now {
            d.causes.push(Cause::new(
                "not_yet_valid",
                format!(
                    "the bundle's anchor {} is not valid before {}",
                    q(&a.subject),
                    rfc3339(a.not_before)
                ),
                "check the clocks, or wait until it is valid",
            ));
        }
    }

    if let Err(e) = ee.verify_is_valid_for_subject_name(server_name) {
        let names = CertFacts::of(leaf).map(|f| f.names).unwrap_or_default();
        let held = if names.is_empty() {
            "no subjectAltName at all (clients ignore the CN)".to_string()
        } else {
            format!("only {}", names.join(", "))
        };
        let message = match e {
            webpki::Error::UnsupportedNameType => format!(
                "the server name {} cannot be checked against a certificate",
                server_name.to_str()
            ),
            _ => format!(
                "the certificate {} is not valid for {}; it holds {held}",
                q(&leaf.subject),
                server_name.to_str()
            ),
        };
        d.causes.push(Cause::new(
            "hostname_mismatch",
            message,
            format!(
                "connect with a name the certificate holds (--servername to test one), or re-issue it with {} in its subjectAltName",
                server_name.to_str()
            ),
        ));
    }

    // Not failures today, but things to fix: the same checks as the
    // publish loop and `inspect`.
    let policy = Policy::default();
    let mut seen = Vec::new();
    for c in sent.iter().chain(d.anchor.map(|i| &bundle[i])) {
        if seen.contains(&&c.sha256) {
            continue;
        }
        seen.push(&c.sha256);
        for concern in policy.concerns(c, true, true, now) {
            if matches!(
                concern,
                Concern::ExpiresSoon | Concern::WeakKey { .. } | Concern::WeakSignature { .. }
            ) {
                d.warnings.push(format!(
                    "{}: {}",
                    display_line(&c.subject),
                    concern.explain(c)
                ));
            }
        }
    }
    d
}

/// Trust anchors for the bundle certificates that pass `keep`, with their
/// bundle indexes.
fn anchors<'a>(
    ders: &'a [CertificateDer<'a>],
    keep: impl Fn(&Certificate) -> bool,
    bundle: &[Certificate],
) -> (Vec<usize>, Vec<TrustAnchor<'a>>) {
    ders.iter()
        .enumerate()
        .filter(|(i, _)| keep(&bundle[*i]))
        .filter_map(|(i, der)| webpki::anchor_from_trusted_cert(der).ok().map(|a| (i, a)))
        .unzip()
}

fn anchor_index(
    found: &TrustAnchor<'_>,
    anchors: &[TrustAnchor<'_>],
    idx: &[usize],
) -> Option<usize> {
    anchors
        .iter()
        .position(|a| {
            a.subject == found.subject && a.subject_public_key_info == found.subject_public_key_info
        })
        .and_then(|p| idx.get(p).copied())
}

/// Role of a certificate in the sent chain, for messages.
fn role(i: usize) -> &'static str {
    if i == 0 {
        "the server's certificate"
    } else {
        "the intermediate sent by the server"
    }
}

/// Turns webpki's verdict into a cause that names the certificate at fault,
/// found from the chain's facts (webpki says what, not which).
fn explain_chain_error(
    e: &webpki::Error,
    sent: &[Certificate],
    bundle: &[Certificate],
    now: i64,
) -> Cause {
    use webpki::Error as W;
    match e {
        W::CertExpired { .. } => {
            let (i, c) = sent
                .iter()
                .enumerate()
                .find(|(_, c)| c.not_after < now)
                .unwrap_or((0, &sent[0]));
            Cause::new(
                "expired",
                format!(
                    "{} {} expired at {} ({} day(s) ago)",
                    role(i),
                    q(&c.subject),
                    rfc3339(c.not_after),
                    (now - c.not_after) / 86_400
                ),
                "renew it and install the new certificate on the backend",
            )
        }
        W::CertNotValidYet { .. } => {
            let (i, c) = sent
                .iter()
                .enumerate()
                .find(|(_, c)| c.not_before > now)
                .unwrap_or((0, &sent[0]));
            Cause::new(
                "not_yet_valid",
                format!(
                    "{} {} is not valid before {}",
                    role(i),
                    q(&c.subject),
                    rfc3339(c.not_before)
                ),
                "check the clocks of the issuing CA and of this machine, or wait until it is valid",
            )
        }
        // ring refuses RSA keys under 2048 bits as a bad signature, which
        // would otherwise read as "unknown issuer": rule that out first.
        W::UnknownIssuer | W::InvalidSignatureForPublicKey => {
            weak_cause(sent, bundle).unwrap_or_else(|| missing_issuer(sent, bundle))
        }
        W::EndEntityUsedAsCa => {
            let culprit = sent[1..]
                .iter()
                .chain(bundle)
                .find(|c| !c.is_ca && sent.iter().any(|s| names_issuer(c, s)));
            let name = culprit.map_or("an issuer in the chain".to_string(), |c| q(&c.subject));
            Cause::new(
                "intermediate_not_ca",
                format!(
                    "the intermediate {name} issued the server's certificate but is not a CA \
                     (no basicConstraints CA:TRUE), so clients refuse it as an issuer"
                ),
                "re-issue the intermediate as a CA (basicConstraints CA:TRUE, keyUsage keyCertSign) and the server's certificate from it",
            )
        }
        W::CaUsedAsEndEntity => Cause::new(
            "leaf_is_ca",
            format!(
                "the server presents a CA certificate {} as its own certificate",
                q(&sent[0].subject)
            ),
            "issue a server certificate (CA:FALSE) from that CA and install it on the backend",
        ),
        #[allow(deprecated)] // both spellings exist in webpki 0.103
        W::RequiredEkuNotFound | W::RequiredEkuNotFoundContext(_) => {
            let (i, c, ekus) = sent
                .iter()
                .enumerate()
                .filter_map(|(i, c)| CertFacts::of(c).map(|f| (i, c, f)))
                .find(|(_, _, f)| !f.allows_server_auth())
                .map(|(i, c, f)| (i, c, f.extended_key_usage.unwrap_or_default()))
                .unwrap_or((0, &sent[0], Vec::new()));
            Cause::new(
                "missing_server_auth",
                format!(
                    "{} {} may not be used by a TLS server: its extended key usage lists only {} (serverAuth is missing)",
                    role(i),
                    q(&c.subject),
                    if ekus.is_empty() { "nothing".to_string() } else { ekus.join(", ") }
                ),
                "re-issue it with extendedKeyUsage serverAuth",
            )
        }
        #[allow(deprecated)] // both spellings exist in webpki 0.103
        W::UnsupportedSignatureAlgorithm
        | W::UnsupportedSignatureAlgorithmContext(_)
        | W::UnsupportedSignatureAlgorithmForPublicKey
        | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => weak_cause(sent, bundle)
            .unwrap_or_else(|| {
                Cause::new(
                    "weak_algorithm",
                    format!("a certificate in the chain uses an algorithm clients refuse: {e:?}"),
                    "re-issue it with SHA-256 and an RSA >= 2048 or EC P-256+ key",
                )
            }),
        other => Cause::new(
            "rejected",
            format!("the chain is refused: {other:?}"),
            "inspect the chain (trust-injector inspect) and re-issue the faulty certificate",
        ),
    }
}

/// A weak signature on a sent certificate, or a weak key on a certificate
/// that issues one of them (sent or in the bundle), named.
fn weak_cause(sent: &[Certificate], bundle: &[Certificate]) -> Option<Cause> {
    let fix = "re-issue it with SHA-256 and an RSA >= 2048 or EC P-256+ key";
    for c in sent {
        let f = CertFacts::of(c)?;
        if f.weak_signature && !c.self_signed {
            return Some(Cause::new(
                "weak_algorithm",
                format!(
                    "{} is signed with {}, which clients refuse",
                    q(&c.subject),
                    f.signature_algorithm
                ),
                fix,
            ));
        }
    }
    let issuers = sent
        .iter()
        .chain(bundle)
        .filter(|i| sent.iter().any(|c| names_issuer(i, c)));
    for i in issuers {
        let f = CertFacts::of(i)?;
        if f.weak_key() {
            return Some(Cause::new(
                "weak_algorithm",
                format!(
                    "{} has a weak key ({} {} bits): clients refuse the signatures it makes",
                    q(&i.subject),
                    f.key_algorithm,
                    f.key_bits
                ),
                fix,
            ));
        }
    }
    None
}

/// Walks up the sent chain by issuer name to the first certificate whose
/// issuer is in neither the chain nor the bundle, and says who is missing.
fn missing_issuer(sent: &[Certificate], bundle: &[Certificate]) -> Cause {
    let mut i = 0;
    let mut visited = vec![0];
    loop {
        let cur = &sent[i];
        if let Some(b) = bundle
            .iter()
            .find(|b| names_issuer(b, cur) && b.der != cur.der)
        {
            // The bundle has the issuer's name, yet no path: its key did not
            // sign this certificate (a CA re-created with the same name).
            return Cause::new(
                "issuer_key_mismatch",
                format!(
                    "the bundle holds {} but that certificate did not sign {} {}: same name, different key (the CA was re-created or re-keyed)",
                    q(&b.subject),
                    role(i),
                    q(&cur.subject)
                ),
                "put the CA certificate that actually issued it in the bundle (compare the key identifiers with trust-injector inspect)",
            );
        }
        if cur.self_signed {
            return if i == 0 {
                Cause::new(
                    "self_signed_leaf",
                    format!(
                        "the server's certificate {} is self-signed and not in the bundle",
                        q(&cur.subject)
                    ),
                    "have the backend use a certificate issued by your CA, or (to pin this one) add it to the bundle",
                )
            } else {
                Cause::new(
                    "unknown_issuer",
                    format!(
                        "the server sends its root {} but the bundle does not hold it",
                        q(&cur.subject)
                    ),
                    format!(
                        "add the root {} to the bundle (with trust-injector: to the CA Secret)",
                        q(&cur.subject)
                    ),
                )
            };
        }
        match sent
            .iter()
            .enumerate()
            .find(|(j, s)| !visited.contains(j) && names_issuer(s, cur))
        {
            Some((j, _)) => {
                visited.push(j);
                i = j;
            }
            None if i == 0 => {
                let others = if sent.len() > 1 {
                    format!(
                        "the server sends {} other certificate(s) but not it",
                        sent.len() - 1
                    )
                } else {
                    "the server sends no intermediate".to_string()
                };
                return Cause::new(
                    "missing_intermediate",
                    format!(
                        "{others}, and the bundle lacks {}, the issuer of the server's certificate {}",
                        q(&cur.issuer),
                        q(&cur.subject)
                    ),
                    format!(
                        "configure the backend to send its full chain (certificate + intermediate), or add {} to the bundle together with its root",
                        q(&cur.issuer)
                    ),
                );
            }
            None => {
                return Cause::new(
                    "unknown_issuer",
                    format!(
                        "the bundle has no certificate for {}, which issued {}",
                        q(&cur.issuer),
                        q(&cur.subject)
                    ),
                    format!(
                        "add {} (and its root, if it is not one) to the bundle (with trust-injector: to the CA Secret)",
                        q(&cur.issuer)
                    ),
                )
            }
        }
    }
}

/// The human report.
pub fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let line = |out: &mut String, k: &str, v: &str| out.push_str(&format!("{k:<9} {v}\n"));
    line(
        &mut out,
        "backend:",
        &format!(
            "{} (server name {})",
            display_line(&r.url),
            display_line(&r.server_name)
        ),
    );
    line(
        &mut out,
        "bundle:",
        &format!(
            "{} ({} certificate(s))",
            display_line(&r.bundle),
            r.bundle_certificates
        ),
    );
    if let Some(a) = &r.address {
        let proto = r.protocol.as_deref().unwrap_or("handshake not completed");
        line(&mut out, "address:", &format!("{a}, {proto}"));
    }
    if !r.chain.is_empty() {
        out.push_str("chain sent by the server:\n");
        for (i, c) in r.chain.iter().enumerate() {
            out.push_str(&format!("  [{i}] {}\n", display_line(&c.subject)));
            out.push_str(&format!("      issuer:  {}\n", display_line(&c.issuer)));
            out.push_str(&format!(
                "      valid:   {} to {} ({})\n",
                c.not_before,
                c.not_after,
                days(c.days_left)
            ));
            if !c.names.is_empty() {
                out.push_str(&format!(
                    "      names:   {}\n",
                    display_line(&c.names.join(", "))
                ));
            }
            if c.in_bundle {
                out.push_str("      (this certificate is in the bundle)\n");
            }
        }
    }
    if let Some(a) = &r.anchor {
        line(
            &mut out,
            "anchor:",
            &format!(
                "{} (in the bundle, {}, sha256 {})",
                display_line(&a.subject),
                if a.self_signed {
                    "self-signed"
                } else {
                    "NOT self-signed"
                },
                a.sha256.get(..16).unwrap_or(&a.sha256)
            ),
        );
    }
    for w in &r.warnings {
        line(&mut out, "warning:", &display_line(w));
    }
    let verdict = match r.verdict {
        Verdict::Trusted => "TRUSTED",
        Verdict::NotTrusted => "NOT TRUSTED",
        Verdict::CouldNotConnect => "COULD NOT CONNECT",
    };
    line(&mut out, "result:", verdict);
    for c in &r.causes {
        line(
            &mut out,
            "cause:",
            &format!("{}: {}", c.code, display_line(&c.message)),
        );
        line(&mut out, "fix:", &display_line(&c.fix));
    }
    out
}

fn days(left: i64) -> String {
    if left < 0 {
        format!("EXPIRED {} days ago", -left)
    } else {
        format!("{left} days left")
    }
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
    let certs = load_bundle(bundle)?;
    verify(&target, bundle, &certs, &Options { timeout })
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
