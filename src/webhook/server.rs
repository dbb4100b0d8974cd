//! The two listeners: HTTPS for the API server (`POST /mutate`), plain HTTP
//! for the kubelet and Prometheus (`/healthz`, `/readyz`, `/metrics`).
//!
//! Probes are plain HTTP on their own port so that they answer before a
//! certificate exists (`/readyz` then says why it is not ready) and a scrape
//! needs no TLS configuration.

use crate::webhook::metrics::{Outcome, WebhookMetrics};
use crate::webhook::mutate::Mutator;
use crate::webhook::review::{self, ReviewError};
use crate::webhook::tls::CertStore;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
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

/// Everything a request handler reads.
pub(crate) struct App {
    /// The serving certificate; also what `/readyz` asks.
    pub store: Arc<CertStore>,
    /// Counted per request, scraped on the probe port.
    pub metrics: Arc<WebhookMetrics>,
    /// Reviews to verdicts, with the webhook's defaults.
    pub mutator: Mutator,
    /// `--max-body-bytes`: a bound on what one request can make us hold.
    pub max_body: u64,
    /// Bound on reading one request's headers and body.
    pub request_timeout: Duration,
    /// Set on SIGTERM: `/readyz` turns 503 so the endpoint is removed while
    /// requests are still served.
    pub draining: AtomicBool,
}

/// Why a request gets an HTTP error rather than an `AdmissionReview`.
#[derive(Debug, thiserror::Error)]
enum HttpError {
    #[error("no such path {0:?}; the webhook endpoint is POST /mutate")]
    NotFound(String),
    #[error("method {0} not allowed; the webhook endpoint is POST /mutate")]
    Method(Method),
    #[error("Content-Type {0:?}; expected application/json")]
    ContentType(String),
    #[error("body over the limit of {limit} bytes (--max-body-bytes)")]
    TooLarge { limit: u64 },
    #[error("body not received within {0:?} (--request-timeout)")]
    Timeout(Duration),
    #[error("reading the body: {0}")]
    Body(String),
    #[error(transparent)]
    Review(#[from] ReviewError),
}

impl HttpError {
    fn status(&self) -> (StatusCode, &'static str) {
        match self {
            HttpError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFound"),
            HttpError::Method(_) => (StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed"),
            HttpError::ContentType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType")
            }
            HttpError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge"),
            HttpError::Timeout(_) => (StatusCode::REQUEST_TIMEOUT, "Timeout"),
            HttpError::Body(_) | HttpError::Review(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
        }
    }
}

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

async fn handle(req: Request<Incoming>, app: &App, peer: SocketAddr) -> Response<Full<Bytes>> {
    let start = Instant::now();
    let (outcome, response) = match answer(req, app).await {
        Ok(ok) => ok,
        Err(e) => {
            let (code, reason) = e.status();
            warn!(%peer, status = code.as_u16(), error = %e, "admission request refused");
            let body = review::status_body(code.as_u16(), reason, &e.to_string());
            let mut response = json(code, &body);
            // The body may be left unread (too large, wrong path): say the
            // connection ends, so the client does not send the next request
            // on a socket about to close (Go's client does not retry a POST).
            response
                .headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            (Outcome::Rejected, response)
        }
    };
    app.metrics.record(outcome, start.elapsed().as_secs_f64());
    response
}

async fn answer(
    req: Request<Incoming>,
    app: &App,
) -> Result<(Outcome, Response<Full<Bytes>>), HttpError> {
    let (parts, body) = req.into_parts();
    if let Err(e) = check_head(&parts, app.max_body) {
        linger(body);
        return Err(e);
    }
    let body = read_body(body, app).await?;
    let review = review::parse(&body)?;
    let (outcome, verdict) = app.mutator.review(&review);
    let answer = review::response(&review.uid, &verdict);
    Ok((outcome, json(StatusCode::OK, &answer)))
}

/// What can be refused from the request line and headers alone.
fn check_head(parts: &hyper::http::request::Parts, limit: u64) -> Result<(), HttpError> {
    if parts.uri.path() != "/mutate" {
        return Err(HttpError::NotFound(parts.uri.path().to_string()));
    }
    if parts.method != Method::POST {
        return Err(HttpError::Method(parts.method.clone()));
    }
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(HttpError::ContentType(content_type));
    }
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Refused before reading a byte of it when the length is declared.
    if declared.map(|n| n > limit).unwrap_or(false) {
        return Err(HttpError::TooLarge { limit });
    }
    Ok(())
}

/// The whole body, within the size and time limits.
async fn read_body(mut body: Incoming, app: &App) -> Result<Vec<u8>, HttpError> {
    // `max_body` is at most 64 MiB (the flag's range): it fits a usize.
    let limit = app.max_body as usize;
    let deadline = tokio::time::Instant::now() + app.request_timeout;
    let mut buf = Vec::new();
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(HttpError::Timeout(app.request_timeout)),
            Ok(None) => return Ok(buf),
            Ok(Some(Err(e))) => return Err(HttpError::Body(e.to_string())),
            Ok(Some(Ok(frame))) => {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                if buf.len() + data.len() > limit {
                    linger(body);
                    return Err(HttpError::TooLarge {
                        limit: app.max_body,
                    });
                }
                buf.extend_from_slice(&data);
            }
        }
    }
}

/// How long, and how much, of a refused body is read and discarded.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 16 * 1024 * 1024;

/// Reads and discards the rest of a refused body for a moment (bounded in
/// time and bytes, never kept), the way servers do a lingering close: a
/// connection closed with unread data is reset, and the reset can destroy
/// the error response before the client reads it.
fn linger(mut body: Incoming) {
    tokio::spawn(async move {
        let mut seen = 0usize;
        let _ = tokio::time::timeout(LINGER, async {
            while let Some(Ok(frame)) = body.frame().await {
                seen += frame.data_ref().map(|d| d.len()).unwrap_or(0);
                if seen > LINGER_BYTES {
                    break;
                }
            }
        })
        .await;
    });
}

fn json(code: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    // Serialising a Value cannot fail.
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = code;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
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
