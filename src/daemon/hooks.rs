//! Telling the application that the bundle changed: an HTTP POST to a reload
//! endpoint and/or a signal to processes by name.
//!
//! Never for the first publish: in the native-sidecar layout the application
//! starts only after our startup probe passes, so waiting for it would
//! deadlock. Notifications run in their own task so a slow application never
//! delays the reconcile loop.
//!
//! Each outcome is logged, counted in `trust_injector_notifications_total`
//! and kept as the last one of its kind in a watch channel, which the daemon
//! merges into the `/status` snapshot (it stays the only writer of that).

use crate::clock::now_unix;
use crate::config::SignalTarget;
use crate::daemon::metrics::Metrics;
use crate::daemon::status::{NotificationOutcome, NotificationStatus, NotificationsStatus};
use crate::trust::cert::rfc3339;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use rustix::process::{kill_process, Pid, Signal};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tracing::{info, warn};

/// Attempts per notification, with doubling back-off from [`FIRST_BACKOFF`].
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Bound on one attempt (connect + request + response head).
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The highest signal number Linux has on amd64 and arm64 (`_NSIG`), the
/// highest `--on-change-signal` accepts.
const MAX_SIGNAL: i32 = 64;

/// The configured notifications.
#[derive(Debug, Clone)]
pub struct Hooks {
    pub url: Option<String>,
    pub signal: Option<SignalTarget>,
    /// Shared with the spawned URL tasks, which finish after `fire` returns.
    outcomes: Arc<watch::Sender<NotificationsStatus>>,
}

impl Hooks {
    /// The hooks, and where their last outcomes can be watched.
    pub fn new(
        url: Option<String>,
        signal: Option<SignalTarget>,
    ) -> (Self, watch::Receiver<NotificationsStatus>) {
        let (tx, rx) = watch::channel(NotificationsStatus::default());
        let hooks = Hooks {
            url,
            signal,
            outcomes: Arc::new(tx),
        };
        (hooks, rx)
    }

    /// Whether anything is configured.
    pub fn any(&self) -> bool {
        self.url.is_some() || self.signal.is_some()
    }

    /// Sends every configured notification (in a spawned task).
    pub fn fire(&self, sha256: String, metrics: Arc<Metrics>) {
        if let Some(url) = self.url.clone() {
            let metrics = Arc::clone(&metrics);
            let outcomes = Arc::clone(&self.outcomes);
            let sha = sha256.clone();
            tokio::spawn(async move {
                let outcome = post_with_retries(&url, &sha).await;
                record(&metrics, "url", outcome.is_ok());
                let detail = match &outcome {
                    Ok((status, attempts)) => {
                        info!(url = %url, status, attempts, "notified application");
                        format!("POST {url}: HTTP {status} (attempt {attempts} of {ATTEMPTS})")
                    }
                    Err(e) => {
                        warn!(url = %url, error = %e, "could not notify application");
                        format!("POST {url}: {e}")
                    }
                };
                let last = last(outcome.is_ok(), detail, sha);
                outcomes.send_modify(|n| n.last_url = Some(last));
            });
        }
        if let Some(target) = &self.signal {
            let sent = signal_processes(target);
            let ok = sent.as_ref().is_ok_and(|n| *n > 0);
            record(&metrics, "signal", ok);
            let detail = match sent {
                Ok(0) => {
                    warn!(process = %target.process, signal = %target.signal_name, "no process with that name (is shareProcessNamespace: true set, and does it run as our user?)");
                    format!(
                        "{} to {}: no process with that name (shareProcessNamespace: true? same user?)",
                        target.signal_name, target.process
                    )
                }
                Ok(n) => {
                    info!(process = %target.process, signal = %target.signal_name, processes = n, "signalled application");
                    format!(
                        "{} sent to {n} process(es) named {}",
                        target.signal_name, target.process
                    )
                }
                Err(e) => {
                    warn!(process = %target.process, error = %e, "could not signal application");
                    format!("{} to {}: {e}", target.signal_name, target.process)
                }
            };
            let last = last(ok, detail, sha256);
            self.outcomes.send_modify(|n| n.last_signal = Some(last));
        }
    }
}

fn last(ok: bool, detail: String, bundle_sha256: String) -> NotificationStatus {
    NotificationStatus {
        time: rfc3339(now_unix()),
        outcome: NotificationOutcome::of(ok),
        detail,
        bundle_sha256,
    }
}

fn record(metrics: &Metrics, kind: &str, ok: bool) {
    metrics.record_notification(kind, NotificationOutcome::of(ok).as_str());
}

/// The HTTP status and the attempt that succeeded, or the last error.
async fn post_with_retries(url: &str, sha256: &str) -> Result<(u16, u32), String> {
    let mut backoff = FIRST_BACKOFF;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        match tokio::time::timeout(ATTEMPT_TIMEOUT, post(url, sha256)).await {
            Ok(Ok(status)) if (200..300).contains(&status) => return Ok((status, attempt)),
            Ok(Ok(status)) => last = format!("HTTP {status}"),
            Ok(Err(e)) => last = e,
            Err(_) => last = format!("timed out after {ATTEMPT_TIMEOUT:?}"),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    Err(format!("{last} (after {ATTEMPTS} attempts)"))
}

async fn post(url: &str, sha256: &str) -> Result<u16, String> {
    let uri: hyper::Uri = url.parse().map_err(|e| format!("bad URL: {e}"))?;
    let host = uri.host().ok_or("URL has no host")?.to_string();
    let port = uri.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let req = Request::post(path)
        .header(hyper::header::HOST, format!("{host}:{port}"))
        .header(
            hyper::header::USER_AGENT,
            concat!("trust-injector/", env!("CARGO_PKG_VERSION")),
        )
        .header("X-Trust-Bundle-Sha256", sha256)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    Ok(resp.status().as_u16())
}

/// Sends the signal to every process whose `/proc/PID/comm` is the target
/// name (except ourselves). Returns how many were signalled.
fn signal_processes(target: &SignalTarget) -> std::io::Result<usize> {
    let me = std::process::id();
    let signal = kernel_signal(target.signal).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("signal {} is not a Linux signal number", target.signal),
        )
    })?;
    let mut sent = 0;
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(comm) = std::fs::read_to_string(entry.path().join("comm")) else {
            continue;
        };
        if comm.trim_end_matches('\n') != target.process {
            continue;
        }
        let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
            continue;
        };
        // A stale pid at worst yields ESRCH: that process is not counted.
        if kill_process(pid, signal).is_ok() {
            sent += 1;
        }
    }
    Ok(sent)
}

/// `--on-change-signal`'s number as a signal `kill` can send. Linux names
/// 1 to 31; the configuration also accepts the real-time signals up to 64,
/// which rustix builds only through an `unsafe` constructor.
fn kernel_signal(raw: i32) -> Option<Signal> {
    if let Some(named) = Signal::from_named_raw(raw) {
        return Some(named);
    }
    if !(1..=MAX_SIGNAL).contains(&raw) {
        return None;
    }
    // SAFETY: `raw` is a valid, non-zero Linux signal number (checked just
    // above). rustix asks that a real-time number the C library reserves
    // for its own threads never be sent; that reservation protects this
    // process, and `signal_processes` never signals this process.
    Some(unsafe { Signal::from_raw_unchecked(raw) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    #[test]
    fn every_signal_the_configuration_accepts_can_be_sent() {
        for raw in 1..=MAX_SIGNAL {
            assert_eq!(kernel_signal(raw).map(Signal::as_raw), Some(raw), "{raw}");
        }
        assert!(kernel_signal(0).is_none());
        assert!(kernel_signal(MAX_SIGNAL + 1).is_none());
    }

    #[test]
    fn a_real_time_signal_reaches_its_process() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("start sleep (coreutils)");
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
        kill_process(pid, kernel_signal(40).unwrap()).unwrap();
        // A real-time signal's default action ends the process.
        assert_eq!(child.wait().unwrap().signal(), Some(40));
    }
}
