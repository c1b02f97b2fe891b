//! A `JobStore` kept in memory, following the trait's documented contract, for the job-counter path
//! while the SQLite job store is being written on another branch.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use sosw::Result;
use sosw::store::{CreateJobOutcome, JobCounts, JobRecord, JobStatus, JobStore};

#[derive(Debug, Default)]
pub struct MemoryJobs {
    jobs: Mutex<BTreeMap<String, JobRecord>>,
}

impl MemoryJobs {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, JobRecord>) -> T) -> T {
        let mut jobs = self.jobs.lock().expect("job map lock");
        f(&mut jobs)
    }
}

/// A running job `job_id` of `total` tasks on `labourer_id`, submitted by `requesters`.
pub fn running_job(job_id: &str, labourer_id: &str, total: u64, requesters: &[&str]) -> JobRecord {
    JobRecord {
        job_id: job_id.to_string(),
        labourer_id: labourer_id.to_string(),
        status: JobStatus::Running,
        total: Some(total),
        enqueued: total,
        counts: JobCounts::default(),
        created_at: 1_700_000_000,
        started_at: Some(1_700_000_000),
        finished_at: None,
        requesters: requesters.iter().map(|r| r.to_string()).collect(),
        job: serde_json::json!({"lambda_name": labourer_id}),
    }
}

#[async_trait]
impl JobStore for MemoryJobs {
    async fn create_job(&self, record: &JobRecord) -> Result<CreateJobOutcome> {
        Ok(self.with(|jobs| match jobs.get(&record.job_id) {
            Some(existing) => CreateJobOutcome::Exists(Box::new(existing.clone())),
            None => {
                jobs.insert(record.job_id.clone(), record.clone());
                CreateJobOutcome::Created
            }
        }))
    }

    async fn get_job(&self, job_id: &str) -> Result<Option<JobRecord>> {
        Ok(self.with(|jobs| jobs.get(job_id).cloned()))
    }

    async fn add_requester(&self, job_id: &str, requester: &str) -> Result<Option<JobRecord>> {
        Ok(self.with(|jobs| {
            let job = jobs.get_mut(job_id)?;
            if !job.requesters.iter().any(|r| r == requester) {
                job.requesters.push(requester.to_string());
            }
            Some(job.clone())
        }))
    }

    async fn record_progress(
        &self,
        job_id: &str,
        enqueued: u64,
        total: Option<u64>,
        now: i64,
    ) -> Result<()> {
        self.with(|jobs| {
            if let Some(job) = jobs.get_mut(job_id) {
                job.enqueued = job.enqueued.max(enqueued);
                if total.is_some() {
                    job.total = total;
                }
                if job.status == JobStatus::Requested {
                    job.status = JobStatus::Running;
                    job.started_at = Some(now);
                }
            }
        });
        Ok(())
    }

    async fn add_outcomes(&self, job_id: &str, delta: JobCounts) -> Result<Option<JobRecord>> {
        Ok(self.with(|jobs| {
            let job = jobs.get_mut(job_id)?;
            job.counts.completed += delta.completed;
            job.counts.failed += delta.failed;
            job.counts.dead += delta.dead;
            Some(job.clone())
        }))
    }

    async fn finish_job(&self, job_id: &str, status: JobStatus, now: i64) -> Result<bool> {
        Ok(self.with(|jobs| match jobs.get_mut(job_id) {
            Some(job) if !job.status.is_finished() => {
                job.status = status;
                job.finished_at = Some(now);
                true
            }
            _ => false,
        }))
    }

    async fn list_jobs(&self, limit: usize) -> Result<Vec<JobRecord>> {
        Ok(self.with(|jobs| {
            let mut all: Vec<JobRecord> = jobs.values().cloned().collect();
            all.sort_by_key(|j| std::cmp::Reverse(j.created_at));
            all.truncate(limit);
            all
        }))
    }
}
