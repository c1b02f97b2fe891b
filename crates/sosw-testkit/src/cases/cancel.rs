//! `sosw cancel` and `sosw pause`: closing tasks as cancelled ([`TaskCancel`]), cancelling a job
//! ([`cancel_job`], on a store that is both a [`TaskStore`] and a [`JobStore`]) and pausing labourers
//! ([`LabourerControl`]).

use std::sync::Arc;

use serde_json::json;

use super::support::{NOW, Scope, archive, claim, complete, live, put, to_retry};
use sosw_core::essentials::cancel::{
    CancelOutcome, cancel_job, is_paused, pause_labourer, paused_labourers, resume_labourer,
};
use sosw_core::essentials::closer::{Closed, Closer};
use sosw_core::notify::jobs::JOB_FINISHED_SUBJECT;
use sosw_core::notify::{MemoryNotifier, NotificationQueue};
use sosw_core::query::{self, JobFilter, TaskStatus};
use sosw_core::store::{
    CLOSED_STATUS_ATTRIBUTE, ClosedStatus, CreateJobOutcome, JobCounts, JobRecord, JobStatus,
    JobStore, LabourerControl, MoveOutcome, TaskStore,
};
use sosw_core::task::fate::Ending;
use sosw_core::task::{Labourer, Task, TaskId};

/// `cancel_queued` closes a queued task as `<labourer>_cancelled`, and refuses (moving nothing) a task
/// claimed since it was read; `cancel_retry` closes a waiting task once. Cancelled rows are sampled
/// under their own status only.
pub async fn cancel_closes_queued_and_waiting_tasks_as_cancelled<S: TaskStore + 'static>(
    store: Arc<S>,
) {
    let s = Scope::new("cancelrows");
    put(&*store, &s.queued(3)).await;
    let (queued, claimed, waiting) = (s.id(0), s.id(1), s.id(2));

    let copy = live(&*store, &queued).await;
    let outcome = store.cancel_queued(&copy, NOW).await.expect("cancel runs");
    assert_eq!(outcome, MoveOutcome::Moved, "a queued task is cancelled");
    assert_eq!(store.get_task(&queued).await.expect("get"), None);
    let closed = store
        .get_closed_task(&queued)
        .await
        .expect("get closed")
        .expect("the cancelled task is in the closed table");
    assert_eq!(closed.closed_at, Some(NOW));
    assert_eq!(
        closed.extra.get(CLOSED_STATUS_ATTRIBUTE),
        Some(&json!(format!("{}_cancelled", s.labourer))),
        "status key"
    );
    assert_eq!(closed.payload, copy.payload, "the payload is kept");

    let stale = live(&*store, &claimed).await;
    claim(&*store, &claimed, NOW - 5).await;
    let outcome = store.cancel_queued(&stale, NOW).await.expect("cancel runs");
    assert_eq!(
        outcome,
        MoveOutcome::Conflict,
        "a task claimed after it was read is left to run"
    );
    let running = live(&*store, &claimed).await;
    assert_eq!(
        store.cancel_queued(&running, NOW).await.expect("runs"),
        MoveOutcome::Conflict,
        "a running task is not cancelled"
    );
    assert!(store.get_task(&claimed).await.expect("get").is_some());

    to_retry(&*store, &waiting, NOW + 600).await;
    let row = store
        .get_retry_task(&s.labourer, &waiting)
        .await
        .expect("get retry")
        .expect("waiting");
    assert_eq!(
        store.cancel_retry(&row, NOW).await.expect("cancel runs"),
        MoveOutcome::Moved
    );
    assert_eq!(
        store.cancel_retry(&row, NOW).await.expect("cancel runs"),
        MoveOutcome::Conflict,
        "a second cancel of the same row"
    );
    assert_eq!(
        store
            .get_retry_task(&s.labourer, &waiting)
            .await
            .expect("get"),
        None
    );
    let closed = store
        .get_closed_task(&waiting)
        .await
        .expect("get closed")
        .expect("closed");
    assert_eq!(
        closed.desired_launch_time, None,
        "no launch time when closed"
    );

    let mut sample: Vec<TaskId> = store
        .closed_sample(&s.labourer, ClosedStatus::Cancelled, 10)
        .await
        .expect("sample")
        .into_iter()
        .map(|t| t.task_id)
        .collect();
    sample.sort();
    assert_eq!(sample, vec![queued.clone(), waiting.clone()]);
    for status in [ClosedStatus::Dead, ClosedStatus::Completed] {
        assert!(
            store
                .closed_sample(&s.labourer, status, 10)
                .await
                .expect("sample")
                .is_empty(),
            "cancelled tasks are not {status:?}"
        );
    }
}

/// The job of a scope: `<labourer>-job`, five tasks, two requesters.
fn job_of(s: &Scope, total: u64) -> JobRecord {
    JobRecord {
        job_id: format!("{}-job", s.labourer),
        labourer_id: s.labourer.clone(),
        status: JobStatus::Running,
        total: Some(total),
        enqueued: total,
        counts: JobCounts::default(),
        created_at: NOW - 100,
        started_at: Some(NOW - 100),
        finished_at: None,
        requesters: vec![
            "alice".into(),
            "arn:aws:sns:us-east-1:123456789012:jobs".into(),
        ],
        job: json!({"labourer_id": s.labourer}),
    }
}

/// Writes `job` and its `total` queued tasks (chunk ids, `job_id` set).
async fn job_with_tasks<S: TaskStore + JobStore + ?Sized>(
    store: &S,
    job: &JobRecord,
) -> Vec<TaskId> {
    assert_eq!(
        store.create_job(job).await.expect("create job"),
        CreateJobOutcome::Created
    );
    let tasks: Vec<Task> = (0..job.total.unwrap_or(0))
        .map(|n| {
            let id = TaskId::for_chunk(&job.job_id, n);
            let mut task = Task::new(
                id.as_str(),
                &job.labourer_id,
                json!({"n": n}),
                2000 + 1000 * n as i64,
                NOW as f64,
            );
            task.job_id = Some(job.job_id.clone());
            task
        })
        .collect();
    put(store, &tasks).await;
    tasks.into_iter().map(|t| t.task_id).collect()
}

/// A notification queue over a memory notifier.
fn notes() -> (Arc<MemoryNotifier>, NotificationQueue) {
    let notifier = Arc::new(MemoryNotifier::default());
    let queue = NotificationQueue::new(notifier.clone(), Some("default-topic".into()));
    (notifier, queue)
}

/// `cancel_job` closes the queued and waiting tasks as cancelled, leaves a running one (which later
/// completes and counts as usual, the job staying `cancelled`) and a closed one alone, counts the
/// cancelled ones on the job, ends it `cancelled` and tells every requester once. A running task that
/// fails afterwards is not retried: the closer closes it as cancelled. The query layer lists the
/// cancelled tasks and the cancelled job.
pub async fn cancel_job_closes_waiting_tasks_and_leaves_running_ones<S>(store: Arc<S>)
where
    S: TaskStore + JobStore + 'static,
{
    let s = Scope::new("canceljob");
    let job = job_of(&s, 6);
    let ids = job_with_tasks(&*store, &job).await;
    claim(&*store, &ids[0], NOW - 10).await;
    claim(&*store, &ids[5], NOW - 10).await;
    to_retry(&*store, &ids[1], NOW + 600).await;
    complete(&*store, &ids[2], NOW - 20).await;
    archive(&*store, &ids[2], ClosedStatus::Completed, NOW - 10).await;
    JobStore::add_outcomes(
        &*store,
        &job.job_id,
        JobCounts {
            completed: 1,
            ..JobCounts::default()
        },
    )
    .await
    .expect("count");

    let (notifier, mut queue) = notes();
    let report = cancel_job(&*store, &*store, &mut queue, &job.job_id, NOW)
        .await
        .expect("cancel succeeds");
    queue.commit().await.expect("notifications sent");
    assert_eq!(report.outcome, CancelOutcome::Cancelled);
    assert_eq!(report.status, JobStatus::Cancelled);
    assert_eq!(
        (
            report.cancelled_queued,
            report.cancelled_retry,
            report.running,
            report.already_closed,
            report.missing
        ),
        (2, 1, 2, 1, 0),
        "queued 3 and 4, waiting 1, running 0 and 5, closed 2: {report:?}"
    );
    assert!(!report.still_scheduling);
    for id in [&ids[1], &ids[3], &ids[4]] {
        let closed = store
            .get_closed_task(id)
            .await
            .expect("get closed")
            .unwrap_or_else(|| panic!("`{id}` is closed"));
        assert_eq!(
            query::TaskStatus::of_closed(&closed),
            TaskStatus::Cancelled,
            "`{id}`"
        );
    }
    assert!(
        store.get_task(&ids[0]).await.expect("get").is_some(),
        "running stays"
    );
    let record = store.get_job(&job.job_id).await.expect("get").expect("job");
    assert_eq!(record.status, JobStatus::Cancelled);
    assert_eq!(record.finished_at, Some(NOW));
    assert_eq!(
        record.counts,
        JobCounts {
            completed: 1,
            failed: 0,
            dead: 0,
            cancelled: 3,
        }
    );
    let sent = notifier.sent();
    let finished: Vec<_> = sent
        .iter()
        .filter(|n| n.subject == JOB_FINISHED_SUBJECT)
        .collect();
    assert_eq!(
        finished.len(),
        2,
        "one message per requester (the ARN one to its topic): {sent:?}"
    );
    for note in &finished {
        let body: serde_json::Value = serde_json::from_str(&note.message).expect("a JSON message");
        assert_eq!(body["status"], "cancelled", "{body}");
        assert_eq!(body["cancelled"], 3, "{body}");
    }

    // The running task completes: counted as usual, the job stays cancelled and says nothing more.
    complete(&*store, &ids[0], NOW + 5).await;
    archive(&*store, &ids[0], ClosedStatus::Completed, NOW + 6).await;
    let (notifier, mut queue) = notes();
    let progress = sosw_core::notify::jobs::record_outcome(
        &*store,
        &mut queue,
        &job.job_id,
        JobCounts {
            completed: 1,
            ..JobCounts::default()
        },
        NOW + 6,
    )
    .await
    .expect("counted");
    queue.commit().await.expect("sent");
    assert!(
        matches!(progress, sosw_core::notify::jobs::JobProgress::Counted(ref r) if r.status == JobStatus::Cancelled),
        "{progress:?}"
    );
    assert!(notifier.sent().is_empty(), "no second job message");

    // The other running task fails: not retried, closed as cancelled.
    let tasks: Arc<dyn TaskStore> = store.clone();
    let jobs: Arc<dyn JobStore> = store.clone();
    let (notifier, mut queue) = notes();
    let closer = Closer::new(tasks, notifier).with_jobs(jobs);
    let failing = live(&*store, &ids[5]).await;
    let (closed, _) = closer
        .close(
            &failing,
            &Labourer::new(&s.labourer),
            Ending::Failed { retryable: true },
            JobCounts {
                failed: 1,
                ..JobCounts::default()
            },
            &mut queue,
            NOW + 7,
        )
        .await
        .expect("closes");
    queue.commit().await.expect("sent");
    assert_eq!(
        closed,
        Closed::Cancelled,
        "a cancelled job's task is not retried"
    );
    assert_eq!(
        store
            .get_retry_task(&s.labourer, &ids[5])
            .await
            .expect("get"),
        None
    );
    let record = store.get_job(&job.job_id).await.expect("get").expect("job");
    assert_eq!(
        record.counts,
        JobCounts {
            completed: 2,
            failed: 1,
            dead: 0,
            cancelled: 4,
        }
    );
    assert!(record.all_tasks_closed());

    let cancelled = query::list_tasks(&*store, &s.labourer, TaskStatus::Cancelled, 10, NOW + 8)
        .await
        .expect("list");
    assert_eq!(cancelled.len(), 4, "{cancelled:?}");
    assert!(cancelled.iter().all(|t| t.status == TaskStatus::Cancelled));
    let listed = query::list_jobs(
        &*store,
        &JobFilter {
            status: Some(JobStatus::Cancelled),
            labourer: Some(s.labourer.clone()),
        },
        10,
        NOW + 8,
    )
    .await
    .expect("list jobs");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].cancelled, 4);
    assert_eq!(listed[0].closed, 6);
}

/// Cancelling twice changes nothing the second time and tells no one again; a finished job is left
/// as it is; an unknown job is an error naming it.
pub async fn cancel_job_is_idempotent_and_leaves_finished_jobs_alone<S>(store: Arc<S>)
where
    S: TaskStore + JobStore + 'static,
{
    let s = Scope::new("cancelagain");
    let job = job_of(&s, 2);
    job_with_tasks(&*store, &job).await;
    let (_, mut queue) = notes();
    let first = cancel_job(&*store, &*store, &mut queue, &job.job_id, NOW)
        .await
        .expect("cancel");
    queue.commit().await.expect("sent");
    assert_eq!(first.cancelled(), 2);
    let (notifier, mut queue) = notes();
    let second = cancel_job(&*store, &*store, &mut queue, &job.job_id, NOW + 1)
        .await
        .expect("cancel again");
    queue.commit().await.expect("sent");
    assert_eq!(second.outcome, CancelOutcome::AlreadyCancelled);
    assert_eq!((second.cancelled(), second.already_closed), (0, 2));
    assert!(second.notified.is_empty() && notifier.sent().is_empty());
    let record = store.get_job(&job.job_id).await.expect("get").expect("job");
    assert_eq!(record.counts.cancelled, 2, "counted once");
    assert_eq!(
        record.finished_at,
        Some(NOW),
        "finished at the first cancel"
    );

    let done = JobRecord {
        job_id: format!("{}-done", s.labourer),
        status: JobStatus::Running,
        ..job_of(&s, 1)
    };
    let ids = job_with_tasks(&*store, &done).await;
    assert!(
        store
            .finish_job(&done.job_id, JobStatus::Finished, NOW)
            .await
            .expect("finish")
    );
    let (notifier, mut queue) = notes();
    let report = cancel_job(&*store, &*store, &mut queue, &done.job_id, NOW + 1)
        .await
        .expect("cancel of a finished job");
    queue.commit().await.expect("sent");
    assert_eq!(report.outcome, CancelOutcome::AlreadyFinished);
    assert_eq!(report.status, JobStatus::Finished);
    assert_eq!(report.cancelled(), 0);
    assert!(notifier.sent().is_empty());
    assert!(
        store.get_task(&ids[0]).await.expect("get").is_some(),
        "a finished job's tasks are not touched"
    );

    let (_, mut queue) = notes();
    let missing = format!("{}-missing", s.labourer);
    let err = cancel_job(&*store, &*store, &mut queue, &missing, NOW)
        .await
        .expect_err("an unknown job");
    assert!(err.to_string().contains(&missing), "{err}");
}

/// Pausing stores the labourer with its time, once; resuming removes it, once; labourers are
/// independent, and concurrent pauses of different labourers are all kept.
pub async fn pause_and_resume_are_stored_per_labourer<S: LabourerControl + 'static>(
    control: Arc<S>,
) {
    let s = Scope::new("pause");
    let (a, b) = (s.labourer.clone(), s.other());
    assert!(!is_paused(&*control, &a).await.expect("read"));
    assert!(pause_labourer(&*control, &a, NOW).await.expect("pause"));
    assert!(
        !pause_labourer(&*control, &a, NOW + 5).await.expect("pause"),
        "a second pause changes nothing"
    );
    assert!(is_paused(&*control, &a).await.expect("read"));
    assert!(!is_paused(&*control, &b).await.expect("read"));
    let paused = paused_labourers(&*control).await.expect("read");
    let mine: Vec<_> = paused.iter().filter(|p| p.labourer_id == a).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].paused_at, NOW, "the first pause's time is kept");

    let many: Vec<String> = (0..8).map(|n| format!("{}-{n}", s.labourer)).collect();
    let mut handles = Vec::new();
    for id in many.clone() {
        let control = control.clone();
        handles.push(tokio::spawn(async move {
            pause_labourer(&*control, &id, NOW).await
        }));
    }
    for handle in handles {
        assert!(handle.await.expect("joins").expect("pause"));
    }
    let paused = paused_labourers(&*control).await.expect("read");
    for id in &many {
        assert!(
            paused.iter().any(|p| &p.labourer_id == id),
            "`{id}` kept among concurrent pauses"
        );
    }

    assert!(resume_labourer(&*control, &a).await.expect("resume"));
    assert!(
        !resume_labourer(&*control, &a).await.expect("resume"),
        "a second resume changes nothing"
    );
    assert!(!resume_labourer(&*control, &b).await.expect("resume"));
    assert!(!is_paused(&*control, &a).await.expect("read"));
    assert!(is_paused(&*control, &many[0]).await.expect("read"));
    let err = pause_labourer(&*control, " ", NOW)
        .await
        .expect_err("an empty id");
    assert!(err.to_string().contains("labourer id"), "{err}");
}
