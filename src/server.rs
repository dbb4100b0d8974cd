//! The probe and metrics server: `/healthz`, `/readyz`, `/metrics`, `/status`.
//!
//! It only reads shared state (the latest status snapshot and the metrics
//! registry) and, for `/healthz`, asks the reconcile loop itself whether it is
//! alive. It can never block or mutate the loop.

use crate::metrics::Metrics;
use crate::status::Status;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::debug;

/// How long `/healthz` waits for the loop's answer. The loop answers between
/// reconciles, which take milliseconds; a debounce holds it up to a second.
const LIVENESS_TIMEOUT: Duration = Duration::from_secs(3);

/// A liveness question for the reconcile loop: it answers on the channel.
pub type Ping = oneshot::Sender<()>;

/// What the server reads.
#[derive(Clone)]
pub struct Shared {
    /// Asks the loop whether it is alive. A probe that only checked that the
    /// HTTP server is up would stay green while the loop is stuck (a known
    /// failure of other sidecars); asking on demand, rather than a timer
    /// beating in the loop, keeps the idle sidecar at zero CPU.
    pub pings: mpsc::Sender<Ping>,
    pub status: watch::Receiver<Arc<Status>>,
    pub metrics: Arc<Metrics>,
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, shared: Shared) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors, typically: back off instead of spinning.
                debug!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(route(&req, &shared).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                debug!(error = %e, "probe connection ended with an error");
            }
        });
    }
}

async fn route(req: &Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match req.uri().path() {
        "/healthz" => {
            if loop_alive(&shared.pings).await {
                text(StatusCode::OK, "ok\n".into())
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "reconcile loop does not answer\n".into(),
                )
            }
        }
        "/readyz" => {
            if shared.status.borrow().ready {
                text(StatusCode::OK, "ready\n".into())
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no bundle published yet\n".into(),
                )
            }
        }
        "/metrics" => with_type(
            text(StatusCode::OK, shared.metrics.encode()),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        "/status" => {
            let status = Arc::clone(&shared.status.borrow());
            let body = serde_json::to_string_pretty(&*status)
                .unwrap_or_else(|e| format!("{{\"error\": \"cannot serialise status: {e}\"}}"));
            with_type(text(StatusCode::OK, body + "\n"), "application/json")
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

/// Asks the loop and waits for its answer. A full queue means the loop has
/// not been draining it: as stuck as no answer.
async fn loop_alive(pings: &mpsc::Sender<Ping>) -> bool {
    let (tx, rx) = oneshot::channel();
    if pings.try_send(tx).is_err() {
        return false;
    }
    matches!(tokio::time::timeout(LIVENESS_TIMEOUT, rx).await, Ok(Ok(())))
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn with_type(mut r: Response<Full<Bytes>>, content_type: &'static str) -> Response<Full<Bytes>> {
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
