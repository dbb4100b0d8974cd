//! `run`: the reconcile loop and everything that feeds it.
//!
//! One task owns the [`Reconciler`]; the watcher, the timers and the signal
//! handlers only wake it, and the HTTP server only reads the snapshot it
//! publishes. Shutdown is a watch flag checked between reconciles, so a stop
//! never interrupts a publish half-way (and a publish is short).
//!
//! [`reconcile`] is the single writer that runs the trust pipeline and the
//! outputs; [`watch`], [`signals`] and the timers here wake it; [`server`]
//! serves [`status`] and [`metrics`]; [`hooks`] notifies after a publish.

pub(crate) mod hooks;
pub(crate) mod inventory;
pub(crate) mod journal;
pub(crate) mod metrics;
pub(crate) mod reconcile;
pub(crate) mod server;
pub(crate) mod signals;
pub(crate) mod status;
pub(crate) mod watch;

use crate::clock::now_unix;
use crate::config::RunConfig;
use crate::daemon::hooks::Hooks;
use crate::daemon::metrics::Metrics;
use crate::daemon::reconcile::{Reconciler, Report};
use crate::daemon::server::{serve, Shared};
use crate::daemon::status::{NotificationsStatus, Progress};
use crate::daemon::watch::Watches;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{self, Notify};
use tokio::time::{sleep_until, Instant};
use tracing::{debug, info};

/// A storm of events delays the re-read by at most this much past the first
/// event, so a busy volume cannot starve publishing.
const MAX_DEBOUNCE_DELAY: Duration = Duration::from_secs(1);
/// Re-reads allowed in a row while new watches are being added (a source
/// appearing level by level); the resync covers anything deeper.
const MAX_WATCH_SETTLE: usize = 4;

/// Why the daemon could not run. Mapped to exit codes by `main`.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Configuration problems found at start-up (exit 2).
    #[error("{0}")]
    Config(String),
    /// Anything else (exit 1).
    #[error("{0}")]
    Fatal(String),
}

/// Runs `--once`: one reconcile. Returns the report (the caller turns errors
/// into exit code 1).
pub fn run_once(config: &RunConfig) -> Result<Report, DaemonError> {
    crate::memory::one_shot();
    let metrics = Arc::new(Metrics::new());
    let mut reconciler = Reconciler::new(config, metrics)
        .map_err(|e| DaemonError::Config(format!("--out-dir: {e}")))?;
    Ok(reconciler.reconcile())
}

/// What one reconcile cycle needs, moved onto a blocking thread for the
/// cycle and back: a read that never returns then hangs that thread only,
/// and the probe server (on the runtime thread) can say so.
struct Worker {
    /// The only writer of the output; moved, never shared, so no locking.
    reconciler: Reconciler,
    /// Watches follow the sources after each read, in the same cycle.
    watches: Watches,
}

impl Worker {
    /// Reconciles, then follows the sources' watches until they are stable:
    /// sources may have appeared or been replaced, and a directory that
    /// appeared may have been filled before its watch existed, which no event
    /// will ever say, so it is read again.
    fn cycle(&mut self) -> Report {
        let mut report = self.reconciler.reconcile();
        for _ in 0..MAX_WATCH_SETTLE {
            if !self.watches.update(&self.reconciler.watched_paths()) {
                break;
            }
            let again = self.reconciler.reconcile();
            report.changed |= again.changed;
        }
        report
    }
}

/// Runs one [`Worker::cycle`] on a blocking thread, marking progress for
/// `/healthz` around it.
async fn run_cycle(
    mut worker: Worker,
    progress: &Progress,
) -> Result<(Worker, Report), DaemonError> {
    progress.begin();
    let done = tokio::task::spawn_blocking(move || {
        let report = worker.cycle();
        crate::memory::idle();
        (worker, report)
    })
    .await;
    progress.end();
    // The runtime thread freed memory too (the previous snapshot, start-up).
    crate::memory::idle();
    done.map_err(|e| DaemonError::Fatal(format!("reconcile failed: {e}")))
}

/// Runs the daemon until SIGTERM/SIGINT. Needs a current-thread runtime.
pub async fn run(config: RunConfig) -> Result<(), DaemonError> {
    let metrics = Arc::new(Metrics::new());
    let reconciler = Reconciler::new(&config, Arc::clone(&metrics))
        .map_err(|e| DaemonError::Config(format!("--out-dir: {e}")))?;

    let (shutdown_tx, mut shutdown) = sync::watch::channel(false);
    let reread = Arc::new(Notify::new());
    crate::daemon::signals::install(shutdown_tx, Arc::clone(&reread))
        .map_err(|e| DaemonError::Fatal(format!("cannot install signal handlers: {e}")))?;

    let progress = Arc::new(Progress::default());
    let (status_tx, status_rx) = sync::watch::channel(Arc::new(reconciler.status()));
    if let Some(addr) = config.listen {
        let shared = Shared {
            progress: Arc::clone(&progress),
            status: status_rx,
            metrics: Arc::clone(&metrics),
        };
        start_server(addr, shared).await?;
    }

    let fs_events = Arc::new(Notify::new());
    let watches = Watches::new(Arc::clone(&fs_events))
        .map_err(|e| DaemonError::Fatal(format!("cannot start file watcher: {e}")))?;
    let (hooks, mut notifications) = Hooks::new(
        config.on_change_url.clone(),
        config.on_change_signal.clone(),
    );

    log_start(&config);
    let mut worker = Worker {
        reconciler,
        watches,
    };
    // Watch before the first read, so a change during it is not missed.
    let _ = worker.watches.update(&worker.reconciler.watched_paths());
    let mut reason = "start";
    let mut next_resync = config.resync.map(|d| Instant::now() + d);
    loop {
        debug!(reason, "reconcile");
        let report;
        (worker, report) = run_cycle(worker, &progress).await?;
        let status = snapshot(&worker.reconciler, &mut notifications);
        if report.changed && hooks.any() {
            if let Some(sha) = status.bundle.sha256.clone() {
                hooks.fire(sha, Arc::clone(&metrics));
            }
        }
        let _ = status_tx.send(status);
        // Let the signal tasks run: under a storm of file events every branch
        // below is ready at once and this loop would never yield.
        tokio::task::yield_now().await;

        let expiry = expiry_deadline(worker.reconciler.next_expiry());
        // A failed publish is retried on its own clock: --resync may be off,
        // and a freed disk or fixed permission sends no event.
        let retry = worker.reconciler.retry_after().map(|d| Instant::now() + d);
        reason = loop {
            let resync_at = next_resync;
            tokio::select! {
                // Checked first: a stop must win over a storm of events.
                biased;
                _ = shutdown.changed() => {
                    info!("stopped");
                    return Ok(());
                }
                _ = fs_events.notified() => {
                    if debounce(&fs_events, config.debounce, &mut shutdown).await {
                        break "file event";
                    }
                    info!("stopped");
                    return Ok(());
                }
                _ = reread.notified() => break "SIGHUP",
                // A hook finished (in its own task): show its outcome now.
                Ok(()) = notifications.changed() => {
                    let _ = status_tx.send(snapshot(&worker.reconciler, &mut notifications));
                }
                _ = sleep_until(retry.unwrap_or_else(far_future)), if retry.is_some() => {
                    break "publish retry";
                }
                _ = sleep_until(resync_at.unwrap_or_else(far_future)), if resync_at.is_some() => {
                    next_resync = config.resync.map(|d| Instant::now() + d);
                    break "resync";
                }
                _ = sleep_until(expiry.unwrap_or_else(far_future)), if expiry.is_some() => {
                    break "certificate expiry";
                }
            }
        };
    }
}

/// Binds `--listen` (a failure is a configuration error: exit 2) and serves
/// the probes in their own task.
async fn start_server(addr: std::net::SocketAddr, shared: Shared) -> Result<(), DaemonError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| DaemonError::Config(format!("--listen {addr}: {e}")))?;
    info!(%addr, "serving /healthz /readyz /metrics /status");
    tokio::spawn(serve(listener, shared));
    Ok(())
}

fn log_start(config: &RunConfig) {
    info!(
        sources = ?config.sources,
        out_dir = %config.out_dir.display(),
        resync_seconds = config.resync.map_or(0, |d| d.as_secs()),
        debounce_ms = config.debounce.as_millis() as u64,
        "started"
    );
}

/// The `/status` snapshot: the reconciler's state plus the hooks' outcomes.
fn snapshot(
    reconciler: &Reconciler,
    notifications: &mut sync::watch::Receiver<NotificationsStatus>,
) -> Arc<crate::daemon::status::Status> {
    let mut status = reconciler.status();
    // Marked as seen, or `changed()` would fire again at once.
    status.notifications = notifications.borrow_and_update().clone();
    Arc::new(status)
}

/// Waits until no event arrived for `quiet` (at most [`MAX_DEBOUNCE_DELAY`]
/// in all). Returns false if shutdown was requested meanwhile.
async fn debounce(
    events: &Notify,
    quiet: Duration,
    shutdown: &mut sync::watch::Receiver<bool>,
) -> bool {
    if quiet.is_zero() {
        return true;
    }
    let give_up = Instant::now() + MAX_DEBOUNCE_DELAY.max(quiet);
    loop {
        let until = (Instant::now() + quiet).min(give_up);
        tokio::select! {
            _ = sleep_until(until) => return true,
            _ = events.notified() => {
                if Instant::now() >= give_up {
                    return true;
                }
            }
            _ = shutdown.changed() => return false,
        }
    }
}

/// The instant just after the next certificate expires, if one does.
fn expiry_deadline(next_expiry: Option<i64>) -> Option<Instant> {
    let secs = next_expiry?.checked_sub(now_unix())?.checked_add(1)?;
    let secs = u64::try_from(secs).unwrap_or(0);
    // Timers far in the future are pointless: the resync or the next event
    // comes first, and a week bounds the arithmetic.
    Some(Instant::now() + Duration::from_secs(secs.min(7 * 24 * 3600)))
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 24 * 3600)
}
