//! The connection slots of one listener: a cap on open connections, and, when
//! the cap is reached, the eviction of the oldest connection that is not
//! serving a request.
//!
//! A cap alone lets whoever fills it first keep it: half-open sockets, idle
//! TLS, headers or bodies sent a byte at a time each hold a slot until their
//! timeout, and one client that reconnects holds them all (issue 24). A
//! connection that only waits (for a handshake, headers, a body, or the next
//! request of a keep-alive) costs nobody anything to close, and a real client
//! reconnects; so a new connection takes the slot of the oldest waiting one.
//! A connection answering a request is never evicted: those are bounded by
//! the request timeout instead, and while every slot answers one, accepting
//! waits (backpressure rather than unbounded memory).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// The open connections of one listener, oldest first.
#[derive(Debug)]
pub(crate) struct Slots {
    /// One permit per connection that may still open.
    free: Arc<Semaphore>,
    /// Every open connection by its age (ids only grow).
    open: Mutex<BTreeMap<u64, Arc<Activity>>>,
    next: AtomicU64,
}

/// What one connection is doing, shared by its task and [`Slots`].
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// Requests being answered on it now: zero means it only waits, and may
    /// be evicted.
    serving: AtomicUsize,
    /// Set once it was chosen, so each eviction frees a different slot.
    evicted: AtomicBool,
    /// Wakes the connection's task to close it. `notify_one` keeps the
    /// wake-up if the task is not waiting yet.
    evict: Notify,
}

/// A held slot; dropping it (the connection's task ending) frees it.
#[derive(Debug)]
pub(crate) struct Slot {
    id: u64,
    activity: Arc<Activity>,
    slots: Arc<Slots>,
    _permit: OwnedSemaphorePermit,
}

/// Marks its connection as answering a request while it lives.
#[derive(Debug)]
pub(crate) struct Serving(Arc<Activity>);

impl Slots {
    /// Room for `max` connections at once.
    pub(crate) fn new(max: usize) -> Arc<Slots> {
        Arc::new(Slots {
            free: Arc::new(Semaphore::new(max)),
            open: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(0),
        })
    }

    /// A slot for a new connection: a free one, else the one of the oldest
    /// waiting connection once it has closed, else (every connection is
    /// answering a request) the first to end.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Slot {
        let permit = match Arc::clone(&self.free).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                self.evict_oldest_waiting();
                // The semaphore is never closed, so acquiring only waits;
                // `forget`-free permits always come back on drop.
                match Arc::clone(&self.free).acquire_owned().await {
                    Ok(p) => p,
                    Err(closed) => unreachable!("the slots' semaphore is never closed: {closed}"),
                }
            }
        };
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::default());
        self.lock().insert(id, Arc::clone(&activity));
        Slot {
            id,
            activity,
            slots: Arc::clone(self),
            _permit: permit,
        }
    }

    /// Asks the oldest connection that is not answering a request to close;
    /// false when every one is.
    fn evict_oldest_waiting(&self) -> bool {
        let open = self.lock();
        let victim = open
            .values()
            .find(|a| a.serving.load(Ordering::Acquire) == 0 && !a.evicted.load(Ordering::Acquire));
        match victim {
            Some(a) => {
                a.evicted.store(true, Ordering::Release);
                a.evict.notify_one();
                true
            }
            None => false,
        }
    }

    /// How many connections are open (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }

    /// The map stays consistent even if a holder panicked (each critical
    /// section is one insert, remove or scan), so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, Arc<Activity>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Slot {
    /// Resolves when a newer connection needs this slot: close then.
    pub(crate) async fn evicted(&self) {
        self.activity.evict.notified().await
    }

    /// The handle a request handler marks its work with.
    pub(crate) fn activity(&self) -> Arc<Activity> {
        Arc::clone(&self.activity)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.lock().remove(&self.id);
    }
}

impl Activity {
    /// Marks the connection as answering a request until the guard drops.
    pub(crate) fn serving(self: &Arc<Self>) -> Serving {
        self.serving.fetch_add(1, Ordering::AcqRel);
        Serving(Arc::clone(self))
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.serving.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_listener_evicts_the_oldest_waiting_connection() {
        let slots = Slots::new(2);
        let oldest = slots.acquire().await;
        let busy = slots.acquire().await;
        let _serving = busy.activity().serving();
        // Full: the next one asks `oldest` (not `busy`) to close...
        let next = tokio::spawn({
            let slots = Arc::clone(&slots);
            async move { slots.acquire().await }
        });
        oldest.evicted().await;
        // ...and gets its slot once it has.
        drop(oldest);
        let newest = next.await.unwrap();
        assert_eq!(slots.len(), 2);
        drop((busy, newest));
        assert_eq!(slots.len(), 0);
    }

    #[tokio::test]
    async fn connections_all_serving_are_never_evicted() {
        let slots = Slots::new(1);
        let only = slots.acquire().await;
        let _serving = only.activity().serving();
        assert!(!slots.evict_oldest_waiting());
        drop(_serving);
        assert!(slots.evict_oldest_waiting());
        // Chosen once: a second eviction looks for another.
        assert!(!slots.evict_oldest_waiting());
    }
}
