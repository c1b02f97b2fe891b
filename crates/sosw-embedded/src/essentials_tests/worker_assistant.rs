//! The worker assistant over a store whose archive fails: the completion still counts in its job; over
//! SQLite's one-move close, the completed task goes straight to the closed table.

use std::sync::Arc;

use serde_json::json;

use crate::SqliteTaskStore;
use sosw_core::clock::ManualClock;
use sosw_core::config::{WorkerAssistantConfig, parse_config};
use sosw_core::essentials::closer::Closer;
use sosw_core::essentials::worker_assistant::{
    AssistantOutcome, AssistantRequest, WorkerAssistant,
};
use sosw_core::notify::LogNotifier;
use sosw_core::processor::Stats;
use sosw_core::store::{
    ClaimOutcome, EnqueueMode, JobCounts, JobRecord, JobStatus, JobStore, TaskClaims, TaskLookup,
    TaskQueue,
};
use sosw_core::task::{Task, TaskId};
use sosw_testkit::faults::FaultyStore;

const NOW: i64 = 1_800_000_000;

#[tokio::test]
async fn a_completion_whose_archive_fails_still_counts_and_the_task_stays_for_the_scavenger() {
    // The SQLite store completes and archives in one move; this test needs them apart.
    let store = Arc::new(
        FaultyStore::new(SqliteTaskStore::in_memory().expect("store"), 1).without_one_move_close(),
    );
    let mut task = Task::new("t1", "w", json!({}), 1000, 0.0);
    task.job_id = Some("job-1".into());
    store
        .enqueue(&[task], EnqueueMode::Fresh)
        .await
        .expect("enqueue");
    let id = TaskId::new("t1").expect("id");
    let claimed = store.claim(&id, NOW - 10).await.expect("claim");
    assert!(matches!(claimed, ClaimOutcome::Claimed(_)));
    store
        .create_job(&JobRecord {
            job_id: "job-1".into(),
            labourer_id: "w".into(),
            status: JobStatus::Running,
            total: Some(1),
            enqueued: 1,
            counts: JobCounts::default(),
            created_at: NOW - 100,
            started_at: Some(NOW - 100),
            finished_at: None,
            requesters: vec![],
            job: json!({}),
        })
        .await
        .expect("job");
    let config: WorkerAssistantConfig = parse_config(
        "sosw_worker_assistant_config",
        json!({"task_config": {"labourers": {"w": {}}}}),
    )
    .expect("config");
    let closer = Closer::new(store.clone(), Arc::new(LogNotifier))
        .with_jobs(store.clone())
        .with_clock(Arc::new(ManualClock::at_secs(NOW)));
    let assistant = WorkerAssistant::new(config, closer);

    // The completion mark is call 1; the archive (call 2) fails as a killed connection would.
    store.crash_at(2);
    let mut stats = Stats::default();
    let reply = assistant
        .handle(&AssistantRequest::completed(id.clone()), &mut stats)
        .await
        .expect("the report is handled");
    assert_eq!(
        reply.outcome,
        AssistantOutcome::Completed { archived: false }
    );
    assert!(reply.job_finished);
    store.heal();
    let job = store.get_job("job-1").await.expect("read").expect("job");
    assert_eq!(job.counts.completed, 1, "counted despite the archive error");
    assert_eq!(job.status, JobStatus::Finished);
    let live = store
        .get_task(&id)
        .await
        .expect("read")
        .expect("still live");
    assert!(
        live.completed_at.is_some(),
        "completed, left for the scavenger"
    );
}

#[tokio::test]
async fn a_completion_over_sqlite_closes_the_task_in_the_same_call() {
    let store = Arc::new(SqliteTaskStore::in_memory().expect("store"));
    let task = Task::new("t1", "w", json!({}), 1000, 0.0);
    store
        .enqueue(&[task], EnqueueMode::Fresh)
        .await
        .expect("enqueue");
    let id = TaskId::new("t1").expect("id");
    store.claim(&id, NOW - 10).await.expect("claim");
    let config: WorkerAssistantConfig = parse_config(
        "sosw_worker_assistant_config",
        json!({"task_config": {"labourers": {"w": {}}}}),
    )
    .expect("config");
    let closer = Closer::new(store.clone(), Arc::new(LogNotifier))
        .with_clock(Arc::new(ManualClock::at_secs(NOW)));
    let assistant = WorkerAssistant::new(config, closer);
    let mut stats = Stats::default();
    let reply = assistant
        .handle(&AssistantRequest::completed(id.clone()), &mut stats)
        .await
        .expect("the report is handled");
    assert_eq!(
        reply.outcome,
        AssistantOutcome::Completed { archived: true }
    );
    assert_eq!(store.get_task(&id).await.expect("read"), None);
    let closed = store
        .get_closed_task(&id)
        .await
        .expect("read")
        .expect("closed");
    assert_eq!(
        (closed.completed_at, closed.closed_at),
        (Some(NOW), Some(NOW))
    );
}
