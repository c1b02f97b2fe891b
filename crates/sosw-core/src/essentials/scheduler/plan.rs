//! A dry run of the scheduler: the tasks a job would become, written nowhere.

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::Value;

use super::Scheduler;
use super::rows::task_payload;
use super::submission::{Submission, scheduled_job_id};
use crate::error::{Error, Result};
use crate::task::TaskId;

/// One task of a [`JobPlan`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlannedTask {
    /// The id the task would get: `<job id>-<index, 7 digits>`.
    pub task_id: TaskId,
    /// Its labourer.
    pub labourer_id: String,
    /// Its payload, as the scheduler would store it.
    pub payload: Value,
}

/// What [`Scheduler::plan`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobPlan {
    /// The id the job would get.
    pub job_id: String,
    /// The job's labourer.
    pub labourer_id: String,
    /// The tasks, in queue order.
    pub tasks: Vec<PlannedTask>,
}

impl Scheduler {
    /// The tasks `event` (a job, as [`Scheduler::run`] takes it) would become if it were scheduled on
    /// `today`: the same checks, ids and payloads as a run, without greenfields (they depend on the queue
    /// at the time). Reads and writes nothing.
    pub fn plan(&self, event: &Value, today: NaiveDate) -> Result<JobPlan> {
        let mut tasks = Vec::new();
        let outline = self.plan_each(event, today, &mut |task| {
            tasks.push(task);
            Ok(())
        })?;
        Ok(JobPlan {
            job_id: outline.job_id,
            labourer_id: outline.labourer_id,
            tasks,
        })
    }

    /// [`plan`](Self::plan) one task at a time: each planned task goes to `sink` as the chunker makes
    /// it, so a job of any size is planned in bounded memory. A bad task stops the plan at that task
    /// (the ones before it were handed on), as does an error of `sink`.
    pub fn plan_each(
        &self,
        event: &Value,
        today: NaiveDate,
        sink: &mut dyn FnMut(PlannedTask) -> Result<()>,
    ) -> Result<PlanOutline> {
        let job = match Submission::parse(event, &self.default_requester)? {
            Submission::Job { job, .. } => job,
            Submission::Continuation { job_id, .. } => {
                return Err(Error::invalid_job(
                    "job_id",
                    format!(
                        "this is a continuation of the recorded job `{job_id}`, not a job; plan the \
                         job file itself"
                    ),
                ));
            }
        };
        let labourer_id = job.labourer_id().to_owned();
        self.config.task_config.labourer(&labourer_id)?;
        let job_id = scheduled_job_id(&job, today);
        let total = self.each_checked(&job, today, &mut |index, row| {
            sink(PlannedTask {
                task_id: TaskId::for_chunk(&job_id, index),
                labourer_id: labourer_id.clone(),
                payload: task_payload(&row),
            })
        })?;
        Ok(PlanOutline {
            job_id,
            labourer_id,
            total,
        })
    }
}

/// What [`Scheduler::plan_each`] found, besides the tasks it handed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanOutline {
    /// The id the job would get.
    pub job_id: String,
    /// The job's labourer.
    pub labourer_id: String,
    /// How many tasks it has.
    pub total: u64,
}
