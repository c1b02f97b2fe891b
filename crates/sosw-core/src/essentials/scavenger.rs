//! `sosw_scavenger`: closes what the workers left behind, per labourer, in sosw 0.7's order:
//!
//! 1. **archive** completed tasks to the closed table as `<labourer>_1` (only those a worker assistant
//!    with `archive_completed: false`, or sosw 0.7's, left in the queue);
//! 2. **expired** tasks (invoked `duration + cooldown` ago, never reported): fewer than `max_attempts`
//!    invocations go to the retry table with the labourer's retry delay; the others are dead, archived
//!    as `<labourer>_0`, with one batched SNS alert per run;
//! 3. **due retries** go back to the queue ahead of its head (at most `retry_tasks_limit`).
//!
//! Every move is atomic and conditional on the row being unchanged, so a report or another scavenger
//! racing this one makes the move a no-op instead of losing or duplicating the task. Job counters
//! follow each dead task (completions are counted by the worker assistant when it records them).
//! A labourer whose store calls fail is reported and the others still run; the alerts queued so far are
//! sent at the end of the run either way.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::worker_assistant::{DEAD_TASK_SUBJECT, dead_task_message};
use crate::clock::{Clock, SystemClock};
use crate::config::ScavengerConfig;
use crate::error::{Error, Result};
use crate::notify::jobs::{self, JobProgress};
use crate::notify::{NotificationQueue, Notifier};
use crate::processor::{Processor, Stats};
use crate::store::{
    ClosedStatus, JobCounts, JobStore, MoveOutcome, TaskStore, requeue_due_retries,
};
use crate::task::retry::desired_launch_time;
use crate::task::{Jitter, Labourer, Markers, Task};

/// The function name (and config document prefix) of the scavenger.
pub const FUNCTION_NAME: &str = "sosw_scavenger";

/// How many tasks one store read returns; a labourer's backlog is read in pages of this size.
pub const PAGE_SIZE: usize = 500;

/// What one run did to one labourer's tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabourerReport {
    /// Completed tasks moved to the closed table.
    pub archived: u64,
    /// Expired tasks moved to the retry table.
    pub scheduled_for_retry: u64,
    /// Expired tasks declared dead.
    pub dead: u64,
    /// Due retries moved back to the queue.
    pub requeued: u64,
    /// Moves that found the row changed (a report or another scavenger got there first).
    pub conflicts: u64,
}

/// A labourer whose run stopped on an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabourerFailure {
    /// The labourer.
    pub labourer_id: String,
    /// What went wrong.
    pub error: String,
    /// Whether the next run may succeed.
    pub retryable: bool,
}

/// What one scavenger run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScavengerReport {
    /// The run's "now" (Unix seconds).
    pub now: i64,
    /// Per labourer, by id.
    pub labourers: BTreeMap<String, LabourerReport>,
    /// Jobs this run finished.
    pub jobs_finished: Vec<String>,
    /// Labourers whose run stopped on an error (the others ran).
    pub failures: Vec<LabourerFailure>,
    /// Why the alerts could not all be sent, if so (they are in the log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_error: Option<String>,
}

impl ScavengerReport {
    /// The sum over all labourers.
    pub fn total(&self) -> LabourerReport {
        self.labourers
            .values()
            .fold(LabourerReport::default(), |mut sum, r| {
                sum.archived += r.archived;
                sum.scheduled_for_retry += r.scheduled_for_retry;
                sum.dead += r.dead;
                sum.requeued += r.requeued;
                sum.conflicts += r.conflicts;
                sum
            })
    }
}

/// The scavenger over a task store, an optional job store and a notifier.
pub struct Scavenger {
    config: ScavengerConfig,
    store: Arc<dyn TaskStore>,
    jobs: Option<Arc<dyn JobStore>>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    jitter: Mutex<Jitter>,
}

impl std::fmt::Debug for Scavenger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scavenger")
            .field("config", &self.config)
            .field("jobs", &self.jobs.is_some())
            .finish_non_exhaustive()
    }
}

/// The state of one run, shared by the per-labourer steps.
struct Run {
    now: i64,
    queue: NotificationQueue,
    jobs_finished: BTreeSet<String>,
}

impl Scavenger {
    /// A scavenger with the system clock, jitter from entropy and no job store.
    pub fn new(
        config: ScavengerConfig,
        store: Arc<dyn TaskStore>,
        notifier: Arc<dyn Notifier>,
    ) -> Self {
        Scavenger {
            config,
            store,
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

    /// The config.
    pub fn config(&self) -> &ScavengerConfig {
        &self.config
    }

    /// One run over every configured labourer, then the queued alerts are sent. Failures of single
    /// labourers are in [`ScavengerReport::failures`].
    pub async fn run(&self) -> ScavengerReport {
        self.run_keeping_first_error().await.0
    }

    /// [`Scavenger::run`], also returning the first labourer's error as it was raised.
    async fn run_keeping_first_error(&self) -> (ScavengerReport, Option<Error>) {
        let mut first_error = None;
        let mut run = Run {
            now: self.clock.now_secs(),
            queue: NotificationQueue::new(
                self.notifier.clone(),
                self.config.sns_config.recipient.clone(),
            ),
            jobs_finished: BTreeSet::new(),
        };
        let mut report = ScavengerReport {
            now: run.now,
            ..ScavengerReport::default()
        };
        for labourer in self.config.task_config.labourers_resolved() {
            let mut counts = LabourerReport::default();
            if let Err(err) = self.scavenge(&labourer, &mut run, &mut counts).await {
                tracing::error!(labourer = %labourer.id, error = %err, "scavenging stopped");
                report.failures.push(LabourerFailure {
                    labourer_id: labourer.id.clone(),
                    error: err.to_string(),
                    retryable: err.is_retryable(),
                });
                first_error.get_or_insert(err);
            }
            tracing::info!(labourer = %labourer.id, counts = ?counts, "labourer scavenged");
            report.labourers.insert(labourer.id.clone(), counts);
        }
        if let Err(err) = run.queue.commit().await {
            tracing::error!(error = %err, "scavenger alerts not all sent");
            report.notify_error = Some(err.to_string());
        }
        report.jobs_finished = run.jobs_finished.into_iter().collect();
        (report, first_error)
    }

    async fn scavenge(
        &self,
        labourer: &Labourer,
        run: &mut Run,
        counts: &mut LabourerReport,
    ) -> Result<()> {
        self.archive_completed(labourer, run.now, counts).await?;
        self.handle_expired(labourer, run, counts).await?;
        let limit = usize::try_from(self.config.retry_tasks_limit).unwrap_or(usize::MAX);
        let moved = requeue_due_retries(self.store.as_ref(), &labourer.id, run.now, limit).await?;
        counts.requeued += moved as u64;
        Ok(())
    }

    async fn archive_completed(
        &self,
        labourer: &Labourer,
        now: i64,
        counts: &mut LabourerReport,
    ) -> Result<()> {
        loop {
            let page = self
                .store
                .list_completed(&labourer.id, now, PAGE_SIZE)
                .await?;
            let mut moved = 0;
            for task in &page {
                match self
                    .store
                    .archive(task, ClosedStatus::Completed, now)
                    .await?
                {
                    MoveOutcome::Moved => moved += 1,
                    MoveOutcome::Conflict => counts.conflicts += 1,
                }
            }
            counts.archived += moved;
            // A short page is the end; a page where nothing moved would come back the same.
            if page.len() < PAGE_SIZE || moved == 0 {
                return Ok(());
            }
        }
    }

    async fn handle_expired(
        &self,
        labourer: &Labourer,
        run: &mut Run,
        counts: &mut LabourerReport,
    ) -> Result<()> {
        let markers = Markers::for_labourer(run.now, labourer);
        let max_attempts = labourer.effective_max_attempts(self.config.task_config.max_attempts);
        loop {
            let page = self
                .store
                .list_expired(&labourer.id, &markers, PAGE_SIZE)
                .await?;
            let mut moved = 0;
            for task in &page {
                let done = if task.attempts < max_attempts {
                    self.retry_later(labourer, task, run.now, counts).await?
                } else {
                    self.declare_dead(task, run, counts).await?
                };
                moved += u64::from(done);
            }
            if page.len() < PAGE_SIZE || moved == 0 {
                return Ok(());
            }
        }
    }

    async fn retry_later(
        &self,
        labourer: &Labourer,
        task: &Task,
        now: i64,
        counts: &mut LabourerReport,
    ) -> Result<bool> {
        let launch = {
            let mut jitter = self.jitter.lock().unwrap_or_else(|p| p.into_inner());
            desired_launch_time(labourer, task.attempts, now, &mut jitter)
        };
        match self.store.move_to_retry(task, launch).await? {
            MoveOutcome::Moved => {
                counts.scheduled_for_retry += 1;
                Ok(true)
            }
            MoveOutcome::Conflict => {
                counts.conflicts += 1;
                Ok(false)
            }
        }
    }

    async fn declare_dead(
        &self,
        task: &Task,
        run: &mut Run,
        counts: &mut LabourerReport,
    ) -> Result<bool> {
        if self
            .store
            .archive(task, ClosedStatus::Dead, run.now)
            .await?
            == MoveOutcome::Conflict
        {
            counts.conflicts += 1;
            return Ok(false);
        }
        counts.dead += 1;
        tracing::warn!(task_id = %task.task_id, labourer = %task.labourer_id,
            attempts = task.attempts, "task is dead");
        run.queue.send(
            None,
            DEAD_TASK_SUBJECT,
            dead_task_message(&task.task_id),
            BTreeMap::new(),
        );
        if let (Some(jobs), Some(job_id)) = (&self.jobs, &task.job_id) {
            let delta = JobCounts {
                dead: 1,
                ..JobCounts::default()
            };
            let progress =
                jobs::record_outcome(jobs.as_ref(), &mut run.queue, job_id, delta, run.now).await?;
            if matches!(progress, JobProgress::Finished(_)) {
                run.jobs_finished.insert(job_id.clone());
            }
        }
        Ok(true)
    }
}

#[async_trait]
impl Processor for Scavenger {
    /// The scheduled rule's event is not read.
    type Event = Value;
    type Output = ScavengerReport;

    /// One run. A run in which some labourer failed is an error (after the others ran and the alerts
    /// went out), so the failure shows in the function's error metrics.
    async fn process(&self, _event: Value, stats: &mut Stats) -> Result<ScavengerReport> {
        let (report, first_error) = self.run_keeping_first_error().await;
        let total = report.total();
        stats.add("archived_tasks", total.archived);
        stats.add("scheduled_for_retry_later_tasks", total.scheduled_for_retry);
        stats.add("closed_dead_tasks", total.dead);
        stats.add("due_for_retry_tasks", total.requeued);
        stats.add("conflicts", total.conflicts);
        match first_error {
            None => Ok(report),
            Some(err) => {
                tracing::error!(report = ?report, "scavenger run had failures");
                Err(err)
            }
        }
    }
}
