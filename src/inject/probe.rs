//! `trust-injector probe ready|live`: the injected sidecar's `exec` probes.
//!
//! The kubelet's `httpGet` probes reach the pod's IP from the node, and in a meshed pod
//! that traffic is the mesh's: Istio's `istio-init` redirects it to an Envoy that a
//! classic-mode pod has not started while init containers run, or that demands mTLS
//! (STRICT), and the pod hangs in Init. An `exec` probe runs inside our container and
//! asks the sidecar over loopback, which neither Istio's nor Linkerd's redirection
//! touches, so the answer is the sidecar's own `/readyz` or `/healthz` whatever mesh
//! the pod has. docs/inject.md ("Meshes") explains the choice.

use clap::{Args, ValueEnum};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// How long one probe may take; under the kubelet's default `timeoutSeconds` (one
/// second), so a stuck sidecar is reported by us, not as a probe timeout.
const TIMEOUT: Duration = Duration::from_millis(800);
/// The most of the answer read: the status line is all the probe needs.
const MAX_ANSWER: u64 = 4096;

/// Which endpoint to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Which {
    /// `/readyz`: a bundle is published (startup and readiness probes).
    Ready,
    /// `/healthz`: the process serves (liveness probe).
    Live,
}

/// `probe` options.
#[derive(Debug, Clone, Args)]
pub struct ProbeArgs {
    /// `ready` (/readyz) or `live` (/healthz).
    #[arg(value_enum)]
    pub which: Which,
    /// The sidecar's `--listen` port.
    #[arg(long, default_value_t = crate::inject::mutate::DEFAULT_PORT)]
    pub port: u16,
}

/// Why a probe failed: printed, and the kubelet shows it in the pod's events.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{path} on 127.0.0.1:{port}: {source}")]
    Io {
        path: &'static str,
        port: u16,
        source: std::io::Error,
    },
    #[error("{path} on 127.0.0.1:{port} answered {status:?}")]
    NotOk {
        path: &'static str,
        port: u16,
        status: String,
    },
}

/// Asks the sidecar on loopback; `Ok` only for HTTP 200.
pub fn probe(which: Which, port: u16) -> Result<(), ProbeError> {
    let path = match which {
        Which::Ready => "/readyz",
        Which::Live => "/healthz",
    };
    let io = |source| ProbeError::Io { path, port, source };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(io)?;
    s.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    s.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).map_err(io)?;
    let mut answer = Vec::new();
    s.take(MAX_ANSWER).read_to_end(&mut answer).map_err(io)?;
    let text = String::from_utf8_lossy(&answer);
    let status = text.lines().next().unwrap_or("").to_string();
    let code = status.split_whitespace().nth(1);
    if status.starts_with("HTTP/1.") && code == Some("200") {
        return Ok(());
    }
    Err(ProbeError::NotOk { path, port, status })
}

/// Runs `probe`: 0 healthy, 1 not (with the reason on stderr).
pub fn run(args: &ProbeArgs) -> u8 {
    match probe(args.which, args.port) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("trust-injector probe: {e}");
            1
        }
    }
}
