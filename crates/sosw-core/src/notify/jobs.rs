//! Job progress when a task closes, and the job-finished message to every requester.
//!
//! Callers count a task only when their own store operation changed it (a completion `Recorded`, an
//! archive as dead `Moved`), so each task counts once however many reports or scavengers race. When
//! the counters show every task closed, [`JobStore::finish_job`] picks exactly one caller to finish the
//! job, and only that caller queues the notification: each requester hears once.
//!
//! **Requesters.** A requester string is where the job's submitter wants to hear about it:
//! * an SNS topic ARN (`arn:<partition>:sns:<region>:<account>:<topic>`): the message goes to that
//!   topic;
//! * anything else (a user name, an e-mail, a ticket id): the message goes to the essential's default
//!   topic (`sns_config.recipient`) with the requester in the `requester` message attribute, so
//!   subscribers can filter on it; with no default topic it is logged.

use std::collections::BTreeMap;

use serde_json::json;

use super::NotificationQueue;
use crate::error::Result;
use crate::store::{JobCounts, JobRecord, JobStore};

/// Subject of job-finished notifications.
pub const JOB_FINISHED_SUBJECT: &str = "``sosw`` Job finished";

/// What [`record_outcome`] did to the job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobProgress {
    /// The task belongs to no job record (tasks created by sosw 0.7 have none): nothing to count.
    NoJob,
    /// Counted; the job is still open.
    Counted(JobRecord),
    /// Counted, and this caller finished the job and queued one notification per requester.
    Finished(JobRecord),
}

/// Whether `requester` is an SNS topic ARN (then it is the notification's recipient).
pub fn is_sns_topic_arn(requester: &str) -> bool {
    let parts: Vec<&str> = requester.split(':').collect();
    parts.len() == 6 && parts[0] == "arn" && parts[2] == "sns" && !parts[5].is_empty()
}

/// Adds `delta` to job `job_id`; when that closes the job's last task, finishes the job (once, across
/// every concurrent caller) and queues the job-finished notification for each requester on `queue`.
/// The caller commits the queue.
pub async fn record_outcome(
    jobs: &dyn JobStore,
    queue: &mut NotificationQueue,
    job_id: &str,
    delta: JobCounts,
    now: i64,
) -> Result<JobProgress> {
    let Some(record) = jobs.add_outcomes(job_id, delta).await? else {
        tracing::debug!(job_id, "no job record: counters not kept");
        return Ok(JobProgress::NoJob);
    };
    let closes_a_task = delta.completed > 0 || delta.dead > 0;
    if !closes_a_task || !record.all_tasks_closed() || record.status.is_finished() {
        return Ok(JobProgress::Counted(record));
    }
    let status = record.final_status();
    if !jobs.finish_job(job_id, status, now).await? {
        // Another caller closed a task of the same job at the same moment and won the finish.
        return Ok(JobProgress::Counted(record));
    }
    let finished = JobRecord {
        status,
        finished_at: Some(now),
        ..record
    };
    queue_job_finished(queue, &finished);
    tracing::info!(job_id, status = ?status, requesters = finished.requesters.len(), "job finished");
    Ok(JobProgress::Finished(finished))
}

/// Queues one job-finished notification per requester of `job` (see the module docs for where each
/// goes).
pub fn queue_job_finished(queue: &mut NotificationQueue, job: &JobRecord) {
    for requester in &job.requesters {
        let message = json!({
            "event": "job_finished",
            "job_id": job.job_id,
            "labourer_id": job.labourer_id,
            "status": job.status,
            "total": job.total,
            "completed": job.counts.completed,
            "failed": job.counts.failed,
            "dead": job.counts.dead,
            "created_at": job.created_at,
            "finished_at": job.finished_at,
            "requester": requester,
        });
        let mut attributes = BTreeMap::new();
        attributes.insert("job_id".to_string(), job.job_id.clone());
        attributes.insert("requester".to_string(), requester.clone());
        let recipient = is_sns_topic_arn(requester).then_some(requester.as_str());
        queue.send(
            recipient,
            JOB_FINISHED_SUBJECT,
            message.to_string(),
            attributes,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::MemoryNotifier;
    use crate::store::JobStatus;
    use std::sync::Arc;

    #[test]
    fn only_sns_topic_arns_are_recipients() {
        assert!(is_sns_topic_arn("arn:aws:sns:us-east-1:123456789012:jobs"));
        assert!(is_sns_topic_arn(
            "arn:aws-cn:sns:cn-north-1:123456789012:jobs"
        ));
        assert!(!is_sns_topic_arn(
            "arn:aws:lambda:us-east-1:123456789012:function:f"
        ));
        assert!(!is_sns_topic_arn("alice@example.com"));
        assert!(!is_sns_topic_arn("arn:aws:sns:us-east-1:123456789012:"));
    }

    #[tokio::test]
    async fn each_requester_gets_one_message_at_its_topic_or_the_default_one() {
        let sink = Arc::new(MemoryNotifier::default());
        let mut queue =
            NotificationQueue::new(sink.clone(), Some("arn:aws:sns:r:1:default".into()));
        let job = JobRecord {
            job_id: "j1".into(),
            labourer_id: "w".into(),
            status: JobStatus::Finished,
            total: Some(2),
            enqueued: 2,
            counts: JobCounts {
                completed: 2,
                failed: 1,
                dead: 0,
            },
            created_at: 1,
            started_at: Some(2),
            finished_at: Some(3),
            requesters: vec!["arn:aws:sns:r:1:team".into(), "alice".into(), "bob".into()],
            job: serde_json::Value::Null,
        };
        queue_job_finished(&mut queue, &job);
        assert_eq!(queue.commit().await.expect("commits"), 3);
        let sent = sink.sent();
        assert_eq!(sent[0].recipient, "arn:aws:sns:r:1:team");
        assert_eq!(sent[1].recipient, "arn:aws:sns:r:1:default");
        assert_eq!(sent[1].attributes["requester"], "alice");
        assert_eq!(sent[2].attributes["requester"], "bob");
        let body: serde_json::Value = serde_json::from_str(&sent[2].message).expect("JSON message");
        assert_eq!(body["status"], "finished");
        assert_eq!(body["completed"], 2);
        assert_eq!(body["requester"], "bob");
    }
}
