//! What a run's jobs came to, read from the store: per labourer, how many tasks completed, retried,
//! died, and ran again because an invocation never reported.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use sosw_core::error::Result;
use sosw_core::essentials::scheduler::job_task_ids;
use sosw_core::store::{JobStore, TaskLookup};

/// One labourer's line of a [`Summary`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LabourerSummary {
    /// The labourer.
    pub labourer_id: String,
    /// Tasks of the jobs on this labourer.
    pub tasks: u64,
    /// Closed as completed.
    pub completed: u64,
    /// Closed tasks that took more than one invocation.
    pub retried: u64,
    /// Closed as dead.
    pub dead: u64,
    /// Invocations that never reported (their process was killed, or they ran past `duration +
    /// cooldown`) and were run again: the price of at-least-once delivery.
    pub reruns: u64,
    /// Tasks not closed (none once the jobs are finished).
    pub open: u64,
}

impl LabourerSummary {
    /// Completed plus dead.
    pub fn closed(&self) -> u64 {
        self.completed + self.dead
    }

    fn add(&mut self, other: &LabourerSummary) {
        self.tasks += other.tasks;
        self.completed += other.completed;
        self.retried += other.retried;
        self.dead += other.dead;
        self.reruns += other.reruns;
        self.open += other.open;
    }
}

/// The summary of a local run's jobs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Per labourer, by id.
    pub labourers: Vec<LabourerSummary>,
    /// How long the run took.
    pub wall: Duration,
    /// Tasks this process closed during this run: a resumed run counts only its own, and of two runs
    /// over one state file each counts the tasks it closed.
    pub closed_this_run: u64,
    /// The run was stopped (Ctrl-C) before its jobs finished.
    pub interrupted: bool,
}

impl Summary {
    /// Reads every task of `job_ids` from `store` (each from its closed row, else its live or retry
    /// row).
    pub async fn collect<S>(store: &S, job_ids: &[String], wall: Duration) -> Result<Self>
    where
        S: TaskLookup + JobStore + ?Sized,
    {
        let mut by_labourer: BTreeMap<String, LabourerSummary> = BTreeMap::new();
        for job_id in job_ids {
            let Some(job) = store.get_job(job_id).await? else {
                continue;
            };
            let line = by_labourer
                .entry(job.labourer_id.clone())
                .or_insert_with(|| LabourerSummary {
                    labourer_id: job.labourer_id.clone(),
                    ..LabourerSummary::default()
                });
            for task_id in job_task_ids(job_id, job.total.unwrap_or(job.enqueued)) {
                line.tasks += 1;
                let Some(task) = store.get_closed_task(&task_id).await? else {
                    line.open += 1;
                    continue;
                };
                let completed = task.completed_at.is_some();
                if completed {
                    line.completed += 1;
                } else {
                    line.dead += 1;
                }
                if task.attempts > 1 {
                    line.retried += 1;
                }
                // Every invocation either reported a failure, reported the completion, or never
                // reported at all.
                let reported = u64::from(task.failed_attempts.unwrap_or(0)) + u64::from(completed);
                line.reruns += u64::from(task.attempts).saturating_sub(reported);
            }
        }
        Ok(Summary {
            labourers: by_labourer.into_values().collect(),
            wall,
            closed_this_run: 0,
            interrupted: false,
        })
    }

    /// The sum over all labourers.
    pub fn total(&self) -> LabourerSummary {
        let mut total = LabourerSummary {
            labourer_id: "total".into(),
            ..LabourerSummary::default()
        };
        for line in &self.labourers {
            total.add(line);
        }
        total
    }

    /// Whether every task completed (none dead, none open).
    pub fn all_completed(&self) -> bool {
        let total = self.total();
        total.dead == 0 && total.open == 0
    }

    /// Tasks closed in this run per second of wall time.
    pub fn tasks_per_second(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs > 0.0 {
            self.closed_this_run as f64 / secs
        } else {
            0.0
        }
    }
}

/// The summary as a table, then the wall time and rate.
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .labourers
            .iter()
            .map(|l| l.labourer_id.len())
            .chain([8])
            .max()
            .unwrap_or(8);
        writeln!(
            f,
            "{:<width$}  {:>7}  {:>9}  {:>7}  {:>5}  {:>6}",
            "labourer", "tasks", "completed", "retried", "dead", "re-run"
        )?;
        let total = self.total();
        let lines = self.labourers.iter().chain(
            // A total line only adds something when there are several labourers.
            (self.labourers.len() > 1).then_some(&total),
        );
        for line in lines {
            writeln!(
                f,
                "{:<width$}  {:>7}  {:>9}  {:>7}  {:>5}  {:>6}",
                line.labourer_id, line.tasks, line.completed, line.retried, line.dead, line.reruns
            )?;
        }
        if total.open > 0 {
            writeln!(f, "{} tasks are not closed yet", total.open)?;
        }
        write!(
            f,
            "wall time {:.2} s, {} tasks closed in this run, {:.1} tasks/s",
            self.wall.as_secs_f64(),
            self.closed_this_run,
            self.tasks_per_second()
        )
    }
}
