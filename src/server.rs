//! The probe and metrics server: `/healthz`, `/readyz`, `/metrics`, `/status`.
//!
//! It only reads shared state: the heartbeat, the latest status snapshot and
//! the metrics registry. It can never block or mutate the reconcile loop.

use crate::metrics::Metrics;
use crate::status::{Heartbeat, Status};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::debug;

/// What the server reads.
#[derive(Clone)]
pub struct Shared {
    pub heartbeat: Arc<Heartbeat>,
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
                std::future::ready(Ok::<_, Infallible>(route(&req, &shared)))
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

fn route(req: &Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match req.uri().path() {
        "/healthz" => {
            if shared.heartbeat.alive() {
                text(StatusCode::OK, "ok\n".into())
            } else {
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "reconcile loop is not beating\n".into(),
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
