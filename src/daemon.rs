//! `run`: the reconcile loop and everything that feeds it.
//!
//! One task owns the [`Reconciler`]; the watcher, the timers and the signal
//! handlers only wake it, and the HTTP server only reads the snapshot it
//! publishes. Shutdown is a watch flag checked between reconciles, so a stop
//! never interrupts a publish half-way (and a publish is short).

use crate::config::RunConfig;
use crate::hooks::Hooks;
use crate::metrics::Metrics;
use crate::reconcile::{Reconciler, Report};
use crate::server::{serve, Shared};
use crate::status::{now_unix, NotificationsStatus};
use crate::watch::Watches;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::time::{sleep_until, Instant};
use tracing::{debug, info};

/// `/healthz` questions that may wait for the loop; more means it is stuck.
const PENDING_PINGS: usize = 64;
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
    let metrics = Arc::new(Metrics::new());
    let mut reconciler = Reconciler::new(config, metrics)
        .map_err(|e| DaemonError::Config(format!("--out-dir: {e}")))?;
    Ok(reconciler.reconcile())
}

/// Runs the daemon until SIGTERM/SIGINT. Needs a current-thread runtime.
pub async fn run(config: RunConfig) -> Result<(), DaemonError> {
    let metrics = Arc::new(Metrics::new());
    let mut reconciler = Reconciler::new(&config, Arc::clone(&metrics))
        .map_err(|e| DaemonError::Config(format!("--out-dir: {e}")))?;

    let (shutdown_tx, mut shutdown) = watch::channel(false);
    let reread = Arc::new(Notify::new());
    crate::signals::install(shutdown_tx, Arc::clone(&reread))
        .map_err(|e| DaemonError::Fatal(format!("cannot install signal handlers: {e}")))?;

    // Liveness questions from /healthz, answered by this loop between reconciles.
    let (ping_tx, mut pings) = tokio::sync::mpsc::channel::<crate::server::Ping>(PENDING_PINGS);
    let (status_tx, status_rx) = watch::channel(Arc::new(reconciler.status()));
    if let Some(addr) = config.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| DaemonError::Config(format!("--listen {addr}: {e}")))?;
        info!(%addr, "serving /healthz /readyz /metrics /status");
        tokio::spawn(serve(
            listener,
            Shared {
                pings: ping_tx,
                status: status_rx,
                metrics: Arc::clone(&metrics),
            },
        ));
    }

    let fs_events = Arc::new(Notify::new());
    let mut watches = Watches::new(Arc::clone(&fs_events))
        .map_err(|e| DaemonError::Fatal(format!("cannot start file watcher: {e}")))?;
    let (hooks, mut notifications) = Hooks::new(
        config.on_change_url.clone(),
        config.on_change_signal.clone(),
    );

    info!(
        sources = ?config.sources,
        out_dir = %config.out_dir.display(),
        resync_seconds = config.resync.map_or(0, |d| d.as_secs()),
        debounce_ms = config.debounce.as_millis() as u64,
        "started"
    );
    // Watch before the first read, so a change during it is not missed.
    let _ = watches.update(&reconciler.watched_paths());
    let mut reason = "start";
    let mut next_resync = config.resync.map(|d| Instant::now() + d);
    loop {
        debug!(reason, "reconcile");
        let mut report = reconciler.reconcile();
        // Sources may have appeared or been replaced: follow them. A directory
        // that appeared may have been filled before its watch existed, and no
        // event will ever say so: read again until the watch set is stable.
        for _ in 0..MAX_WATCH_SETTLE {
            if !watches.update(&reconciler.watched_paths()) {
                break;
            }
            let again = reconciler.reconcile();
            report.changed |= again.changed;
        }
        let status = snapshot(&reconciler, &mut notifications);
        if report.changed && hooks.any() {
            if let Some(sha) = status.bundle.sha256.clone() {
                hooks.fire(sha, Arc::clone(&metrics));
            }
        }
        let _ = status_tx.send(status);
        // Let the signal and HTTP tasks run: under a storm of file events every
        // branch below is ready at once and this loop would never yield.
        tokio::task::yield_now().await;

        let expiry = expiry_deadline(reconciler.next_expiry());
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
                    let _ = status_tx.send(snapshot(&reconciler, &mut notifications));
                }
                _ = sleep_until(resync_at.unwrap_or_else(far_future)), if resync_at.is_some() => {
                    next_resync = config.resync.map(|d| Instant::now() + d);
                    break "resync";
                }
                _ = sleep_until(expiry.unwrap_or_else(far_future)), if expiry.is_some() => {
                    break "certificate expiry";
                }
                Some(reply) = pings.recv() => {
                    let _ = reply.send(());
                }
            }
        };
    }
}

/// The `/status` snapshot: the reconciler's state plus the hooks' outcomes.
fn snapshot(
    reconciler: &Reconciler,
    notifications: &mut watch::Receiver<NotificationsStatus>,
) -> Arc<crate::status::Status> {
    let mut status = reconciler.status();
    // Marked as seen, or `changed()` would fire again at once.
    status.notifications = notifications.borrow_and_update().clone();
    Arc::new(status)
}

/// Waits until no event arrived for `quiet` (at most [`MAX_DEBOUNCE_DELAY`]
/// in all). Returns false if shutdown was requested meanwhile.
async fn debounce(events: &Notify, quiet: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
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
