//! Counts the background work an invoker started, so local runs and tests can wait for it to finish.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;

/// Shared count of running background jobs, with a wake-up when it drops to zero.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tracker {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    running: AtomicUsize,
    idle: Notify,
    /// Notified (one permit) whenever a job ends, if set.
    ended: OnceLock<Arc<Notify>>,
}

/// Held by one background job; dropping it (normally, or while a handler panics) ends the job.
#[derive(Debug)]
pub(crate) struct JobGuard {
    inner: Arc<Inner>,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        if self.inner.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.idle.notify_waiters();
        }
        if let Some(ended) = self.inner.ended.get() {
            ended.notify_one();
        }
    }
}

impl Tracker {
    /// Starts counting one job until the guard is dropped.
    pub(crate) fn start(&self) -> JobGuard {
        self.inner.running.fetch_add(1, Ordering::AcqRel);
        JobGuard {
            inner: Arc::clone(&self.inner),
        }
    }

    /// Notifies `ended` each time a job ends (stores one permit when nobody waits, so a wake-up is
    /// never lost). Set once; a later call is ignored.
    pub(crate) fn notify_ended(&self, ended: Arc<Notify>) {
        let _ = self.inner.ended.set(ended);
    }

    /// Jobs running now.
    pub(crate) fn running(&self) -> usize {
        self.inner.running.load(Ordering::Acquire)
    }

    /// Waits until no job runs.
    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            // Registered before the check, so a job ending in between still wakes us.
            notified.as_mut().enable();
            if self.running() == 0 {
                return;
            }
            notified.await;
        }
    }
}
