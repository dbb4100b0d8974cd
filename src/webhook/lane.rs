//! The large-review lane: one thread of its own that answers the reviews
//! over [`SMALL_REVIEW`](crate::webhook::handler::SMALL_REVIEW), one at a
//! time.
//!
//! Off the runtime thread, so a big review never stalls small ones or the
//! probes (the runtime is current-thread by design). One long-lived thread
//! rather than tokio's blocking pool: an allocator keeps freed memory per
//! thread (glibc's arenas), and the pool may run successive reviews on
//! different threads, each then keeping a large review's worth; with one
//! thread that memory is kept once and reused by the next large review.

use std::sync::mpsc;
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// The lane's queue; the thread ends when this is dropped.
#[derive(Debug)]
pub(crate) struct Lane {
    jobs: mpsc::Sender<Job>,
}

/// The lane's thread is gone: it panicked on an earlier review (a bug).
#[derive(Debug, thiserror::Error)]
#[error("the large-review thread stopped")]
pub(crate) struct LaneStopped;

impl Lane {
    /// Starts the thread.
    pub(crate) fn start() -> std::io::Result<Lane> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("large-reviews".into())
            .spawn(move || {
                for job in queue {
                    job();
                }
            })?;
        Ok(Lane { jobs })
    }

    /// Runs `work` on the lane's thread and waits for its result.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, LaneStopped> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            // The receiver is gone only if the request was dropped (client
            // closed): nobody wants the answer then.
            let _ = tx.send(work());
        });
        self.jobs.send(job).map_err(|_| LaneStopped)?;
        rx.await.map_err(|_| LaneStopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_on_its_own_thread() {
        let lane = Lane::start().unwrap();
        let name = lane
            .run(|| std::thread::current().name().map(String::from))
            .await
            .unwrap();
        assert_eq!(name.as_deref(), Some("large-reviews"));
    }
}
