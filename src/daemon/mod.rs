//! `run`: the reconcile loop and everything that feeds it.
//!
//! One task owns the [`Reconciler`]; the watcher, the timers and the signal
//! handlers only wake it, and the HTTP server only reads the snapshot it
//! publishes. Shutdown is a watch flag checked between reconciles, so a stop
//! never interrupts a publish half-way (and a publish is short).
//!
//! [`reconcile`] is the single writer that runs the trust pipeline and the
//! outputs, keeping its books in [`ledger`]; [`watch`], [`signals`] and the
//! timers wake it, all waited on by [`triggers`]; [`server`] serves
//! [`status`] and [`metrics`]; [`hooks`] notifies after a publish;
//! [`backends`] wakes the backend checks (`crate::checks`), which run on
//! their own thread beside the loop and never delay it.

pub(crate) mod backend_metrics;
pub(crate) mod backends;
pub(crate) mod hooks;
pub(crate) mod inventory;
pub(crate) mod journal;
pub(crate) mod ledger;
pub(crate) mod metrics;
pub(crate) mod reconcile;
pub(crate) mod server;
pub(crate) mod status;
pub(crate) mod triggers;

use crate::config::RunConfig;
use crate::daemon::backends::Backends;
use crate::daemon::hooks::Hooks;
use crate::daemon::ledger::Report;
use crate::daemon::metrics::Metrics;
use crate::daemon::reconcile::Reconciler;
use crate::daemon::server::{serve, Shared};
use crate::daemon::status::{Progress, Status};
use crate::daemon::triggers::{expiry_deadline, Reason, Trigger, Triggers, Wakers};
use crate::output::publish::PublishError;
use crate::serve::watch::Watches;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{self, Notify};
use tokio::task::JoinError;
use tokio::time::Instant;
use tracing::{debug, info};

/// Re-reads allowed in a row while new watches are being added (a source
/// appearing level by level); the resync covers anything deeper.
const MAX_WATCH_SETTLE: usize = 4;

/// Why the daemon could not run. Mapped to exit codes by `main`
/// ([`DaemonError::exit_code`]); the messages are what the log says.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The out-dir is not writable, or a previous run's leftovers cannot be
    /// removed (configuration: exit 2).
    #[error("--out-dir: {0}")]
    OutDir(#[from] PublishError),
    /// `--listen` cannot be bound (configuration: exit 2).
    #[error("--listen {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// The SIGTERM/SIGINT/SIGHUP handlers (exit 1).
    #[error("cannot install signal handlers: {0}")]
    Signals(#[source] std::io::Error),
    /// inotify (exit 1; out of watches or descriptors, typically).
    #[error("cannot start file watcher: {0}")]
    Watcher(#[source] notify::Error),
    /// The backend checks' thread could not be started (exit 1).
    #[error("cannot start the backend checks: {0}")]
    Checks(#[source] std::io::Error),
    /// The reconcile thread panicked (exit 1).
    #[error("reconcile failed: {0}")]
    Worker(#[source] JoinError),
}

impl DaemonError {
    /// Whether the configuration is at fault (rather than the machine).
    pub fn is_config(&self) -> bool {
        matches!(self, DaemonError::OutDir(_) | DaemonError::Listen { .. })
    }

    /// 2 for a configuration problem, 1 for anything else.
    pub fn exit_code(&self) -> u8 {
        if self.is_config() {
            2
        } else {
            1
        }
    }
}

/// Runs `--once`: one reconcile. Returns the report (the caller turns errors
/// into exit code 1). The last thing a process does: its memory is left for
/// the exit to take back.
pub fn run_once(config: &RunConfig) -> Result<Report, DaemonError> {
    let metrics = Arc::new(Metrics::new());
    let mut reconciler = Reconciler::new(config, metrics)?;
    let report = reconciler.reconcile();
    // Not dropped: freeing every certificate one by one only hands memory
    // back to an allocator about to vanish, and musl's unmaps it as it goes
    // (docs/performance.md). Nothing in a reconciler acts on drop.
    std::mem::forget(reconciler);
    Ok(report)
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

/// Where the loop's results go: the `/status` snapshot, the hooks, and the
/// progress marks `/healthz` reads.
struct Outlets {
    /// The latest snapshot, read by the server.
    status: sync::watch::Sender<Arc<Status>>,
    /// `--on-change-url` / `--on-change-signal`.
    hooks: Hooks,
    /// Handed to the hooks, which count their outcomes.
    metrics: Arc<Metrics>,
    /// Marked around each cycle.
    progress: Arc<Progress>,
    /// `--check`: told when the bundle changed.
    backends: Backends,
}

impl Outlets {
    /// Shares a cycle's result: the snapshot to the server and, when the
    /// bundle changed, the news to the application.
    fn share(&mut self, reconciler: &Reconciler, report: &Report, triggers: &mut Triggers) {
        let status = snapshot(reconciler, triggers);
        self.backends.after_cycle(report.changed, &status);
        if report.changed && self.hooks.any() {
            if let Some(sha) = status.bundle.sha256.clone() {
                self.hooks.fire(sha, Arc::clone(&self.metrics));
            }
        }
        // Stored even when no server reads it (`--listen off`), where
        // `send` would fail.
        self.status.send_replace(status);
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
        (worker, report)
    })
    .await;
    progress.end();
    done.map_err(DaemonError::Worker)
}

/// Runs the daemon until SIGTERM/SIGINT. Needs a current-thread runtime.
pub async fn run(config: RunConfig) -> Result<(), DaemonError> {
    let (mut worker, mut triggers, mut outlets) = start(&config).await?;
    let mut reason = Reason::Start;
    loop {
        debug!(reason = reason.as_str(), "reconcile");
        let report;
        (worker, report) = run_cycle(worker, &outlets.progress).await?;
        outlets.share(&worker.reconciler, &report, &mut triggers);
        // Let the signal tasks run: under a storm of file events every
        // trigger is ready at once and this loop would never yield.
        tokio::task::yield_now().await;

        let expiry = expiry_deadline(worker.reconciler.next_expiry());
        // A failed publish is retried on its own clock: --resync may be off,
        // and a freed disk or fixed permission sends no event.
        let retry = worker.reconciler.retry_after().map(|d| Instant::now() + d);
        reason = loop {
            let trigger = triggers.next(retry, expiry).await;
            if let Some(reason) = trigger.reason() {
                break reason;
            }
            match trigger {
                Trigger::Shutdown => {
                    info!("stopped");
                    return Ok(());
                }
                // A hook finished (in its own task): show its outcome now.
                _ => {
                    outlets
                        .status
                        .send_replace(snapshot(&worker.reconciler, &mut triggers));
                }
            }
        };
    }
}

/// Everything before the first reconcile, in the order whose failures
/// users see first: the out-dir, the signal handlers, `--listen`, the
/// watcher. Logs "started".
async fn start(config: &RunConfig) -> Result<(Worker, Triggers, Outlets), DaemonError> {
    let metrics = Arc::new(Metrics::new());
    let reconciler = Reconciler::new(config, Arc::clone(&metrics))?;

    let (shutdown_tx, shutdown) = sync::watch::channel(false);
    let reread = Arc::new(Notify::new());
    crate::serve::signals::install(shutdown_tx, Arc::clone(&reread))
        .map_err(DaemonError::Signals)?;

    let backends = Backends::start(config, &metrics).map_err(DaemonError::Checks)?;
    let progress = Arc::new(Progress::default());
    let (status, status_rx) = sync::watch::channel(Arc::new(reconciler.status()));
    if let Some(addr) = config.listen {
        let shared = Shared {
            progress: Arc::clone(&progress),
            status: status_rx,
            metrics: Arc::clone(&metrics),
            backends: Arc::clone(&backends.board),
        };
        start_server(addr, shared).await?;
    }

    let fs_events = Arc::new(Notify::new());
    let watches = Watches::new(Arc::clone(&fs_events)).map_err(DaemonError::Watcher)?;
    let (hooks, notifications) = Hooks::new(
        config.on_change_url.clone(),
        config.on_change_signal.clone(),
    );

    log_start(config);
    let mut worker = Worker {
        reconciler,
        watches,
    };
    // Watch before the first read, so a change during it is not missed.
    let _ = worker.watches.update(&worker.reconciler.watched_paths());
    let wakers = Wakers {
        shutdown,
        fs_events,
        reread,
        notifications,
    };
    let outlets = Outlets {
        status,
        hooks,
        metrics,
        progress,
        backends,
    };
    Ok((worker, Triggers::new(wakers, config), outlets))
}

/// Binds `--listen` (a failure is a configuration error: exit 2) and serves
/// the probes in their own task.
async fn start_server(addr: SocketAddr, shared: Shared) -> Result<(), DaemonError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| DaemonError::Listen { addr, source })?;
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
fn snapshot(reconciler: &Reconciler, triggers: &mut Triggers) -> Arc<Status> {
    let mut status = reconciler.status();
    status.notifications = triggers.notifications();
    Arc::new(status)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io;
    use std::path::Path;

    /// `run --base none --source SOURCE --out-dir OUT`, checked as the
    /// command line would be.
    pub(crate) fn run_config(source: &Path, out: &Path) -> RunConfig {
        let argv = ["trust-injector", "run", "--base", "none", "--source"];
        let argv = argv.iter().map(Into::into).chain([
            source.as_os_str().to_owned(),
            "--out-dir".into(),
            out.as_os_str().to_owned(),
        ]);
        match crate::config::parse_from(argv).unwrap().command {
            Some(crate::config::Command::Run(args)) => args.validate().unwrap(),
            other => panic!("not a run command: {other:?}"),
        }
    }

    fn io_error() -> io::Error {
        io::Error::from_raw_os_error(libc::EADDRINUSE)
    }

    #[test]
    fn errors_read_as_before_and_configuration_ones_exit_2() {
        let out_dir = DaemonError::from(PublishError::new(
            "create",
            "/out/.trust-injector-probe".as_ref(),
            io::Error::from_raw_os_error(libc::EROFS),
        ));
        let listen = DaemonError::Listen {
            addr: "127.0.0.1:9090".parse().unwrap(),
            source: io_error(),
        };
        let signals = DaemonError::Signals(io_error());
        let watcher = DaemonError::Watcher(notify::Error::generic("out of watches"));
        let io = io_error().to_string();
        assert!(out_dir.to_string().starts_with("--out-dir: "), "{out_dir}");
        assert_eq!(listen.to_string(), format!("--listen 127.0.0.1:9090: {io}"));
        assert_eq!(
            signals.to_string(),
            format!("cannot install signal handlers: {io}")
        );
        assert_eq!(
            watcher.to_string(),
            "cannot start file watcher: out of watches"
        );
        let codes = [&out_dir, &listen, &signals, &watcher].map(DaemonError::exit_code);
        assert_eq!(codes, [2, 2, 1, 1]);
    }

    #[test]
    fn a_worker_that_died_is_a_fatal_error() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let join = runtime.block_on(async {
            let task = tokio::spawn(std::future::pending::<()>());
            task.abort();
            task.await.unwrap_err()
        });
        let e = DaemonError::Worker(join);
        assert!(e.to_string().starts_with("reconcile failed: "), "{e}");
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn run_once_on_an_unwritable_out_dir_is_a_configuration_error() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        // A file, not a directory: no write can succeed, even as root.
        std::fs::write(&out, b"").unwrap();
        let e = run_once(&run_config(&tmp.path().join("secret"), &out)).unwrap_err();
        assert!(matches!(e, DaemonError::OutDir(_)), "{e:?}");
        assert!(e.to_string().starts_with("--out-dir: "), "{e}");
        assert_eq!(e.exit_code(), 2);
    }
}
