//! The probe and metrics server: `/healthz`, `/readyz`, `/metrics`, `/status`.
//!
//! It only reads shared state (the latest status snapshot, the metrics
//! registry and the loop's progress marks). It can never block or mutate the
//! loop, and the loop cannot delay it: reconciles run on a blocking thread,
//! so this server keeps answering while one runs (or hangs).

use crate::checks::board::Board;
use crate::checks::outcome::BackendStatus;
use crate::daemon::metrics::Metrics;
use crate::daemon::status::{Progress, Status};
use crate::serve::exposition::Format;
use crate::serve::http::serve_probe_port;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A reconcile running longer than this is stuck (a read that never
/// returns, a hung filesystem): `/healthz` turns 503. Reconciles take
/// milliseconds (a full 1 MiB Secret well under a second in a debug build);
/// with the shipped probe (`periodSeconds: 10`, `failureThreshold: 3`) a stuck
/// loop is restarted about 40 s after it stuck.
pub const STUCK_AFTER: Duration = Duration::from_secs(10);

/// What the server reads.
#[derive(Clone)]
pub struct Shared {
    /// The loop's progress marks. A probe that only checked that the HTTP
    /// server is up would stay green while the loop is stuck (a known failure
    /// of other sidecars); one that queued a question to the loop failed
    /// while the loop was merely busy (issue 10): progress is the measure.
    pub progress: Arc<Progress>,
    /// The last snapshot the loop sent (`/status`, `/readyz`): a scrape never
    /// waits for a reconcile.
    pub status: watch::Receiver<Arc<Status>>,
    /// Read-only here; the loop updates the gauges and counters.
    pub metrics: Arc<Metrics>,
    /// `run --check`: the backends' latest results, read at each request
    /// (the checker updates them between the loop's snapshots).
    pub backends: Arc<Board>,
}

/// `/status`: the loop's snapshot with the backends' latest results.
#[derive(Serialize)]
struct StatusBody<'a> {
    #[serde(flatten)]
    status: &'a Status,
    backends: Vec<BackendStatus>,
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, shared: Shared) {
    serve_probe_port(listener, move |req| {
        let shared = shared.clone();
        async move { route(&req, &shared).await }
    })
    .await
}

async fn route(req: &Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    match req.uri().path() {
        "/healthz" => match shared.progress.busy_for() {
            Some(busy) if busy > STUCK_AFTER => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "reconcile loop stuck: one reconcile has been running for {} s\n",
                    busy.as_secs()
                ),
            ),
            _ => text(StatusCode::OK, "ok\n".into()),
        },
        "/readyz" => {
            let status = Arc::clone(&shared.status.borrow());
            if status.ready {
                text(StatusCode::OK, "ready\n".into())
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, not_ready(&status))
            }
        }
        "/metrics" => {
            let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok());
            let format = Format::negotiate(accept);
            with_type(
                text(StatusCode::OK, shared.metrics.encode(format)),
                format.content_type(),
            )
        }
        "/status" => {
            let status = Arc::clone(&shared.status.borrow());
            let body = StatusBody {
                status: &status,
                backends: shared.backends.snapshot(),
            };
            match serde_json::to_string_pretty(&body) {
                Ok(body) => with_type(text(StatusCode::OK, body + "\n"), "application/json"),
                // Plain data with string keys: serialising it does not fail.
                // Should it, a 500 says so rather than a 200 with a made-up body.
                Err(e) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot serialise the status: {e}\n"),
                ),
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
    }
}

/// Why `/readyz` is 503, for whoever reads the probe's output.
fn not_ready(status: &Status) -> String {
    if status.bundle.sha256.is_none() {
        return match &status.bundle.last_error {
            Some(e) => format!("no bundle published yet: {e}\n"),
            None => "no bundle published yet\n".into(),
        };
    }
    let errors: Vec<String> = status
        .sources
        .iter()
        .filter_map(|s| s.last_error.clone())
        .chain(status.base.last_error.iter().map(|e| format!("base: {e}")))
        .chain(
            status
                .bundle
                .last_error
                .iter()
                .map(|e| format!("publish: {e}")),
        )
        .collect();
    format!(
        "not ready: no publish yet in which every source that exists read without error: {}\n",
        errors.join("; ")
    )
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
