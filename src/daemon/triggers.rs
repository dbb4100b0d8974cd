//! What wakes the reconcile loop: file events (debounced), SIGHUP, the
//! timers (resync, publish retry, the next expiry or retention deadline),
//! a step of the wall clock, the hooks' outcomes and shutdown, each one
//! [`Trigger`] returned by [`Triggers::next`]. The loop decides what a
//! trigger means; this module only waits.

use crate::clock::{now_unix, StepDetector};
use crate::config::RunConfig;
use crate::daemon::status::NotificationsStatus;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{self, Notify};
use tokio::time::{sleep_until, Instant};
use tracing::info;

/// A storm of events delays the re-read by at most this much past the first
/// event, so a busy volume cannot starve publishing.
const MAX_DEBOUNCE_DELAY: Duration = Duration::from_secs(1);

/// How often the wall clock is compared with the monotonic one
/// ([`Trigger::ClockStep`]): the longest an expiry that a step jumped past
/// stays published.
const CLOCK_CHECK: Duration = Duration::from_secs(1);

/// Why the loop reconciles, as logged (`reason` of the "reconcile" debug
/// line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// The first reconcile, at start.
    Start,
    /// A watched directory changed (after the debounce).
    FileEvent,
    /// SIGHUP asked for a re-read.
    Sighup,
    /// A failed publish is retried.
    PublishRetry,
    /// `--resync` elapsed.
    Resync,
    /// A published certificate expired, or a retained one's grace ended.
    CertificateExpiry,
    /// The wall clock was stepped: expiries are judged again.
    ClockStep,
}

impl Reason {
    /// The text in the log. Logged as a string (not through `Display`) so the
    /// text format keeps its quotes: `reason="file event"`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Reason::Start => "start",
            Reason::FileEvent => "file event",
            Reason::Sighup => "SIGHUP",
            Reason::PublishRetry => "publish retry",
            Reason::Resync => "resync",
            Reason::CertificateExpiry => "certificate expiry",
            Reason::ClockStep => "clock step",
        }
    }
}

/// One thing that woke the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// SIGTERM or SIGINT (also during a debounce): stop.
    Shutdown,
    /// A file event, once the volume was quiet for `--debounce`.
    FileEvent,
    /// SIGHUP.
    Sighup,
    /// A hook finished in its own task: its outcome belongs in `/status`.
    Notification,
    /// The retry timer of a failed publish.
    PublishRetry,
    /// The `--resync` timer (re-armed when it fires).
    Resync,
    /// The wall clock was stepped (by hand, by NTP, a VM resumed): the
    /// expiry timer, on the monotonic clock, no longer says when.
    ClockStep,
    /// The next expiry or retention deadline.
    Expiry,
}

impl Trigger {
    /// The reconcile this trigger asks for; `None` for those that ask for
    /// none (a shutdown stops, a notification only refreshes `/status`).
    pub(crate) fn reason(self) -> Option<Reason> {
        match self {
            Trigger::Shutdown | Trigger::Notification => None,
            Trigger::FileEvent => Some(Reason::FileEvent),
            Trigger::Sighup => Some(Reason::Sighup),
            Trigger::PublishRetry => Some(Reason::PublishRetry),
            Trigger::Resync => Some(Reason::Resync),
            Trigger::Expiry => Some(Reason::CertificateExpiry),
            Trigger::ClockStep => Some(Reason::ClockStep),
        }
    }
}

/// Where the wake-ups come from, made before their producers start (the
/// signal handlers, the watcher and the hooks are given the sending ends).
pub(crate) struct Wakers {
    /// Set to true by SIGTERM/SIGINT.
    pub shutdown: sync::watch::Receiver<bool>,
    /// Notified by the file watcher.
    pub fs_events: Arc<Notify>,
    /// Notified by SIGHUP.
    pub reread: Arc<Notify>,
    /// The hooks' last outcomes.
    pub notifications: sync::watch::Receiver<NotificationsStatus>,
}

/// Everything the loop waits on, and the resync timer's state.
pub(crate) struct Triggers {
    wakers: Wakers,
    /// Notices steps of the wall clock.
    clock: ClockWatch,
    /// `--debounce`: the quiet time a file event waits for.
    debounce: Duration,
    /// `--resync`, if on.
    resync: Option<Duration>,
    /// When the resync timer fires next; re-armed only when it fires, so
    /// events do not postpone it forever.
    next_resync: Option<Instant>,
}

impl Triggers {
    /// Waits on `wakers`; the resync timer starts now.
    pub(crate) fn new(wakers: Wakers, config: &RunConfig) -> Self {
        Self::with(wakers, config.debounce, config.resync)
    }

    fn with(wakers: Wakers, debounce: Duration, resync: Option<Duration>) -> Self {
        Triggers {
            wakers,
            clock: ClockWatch::new(),
            debounce,
            resync,
            next_resync: resync.map(|d| Instant::now() + d),
        }
    }

    /// Waits for the next trigger; `retry` and `expiry` are the deadlines of
    /// the publish retry and of the next expiry, if any.
    pub(crate) async fn next(
        &mut self,
        retry: Option<Instant>,
        expiry: Option<Instant>,
    ) -> Trigger {
        let resync_at = self.next_resync;
        let w = &mut self.wakers;
        tokio::select! {
            // Checked first: a stop must win over a storm of events.
            biased;
            _ = w.shutdown.changed() => Trigger::Shutdown,
            _ = w.fs_events.notified() => {
                if debounce(&w.fs_events, self.debounce, &mut w.shutdown).await {
                    Trigger::FileEvent
                } else {
                    Trigger::Shutdown
                }
            }
            _ = w.reread.notified() => Trigger::Sighup,
            Ok(()) = w.notifications.changed() => Trigger::Notification,
            () = self.clock.step() => Trigger::ClockStep,
            _ = sleep_until(retry.unwrap_or_else(far_future)), if retry.is_some() => {
                Trigger::PublishRetry
            }
            _ = sleep_until(resync_at.unwrap_or_else(far_future)), if resync_at.is_some() => {
                self.next_resync = self.resync.map(|d| Instant::now() + d);
                Trigger::Resync
            }
            _ = sleep_until(expiry.unwrap_or_else(far_future)), if expiry.is_some() => {
                Trigger::Expiry
            }
        }
    }

    /// The hooks' last outcomes, marked as seen (or [`Trigger::Notification`]
    /// would fire again at once).
    pub(crate) fn notifications(&mut self) -> NotificationsStatus {
        self.wakers.notifications.borrow_and_update().clone()
    }
}

/// Looks at the wall clock every [`CLOCK_CHECK`] for a step.
struct ClockWatch {
    detector: StepDetector,
    /// The next look; kept across [`Triggers::next`] calls, so other
    /// triggers do not postpone it.
    next_check: Instant,
}

impl ClockWatch {
    fn new() -> Self {
        ClockWatch {
            detector: StepDetector::new(),
            next_check: Instant::now() + CLOCK_CHECK,
        }
    }

    /// Returns when a look finds the wall clock stepped. Cancel-safe: a
    /// look is taken whole after its wait, or not at all.
    async fn step(&mut self) {
        loop {
            sleep_until(self.next_check).await;
            self.next_check = Instant::now() + CLOCK_CHECK;
            if let Some(seconds) = self.detector.stepped() {
                info!(
                    seconds,
                    "the wall clock was stepped; judging expiries again"
                );
                return;
            }
        }
    }
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
pub(crate) fn expiry_deadline(next_expiry: Option<i64>) -> Option<Instant> {
    let secs = next_expiry?.checked_sub(now_unix())?.checked_add(1)?;
    let secs = u64::try_from(secs).unwrap_or(0);
    // Timers far in the future are pointless: the resync or the next event
    // comes first, and a week bounds the arithmetic.
    Some(Instant::now() + Duration::from_secs(secs.min(7 * 24 * 3600)))
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(365 * 24 * 3600)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runtime like the daemon's (current-thread, timers on).
    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Triggers over fresh channels, with the sending ends.
    struct Fixture {
        triggers: Triggers,
        shutdown: sync::watch::Sender<bool>,
        fs_events: Arc<Notify>,
        reread: Arc<Notify>,
        notifications: sync::watch::Sender<NotificationsStatus>,
    }

    fn fixture(debounce: Duration, resync: Option<Duration>) -> Fixture {
        let (shutdown, shutdown_rx) = sync::watch::channel(false);
        let (notifications, notifications_rx) = sync::watch::channel(Default::default());
        let (fs_events, reread) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let wakers = Wakers {
            shutdown: shutdown_rx,
            fs_events: Arc::clone(&fs_events),
            reread: Arc::clone(&reread),
            notifications: notifications_rx,
        };
        Fixture {
            triggers: Triggers::with(wakers, debounce, resync),
            shutdown,
            fs_events,
            reread,
            notifications,
        }
    }

    fn soon() -> Option<Instant> {
        Some(Instant::now() + Duration::from_millis(20))
    }

    #[test]
    fn reasons_are_logged_as_before() {
        let reasons = [
            Reason::Start,
            Reason::FileEvent,
            Reason::Sighup,
            Reason::PublishRetry,
            Reason::Resync,
            Reason::CertificateExpiry,
            Reason::ClockStep,
        ];
        assert_eq!(
            reasons.map(Reason::as_str),
            [
                "start",
                "file event",
                "SIGHUP",
                "publish retry",
                "resync",
                "certificate expiry",
                "clock step"
            ]
        );
    }

    #[test]
    fn every_trigger_but_shutdown_and_notifications_asks_for_a_reconcile() {
        let mapping = [
            (Trigger::Shutdown, None),
            (Trigger::Notification, None),
            (Trigger::FileEvent, Some(Reason::FileEvent)),
            (Trigger::Sighup, Some(Reason::Sighup)),
            (Trigger::PublishRetry, Some(Reason::PublishRetry)),
            (Trigger::Resync, Some(Reason::Resync)),
            (Trigger::Expiry, Some(Reason::CertificateExpiry)),
            (Trigger::ClockStep, Some(Reason::ClockStep)),
        ];
        for (trigger, reason) in mapping {
            assert_eq!(trigger.reason(), reason, "{trigger:?}");
        }
    }

    #[test]
    fn a_stop_wins_over_everything_else_ready() {
        let mut f = fixture(Duration::ZERO, None);
        f.fs_events.notify_one();
        f.reread.notify_one();
        f.shutdown.send(true).unwrap();
        let past = Some(Instant::now());
        assert_eq!(block_on(f.triggers.next(past, past)), Trigger::Shutdown);
    }

    #[test]
    fn each_source_yields_its_trigger() {
        let mut f = fixture(Duration::ZERO, None);
        block_on(async {
            f.fs_events.notify_one();
            assert_eq!(f.triggers.next(None, None).await, Trigger::FileEvent);
            f.reread.notify_one();
            assert_eq!(f.triggers.next(None, None).await, Trigger::Sighup);
            f.notifications.send_modify(|_| {});
            assert_eq!(f.triggers.next(None, None).await, Trigger::Notification);
            let _ = f.triggers.notifications();
            assert_eq!(f.triggers.next(soon(), None).await, Trigger::PublishRetry);
            assert_eq!(f.triggers.next(None, soon()).await, Trigger::Expiry);
        });
    }

    #[test]
    fn the_resync_timer_rearms_when_it_fires() {
        let mut f = fixture(Duration::ZERO, Some(Duration::from_millis(20)));
        block_on(async {
            let started = Instant::now();
            assert_eq!(f.triggers.next(None, None).await, Trigger::Resync);
            assert_eq!(f.triggers.next(None, None).await, Trigger::Resync);
            assert!(started.elapsed() >= Duration::from_millis(40));
        });
    }

    #[test]
    fn a_stop_during_the_debounce_is_a_shutdown() {
        let mut f = fixture(Duration::from_secs(5), None);
        f.fs_events.notify_one();
        let stop = f.shutdown.clone();
        block_on(async {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _ = stop.send(true);
            });
            assert_eq!(f.triggers.next(None, None).await, Trigger::Shutdown);
        });
    }

    #[test]
    fn a_storm_of_events_is_debounced_at_most_a_second() {
        let mut f = fixture(Duration::from_millis(300), None);
        f.fs_events.notify_one();
        let events = Arc::clone(&f.fs_events);
        block_on(async {
            let started = Instant::now();
            tokio::spawn(async move {
                loop {
                    events.notify_one();
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            });
            assert_eq!(f.triggers.next(None, None).await, Trigger::FileEvent);
            let waited = started.elapsed();
            assert!(waited >= MAX_DEBOUNCE_DELAY, "{waited:?}");
            assert!(waited < MAX_DEBOUNCE_DELAY * 3, "{waited:?}");
        });
    }

    #[test]
    fn the_expiry_timer_fires_just_after_the_expiry() {
        let now = now_unix();
        assert_eq!(expiry_deadline(None), None);
        let past = expiry_deadline(Some(now - 100)).unwrap();
        assert!(past <= Instant::now() + Duration::from_secs(1));
        let later = expiry_deadline(Some(now + 60)).unwrap();
        let wait = later - Instant::now();
        assert!(wait > Duration::from_secs(59) && wait <= Duration::from_secs(61));
        let far = expiry_deadline(Some(i64::MAX)).unwrap();
        assert!(far - Instant::now() <= Duration::from_secs(7 * 24 * 3600));
    }
}
