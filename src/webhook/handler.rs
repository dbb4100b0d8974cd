//! One admission request to its answer: the checks on the request line and
//! headers, the body within its limits, the review, and the errors a client
//! sees as HTTP statuses.

use crate::serve::slots::Activity;
use crate::webhook::lane::Lane;
use crate::webhook::metrics::{Outcome, WebhookMetrics};
use crate::webhook::mutate::Mutator;
use crate::webhook::review::{self, ReviewError};
use crate::webhook::tls::CertStore;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, SemaphorePermit};
use tracing::warn;

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
    /// The bodies of reviews over [`SMALL_REVIEW`] held at once, in KiB,
    /// counted as they arrive and until answered: what many large or slow
    /// bodies can make the webhook hold ([`body_budget_kib`]).
    pub body_budget: Semaphore,
    /// Where reviews over [`SMALL_REVIEW`] are answered, one at a time, off
    /// the runtime thread.
    pub lane: Arc<Lane>,
}

/// The budget for large bodies held at once: room for a few of them, and
/// always for one of `--max-body-bytes`.
pub(crate) fn body_budget_kib(max_body: u64) -> usize {
    const BUDGET_KIB: u64 = 16 * 1024;
    // `max_body` is at most 64 MiB (the flag's range): it fits a usize.
    BUDGET_KIB.max(max_body.div_ceil(1024)) as usize
}

/// A review body up to this size is answered on the runtime thread: it
/// takes well under a millisecond. Larger ones go to the large lane, so a
/// big review never delays a small one (docs/performance.md).
pub(crate) const SMALL_REVIEW: u64 = 64 * 1024;

/// Why a request gets an HTTP error rather than an `AdmissionReview`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
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
    /// A bug: the review panicked, or its answer did not serialise.
    #[error("internal error: {0}")]
    Internal(String),
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
            HttpError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        }
    }
}

/// Answers one request on the webhook endpoint, and counts it.
pub(crate) async fn handle(
    req: Request<Incoming>,
    app: Arc<App>,
    activity: Arc<Activity>,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let start = Instant::now();
    let (outcome, response) = match answer(req, &app, &activity).await {
        Ok(ok) => ok,
        Err(e) => {
            let (code, reason) = e.status();
            warn!(%peer, status = code.as_u16(), error = %e, "admission request refused");
            let body = review::status_body(code.as_u16(), reason, &e.to_string());
            let mut response = match serde_json::to_vec(&body) {
                Ok(bytes) => json(code, bytes),
                Err(encode) => plain_error(&e, &encode),
            };
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
    app: &Arc<App>,
    activity: &Arc<Activity>,
) -> Result<(Outcome, Response<Full<Bytes>>), HttpError> {
    let (parts, body) = req.into_parts();
    let declared = match check_head(&parts, app.max_body) {
        Ok(d) => d,
        Err(e) => {
            linger(body);
            return Err(e);
        }
    };
    let deadline = tokio::time::Instant::now() + app.request_timeout;
    let large = declared.is_none_or(|n| n > SMALL_REVIEW);
    let (body, budget) = read_body(body, app, deadline, declared, large).await?;
    // From here on, the connection is doing work: not to be evicted.
    let _serving = activity.serving();
    let (outcome, answer) = if large {
        let for_lane = Arc::clone(app);
        let answered = app
            .lane
            .run(move || review_bytes(&for_lane, body))
            .await
            .map_err(|e| HttpError::Internal(e.to_string()))?;
        drop(budget);
        answered?
    } else {
        review_bytes(app, body)?
    };
    Ok((outcome, json(StatusCode::OK, answer)))
}

/// The review in `body`, decided and serialised. The body is the pod's
/// "before" (see `patch`); it and the pod are dropped once decided: only the
/// answer leaves.
fn review_bytes(app: &App, body: Vec<u8>) -> Result<(Outcome, Vec<u8>), HttpError> {
    let review = review::parse(&body)?;
    let uid = review.uid.clone();
    let (outcome, verdict) = app
        .mutator
        .review(review)
        .map_err(|e| HttpError::Internal(e.to_string()))?;
    drop(body);
    let answer = review::response(&uid, &verdict)
        .map_err(|e| HttpError::Internal(format!("cannot encode the answer: {e}")))?;
    Ok((outcome, answer))
}

/// What can be refused from the request line and headers alone; the
/// declared body length, if any.
fn check_head(parts: &hyper::http::request::Parts, limit: u64) -> Result<Option<u64>, HttpError> {
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
    Ok(declared)
}

/// The whole body, within the size limit and by `deadline`; a `large` one
/// also within the body budget, whose share it returns to hold until answered.
async fn read_body<'a>(
    mut body: Incoming,
    app: &'a App,
    deadline: tokio::time::Instant,
    declared: Option<u64>,
    large: bool,
) -> Result<(Vec<u8>, Option<SemaphorePermit<'a>>), HttpError> {
    // `max_body` is at most 64 MiB (the flag's range): it fits a usize.
    let limit = app.max_body as usize;
    // Sized once when declared (already checked against the limit): growing
    // by doubling would briefly hold twice the body.
    let mut buf = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    let mut held: Option<SemaphorePermit<'a>> = None;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(HttpError::Timeout(app.request_timeout)),
            Ok(None) => return Ok((buf, held)),
            Ok(Some(Err(e))) => return Err(HttpError::Body(e.to_string())),
            Ok(Some(Ok(frame))) => frame,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if buf.len() + data.len() > limit {
            linger(body);
            return Err(HttpError::TooLarge {
                limit: app.max_body,
            });
        }
        if large {
            // A frame is within the body limit (64 MiB at most): it fits a u32.
            let kib = data.len().div_ceil(1024) as u32;
            let share =
                match tokio::time::timeout_at(deadline, app.body_budget.acquire_many(kib)).await {
                    Ok(Ok(p)) => p,
                    Ok(Err(closed)) => unreachable!("the body budget is never closed: {closed}"),
                    Err(_) => return Err(HttpError::Timeout(app.request_timeout)),
                };
            match held.as_mut() {
                Some(h) => h.merge(share),
                None => held = Some(share),
            }
        }
        buf.extend_from_slice(&data);
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

fn json(code: StatusCode, bytes: Vec<u8>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(bytes)));
    *r.status_mut() = code;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// An error answer whose JSON did not serialise (a bug: a `Value` with
/// string keys always does): still the status and both reasons, as text.
fn plain_error(e: &HttpError, encode: &serde_json::Error) -> Response<Full<Bytes>> {
    let text = format!("{e} (and the error body did not serialise: {encode})\n");
    let mut r = Response::new(Full::new(Bytes::from(text)));
    *r.status_mut() = e.status().0;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
