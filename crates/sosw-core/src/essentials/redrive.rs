//! Redrive: dead tasks back to the queue (`sosw redrive <labourer|task>`, `sosw redrive --job <job>`).
//!
//! A dead task (closed as `<labourer>_0`, after `max_attempts` or a non-retryable failure) goes back to
//! the live table as a fresh task: no attempts, no completion, placed ahead of its labourer's queue head
//! as retries are. Each move is one conditional transaction ([`TaskArchive::redrive`]), so two redrives
//! racing move a task once, and a completed task is never redriven.
//!
//! The task's job (if it has a record) is then reopened: its `dead` counter drops by the tasks redriven
//! and it is `running` again, so it finishes, and notifies its requesters, again when those tasks
//! close (its counter never goes below zero: a task can die without its record counting it). Tasks are
//! moved before the job is reopened: if the process stops in between, or the record cannot be updated
//! (a warning in the report), the tasks still run and the job record keeps its old counts and status
//! (`sosw job` shows it finished); nothing is lost.
//!
//! A dead task that sosw 0.7 archived has its payload stored as a Python repr (bug B9). It is read back
//! into the object it was ([`restore_dead_payload`]) before it moves; a payload that does not read back
//! as an object is never requeued: redriving that one task is an error naming it, and a labourer's
//! redrive moves the others and lists it in [`RedriveReport::refused`].

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::query::{JOB_SEARCH, of_job};
use crate::store::{
    CLOSED_STATUS_ATTRIBUTE, ClosedStatus, JobStore, MoveOutcome, TaskArchive, TaskLookup,
    TaskQueue, restore_dead_payload,
};
use crate::task::greenfield::retry_sequence;
use crate::task::{Task, TaskId};

/// What to redrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedriveTarget {
    /// Every dead task of this labourer (up to the limit).
    Labourer(String),
    /// One task.
    Task(TaskId),
    /// Every dead task of this job (up to the limit): its labourer's dead tasks that belong to it,
    /// found among the newest [`JOB_SEARCH`] of them. Needs the job records.
    Job(String),
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedriveReport {
    /// The tasks moved back to the queue, in the order they were moved.
    pub redriven: Vec<TaskId>,
    /// Dead tasks another caller moved first (or that changed while read): left alone.
    pub conflicts: usize,
    /// The jobs reopened, with how many dead tasks their counters gave back.
    pub jobs_reopened: BTreeMap<String, u64>,
    /// Job records that could not follow the moved tasks (the tasks run anyway).
    pub warnings: Vec<String>,
    /// Dead tasks left in the closed table because no worker could read their payload, each with the
    /// reason (which names the task).
    pub refused: Vec<(TaskId, String)>,
}

/// Reopens `job_id` for `count` redriven tasks, taking no more than the job counts dead (a task may
/// have died without its record counting it: sosw 0.7's scavenger, or a crash between the two writes).
/// `None` when the job has no record.
async fn reopen(jobs: &dyn JobStore, job_id: &str, count: u64) -> Result<Option<u64>> {
    let Some(job) = jobs.get_job(job_id).await? else {
        return Ok(None);
    };
    let taken = count.min(job.counts.dead);
    Ok(jobs.reopen_job(job_id, taken).await?.map(|_| taken))
}

/// Moves the dead tasks of `target` (at most `limit`) back to the queue ahead of their labourer's
/// queue head at `now`, then reopens their jobs in `jobs`.
pub async fn redrive<S>(
    tasks: &S,
    jobs: Option<&dyn JobStore>,
    target: &RedriveTarget,
    now: i64,
    limit: usize,
) -> Result<RedriveReport>
where
    S: TaskQueue + TaskLookup + TaskArchive + ?Sized,
{
    let mut report = RedriveReport::default();
    let mut dead = Vec::new();
    for mut task in dead_tasks(tasks, jobs, target, limit).await? {
        match restore_dead_payload(&mut task) {
            Ok(()) => dead.push(task),
            // One task asked for by id: refusing it is the answer.
            Err(err) if matches!(target, RedriveTarget::Task(_)) => return Err(err),
            Err(err) => report
                .refused
                .push((task.task_id.clone(), err.with_causes())),
        }
    }
    let mut by_labourer: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
    for task in &dead {
        by_labourer
            .entry(task.labourer_id.as_str())
            .or_default()
            .push(task);
    }
    let mut per_job: BTreeMap<String, u64> = BTreeMap::new();
    for (labourer, group) in by_labourer {
        let head = tasks.oldest_queued_greenfield(labourer, now).await?;
        let places = retry_sequence(head, group.len());
        for (task, greenfield) in group.into_iter().zip(places) {
            match tasks.redrive(task, greenfield).await? {
                MoveOutcome::Moved => {
                    report.redriven.push(task.task_id.clone());
                    if let Some(job_id) = &task.job_id {
                        *per_job.entry(job_id.clone()).or_default() += 1;
                    }
                }
                MoveOutcome::Conflict => report.conflicts += 1,
            }
        }
    }
    if let Some(jobs) = jobs {
        for (job_id, count) in per_job {
            // The tasks have moved: a job record that cannot follow is a warning, not a failure.
            match reopen(jobs, &job_id, count).await {
                Ok(Some(taken)) => {
                    report.jobs_reopened.insert(job_id, taken);
                }
                Ok(None) => {}
                Err(err) => report
                    .warnings
                    .push(format!("job `{job_id}` was not reopened: {err}")),
            }
        }
    }
    Ok(report)
}

/// The full closed rows of the dead tasks `target` names.
async fn dead_tasks<S>(
    tasks: &S,
    jobs: Option<&dyn JobStore>,
    target: &RedriveTarget,
    limit: usize,
) -> Result<Vec<Task>>
where
    S: TaskLookup + TaskArchive + ?Sized,
{
    match target {
        RedriveTarget::Task(id) => {
            let Some(task) = tasks.get_closed_task(id).await? else {
                return Err(Error::invalid(
                    "redrive",
                    format!(
                        "task `{id}` is not among the closed tasks: only dead tasks can be redriven \
                         (a queued, running or retrying task is still alive)"
                    ),
                ));
            };
            let dead_key = ClosedStatus::Dead.index_key(&task.labourer_id);
            let status = task
                .extra
                .get(CLOSED_STATUS_ATTRIBUTE)
                .and_then(|v| v.as_str());
            if status != Some(dead_key.as_str()) {
                return Err(Error::invalid(
                    "redrive",
                    format!("task `{id}` completed; only dead tasks can be redriven"),
                ));
            }
            Ok(vec![task])
        }
        RedriveTarget::Labourer(labourer) => {
            let sample = tasks
                .closed_sample(labourer, ClosedStatus::Dead, limit)
                .await?;
            whole_rows(tasks, sample).await
        }
        RedriveTarget::Job(job_id) => {
            let Some(jobs) = jobs else {
                return Err(Error::invalid(
                    "redrive",
                    format!("job `{job_id}`: a job's redrive needs the job records' store"),
                ));
            };
            let Some(job) = jobs.get_job(job_id).await? else {
                return Err(Error::invalid(
                    "redrive",
                    format!("no job `{job_id}` among the job records"),
                ));
            };
            let sample = tasks
                .closed_sample(&job.labourer_id, ClosedStatus::Dead, JOB_SEARCH)
                .await?
                .into_iter()
                .filter(|task| of_job(task, job_id))
                .take(limit)
                .collect();
            whole_rows(tasks, sample).await
        }
    }
}

/// The whole closed rows of `sample` (the status index projects only some attributes), those still
/// closed.
async fn whole_rows<S>(tasks: &S, sample: Vec<Task>) -> Result<Vec<Task>>
where
    S: TaskLookup + ?Sized,
{
    let mut dead = Vec::with_capacity(sample.len());
    for task in sample {
        if let Some(row) = tasks.get_closed_task(&task.task_id).await? {
            dead.push(row);
        }
    }
    Ok(dead)
}
