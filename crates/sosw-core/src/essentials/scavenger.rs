//! `sosw_scavenger`: closes what the workers left behind, per labourer, in sosw 0.7's order:
//!
//! 1. **archive** completed tasks to the closed table as `<labourer>_1` (only those a worker assistant
//!    with `archive_completed: false`, or sosw 0.7's, left in the queue);
//! 2. **expired** tasks (invoked `duration + cooldown` ago, never reported): their
//!    [fate](crate::task::fate) is decided with the worker assistant's rule: fewer than `max_attempts`
//!    invocations go to the retry table with the labourer's retry delay; the others are dead, archived
//!    as `<labourer>_0`, with one batched SNS alert per run; for a labourer whose `ecology` is adaptive,
//!    the expiries moved are added to its `failed` outcome counter, which its controller reads
//!    (docs/ecology.md);
//! 3. **due retries** go back to the queue ahead of its head (at most `retry_tasks_limit`).
//!
//! Every move is atomic and conditional on the row being unchanged, so a report or another scavenger
//! racing this one makes the move a no-op instead of losing or duplicating the task. Job counters
//! follow each dead task (completions are counted by the worker assistant when it records them).
//! With a job store that counts closed tasks itself, in batches (the lean DynamoDB layout), each run
//! applies that count first ([`jobs::count_closed_by_store`]) and finishes the jobs it shows closed.
//!
//! 4. **job reconciliation** (when the config's `reconcile_jobs` is on), after every labourer: up to [`RECONCILED_JOBS_PER_RUN`] unfinished jobs of
//!    these labourers have their counters brought up to the closed table
//!    ([`jobs::reconcile_from_closed`]), so a job finishes even when a Python sosw 0.7 essential, which
//!    does not know `sosw_jobs`, archived its tasks.
//!
//! A labourer whose store calls fail is reported and the others still run; the alerts queued so far are
//! sent at the end of the run either way.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::closer::{Closed, Closer};
use crate::config::ScavengerConfig;
use crate::error::{Error, Result};
use crate::notify::NotificationQueue;
use crate::notify::jobs;
use crate::processor::{Invocation, Processor};
use crate::store::{ClosedStatus, JobCounts, MoveOutcome, OutcomeCounts};
use crate::task::fate::Ending;
use crate::task::{Labourer, Markers, Task};

/// The function name (and config document prefix) of the scavenger.
pub const FUNCTION_NAME: &str = "sosw_scavenger";

/// Most unfinished jobs whose counters one run reconciles with the closed table (one read per task
/// of each).
pub const RECONCILED_JOBS_PER_RUN: usize = 10;

/// How many of the newest job records one run looks through for unfinished ones.
const RECONCILE_JOBS_SCANNED: usize = 100;

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
    /// Expired tasks of cancelled jobs closed as cancelled instead of retried.
    #[serde(default)]
    pub cancelled: u64,
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
    /// Jobs whose counters this run brought up to the closed table (tasks a Python sosw 0.7 essential
    /// closed), with what was added.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub jobs_reconciled: BTreeMap<String, JobCounts>,
    /// Why the job store's own count of closed tasks failed, if it did (the next run counts them:
    /// nothing is counted twice or lost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_count_error: Option<String>,
    /// Why job reconciliation stopped, if it did (the tasks were scavenged regardless).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconcile_error: Option<String>,
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
                sum.cancelled += r.cancelled;
                sum
            })
    }
}

/// The scavenger: its config over a [`Closer`] (the task store, job store, notifier, clock and jitter).
#[derive(Debug)]
pub struct Scavenger {
    config: ScavengerConfig,
    closer: Closer,
}

/// A labourer's first pages of completed and of expired tasks, when they were listed together with
/// every labourer's at the start of the run (`None`: the labourer lists its own).
#[derive(Debug, Default)]
struct FirstPages {
    completed: Option<Vec<Task>>,
    expired: Option<Vec<Task>>,
}

/// The state of one run, shared by the per-labourer steps.
struct Run {
    now: i64,
    queue: NotificationQueue,
    jobs_finished: BTreeSet<String>,
}

impl Scavenger {
    /// A scavenger with `config`, closing tasks through `closer`.
    pub fn new(config: ScavengerConfig, closer: Closer) -> Self {
        Scavenger { config, closer }
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
            now: self.closer.now_secs(),
            queue: self
                .closer
                .notifications(self.config.sns_config.recipient.clone()),
            jobs_finished: BTreeSet::new(),
        };
        let mut report = ScavengerReport {
            now: run.now,
            ..ScavengerReport::default()
        };
        let labourers = self.config.task_config.labourers_resolved();
        let mut listed = self.list_closable_together(&labourers, run.now).await;
        for labourer in labourers {
            let mut counts = LabourerReport::default();
            let first = listed.remove(&labourer.id).unwrap_or_default();
            if let Err(err) = self.scavenge(&labourer, &mut run, &mut counts, first).await {
                tracing::error!(labourer = %labourer.id, error = %err.with_causes(), "scavenging stopped");
                report.failures.push(LabourerFailure {
                    labourer_id: labourer.id.clone(),
                    error: err.with_causes(),
                    retryable: err.is_retryable(),
                });
                first_error.get_or_insert(err);
            }
            tracing::info!(labourer = %labourer.id, counts = ?counts, "labourer scavenged");
            report.labourers.insert(labourer.id.clone(), counts);
        }
        if let Err(err) = self.count_closed_by_store(&mut run).await {
            tracing::error!(error = %err.with_causes(), "job counts from the store not applied");
            report.job_count_error = Some(err.with_causes());
        }
        if let Err(err) = self.reconcile_jobs(&mut run, &mut report).await {
            tracing::error!(error = %err.with_causes(), "job reconciliation stopped");
            report.reconcile_error = Some(err.with_causes());
        }
        if let Err(err) = run.queue.commit().await {
            tracing::error!(error = %err.with_causes(), "scavenger alerts not all sent");
            report.notify_error = Some(err.with_causes());
        }
        report.jobs_finished = run.jobs_finished.into_iter().collect();
        (report, first_error)
    }

    /// With a job store that counts closed tasks itself (the lean DynamoDB layout): applies its count
    /// ([`jobs::count_closed_by_store`]) and finishes the jobs it shows closed.
    async fn count_closed_by_store(&self, run: &mut Run) -> Result<()> {
        let Some(store) = self.closer.job_store() else {
            return Ok(());
        };
        let finished = jobs::count_closed_by_store(store.as_ref(), &mut run.queue, run.now).await?;
        run.jobs_finished.extend(finished);
        Ok(())
    }

    /// Brings the counters of up to [`RECONCILED_JOBS_PER_RUN`] unfinished jobs of this scavenger's
    /// labourers up to the closed table ([`jobs::reconcile_from_closed`]), so a job whose tasks a
    /// Python sosw 0.7 essential archived still finishes.
    async fn reconcile_jobs(&self, run: &mut Run, report: &mut ScavengerReport) -> Result<()> {
        if !self.config.reconcile_jobs {
            return Ok(());
        }
        let Some(store) = self.closer.job_store() else {
            return Ok(());
        };
        if store.counts_closed_tasks() {
            // Its own count sees every closed item, whoever wrote it; adding what the closed table
            // shows on top would count a task twice.
            return Ok(());
        }
        let labourers: BTreeSet<String> = self
            .config
            .task_config
            .labourers_resolved()
            .into_iter()
            .map(|l| l.id)
            .collect();
        let open = store
            .list_jobs(RECONCILE_JOBS_SCANNED)
            .await?
            .into_iter()
            .filter(|j| {
                !j.status.is_finished() && j.total.is_some() && labourers.contains(&j.labourer_id)
            })
            .take(RECONCILED_JOBS_PER_RUN);
        for job in open {
            let reconciled = jobs::reconcile_from_closed(
                self.closer.tasks().store().as_ref(),
                store.as_ref(),
                &mut run.queue,
                &job.job_id,
                run.now,
            )
            .await?;
            if !reconciled.added.is_zero() {
                report
                    .jobs_reconciled
                    .insert(job.job_id.clone(), reconciled.added);
            }
            if reconciled.finished {
                run.jobs_finished.insert(job.job_id);
            }
        }
        Ok(())
    }

    /// With a store that lists every labourer's closable tasks more cheaply at once (the lean
    /// DynamoDB layout, whose labourers share the claim shards): each labourer's first pages, read
    /// together. Empty otherwise, or when the read fails (each labourer then reads its own, and
    /// reports its own error).
    async fn list_closable_together(
        &self,
        labourers: &[Labourer],
        now: i64,
    ) -> HashMap<String, FirstPages> {
        let tasks = self.closer.tasks();
        if !tasks.lists_closable_together() || labourers.is_empty() {
            return HashMap::new();
        }
        let asked: Vec<(String, Markers)> = labourers
            .iter()
            .map(|l| (l.id.clone(), Markers::for_labourer(now, l)))
            .collect();
        match tasks.get_closable_tasks(&asked, PAGE_SIZE).await {
            Ok(lists) => lists
                .into_iter()
                .map(|(id, closable)| {
                    let first = FirstPages {
                        completed: Some(closable.completed),
                        expired: Some(closable.expired),
                    };
                    (id, first)
                })
                .collect(),
            Err(err) => {
                tracing::warn!(error = %err.with_causes(), "closable tasks not listed together; each labourer lists its own");
                HashMap::new()
            }
        }
    }

    async fn scavenge(
        &self,
        labourer: &Labourer,
        run: &mut Run,
        counts: &mut LabourerReport,
        first: FirstPages,
    ) -> Result<()> {
        self.archive_completed(labourer, run.now, counts, first.completed)
            .await?;
        self.handle_expired(labourer, run, counts, first.expired)
            .await?;
        let limit = usize::try_from(self.config.retry_tasks_limit).unwrap_or(usize::MAX);
        let moved = self
            .closer
            .tasks()
            .retry_due_tasks(&labourer.id, run.now, limit)
            .await?;
        counts.requeued += moved as u64;
        Ok(())
    }

    async fn archive_completed(
        &self,
        labourer: &Labourer,
        now: i64,
        counts: &mut LabourerReport,
        mut first: Option<Vec<Task>>,
    ) -> Result<()> {
        loop {
            let page = match first.take() {
                Some(page) => page,
                None => {
                    self.closer
                        .tasks()
                        .get_completed_tasks_for_labourer(&labourer.id, now, PAGE_SIZE)
                        .await?
                }
            };
            let mut moved = 0;
            for task in &page {
                match self
                    .closer
                    .tasks()
                    .archive_task(task, ClosedStatus::Completed, now)
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
        first: Option<Vec<Task>>,
    ) -> Result<()> {
        let markers = Markers::for_labourer(run.now, labourer);
        let mut expired = 0;
        let result = self
            .close_expired(labourer, &markers, run, counts, &mut expired, first)
            .await;
        if expired > 0 && labourer.adaptive().is_some() {
            let outcomes = OutcomeCounts {
                failed: expired,
                ..OutcomeCounts::default()
            };
            if let Err(e) = self
                .closer
                .store()
                .add_outcomes(&labourer.id, &outcomes)
                .await
            {
                tracing::warn!(labourer = %labourer.id, error = %e.with_causes(), expired,
                    "expiries not counted for the adaptive controller");
            }
        }
        result
    }

    /// Closes the expired tasks page by page, counting in `expired` those it moved.
    async fn close_expired(
        &self,
        labourer: &Labourer,
        markers: &Markers,
        run: &mut Run,
        counts: &mut LabourerReport,
        expired: &mut u64,
        mut first: Option<Vec<Task>>,
    ) -> Result<()> {
        loop {
            let page = match first.take() {
                Some(page) => page,
                None => {
                    self.closer
                        .tasks()
                        .get_expired_tasks_for_labourer(&labourer.id, markers, PAGE_SIZE)
                        .await?
                }
            };
            let mut moved = 0;
            for task in &page {
                let (closed, job_finished) = self
                    .closer
                    .close(
                        task,
                        labourer,
                        Ending::Expired,
                        JobCounts::default(),
                        &mut run.queue,
                        run.now,
                    )
                    .await?;
                match closed {
                    Closed::Retried { .. } => counts.scheduled_for_retry += 1,
                    Closed::Dead => counts.dead += 1,
                    Closed::Conflict => counts.conflicts += 1,
                    Closed::Cancelled => counts.cancelled += 1,
                }
                if job_finished && let Some(job_id) = &task.job_id {
                    run.jobs_finished.insert(job_id.clone());
                }
                moved += u64::from(closed != Closed::Conflict);
            }
            *expired += moved;
            if page.len() < PAGE_SIZE || moved == 0 {
                return Ok(());
            }
        }
    }
}

#[async_trait]
impl Processor for Scavenger {
    /// The scheduled rule's event is not read.
    type Event = Value;
    type Output = ScavengerReport;

    /// One run. A run in which some labourer failed is an error (after the others ran and the alerts
    /// went out), so the failure shows in the function's error metrics.
    async fn process(&self, _event: Value, invocation: &mut Invocation) -> Result<ScavengerReport> {
        let (report, first_error) = self.run_keeping_first_error().await;
        let total = report.total();
        let stats = &mut invocation.stats;
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
