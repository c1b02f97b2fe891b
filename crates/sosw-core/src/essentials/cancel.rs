//! Cancel a job (`sosw cancel <job>`), and pause or resume a labourer (`sosw pause`, `sosw resume`).
//!
//! **Cancel.** [`cancel_job`]:
//! 1. marks the job `cancelled` with `finished_at` ([`JobStore::finish_job`], conditional on the job
//!    being unfinished: of two cancels, or a cancel racing the job's last task, exactly one wins);
//! 2. sweeps the job's tasks (their ids come from the job id, one per task enqueued so far): each task
//!    queued in the live table, or waiting in the retry table, moves to the closed table with the status
//!    key `<labourer>_cancelled` ([`TaskCancel`](crate::store::TaskCancel)). Each move is conditional: a task an orchestrator
//!    claimed in the meantime is left to run;
//! 3. adds the tasks it closed to the job's `cancelled` counter;
//! 4. queues the job-finished message (status `cancelled`) for every requester, as a finishing job
//!    does ([`queue_job_finished`]), when this call won step 1.
//!
//! Running tasks are not stopped: their reports close them as usual (completed, or dead) and are
//! counted on the job. A running task that fails, or expires, is not retried: the closer closes it as
//! cancelled instead (see `Closer`), so no task of a cancelled job is invoked once the sweep passed it,
//! except the ones already claimed.
//!
//! Idempotent: cancelling a cancelled job sweeps again (a task the scheduler wrote after the first
//! cancel closes too) and reports [`CancelOutcome::AlreadyCancelled`]; cancelling a finished job
//! changes nothing ([`CancelOutcome::AlreadyFinished`]). An unknown job is an error naming it.
//!
//! **Pause.** [`pause_labourer`] and [`resume_labourer`] store the pause in a [`LabourerControl`]; every
//! orchestrator reads [`paused_labourers`] at the start of each round and invokes nothing for a paused
//! labourer (it is skipped, not an error). Queued tasks stay queued; the scavenger still archives,
//! retries and buries as usual.

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::notify::NotificationQueue;
use crate::notify::jobs::queue_job_finished;
use crate::store::{
    JobCounts, JobRecord, JobStatus, JobStore, LabourerControl, MoveOutcome, PausedLabourer,
    TaskStore,
};
use crate::task::TaskId;

/// Most task sweeps of [`cancel_job`] in flight at once.
const SWEEPS_IN_FLIGHT: usize = 16;

/// How often one task is looked up again when it moved between tables while it was read.
const SWEEP_ATTEMPTS: usize = 4;

/// What [`cancel_job`] found the job in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelOutcome {
    /// This call cancelled the job (and queued its requesters' messages).
    Cancelled,
    /// The job was cancelled before (this call swept its tasks again).
    AlreadyCancelled,
    /// The job had finished (`finished` or `finished_with_failures`): nothing changed.
    AlreadyFinished,
}

/// What [`cancel_job`] did (schema `kind: "cancel"` of `sosw cancel --output json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelReport {
    /// Always `"cancel"`.
    pub kind: String,
    /// The job.
    pub job_id: String,
    /// What this call found and did.
    pub outcome: CancelOutcome,
    /// The job's status after the call.
    pub status: JobStatus,
    /// Queued tasks this call closed as cancelled.
    pub cancelled_queued: u64,
    /// Tasks waiting for retry this call closed as cancelled.
    pub cancelled_retry: u64,
    /// Tasks left running (claimed before the sweep reached them, or completed and not archived yet):
    /// their reports close them.
    pub running: u64,
    /// Tasks already closed (completed, dead, or cancelled before).
    pub already_closed: u64,
    /// Tasks the job enqueued that were found nowhere (moving between tables through every look).
    pub missing: u64,
    /// Requesters whose job-finished message was queued.
    pub notified: Vec<String>,
    /// Whether the job was still being scheduled (its total unknown, or not every task written): the
    /// tasks written after the sweep are closed by the next `sosw cancel` of the job.
    pub still_scheduling: bool,
}

impl CancelReport {
    fn new(job: &JobRecord, outcome: CancelOutcome) -> Self {
        CancelReport {
            kind: "cancel".into(),
            job_id: job.job_id.clone(),
            outcome,
            status: job.status,
            cancelled_queued: 0,
            cancelled_retry: 0,
            running: 0,
            already_closed: 0,
            missing: 0,
            notified: Vec::new(),
            still_scheduling: job.total.is_none_or(|total| job.enqueued < total),
        }
    }

    /// Tasks this call closed as cancelled.
    pub fn cancelled(&self) -> u64 {
        self.cancelled_queued + self.cancelled_retry
    }
}

/// Where the sweep found one task and what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Swept {
    Queued,
    Retry,
    Running,
    Closed,
    Missing,
}

/// Cancels job `job_id` at `now` (see the module docs): its queued and waiting tasks close as
/// cancelled, its record ends `cancelled`, and its requesters' messages are queued on `queue` (the
/// caller commits it). An error names a job that does not exist.
pub async fn cancel_job(
    tasks: &dyn TaskStore,
    jobs: &dyn JobStore,
    queue: &mut NotificationQueue,
    job_id: &str,
    now: i64,
) -> Result<CancelReport> {
    let Some(job) = jobs.get_job(job_id).await? else {
        return Err(unknown_job(job_id));
    };
    let won = match job.status {
        JobStatus::Finished | JobStatus::FinishedWithFailures => {
            return Ok(CancelReport::new(&job, CancelOutcome::AlreadyFinished));
        }
        JobStatus::Cancelled => false,
        JobStatus::Requested | JobStatus::Running => {
            jobs.finish_job(job_id, JobStatus::Cancelled, now).await?
        }
    };
    // Read again after the status write: the sweep covers every task enqueued before it.
    let Some(job) = jobs.get_job(job_id).await? else {
        return Err(unknown_job(job_id));
    };
    if job.status != JobStatus::Cancelled {
        // The job's last task closed first and finished it.
        return Ok(CancelReport::new(&job, CancelOutcome::AlreadyFinished));
    }
    let outcome = if won {
        CancelOutcome::Cancelled
    } else {
        CancelOutcome::AlreadyCancelled
    };
    let mut report = CancelReport::new(&job, outcome);
    let labourer = job.labourer_id.clone();
    let labourer = labourer.as_str();
    let ids = (0..job.enqueued).map(|n| TaskId::for_chunk(job_id, n));
    let mut sweeps = futures::stream::iter(ids)
        .map(|id| async move { sweep(tasks, labourer, &id, now).await })
        .buffer_unordered(SWEEPS_IN_FLIGHT);
    let mut first_error = None;
    while let Some(swept) = sweeps.next().await {
        match swept {
            Ok(Swept::Queued) => report.cancelled_queued += 1,
            Ok(Swept::Retry) => report.cancelled_retry += 1,
            Ok(Swept::Running) => report.running += 1,
            Ok(Swept::Closed) => report.already_closed += 1,
            Ok(Swept::Missing) => report.missing += 1,
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    // Count what was closed even when a sweep failed: those tasks are closed for good.
    let delta = JobCounts {
        cancelled: report.cancelled(),
        ..JobCounts::default()
    };
    let record = if delta.is_zero() || jobs.counts_closed_tasks() {
        // A store that counts closed tasks itself counts the cancelled ones from their closed items.
        Some(job)
    } else {
        jobs.add_outcomes(job_id, delta).await?
    };
    if let Some(err) = first_error {
        return Err(err);
    }
    if let Some(record) = record {
        report.status = record.status;
        if won {
            queue_job_finished(queue, &record);
            report.notified = record.requesters.clone();
        }
    }
    tracing::info!(
        job_id,
        ?outcome,
        cancelled = report.cancelled(),
        running = report.running,
        "job cancelled"
    );
    Ok(report)
}

/// Closes task `id` of `labourer` as cancelled if it is queued or waiting for retry.
async fn sweep(tasks: &dyn TaskStore, labourer: &str, id: &TaskId, now: i64) -> Result<Swept> {
    for _ in 0..SWEEP_ATTEMPTS {
        if let Some(task) = tasks.get_task(id).await? {
            if task.completed_at.is_some() || task.greenfield >= now {
                return Ok(Swept::Running);
            }
            match tasks.cancel_queued(&task, now).await? {
                MoveOutcome::Moved => return Ok(Swept::Queued),
                // Claimed, reported or moved while read: look again.
                MoveOutcome::Conflict => continue,
            }
        }
        if let Some(task) = tasks.get_retry_task(labourer, id).await? {
            match tasks.cancel_retry(&task, now).await? {
                MoveOutcome::Moved => return Ok(Swept::Retry),
                MoveOutcome::Conflict => continue,
            }
        }
        if tasks.get_closed_task(id).await?.is_some() {
            return Ok(Swept::Closed);
        }
    }
    Ok(Swept::Missing)
}

fn unknown_job(job_id: &str) -> Error {
    Error::invalid(
        "cancel",
        format!("there is no job `{job_id}`; `sosw jobs` lists the jobs and their ids"),
    )
}

/// Pauses labourer `labourer_id` at `now`: every orchestrator invokes nothing for it from its next
/// round on. Returns `false` when it was paused already (nothing changed).
pub async fn pause_labourer(
    control: &dyn LabourerControl,
    labourer_id: &str,
    now: i64,
) -> Result<bool> {
    require_labourer_id(labourer_id)?;
    control.pause_labourer(labourer_id, now).await
}

/// Resumes labourer `labourer_id`. Returns `false` when it was not paused (nothing changed).
pub async fn resume_labourer(control: &dyn LabourerControl, labourer_id: &str) -> Result<bool> {
    require_labourer_id(labourer_id)?;
    control.resume_labourer(labourer_id).await
}

/// Whether labourer `labourer_id` is paused.
pub async fn is_paused(control: &dyn LabourerControl, labourer_id: &str) -> Result<bool> {
    Ok(control
        .paused_labourers()
        .await?
        .iter()
        .any(|p| p.labourer_id == labourer_id))
}

/// Every paused labourer, sorted by id.
pub async fn paused_labourers(control: &dyn LabourerControl) -> Result<Vec<PausedLabourer>> {
    let mut paused = control.paused_labourers().await?;
    paused.sort_by(|a, b| a.labourer_id.cmp(&b.labourer_id));
    Ok(paused)
}

fn require_labourer_id(labourer_id: &str) -> Result<()> {
    if labourer_id.trim().is_empty() {
        return Err(Error::invalid("labourer id", "the labourer id is empty"));
    }
    Ok(())
}
