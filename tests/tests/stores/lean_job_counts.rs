//! Job counters in batches on the lean layout (`LeanTaskStore::with_job_counts_from_stream`), on
//! DynamoDB Local's real stream: closed tasks are counted into their jobs by a counting pass, exactly
//! once however many passes race or repeat, a redrive counts its tasks out of `dead`, and the closers
//! write nothing to the job records. Skipped without `SOSW_DYNAMODB_ENDPOINT` (failing instead when
//! `SOSW_REQUIRE_EMULATORS=1`).

use serde_json::json;
use sosw::aws::dynamodb::lean::{
    LeanOptions, LeanTaskStore, create_lean_tables, delete_lean_tables,
};
use sosw::notify::jobs::{JobProgress, record_outcome};
use sosw::notify::{MemoryNotifier, NotificationQueue};
use sosw::store::{
    ClaimOutcome, ClosedStatus, EnqueueMode, JobCounts, JobRecord, JobStatus, JobStore,
    MoveOutcome, ReportOutcome, TaskArchive, TaskClaims, TaskLookup, TaskQueue, TaskReport,
    TaskReports,
};
use sosw::task::{Task, TaskId};
use sosw_integration_tests::{
    DYNAMODB_ENDPOINT_VAR, dynamodb_client_at, dynamodb_streams_client_at, emulator_endpoint,
    unique_prefix,
};

const NOW: i64 = 1_800_000_000;
const LABOURER: &str = "w";

fn job(job_id: &str, total: u64) -> JobRecord {
    JobRecord {
        job_id: job_id.to_owned(),
        labourer_id: LABOURER.to_owned(),
        status: JobStatus::Running,
        total: Some(total),
        enqueued: total,
        counts: JobCounts::default(),
        created_at: NOW,
        started_at: Some(NOW),
        finished_at: None,
        requesters: vec![],
        job: json!({}),
    }
}

fn tasks(job_id: &str, count: usize) -> Vec<Task> {
    (0..count)
        .map(|i| {
            let mut t = Task::new(
                format!("{job_id}-{i:04}"),
                LABOURER,
                json!({"i": i}),
                1_000 + i as i64,
                1.0,
            );
            t.job_id = Some(job_id.to_owned());
            t
        })
        .collect()
}

/// Claims `task` and closes it with `status` as the worker assistant and the scavenger do (complete
/// then archive for a completion, archive alone for a dead task), then hands the job delta to
/// `record_outcome`, which must leave it to the store.
async fn close(store: &LeanTaskStore, task: &Task, status: ClosedStatus) {
    let claimed = store.claim(&task.task_id, NOW).await.expect("claim");
    assert!(matches!(claimed, ClaimOutcome::Claimed(_)), "claimed once");
    let closing = match status {
        ClosedStatus::Completed => match store
            .complete(&task.task_id, &TaskReport::default(), NOW + 1)
            .await
            .expect("complete")
        {
            ReportOutcome::Recorded(done) => done,
            other => panic!("completion recorded, not {other:?}"),
        },
        // As the scavenger finds an expired task: the claim as it is now.
        _ => store
            .get_task(&task.task_id)
            .await
            .expect("read")
            .expect("claimed task"),
    };
    let moved = store
        .archive(&closing, status, NOW + 1)
        .await
        .expect("archive");
    assert_eq!(moved, MoveOutcome::Moved);
    let delta = match status {
        ClosedStatus::Completed => JobCounts {
            completed: 1,
            ..JobCounts::default()
        },
        _ => JobCounts {
            dead: 1,
            ..JobCounts::default()
        },
    };
    let mut queue = NotificationQueue::new(std::sync::Arc::new(MemoryNotifier::default()), None);
    let job = task.job_id.as_deref().expect("a job");
    let progress = record_outcome(store, &mut queue, job, delta, NOW + 1)
        .await
        .expect("recorded");
    assert_eq!(progress, JobProgress::CountedByStore);
}

async fn counts(store: &LeanTaskStore, job_id: &str) -> JobCounts {
    store
        .get_job(job_id)
        .await
        .expect("read")
        .expect("the job exists")
        .counts
}

fn completed_dead(completed: u64, dead: u64) -> JobCounts {
    JobCounts {
        completed,
        dead,
        ..JobCounts::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_tasks_are_counted_into_their_jobs_once_from_the_stream() {
    let Some(endpoint) = emulator_endpoint(DYNAMODB_ENDPOINT_VAR) else {
        return;
    };
    let client = dynamodb_client_at(&endpoint).await;
    let options = LeanOptions::with_prefix(&unique_prefix()).shards(4);
    create_lean_tables(&client, &options)
        .await
        .expect("lean tables with their stream");
    let store = LeanTaskStore::new(client.clone(), options.clone())
        .expect("lean options")
        .with_job_counts_from_stream(dynamodb_streams_client_at(&endpoint).await);
    assert!(store.counts_closed_tasks());

    for (id, total) in [("job-a", 40), ("job-b", 10)] {
        store
            .create_job(&job(id, total))
            .await
            .expect("job created");
        store
            .enqueue(&tasks(id, total as usize), EnqueueMode::Fresh)
            .await
            .expect("enqueued");
    }
    let a = tasks("job-a", 40);
    for task in &a[..30] {
        close(&store, task, ClosedStatus::Completed).await;
    }
    for task in &a[30..] {
        close(&store, task, ClosedStatus::Dead).await;
    }
    for task in &tasks("job-b", 10) {
        close(&store, task, ClosedStatus::Completed).await;
    }
    assert_eq!(
        counts(&store, "job-a").await,
        JobCounts::default(),
        "the closers wrote nothing to the job record"
    );

    // Two passes racing: each change is applied by exactly one of them.
    let (first, second) = tokio::join!(
        store.count_closed_tasks(NOW + 2),
        store.count_closed_tasks(NOW + 2)
    );
    let changed: Vec<String> = first
        .expect("first pass")
        .into_iter()
        .chain(second.expect("second pass"))
        .map(|r| r.job_id)
        .collect();
    assert!(changed.contains(&"job-a".to_owned()) && changed.contains(&"job-b".to_owned()));
    assert_eq!(counts(&store, "job-a").await, completed_dead(30, 10));
    assert_eq!(counts(&store, "job-b").await, completed_dead(10, 0));
    let record = store.get_job("job-b").await.expect("read").expect("job");
    assert!(record.all_tasks_closed(), "job-b shows every task closed");

    // A pass with nothing new changes nothing; nor does one that lost its checkpoints (a pass that
    // stopped before saving them): the marks on the job records keep each change counted once.
    assert!(
        store
            .count_closed_tasks(NOW + 3)
            .await
            .expect("pass")
            .is_empty()
    );
    let checkpoints = client
        .query()
        .table_name(&options.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S("counts".into()),
        )
        .send()
        .await
        .expect("checkpoints read");
    assert!(
        checkpoints.count() >= 1,
        "a checkpoint per stream shard read"
    );
    for item in checkpoints.items() {
        client
            .delete_item()
            .table_name(&options.table)
            .key("pk", item["pk"].clone())
            .key("sk", item["sk"].clone())
            .send()
            .await
            .expect("checkpoint deleted");
    }
    store.count_closed_tasks(NOW + 4).await.expect("re-read");
    assert_eq!(counts(&store, "job-a").await, completed_dead(30, 10));

    // A redrive counts its tasks out of `dead`; their second close counts them in again.
    let redriven: Vec<TaskId> = a[38..].iter().map(|t| t.task_id.clone()).collect();
    for id in &redriven {
        let dead = store
            .get_closed_task(id)
            .await
            .expect("read")
            .expect("closed");
        let moved = store.redrive(&dead, 0).await.expect("redrive");
        assert_eq!(moved, MoveOutcome::Moved);
    }
    store
        .reopen_job("job-a", redriven.len() as u64)
        .await
        .expect("reopened");
    store.count_closed_tasks(NOW + 5).await.expect("pass");
    assert_eq!(counts(&store, "job-a").await, completed_dead(30, 8));
    let record = store.get_job("job-a").await.expect("read").expect("job");
    assert_eq!(record.status, JobStatus::Running);
    for task in &a[38..] {
        close(&store, task, ClosedStatus::Completed).await;
    }
    let changed = store.count_closed_tasks(NOW + 6).await.expect("pass");
    let after = changed
        .iter()
        .find(|r| r.job_id == "job-a")
        .expect("job-a changed");
    assert_eq!(after.counts, completed_dead(32, 8));
    assert!(after.all_tasks_closed());

    delete_lean_tables(&client, &options)
        .await
        .expect("deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lean_table_without_its_stream_is_refused_by_name() {
    let Some(endpoint) = emulator_endpoint(DYNAMODB_ENDPOINT_VAR) else {
        return;
    };
    let client = dynamodb_client_at(&endpoint).await;
    let options = LeanOptions::with_prefix(&unique_prefix());
    create_lean_tables(&client, &options)
        .await
        .expect("lean tables");
    client
        .update_table()
        .table_name(&options.table)
        .stream_specification(
            aws_sdk_dynamodb::types::StreamSpecification::builder()
                .stream_enabled(false)
                .build()
                .expect("spec"),
        )
        .send()
        .await
        .expect("stream disabled");
    let store = LeanTaskStore::new(client.clone(), options.clone())
        .expect("lean options")
        .with_job_counts_from_stream(dynamodb_streams_client_at(&endpoint).await);
    let err = store
        .count_closed_tasks(NOW)
        .await
        .expect_err("no stream, no count");
    let message = err.to_string();
    assert!(
        message.contains(&options.table) && message.contains("SOSW_LEAN_JOB_COUNTS"),
        "{message}"
    );
    delete_lean_tables(&client, &options)
        .await
        .expect("deleted");
}
