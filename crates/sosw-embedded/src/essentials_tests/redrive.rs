use std::sync::Arc;

use serde_json::json;

use crate::SqliteTaskStore;
use sosw_core::essentials::redrive::*;
use sosw_core::store::{
    ClaimOutcome, CreateJobOutcome, EnqueueMode, JobCounts, JobRecord, JobStatus, TaskClaims,
};
use sosw_core::store::{ClosedStatus, JobStore, MoveOutcome, TaskArchive, TaskLookup, TaskQueue};
use sosw_core::task::{Task, TaskId};

const NOW: i64 = 1_800_000_000;

async fn store_with_dead(n: usize) -> Arc<SqliteTaskStore> {
    let store = Arc::new(SqliteTaskStore::in_memory().expect("store"));
    let mut tasks = Vec::new();
    for i in 0..n {
        let mut t = Task::new(format!("t{i}"), "w", json!({"i": i}), 1000 + i as i64, 0.0);
        t.job_id = Some("job-1".into());
        tasks.push(t);
    }
    tasks.push(Task::new("queued", "w", json!({}), 5000, 0.0));
    store
        .enqueue(&tasks, EnqueueMode::Fresh)
        .await
        .expect("enqueue");
    for i in 0..n {
        let id = TaskId::new(format!("t{i}")).expect("id");
        let claimed = store.claim(&id, NOW - 9000).await.expect("claim");
        assert!(matches!(claimed, ClaimOutcome::Claimed(_)), "setup claim");
        let row = store.get_task(&id).await.expect("get").expect("live");
        let moved = store
            .archive(&row, ClosedStatus::Dead, NOW - 10)
            .await
            .expect("archive");
        assert_eq!(moved, MoveOutcome::Moved, "setup archive");
    }
    let record = JobRecord {
        job_id: "job-1".into(),
        labourer_id: "w".into(),
        status: JobStatus::Running,
        total: Some(n as u64 + 1),
        enqueued: n as u64 + 1,
        counts: JobCounts {
            completed: 1,
            failed: 0,
            dead: n as u64,
            cancelled: 0,
        },
        created_at: NOW - 100,
        started_at: Some(NOW - 100),
        finished_at: None,
        requesters: vec![],
        job: json!({}),
    };
    let created = store.create_job(&record).await.expect("create job");
    assert_eq!(created, CreateJobOutcome::Created);
    let finished = store
        .finish_job("job-1", JobStatus::FinishedWithFailures, NOW - 5)
        .await
        .expect("finish");
    assert!(finished, "setup finish");
    store
}

#[tokio::test]
async fn a_labourer_s_dead_tasks_go_ahead_of_its_queue_and_reopen_the_job() {
    let store = store_with_dead(3).await;
    let target = RedriveTarget::Labourer("w".into());
    let report = redrive(&*store, Some(&*store), &target, NOW, 100)
        .await
        .expect("redrive");
    assert_eq!(report.redriven.len(), 3, "{report:?}");
    assert_eq!(report.conflicts, 0);
    assert_eq!(report.jobs_reopened.get("job-1"), Some(&3));
    let next = store.next_queued("w", NOW, 10).await.expect("next");
    let order: Vec<&str> = next.iter().map(|t| t.task_id.as_str()).collect();
    assert_eq!(
        order.len(),
        4,
        "three redriven and the queued one: {order:?}"
    );
    assert_eq!(
        order[3], "queued",
        "redriven tasks run before the queue head"
    );
    assert!(next.iter().all(|t| t.attempts == 0), "fresh attempts");
    let job = store.get_job("job-1").await.expect("get").expect("job");
    assert_eq!((job.status, job.counts.dead), (JobStatus::Running, 0));

    let again = redrive(&*store, Some(&*store), &target, NOW, 100)
        .await
        .expect("redrive");
    assert_eq!(again, RedriveReport::default(), "nothing left to redrive");
}

#[tokio::test]
async fn one_task_is_redriven_and_a_live_or_unknown_one_is_a_clear_error() {
    let store = store_with_dead(2).await;
    let one = RedriveTarget::Task(TaskId::new("t1").expect("id"));
    let report = redrive(&*store, Some(&*store), &one, NOW, 100)
        .await
        .expect("redrive");
    assert_eq!(report.redriven, vec![TaskId::new("t1").expect("id")]);
    assert_eq!(report.jobs_reopened.get("job-1"), Some(&1));

    let err = redrive(&*store, None, &one, NOW, 100)
        .await
        .expect_err("t1 is live now");
    assert!(
        err.to_string()
            .contains("`t1` is not among the closed tasks"),
        "{err}"
    );
    let unknown = RedriveTarget::Task(TaskId::new("nope").expect("id"));
    let err = redrive(&*store, None, &unknown, NOW, 100)
        .await
        .expect_err("unknown");
    assert!(err.to_string().contains("`nope`"), "{err}");
}

#[tokio::test]
async fn a_job_s_dead_tasks_are_redriven_and_another_job_s_stay_dead() {
    let store = store_with_dead(3).await;
    let mut other = Task::new("other", "w", json!({}), 900, 0.0);
    other.job_id = Some("job-2".into());
    store
        .enqueue(std::slice::from_ref(&other), EnqueueMode::Fresh)
        .await
        .expect("enqueue");
    let id = TaskId::new("other").expect("id");
    assert!(matches!(
        store.claim(&id, NOW - 9000).await.expect("claim"),
        ClaimOutcome::Claimed(_)
    ));
    let row = store.get_task(&id).await.expect("get").expect("live");
    let moved = store
        .archive(&row, ClosedStatus::Dead, NOW - 10)
        .await
        .expect("archive");
    assert_eq!(moved, MoveOutcome::Moved);

    let job = RedriveTarget::Job("job-1".into());
    let err = redrive(&*store, None, &job, NOW, 100)
        .await
        .expect_err("no job records");
    assert!(err.to_string().contains("job records"), "{err}");
    let unknown = RedriveTarget::Job("job-9".into());
    let err = redrive(&*store, Some(&*store), &unknown, NOW, 100)
        .await
        .expect_err("unknown job");
    assert!(err.to_string().contains("no job `job-9`"), "{err}");

    let first = redrive(&*store, Some(&*store), &job, NOW, 2)
        .await
        .expect("redrive");
    assert_eq!(first.redriven.len(), 2, "at most the limit: {first:?}");
    let rest = redrive(&*store, Some(&*store), &job, NOW, 100)
        .await
        .expect("redrive");
    let mut all: Vec<String> = first
        .redriven
        .iter()
        .chain(&rest.redriven)
        .map(|id| id.as_str().to_owned())
        .collect();
    all.sort();
    assert_eq!(all, ["t0", "t1", "t2"], "every dead task of job-1, once");
    assert_eq!(rest.jobs_reopened.get("job-1"), Some(&1));
    assert!(
        store.get_closed_task(&id).await.expect("get").is_some(),
        "job-2's dead task stays dead"
    );
    let job = store.get_job("job-1").await.expect("get").expect("job");
    assert_eq!((job.status, job.counts.dead), (JobStatus::Running, 0));
}
