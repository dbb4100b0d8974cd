//! The two listeners: HTTPS for the API server (`POST /mutate`), plain HTTP
//! for the kubelet and Prometheus (`/healthz`, `/readyz`, `/metrics`).
//!
//! Probes are plain HTTP on their own port so that they answer before a
//! certificate exists (`/readyz` then says why it is not ready) and a scrape
//! needs no TLS configuration.

use crate::serve::exposition::Format;
use crate::serve::http::{accept_loop, serve_http1, serve_probe_port, Limits, Stop};
use crate::serve::slots::Slot;
use crate::webhook::handler::{handle, App};
use crate::webhook::tls::CertStore;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info};

/// A TLS handshake slower than this is a stuck or hostile client; the API
/// server completes one in milliseconds.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Open connections at once; the API server keeps a few alive per replica,
/// so this only bounds what a misbehaving client can hold: past it, the
/// oldest connection not answering a review makes room (`serve::slots`).
const MAX_CONNECTIONS: usize = 512;
/// A request line and headers; the API server's are a few hundred bytes.
const MAX_HEAD_BYTES: usize = 32 * 1024;

/// The rustls acceptor: certificates come from `store` at each handshake.
pub(crate) fn acceptor(store: Arc<CertStore>) -> Result<TlsAcceptor, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(store);
    // HTTP/1.1 only; the API server's client falls back to it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves the admission endpoint until `stop` turns true, then lets the
/// requests in flight finish (bounded by the request timeout).
pub(crate) async fn serve_https(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    app: Arc<App>,
    stop: watch::Receiver<bool>,
) {
    let limits = Limits {
        max_connections: MAX_CONNECTIONS,
        header_timeout: app.request_timeout,
        max_head_bytes: MAX_HEAD_BYTES,
    };
    let grace = app.request_timeout + Duration::from_secs(1);
    let conn_stop = Some(stop.clone());
    accept_loop(
        listener,
        limits,
        Some(stop),
        grace,
        move |stream, peer, slot| {
            let (acceptor, app, stop) = (acceptor.clone(), Arc::clone(&app), conn_stop.clone());
            async move { connection(acceptor, stream, peer, app, slot, limits, stop).await }
        },
    )
    .await;
}

async fn connection(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    app: Arc<App>,
    slot: Slot,
    limits: Limits,
    mut stop: Stop,
) {
    let _ = stream.set_nodelay(true);
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    let tls = tokio::select! {
        r = handshake => match r {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => return debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => return debug!(%peer, "TLS handshake timed out"),
        },
        _ = slot.evicted() => return debug!(%peer, "closed during the TLS handshake for a newer connection"),
    };
    let activity = slot.activity();
    let service = hyper::service::service_fn(move |req| {
        let (app, activity) = (Arc::clone(&app), Arc::clone(&activity));
        async move { Ok::<_, Infallible>(handle(req, app, activity, peer).await) }
    });
    if let Err(e) = serve_http1(tls, service, &limits, &slot, &mut stop).await {
        debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Serves the probes and metrics until the task is dropped.
pub(crate) async fn serve_probes(listener: TcpListener, app: Arc<App>) {
    serve_probe_port(listener, move |req| {
        let response = probe(&req, &app);
        async move { response }
    })
    .await
}

fn probe(req: &Request<Incoming>, app: &App) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET\n",
            "text/plain; charset=utf-8",
        );
    }
    const PLAIN: &str = "text/plain; charset=utf-8";
    match req.uri().path() {
        // The runtime answering is the liveness: a current-thread runtime
        // stuck in a request would not answer this either.
        "/healthz" => text(StatusCode::OK, "ok\n", PLAIN),
        "/readyz" if app.draining.load(Ordering::Relaxed) => {
            text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n", PLAIN)
        }
        "/readyz" if !app.store.loaded() => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "no serving certificate loaded yet\n",
            PLAIN,
        ),
        "/readyz" => text(StatusCode::OK, "ready\n", PLAIN),
        "/metrics" => {
            let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
            let format = Format::negotiate(accept);
            text(
                StatusCode::OK,
                &app.metrics.encode(format),
                format.content_type(),
            )
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n", PLAIN),
    }
}

fn text(code: StatusCode, body: &str, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = code;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Logs where each listener is, once bound (tests and humans read it).
pub(crate) fn log_listening(https: SocketAddr, probes: Option<SocketAddr>) {
    match probes {
        Some(p) => info!(%https, probes = %p, "webhook listening"),
        None => info!(%https, "webhook listening (probes off)"),
    }
}
