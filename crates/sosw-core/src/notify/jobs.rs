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
use futures::StreamExt;

use crate::store::{CLOSED_STATUS_ATTRIBUTE, JobCounts, JobRecord, JobStore, TaskLookup};
use crate::task::TaskId;

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
    /// Left to the job store, which counts closed tasks itself, in batches
    /// ([`JobStore::counts_closed_tasks`]); the job finishes when that count shows every task closed.
    CountedByStore,
}

/// Whether `requester` is an SNS topic ARN (then it is the notification's recipient).
pub fn is_sns_topic_arn(requester: &str) -> bool {
    let parts: Vec<&str> = requester.split(':').collect();
    parts.len() == 6 && parts[0] == "arn" && parts[2] == "sns" && !parts[5].is_empty()
}

/// Adds `delta` to job `job_id`; when that closes the job's last task, finishes the job (once, across
/// every concurrent caller) and queues the job-finished notification for each requester on `queue`.
/// The caller commits the queue. With a job store that [counts closed tasks
/// itself](JobStore::counts_closed_tasks), only `delta.failed` is added here and the result is
/// [`JobProgress::CountedByStore`]: the store's own count adds the closed task and the scavenger
/// finishes the job ([`count_closed_by_store`]).
pub async fn record_outcome(
    jobs: &dyn JobStore,
    queue: &mut NotificationQueue,
    job_id: &str,
    delta: JobCounts,
    now: i64,
) -> Result<JobProgress> {
    if jobs.counts_closed_tasks() {
        // The store counts the closed task from its own write; only a failed attempt is ours to add.
        if delta.failed > 0 {
            let failed = JobCounts {
                failed: delta.failed,
                ..JobCounts::default()
            };
            if jobs.add_outcomes(job_id, failed).await?.is_none() {
                return Ok(JobProgress::NoJob);
            }
        }
        return Ok(JobProgress::CountedByStore);
    }
    let Some(record) = jobs.add_outcomes(job_id, delta).await? else {
        tracing::debug!(job_id, "no job record: counters not kept");
        return Ok(JobProgress::NoJob);
    };
    let closes_a_task = delta.completed > 0 || delta.dead > 0 || delta.cancelled > 0;
    if !closes_a_task {
        return Ok(JobProgress::Counted(record));
    }
    finish_if_all_closed(jobs, queue, record, now).await
}

/// Finishes the job of `record` (its counters as just written) when they show every task closed and
/// it is not finished yet: of any number of concurrent callers exactly one wins
/// ([`JobStore::finish_job`]) and queues the job-finished notification for each requester on `queue`.
pub async fn finish_if_all_closed(
    jobs: &dyn JobStore,
    queue: &mut NotificationQueue,
    record: JobRecord,
    now: i64,
) -> Result<JobProgress> {
    let job_id = record.job_id.clone();
    let job_id = job_id.as_str();
    if !record.all_tasks_closed() || record.status.is_finished() {
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

/// For a job store that [counts closed tasks itself](JobStore::counts_closed_tasks): runs its count
/// ([`JobStore::count_closed_tasks`]) and finishes each job it shows closed, queueing the
/// notifications on `queue` ([`finish_if_all_closed`]). Returns the jobs it finished.
pub async fn count_closed_by_store(
    jobs: &dyn JobStore,
    queue: &mut NotificationQueue,
    now: i64,
) -> Result<Vec<String>> {
    if !jobs.counts_closed_tasks() {
        return Ok(Vec::new());
    }
    let mut finished = Vec::new();
    for record in jobs.count_closed_tasks(now).await? {
        if let JobProgress::Finished(job) = finish_if_all_closed(jobs, queue, record, now).await? {
            finished.push(job.job_id);
        }
    }
    Ok(finished)
}

/// How long after a task closed [`reconcile_from_closed`] counts it: our own essentials add a task to
/// its job within moments of archiving it, so a closed row older than this that the job does not count
/// was closed by someone else (a Python sosw 0.7 essential).
pub const RECONCILE_GRACE_SECS: i64 = 300;

/// Most closed-row reads of [`reconcile_from_closed`] in flight at once.
const RECONCILE_READS_IN_FLIGHT: usize = 16;

/// What [`reconcile_from_closed`] found and did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reconciled {
    /// Closed rows of the job's tasks, closed at least the grace period ago, by status (`failed` is
    /// not kept in closed rows and stays 0).
    pub observed: JobCounts,
    /// What was added to the job's counters.
    pub added: JobCounts,
    /// Whether this call finished the job (its messages queued).
    pub finished: bool,
}

/// Brings job `job_id`'s counters up to what the closed table shows, so a job finishes whichever side
/// closed its tasks: a Python sosw 0.7 essential archives a task without telling `sosw_jobs`.
///
/// Reads the closed row of each task the job enqueued (its ids are derived from the job id, one read
/// per task), counts those closed at least [`RECONCILE_GRACE_SECS`] before `now` by their status
/// (`<labourer>_1` completed, `<labourer>_0` dead), and adds to each counter what it lacks
/// (`observed - counted`, never less than zero). Idempotent: a second call adds nothing, and a task our
/// essentials counted is counted once, since they count a task right after archiving it, well within
/// the grace period. When the counters then show every task closed, the job is finished and its
/// requesters' messages queued on `queue`, exactly as when a task closes here
/// ([`record_outcome`]). A finished job, one still being chunked (no `total`) or one without a record
/// is left alone.
pub async fn reconcile_from_closed<S: TaskLookup + ?Sized>(
    tasks: &S,
    jobs: &dyn JobStore,
    queue: &mut NotificationQueue,
    job_id: &str,
    now: i64,
) -> Result<Reconciled> {
    let Some(job) = jobs.get_job(job_id).await? else {
        return Ok(Reconciled::default());
    };
    if job.status.is_finished() || job.total.is_none() {
        return Ok(Reconciled::default());
    }
    let ids = (0..job.enqueued).map(|n| TaskId::for_chunk(job_id, n));
    let mut reads = futures::stream::iter(ids)
        .map(|id| async move { tasks.get_closed_task(&id).await })
        .buffer_unordered(RECONCILE_READS_IN_FLIGHT);
    let mut observed = JobCounts::default();
    while let Some(row) = reads.next().await {
        let Some(task) = row? else { continue };
        if task
            .closed_at
            .is_none_or(|at| at > now.saturating_sub(RECONCILE_GRACE_SECS))
        {
            continue;
        }
        match task
            .extra
            .get(CLOSED_STATUS_ATTRIBUTE)
            .and_then(|v| v.as_str())
        {
            Some(status) if status.ends_with("_1") => observed.completed += 1,
            Some(status) if status.ends_with("_0") => observed.dead += 1,
            _ => {}
        }
    }
    let added = JobCounts {
        completed: observed.completed.saturating_sub(job.counts.completed),
        failed: 0,
        dead: observed.dead.saturating_sub(job.counts.dead),
        cancelled: 0,
    };
    if added.is_zero() {
        return Ok(Reconciled {
            observed,
            ..Reconciled::default()
        });
    }
    tracing::info!(
        job_id,
        ?observed,
        ?added,
        "job counters reconciled from the closed table"
    );
    let progress = record_outcome(jobs, queue, job_id, added, now).await?;
    Ok(Reconciled {
        observed,
        added,
        finished: matches!(progress, JobProgress::Finished(_)),
    })
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
            "cancelled": job.counts.cancelled,
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
                cancelled: 0,
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
