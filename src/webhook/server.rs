//! The two listeners: HTTPS for the API server (`POST /mutate`), plain HTTP
//! for the kubelet and Prometheus (`/healthz`, `/readyz`, `/metrics`).
//!
//! Probes are plain HTTP on their own port so that they answer before a
//! certificate exists (`/readyz` then says why it is not ready) and a scrape
//! needs no TLS configuration.

use crate::webhook::handler::{handle, App};
use crate::webhook::tls::CertStore;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

/// A TLS handshake slower than this is a stuck or hostile client.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Open connections at once; the API server keeps a few alive per replica,
/// so this only bounds what a misbehaving client can hold.
const MAX_CONNECTIONS: usize = 512;

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
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopped(&mut stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors, typically: back off instead of spinning.
                debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Waiting here stops accepting until a connection ends: backpressure
        // instead of unbounded memory.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            break;
        };
        let (acceptor, app, stop) = (acceptor.clone(), Arc::clone(&app), stop.clone());
        conns.spawn(async move {
            connection(acceptor, stream, peer, app, stop).await;
            drop(slot);
        });
    }
    drop(listener);
    let grace = app.request_timeout + Duration::from_secs(1);
    if tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        warn!("connections still open after {grace:?}; closing them");
    }
}

/// Resolves once `stop` turns true (or its sender is gone), holding no
/// borrow of the channel afterwards.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

async fn connection(
    acceptor: TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    app: Arc<App>,
    mut stop: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => return debug!(%peer, error = %e, "TLS handshake failed"),
        Err(_) => return debug!(%peer, "TLS handshake timed out"),
    };
    let timeout = app.request_timeout;
    let service = hyper::service::service_fn(move |req| {
        let app = Arc::clone(&app);
        async move { Ok::<_, Infallible>(handle(req, &app, peer).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(timeout)
        .serve_connection(TokioIo::new(tls), service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stopped(&mut stop) => {
            // Finish the request in progress, then close.
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Serves the probes and metrics until the task is dropped.
pub(crate) async fn serve_probes(listener: TcpListener, app: Arc<App>) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(probe(&req, &app)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                debug!(error = %e, "probe connection ended with an error");
            }
        });
    }
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
        "/metrics" => text(
            StatusCode::OK,
            &app.metrics.encode(),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
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
