//! [`Closer`]: what the scavenger and the worker assistant share to close tasks: the task store, the
//! job store, the notifier, the clock and the retry jitter, and the one way to carry out a task's
//! fate ([`crate::task::fate`]): into the retry table, or archived dead with its alert and job
//! counter.
//!
//! Both essentials are built over a closer: `Scavenger::new(config, closer)`,
//! `WorkerAssistant::new(config, closer)`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::clock::{Clock, SystemClock};
use crate::error::Result;
use crate::notify::jobs::{self, JobProgress};
use crate::notify::{NotificationQueue, Notifier};
use crate::store::{ClosedStatus, JobCounts, JobStatus, JobStore, MoveOutcome, TaskStore};
use crate::task::fate::{self, DEAD_TASK_SUBJECT, Ending, Fate, dead_task_message};
use crate::task::{Jitter, Labourer, Task, TaskManager};

/// The stores, notifier, clock and jitter a closing essential works with.
pub struct Closer {
    tasks: TaskManager<dyn TaskStore>,
    jobs: Option<Arc<dyn JobStore>>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    jitter: Mutex<Jitter>,
}

impl std::fmt::Debug for Closer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Closer")
            .field("jobs", &self.jobs.is_some())
            .finish_non_exhaustive()
    }
}

/// What [`Closer::close`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Moved to the retry table; back in the queue at `desired_launch_time`.
    Retried {
        /// When it may run again (Unix seconds).
        desired_launch_time: i64,
    },
    /// Archived dead, alert queued.
    Dead,
    /// Its job is cancelled: closed as cancelled instead of retried (`sosw cancel`).
    Cancelled,
    /// The row had changed (a report or another essential got there first): nothing moved.
    Conflict,
}

impl Closer {
    /// A closer over `store` and `notifier`, with the system clock, jitter from entropy and no job
    /// store.
    pub fn new(store: Arc<dyn TaskStore>, notifier: Arc<dyn Notifier>) -> Self {
        Closer {
            tasks: TaskManager::new(store),
            jobs: None,
            notifier,
            clock: Arc::new(SystemClock),
            jitter: Mutex::new(Jitter::from_entropy()),
        }
    }

    /// Keeps job counters in `jobs` and sends job-finished messages.
    pub fn with_jobs(mut self, jobs: Arc<dyn JobStore>) -> Self {
        self.jobs = Some(jobs);
        self
    }

    /// Uses `clock` for "now".
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses `jitter` for retry delays (seed it in tests).
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = Mutex::new(jitter);
        self
    }

    /// The task store.
    pub fn store(&self) -> &Arc<dyn TaskStore> {
        self.tasks.store()
    }

    /// The task operations over the task store: every task store call of the essentials built over
    /// this closer goes through it.
    pub fn tasks(&self) -> &TaskManager<dyn TaskStore> {
        &self.tasks
    }

    /// The job store, if job counters are kept.
    pub fn job_store(&self) -> Option<&Arc<dyn JobStore>> {
        self.jobs.as_ref()
    }

    /// "Now" (Unix seconds).
    pub fn now_secs(&self) -> i64 {
        self.clock.now_secs()
    }

    /// A queue of notifications to `recipient` (or the notifier's default), sent on commit.
    pub fn notifications(&self, recipient: Option<String>) -> NotificationQueue {
        NotificationQueue::new(self.notifier.clone(), recipient)
    }

    /// Carries out the [fate](fate::decide) of `task` (of `labourer`) whose attempt ended as `ending`
    /// at `now`: a retry moves it to the retry table; death archives it as `<labourer>_0`, queues the
    /// dead-task alert on `queue` and adds `dead: 1` to its job. `job_delta` (a failure report's
    /// `failed: 1`) is added to its job whatever happened. Returns what happened and whether the job
    /// finished.
    pub async fn close(
        &self,
        task: &Task,
        labourer: &Labourer,
        ending: Ending,
        job_delta: JobCounts,
        queue: &mut NotificationQueue,
        now: i64,
    ) -> Result<(Closed, bool)> {
        let decided = {
            let mut jitter = self.jitter.lock().unwrap_or_else(|p| p.into_inner());
            fate::decide(labourer, task.attempts, ending, now, &mut jitter)
        };
        let (closed, delta) = match decided {
            Fate::Retry {
                desired_launch_time,
            } => match self
                .tasks
                .move_task_to_retry_table(task, desired_launch_time)
                .await?
            {
                MoveOutcome::Moved => {
                    if self
                        .cancel_retry_of_cancelled_job(task, desired_launch_time, now)
                        .await?
                    {
                        (
                            Closed::Cancelled,
                            JobCounts {
                                cancelled: 1,
                                ..job_delta
                            },
                        )
                    } else {
                        (
                            Closed::Retried {
                                desired_launch_time,
                            },
                            job_delta,
                        )
                    }
                }
                MoveOutcome::Conflict => (Closed::Conflict, job_delta),
            },
            Fate::Dead => match self
                .tasks
                .archive_task(task, ClosedStatus::Dead, now)
                .await?
            {
                MoveOutcome::Moved => {
                    tracing::warn!(task_id = %task.task_id, labourer = %task.labourer_id,
                        attempts = task.attempts, ?ending, "task is dead");
                    queue.send(
                        None,
                        DEAD_TASK_SUBJECT,
                        dead_task_message(&task.task_id),
                        BTreeMap::new(),
                    );
                    (
                        Closed::Dead,
                        JobCounts {
                            dead: 1,
                            ..job_delta
                        },
                    )
                }
                MoveOutcome::Conflict => (Closed::Conflict, job_delta),
            },
        };
        let finished = self.count(task, delta, queue, now).await?;
        Ok((closed, finished))
    }

    /// After `task` moved to the retry table: when its job is cancelled (`sosw cancel`), closes the
    /// retry row as cancelled so it never runs again, and returns whether it did.
    ///
    /// The check comes *after* the move on purpose. `sosw cancel` first marks the job cancelled, then
    /// sweeps the job's retry rows; this first writes the retry row, then reads the job. Whatever the
    /// interleaving, one of the two sees the other's write (both read strongly consistently), so a
    /// retry row of a cancelled job is always closed, by the sweep or here (a conditional move: only
    /// one of them moves it).
    async fn cancel_retry_of_cancelled_job(
        &self,
        task: &Task,
        desired_launch_time: i64,
        now: i64,
    ) -> Result<bool> {
        let (Some(jobs), Some(job_id)) = (&self.jobs, &task.job_id) else {
            return Ok(false);
        };
        let cancelled = jobs
            .get_job(job_id)
            .await?
            .is_some_and(|job| job.status == JobStatus::Cancelled);
        if !cancelled {
            return Ok(false);
        }
        let mut waiting = task.clone();
        waiting.desired_launch_time = Some(desired_launch_time);
        let moved = self.tasks.store().cancel_retry(&waiting, now).await? == MoveOutcome::Moved;
        if moved {
            tracing::info!(task_id = %task.task_id, job_id, "task of a cancelled job closed as cancelled instead of retried");
        }
        Ok(moved)
    }

    /// Adds `delta` to the counters of `task`'s job, if it has one, a job store is configured and
    /// `delta` is not zero. Returns whether this finished the job (its messages queued on `queue`).
    pub async fn count(
        &self,
        task: &Task,
        delta: JobCounts,
        queue: &mut NotificationQueue,
        now: i64,
    ) -> Result<bool> {
        let (Some(jobs), Some(job_id)) = (&self.jobs, &task.job_id) else {
            return Ok(false);
        };
        if delta.is_zero() {
            return Ok(false);
        }
        let progress = jobs::record_outcome(jobs.as_ref(), queue, job_id, delta, now).await?;
        Ok(matches!(progress, JobProgress::Finished(_)))
    }
}
