//! The one HTTP/1.1 serving path of the probe server (`run --listen`) and the
//! webhook (its HTTPS endpoint and its probes): an accept loop that holds
//! every connection to a [`Slot`], and hyper's connection with the limits
//! every listener needs.
//!
//! What a listener must survive (issue 24): one client opening thousands of
//! half-open, idle or slow connections. The slots cap what they can hold and
//! give their place to new connections; the header timeout and the header
//! size bound what each can make us keep.

use crate::serve::slots::{Slot, Slots};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{debug, warn};

/// What one listener allows each client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Connections open at once; past it, the oldest one that is not
    /// answering a request is closed for the new one.
    pub max_connections: usize,
    /// From the moment a connection waits for a request (a new one, or the
    /// next on a kept-alive one) to its last header line.
    pub header_timeout: Duration,
    /// The read buffer, so the most a request line and headers may take;
    /// larger heads get 431. hyper's floor is 8 KiB.
    pub max_head_bytes: usize,
}

/// The limits of a probe port (`run --listen`, `webhook --probe-listen`).
/// The kubelet and a scraper need a few connections; the cap bounds what one
/// client flooding the port with half-open or slow connections can make the
/// process hold (the sidecar's memory limit also pays for the out-dir), and
/// the oldest waiting connection gives its place, so a probe still gets in.
pub(crate) const PROBE_LIMITS: Limits = Limits {
    max_connections: 64,
    header_timeout: Duration::from_secs(5),
    max_head_bytes: 16 * 1024,
};

/// Tells a listener to stop accepting; `None` serves until the task is dropped.
pub(crate) type Stop = Option<watch::Receiver<bool>>;

/// Accepts connections until `stop` turns true, each on its own task with its
/// slot, then waits up to `grace` for them to finish.
pub(crate) async fn accept_loop<H, F>(
    listener: TcpListener,
    limits: Limits,
    mut stop: Stop,
    grace: Duration,
    mut handle: H,
) where
    H: FnMut(TcpStream, SocketAddr, Slot) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    let slots = Slots::new(limits.max_connections);
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
        let slot = tokio::select! {
            s = slots.acquire() => s,
            _ = stopped(&mut stop) => break,
        };
        conns.spawn(handle(stream, peer, slot));
    }
    drop(listener);
    if tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        warn!("connections still open after {grace:?}; closing them");
    }
}

/// Serves HTTP/1.1 on `io` until the client closes, the slot is wanted by a
/// newer connection, or `stop` turns true (then the request in progress is
/// finished first).
pub(crate) async fn serve_http1<I, S>(
    io: I,
    service: S,
    limits: &Limits,
    slot: &Slot,
    stop: &mut Stop,
) -> Result<(), hyper::Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<Full<Bytes>>, Error = Infallible>,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_head_bytes)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => r,
        // Dropping the connection closes the socket.
        _ = slot.evicted() => Ok(()),
        _ = stopped(stop) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

/// Resolves once `stop` turns true (or its sender is gone); never for `None`.
pub(crate) async fn stopped(stop: &mut Stop) {
    match stop {
        Some(rx) => {
            let _ = rx.wait_for(|s| *s).await;
        }
        None => std::future::pending().await,
    }
}

/// Serves plain HTTP/1.1 with [`PROBE_LIMITS`] until the task is dropped: the
/// sidecar's probe server and the webhook's probes and metrics, the same way.
/// `route` answers one request; a connection holds its slot as busy only while
/// a request is being answered, so idle ones are the first to make room.
pub(crate) async fn serve_probe_port<R, Fut>(listener: TcpListener, route: R)
where
    R: Fn(Request<Incoming>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let limits = PROBE_LIMITS;
    accept_loop(
        listener,
        limits,
        None,
        Duration::ZERO,
        move |stream, _, slot| {
            let route = route.clone();
            async move {
                let activity = slot.activity();
                let service = hyper::service::service_fn(move |req| {
                    let serving = activity.serving();
                    let response = route(req);
                    async move {
                        let response = response.await;
                        drop(serving);
                        Ok::<_, Infallible>(response)
                    }
                });
                if let Err(e) = serve_http1(stream, service, &limits, &slot, &mut None).await {
                    debug!(error = %e, "probe connection ended with an error");
                }
            }
        },
    )
    .await
}
