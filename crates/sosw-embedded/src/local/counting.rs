//! [`CountingJobs`]: the job store of one run, counting the tasks this process closed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;

use sosw_core::error::Result;
use sosw_core::store::{CreateJobOutcome, JobCounts, JobRecord, JobStatus, JobStore};

/// A [`JobStore`] that passes every call on and counts the tasks whose closing (completed or dead)
/// this process recorded. Every close is counted once, by whoever won its conditional write, so two
/// runs over one state file count each task in exactly one of them.
pub(crate) struct CountingJobs {
    inner: Arc<dyn JobStore>,
    closed: AtomicU64,
}

impl CountingJobs {
    pub(crate) fn new(inner: Arc<dyn JobStore>) -> Self {
        CountingJobs {
            inner,
            closed: AtomicU64::new(0),
        }
    }

    /// Tasks closed through this store so far.
    pub(crate) fn closed(&self) -> u64 {
        self.closed.load(Ordering::Acquire)
    }
}

#[async_trait]
impl JobStore for CountingJobs {
    async fn create_job(&self, record: &JobRecord) -> Result<CreateJobOutcome> {
        self.inner.create_job(record).await
    }

    async fn get_job(&self, job_id: &str) -> Result<Option<JobRecord>> {
        self.inner.get_job(job_id).await
    }

    async fn get_job_counters(&self, job_id: &str) -> Result<Option<JobRecord>> {
        self.inner.get_job_counters(job_id).await
    }

    async fn list_job_counters(&self, limit: usize) -> Result<Vec<JobRecord>> {
        self.inner.list_job_counters(limit).await
    }

    async fn add_requester(&self, job_id: &str, requester: &str) -> Result<Option<JobRecord>> {
        self.inner.add_requester(job_id, requester).await
    }

    async fn record_progress(
        &self,
        job_id: &str,
        enqueued: u64,
        total: Option<u64>,
        now: i64,
    ) -> Result<()> {
        self.inner
            .record_progress(job_id, enqueued, total, now)
            .await
    }

    async fn add_outcomes(&self, job_id: &str, delta: JobCounts) -> Result<Option<JobRecord>> {
        let record = self.inner.add_outcomes(job_id, delta).await?;
        if record.is_some() {
            self.closed
                .fetch_add(delta.completed + delta.dead, Ordering::AcqRel);
        }
        Ok(record)
    }

    async fn finish_job(&self, job_id: &str, status: JobStatus, now: i64) -> Result<bool> {
        self.inner.finish_job(job_id, status, now).await
    }

    async fn list_jobs(&self, limit: usize) -> Result<Vec<JobRecord>> {
        self.inner.list_jobs(limit).await
    }

    async fn reopen_job(&self, job_id: &str, redriven: u64) -> Result<Option<JobRecord>> {
        self.inner.reopen_job(job_id, redriven).await
    }
}
