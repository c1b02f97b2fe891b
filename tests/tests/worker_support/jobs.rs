//! Job records for the job-counter tests.

use sosw::store::{JobCounts, JobRecord, JobStatus};

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
