//! Job records: every job the scheduler accepted, with its progress and who asked for it.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Accepted; tasks are being created.
    Requested,
    /// At least one batch of tasks is in the queue.
    Running,
    /// Every task closed, all completed.
    Finished,
    /// Every task closed, at least one dead.
    FinishedWithFailures,
    /// Cancelled (`sosw cancel`): its queued and waiting-for-retry tasks closed as cancelled; tasks
    /// that were running when it was cancelled may still finish and are counted as they close.
    Cancelled,
}

impl JobStatus {
    /// Whether the job is over.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Finished | JobStatus::FinishedWithFailures | JobStatus::Cancelled
        )
    }
}

/// Counter increments applied to a job as its tasks close.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCounts {
    /// Tasks closed as completed.
    pub completed: u64,
    /// Failure reports received (a task may fail, retry, then complete).
    pub failed: u64,
    /// Tasks closed as dead.
    pub dead: u64,
    /// Tasks closed as cancelled (`sosw cancel`).
    #[serde(default)]
    pub cancelled: u64,
}

impl JobCounts {
    /// Whether every counter is zero.
    pub fn is_zero(&self) -> bool {
        *self == JobCounts::default()
    }

    /// Tasks closed: completed, dead and cancelled.
    pub fn closed(&self) -> u64 {
        self.completed
            .saturating_add(self.dead)
            .saturating_add(self.cancelled)
    }
}

/// One job's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job id: given in the payload, or a stable hash of the job (see `sosw::job`).
    pub job_id: String,
    /// The labourer the job's tasks run on.
    pub labourer_id: String,
    /// Where the job is.
    pub status: JobStatus,
    /// How many tasks the job chunked into; `None` until chunking has finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// How many tasks (in chunk order) are known to be in the store: the resume point of a scheduler.
    #[serde(default)]
    pub enqueued: u64,
    /// Counters, updated atomically as tasks close.
    #[serde(flatten)]
    pub counts: JobCounts,
    /// When the job was accepted (Unix seconds).
    pub created_at: i64,
    /// When its first tasks were queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    /// When its last task closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
    /// Everyone who submitted this job (notified once each when it finishes), in submission order,
    /// without repeats.
    #[serde(default)]
    pub requesters: Vec<String>,
    /// The job as submitted (JSON).
    #[serde(default)]
    pub job: Value,
}

impl JobRecord {
    /// Whether every task of the job is closed (completed, dead or cancelled).
    pub fn all_tasks_closed(&self) -> bool {
        self.total.is_some_and(|t| self.counts.closed() >= t)
    }

    /// The final status a job with these counts gets.
    pub fn final_status(&self) -> JobStatus {
        if self.counts.dead > 0 {
            JobStatus::FinishedWithFailures
        } else {
            JobStatus::Finished
        }
    }
}

/// The result of [`JobStore::create_job`].
#[derive(Debug, Clone, PartialEq)]
pub enum CreateJobOutcome {
    /// A new record was written.
    Created,
    /// A job with this id exists already (resubmission or resume): here it is, unchanged.
    Exists(Box<JobRecord>),
}

/// Job records (a table `sosw_jobs` on DynamoDB, hash key `job_id`; this project adds it).
///
/// The records that the updates return ([`JobStore::add_requester`], [`JobStore::add_outcomes`],
/// [`JobStore::reopen_job`]) may come without the job as submitted (`job` is `null`): a store may keep
/// it apart so that counter updates stay cheap (DynamoDB charges an update by the item's size).
/// [`JobStore::get_job`], [`JobStore::list_jobs`] and an existing job from [`JobStore::create_job`]
/// always carry it.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Writes `record` unless a job with its id exists (conditional put).
    async fn create_job(&self, record: &JobRecord) -> Result<CreateJobOutcome>;

    /// The job with this id, if any.
    async fn get_job(&self, job_id: &str) -> Result<Option<JobRecord>>;

    /// [`get_job`](JobStore::get_job) for displays of the counters (`sosw submit`'s progress,
    /// `sosw job`, the dashboard's job page): the record may come without the job as submitted
    /// (`job` is `null`), which a store that keeps it apart then neither reads nor parses (a job
    /// can list a million sections). By default the whole record.
    async fn get_job_counters(&self, job_id: &str) -> Result<Option<JobRecord>> {
        self.get_job(job_id).await
    }

    /// Adds `requester` to the job's requesters unless present. Returns the record after the change, or
    /// `None` if the job does not exist.
    async fn add_requester(&self, job_id: &str, requester: &str) -> Result<Option<JobRecord>>;

    /// Records enqueue progress: `enqueued` only ever grows (a smaller value is ignored), `total` is set
    /// once chunking has finished, and the first call moves a `requested` job to `running` with
    /// `started_at = now`.
    async fn record_progress(
        &self,
        job_id: &str,
        enqueued: u64,
        total: Option<u64>,
        now: i64,
    ) -> Result<()>;

    /// Adds `delta` to the job's counters atomically. Returns the record after the change, or `None` if
    /// the job does not exist (tasks of jobs created by sosw 0.7 have none).
    async fn add_outcomes(&self, job_id: &str, delta: JobCounts) -> Result<Option<JobRecord>>;

    /// Moves an unfinished job to `status` (a finished one, [`JobStatus::Cancelled`] included) with
    /// `finished_at = now`. Conditional: of any
    /// number of concurrent callers exactly one gets `true`, so the finish notification goes out once.
    async fn finish_job(&self, job_id: &str, status: JobStatus, now: i64) -> Result<bool>;

    /// Up to `limit` jobs, newest `created_at` first.
    async fn list_jobs(&self, limit: usize) -> Result<Vec<JobRecord>>;

    /// [`list_jobs`](JobStore::list_jobs) for listings that show the counters (`sosw jobs`, the
    /// dashboard and its samples): the records may come without the job as submitted (`job` is
    /// `null`). By default the whole records.
    async fn list_job_counters(&self, limit: usize) -> Result<Vec<JobRecord>> {
        self.list_jobs(limit).await
    }

    /// Takes `redriven` dead tasks back out of the job's `dead` counter and makes the job `running`
    /// again without `finished_at` (`sosw redrive`), atomically; when the redriven tasks close, the job
    /// finishes (and notifies) again. Returns the record after the change, or `None` if the job does not
    /// exist. An error if the job counts fewer dead tasks than `redriven`.
    ///
    /// A store that [counts closed tasks itself](JobStore::counts_closed_tasks) leaves `dead` to that
    /// count (the redriven tasks' closed items are gone, and its count takes them out) and only
    /// reopens the job.
    async fn reopen_job(&self, job_id: &str, redriven: u64) -> Result<Option<JobRecord>> {
        let _ = (job_id, redriven);
        Err(crate::Error::NotImplemented(
            "reopening a job (sosw redrive) is not supported by this job store",
        ))
    }

    /// Whether this store counts closed tasks (`completed`, `dead`, `cancelled`) into their jobs
    /// itself, in batches, from what its task store wrote ([`JobStore::count_closed_tasks`]): then the
    /// essentials that close a task add only `failed` ([`crate::notify::jobs::record_outcome`]), and a
    /// job's closed counters lag its tasks by up to one count (one scavenger run). Provided: `false`,
    /// every closer adds its own task at once.
    fn counts_closed_tasks(&self) -> bool {
        false
    }

    /// For a store that [counts closed tasks itself](JobStore::counts_closed_tasks): applies the tasks
    /// closed (and taken back out of the closed place, by a redrive or a move that lost a race) since
    /// the last count to their jobs' counters, each exactly once however many counts run or fail
    /// halfway, and returns the records of the jobs it changed, after the change. The scavenger calls
    /// it once a run and finishes the jobs it shows closed. Provided: nothing to count.
    async fn count_closed_tasks(&self, now: i64) -> Result<Vec<JobRecord>> {
        let _ = now;
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(total: Option<u64>, completed: u64, dead: u64) -> JobRecord {
        JobRecord {
            job_id: "j".into(),
            labourer_id: "w".into(),
            status: JobStatus::Running,
            total,
            enqueued: 0,
            counts: JobCounts {
                completed,
                failed: 0,
                dead,
                cancelled: 0,
            },
            created_at: 0,
            started_at: None,
            finished_at: None,
            requesters: vec![],
            job: Value::Null,
        }
    }

    #[test]
    fn a_job_is_closed_when_completed_plus_dead_reach_the_total() {
        assert!(
            !record(None, 5, 0).all_tasks_closed(),
            "total unknown while chunking"
        );
        assert!(!record(Some(3), 1, 1).all_tasks_closed());
        assert!(record(Some(3), 2, 1).all_tasks_closed());
        assert_eq!(
            record(Some(3), 2, 1).final_status(),
            JobStatus::FinishedWithFailures
        );
        assert_eq!(record(Some(3), 3, 0).final_status(), JobStatus::Finished);
    }

    #[test]
    fn record_serialises_counters_flat() {
        let v = serde_json::to_value(record(Some(2), 1, 0)).expect("serialises");
        assert_eq!(v["completed"], 1);
        assert_eq!(v["status"], "running");
        assert!(JobStatus::Finished.is_finished() && !JobStatus::Running.is_finished());
    }
}
