//! A dry run of the scheduler: the tasks a job would become, written nowhere.

use chrono::NaiveDate;
use serde::Serialize;
use serde_json::Value;

use super::Scheduler;
use super::rows::{check_rows, task_payload};
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
        let rows = self.chunk(&job, today)?;
        let limit = self
            .blobs
            .is_none()
            .then_some(self.config.max_task_payload_bytes);
        check_rows(&rows, limit)?;
        let tasks = rows
            .iter()
            .enumerate()
            .map(|(index, row)| PlannedTask {
                task_id: TaskId::for_chunk(&job_id, index as u64),
                labourer_id: labourer_id.clone(),
                payload: task_payload(row),
            })
            .collect();
        Ok(JobPlan {
            job_id,
            labourer_id,
            tasks,
        })
    }
}
