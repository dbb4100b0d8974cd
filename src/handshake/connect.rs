//! The TCP connection and the TLS handshake that records the chain the server
//! sends before rustls's own verifier judges it.

use super::{Cause, Target, VerifyError};
use crate::trust::cert::Certificate;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connects to the first address of `target` that answers.
pub(super) fn connect(target: &Target, timeout: Duration) -> Result<TcpStream, Cause> {
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
pub(super) fn handshake(
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

pub(super) fn describe_tls_error(e: &io::Error) -> String {
    match tls_error(e) {
        Some(rustls::Error::AlertReceived(alert)) => format!("the server sent the alert {alert:?}"),
        Some(t) => t.to_string(),
        None => e.to_string(),
    }
}

/// Explains a handshake that failed before any certificate arrived.
pub(super) fn connect_failure(e: &io::Error, address: &str, timeout: Duration) -> Cause {
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
pub(super) struct Recorder {
    inner: Arc<WebPkiServerVerifier>,
    chain: Mutex<Option<Vec<CertificateDer<'static>>>>,
}

impl Recorder {
    pub(super) fn new(
        bundle: &[Certificate],
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, VerifyError> {
        let mut roots = RootCertStore::empty();
        // Every bundle certificate is a root here (what rustls and OpenSSL
        // with a partial chain do); the self-signed rule is `diagnose`'s job.
        roots
            .add_parsable_certificates(bundle.iter().map(|c| CertificateDer::from(c.der.to_vec())));
        let inner =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
        Ok(Recorder {
            inner,
            chain: Mutex::new(None),
        })
    }

    pub(super) fn take(&self) -> Option<Vec<CertificateDer<'static>>> {
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
