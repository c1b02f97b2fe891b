//! A job our scheduler wrote, whose tasks Python sosw 0.7.47 closes, still finishes (issue 20, item 5).
//!
//! On DynamoDB Local: our scheduler writes a job of five tasks and our store claims them (the Rust
//! orchestrator's claim). One task is completed, archived and counted by our side. Python sosw 0.7.47
//! (`scripts/sosw07_close_tasks.py`, its WorkerAssistant and `TaskManager.archive_task`) completes and
//! archives three more and archives the fifth without a completion (dead), telling `sosw_jobs` nothing.
//! Our scavenger with `reconcile_jobs` then reconciles the job from the closed table: nothing within
//! the grace period, everything after it, once, and the job finishes with one message to its requester.
//! Without `reconcile_jobs` (the default) it reconciles nothing.
//!
//! Needs DynamoDB Local (`SOSW_DYNAMODB_ENDPOINT`) and Python sosw 0.7.47 (`scripts/sosw07.sh`); skipped
//! without them (failing instead when `SOSW_REQUIRE_EMULATORS=1`).

use std::process::Command;
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use serde_json::json;

use sosw::aws::dynamodb::{DynamoTaskStore, create_tables, delete_tables};
use sosw::clock::{Clock, ManualClock};
use sosw::config::{ScavengerConfig, SchedulerConfig, parse_config};
use sosw::essentials::closer::Closer;
use sosw::essentials::scavenger::Scavenger;
use sosw::essentials::scheduler::Scheduler;
use sosw::notify::MemoryNotifier;
use sosw::notify::jobs::{JOB_FINISHED_SUBJECT, RECONCILE_GRACE_SECS, record_outcome};
use sosw::store::{ClosedStatus, JobCounts, JobStatus, JobStore, TableNames, TaskReport};
use sosw::task::{TaskId, TaskManager};
use sosw_integration_tests::{dynamodb_client, repo_root, sosw07_python, unique_prefix};

const REQUESTER: &str = "arn:aws:sns:us-east-1:000000000000:jobs";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_tasks_python_sosw_07_closed_reaches_finished() {
    let Some(client) = dynamodb_client().await else {
        return;
    };
    let root = repo_root();
    let Some(python) = sosw07_python(&root) else {
        return;
    };
    let endpoint = std::env::var("SOSW_DYNAMODB_ENDPOINT").expect("set when the client was built");
    let prefix = unique_prefix();
    let tables = TableNames::with_prefix(&prefix);
    create_tables(&client, &tables)
        .await
        .expect("tables created");
    let store = Arc::new(DynamoTaskStore::new(client.clone(), tables.clone()));
    let now = Utc::now().timestamp();
    let clock = Arc::new(ManualClock::at_secs(now));

    let labourers = json!({"labourers": {"w": {}}});
    let scheduler_config: SchedulerConfig = parse_config(
        "sosw_scheduler_config",
        json!({"task_config": labourers, "job_schema": {"chunkable_attrs": [["section", {}]]}}),
    )
    .expect("scheduler config");
    let scheduler = Scheduler::new(scheduler_config, store.clone())
        .with_clock(clock.clone())
        .with_default_requester(REQUESTER);
    let job = json!({"job": {"lambda_name": "w", "isolate_sections": true,
        "sections": ["s0", "s1", "s2", "s3", "s4"]}});
    let written = scheduler
        .run(&job, clock.now() + TimeDelta::seconds(900))
        .await
        .expect("scheduled");
    assert_eq!(written.total, 5);
    let job_id = written.job_id.clone();
    let ids: Vec<TaskId> = (0..5).map(|n| TaskId::for_chunk(&job_id, n)).collect();

    // Our orchestrator's claims; task 0 closed and counted by our side, as our assistant does.
    let tasks = TaskManager::new(store.clone());
    for id in &ids {
        tasks.mark_task_invoked(id, now).await.expect("claimed");
    }
    tasks
        .mark_task_completed(&ids[0], &TaskReport::default(), now)
        .await
        .expect("completed");
    let row = tasks
        .get_task_by_id(&ids[0])
        .await
        .expect("get")
        .expect("live");
    tasks
        .archive_task(&row, ClosedStatus::Completed, now)
        .await
        .expect("archived");
    let notifier = Arc::new(MemoryNotifier::default());
    let mut queue = sosw::notify::NotificationQueue::new(notifier.clone(), None);
    record_outcome(
        store.as_ref(),
        &mut queue,
        &job_id,
        JobCounts {
            completed: 1,
            ..JobCounts::default()
        },
        now,
    )
    .await
    .expect("counted");

    // Python sosw 0.7.47 closes the other four.
    let out = Command::new(&python)
        .arg(root.join("scripts/sosw07_close_tasks.py"))
        .arg(&prefix)
        .arg("w")
        .arg("--complete")
        .args(ids[1..4].iter().map(TaskId::as_str))
        .arg("--archive")
        .args(ids[1..5].iter().map(TaskId::as_str))
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "sosw 0.7.47 closing tasks: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for (n, id) in ids.iter().enumerate().skip(1) {
        let closed = tasks
            .get_closed_task_by_id(id)
            .await
            .expect("get")
            .unwrap_or_else(|| panic!("task {n} archived by Python"));
        let status = closed.extra.get("labourer_id_task_status").cloned();
        let want = if n < 4 { "w_1" } else { "w_0" };
        assert_eq!(status, Some(json!(want)), "task {n}");
    }
    let job_record = store.get_job(&job_id).await.expect("get").expect("job");
    assert_eq!(
        job_record.status,
        JobStatus::Running,
        "sosw_jobs heard of one task only"
    );
    assert_eq!(job_record.counts.completed, 1);

    let off: ScavengerConfig =
        parse_config("sosw_scavenger_config", json!({"task_config": labourers}))
            .expect("scavenger config");
    let without = Scavenger::new(
        off,
        Closer::new(store.clone(), notifier.clone())
            .with_jobs(store.clone())
            .with_clock(clock.clone()),
    );
    let scavenger_config: ScavengerConfig = parse_config(
        "sosw_scavenger_config",
        json!({"task_config": labourers, "reconcile_jobs": true}),
    )
    .expect("scavenger config");
    let scavenger = Scavenger::new(
        scavenger_config,
        Closer::new(store.clone(), notifier.clone())
            .with_jobs(store.clone())
            .with_clock(clock.clone()),
    );
    let early = scavenger.run().await;
    assert!(
        early.jobs_reconciled.is_empty(),
        "within the grace period: {early:?}"
    );
    assert_eq!(early.reconcile_error, None);

    clock.advance_secs(RECONCILE_GRACE_SECS + 60);
    let off_report = without.run().await;
    assert!(
        off_report.jobs_reconciled.is_empty(),
        "reconcile_jobs is off by default: {off_report:?}"
    );
    let report = scavenger.run().await;
    assert_eq!(report.reconcile_error, None, "{report:?}");
    assert_eq!(
        report.jobs_reconciled.get(&job_id),
        Some(&JobCounts {
            completed: 3,
            failed: 0,
            dead: 1,
            cancelled: 0,
        }),
        "the four Python closed, the one we counted not again: {report:?}"
    );
    assert_eq!(report.jobs_finished, vec![job_id.clone()]);
    let job_record = store.get_job(&job_id).await.expect("get").expect("job");
    assert_eq!(job_record.status, JobStatus::FinishedWithFailures);
    assert_eq!(
        (job_record.counts.completed, job_record.counts.dead),
        (4, 1)
    );
    let finished: Vec<_> = notifier
        .sent()
        .into_iter()
        .filter(|n| n.subject == JOB_FINISHED_SUBJECT)
        .collect();
    assert_eq!(finished.len(), 1, "{finished:?}");
    assert_eq!(finished[0].recipient, REQUESTER);

    let again = scavenger.run().await;
    assert!(again.jobs_reconciled.is_empty(), "idempotent: {again:?}");
    let job_record = store.get_job(&job_id).await.expect("get").expect("job");
    assert_eq!(
        (job_record.counts.completed, job_record.counts.dead),
        (4, 1)
    );
    delete_tables(&client, &tables)
        .await
        .expect("tables deleted");
}
