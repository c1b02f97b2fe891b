//! `DynamoTaskStore` against DynamoDB Local: the behaviour the request-shape tests cannot show.
//!
//! Every test makes its own uniquely prefixed tables. Skipped without `SOSW_DYNAMODB_ENDPOINT` (failing
//! instead when `SOSW_REQUIRE_EMULATORS=1`).

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use sosw::aws::dynamodb::{DynamoTaskStore, create_tables, delete_tables};
use sosw::store::{
    ClaimOutcome, ClosedStatus, EnqueueMode, MoveOutcome, ReportOutcome, TableNames, TaskArchive,
    TaskClaims, TaskLookup, TaskQueue, TaskReport, TaskReports, TaskRetries,
};
use sosw::task::{Markers, Task, TaskId, greenfield};
use sosw_integration_tests::{dynamodb_client, put_raw, unique_prefix};

const NOW: i64 = 1_700_000_060;
const LAB: &str = "some_lambda";

/// A store on fresh tables, or `None` to skip.
async fn fresh_store() -> Option<(DynamoTaskStore, Client)> {
    let client = dynamodb_client().await?;
    let tables = TableNames::with_prefix(&unique_prefix());
    create_tables(&client, &tables)
        .await
        .expect("tables created");
    Some((DynamoTaskStore::new(client.clone(), tables), client))
}

async fn drop_tables(store: &DynamoTaskStore) {
    delete_tables(store.client(), store.tables())
        .await
        .expect("tables deleted");
}

fn id(s: &str) -> TaskId {
    TaskId::new(s).expect("valid id")
}

fn queued(ids: impl IntoIterator<Item = usize>) -> Vec<Task> {
    ids.into_iter()
        .map(|i| {
            Task::new(
                format!("task-{i:05}"),
                LAB,
                json!({"i": i}),
                2000 + 1000 * i as i64,
                1.5,
            )
        })
        .collect()
}

fn n(v: &str) -> AttributeValue {
    AttributeValue::N(v.into())
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_claimers_claim_each_of_1000_tasks_exactly_once() {
    let Some((store, _)) = fresh_store().await else {
        return;
    };
    let tasks = queued(0..1000);
    store
        .enqueue(&tasks, EnqueueMode::Fresh)
        .await
        .expect("enqueued");
    let ids: Vec<TaskId> = tasks.iter().map(|t| t.task_id.clone()).collect();

    // Every claimer tries every task in the same order, so they collide on each one.
    let mut claimers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (store, ids) = (store.clone(), ids.clone());
        claimers.spawn(async move {
            let mut won = Vec::new();
            for task_id in &ids {
                if let ClaimOutcome::Claimed(t) = store.claim(task_id, NOW).await.expect("claim") {
                    won.push(t);
                }
            }
            won
        });
    }
    let mut wins: HashMap<TaskId, usize> = HashMap::new();
    let mut pre_claim_attempts = HashSet::new();
    while let Some(won) = claimers.join_next().await {
        for task in won.expect("claimer finished") {
            pre_claim_attempts.insert(task.attempts);
            *wins.entry(task.task_id).or_default() += 1;
        }
    }

    let doubles = wins.values().filter(|c| **c > 1).count();
    assert_eq!(doubles, 0, "tasks claimed more than once");
    assert_eq!(wins.len(), 1000, "every task claimed");
    assert_eq!(
        pre_claim_attempts,
        HashSet::from([0]),
        "each claim returned the pre-claim row"
    );
    let sample = store
        .get_task(&ids[500])
        .await
        .expect("read")
        .expect("live");
    assert_eq!(sample.attempts, 1);
    assert_eq!(sample.greenfield, greenfield::invoked_at(NOW));
    assert_eq!(store.queue_length(LAB, NOW).await.expect("counted"), 0);
    drop_tables(&store).await;
}

#[tokio::test]
async fn a_claim_needs_a_queued_uncompleted_existing_task() {
    let Some((store, _)) = fresh_store().await else {
        return;
    };
    store
        .enqueue(&queued(0..2), EnqueueMode::Fresh)
        .await
        .expect("enqueued");
    let (first, second) = (id("task-00000"), id("task-00001"));

    assert!(matches!(
        store.claim(&first, NOW).await.expect("claim"),
        ClaimOutcome::Claimed(_)
    ));
    assert_eq!(
        store.claim(&first, NOW + 1).await.expect("claim"),
        ClaimOutcome::AlreadyClaimed,
        "invoked: greenfield is no longer below now"
    );
    assert_eq!(
        store.claim(&id("missing"), NOW).await.expect("claim"),
        ClaimOutcome::AlreadyClaimed,
        "a claim never creates a row"
    );
    assert_eq!(store.get_task(&id("missing")).await.expect("read"), None);
    // A completion reported while the task was queued takes it out of the queue.
    let done = store
        .complete(&second, &TaskReport::default(), NOW)
        .await
        .expect("complete");
    assert!(matches!(done, ReportOutcome::Recorded(_)), "{done:?}");
    assert_eq!(
        store.claim(&second, NOW + 1).await.expect("claim"),
        ClaimOutcome::AlreadyClaimed
    );
    drop_tables(&store).await;
}

#[tokio::test]
async fn python_sosw_07_rows_written_with_put_item_decode() {
    let Some((store, client)) = fresh_store().await else {
        return;
    };
    let t = store.tables().clone();
    // Exactly what Python sosw 0.7 writes: numbers as N strings (created_at with a fraction), the
    // payload as JSON text, worker stats, and a closed row with a Python-repr payload (bug B9).
    put_raw(
        &client,
        &t.tasks,
        HashMap::from([
            ("task_id".into(), s("4b6d3e2a9f0c11eeb1c80242ac120002")),
            ("labourer_id".into(), s(LAB)),
            ("created_at".into(), n("1700000000.123456")),
            ("greenfield".into(), n("2000")),
            ("attempts".into(), n("0")),
            ("payload".into(), s(r#"{"shop": "x", "pages": [1, 2]}"#)),
        ]),
    )
    .await;
    put_raw(
        &client,
        &t.closed,
        HashMap::from([
            ("task_id".into(), s("c1")),
            ("labourer_id".into(), s(LAB)),
            ("created_at".into(), n("1699999000.5")),
            ("greenfield".into(), n("1731556660")),
            ("attempts".into(), n("1")),
            ("payload".into(), s("{'shop': 'x'}")),
            ("completed_at".into(), n("1699999100")),
            ("closed_at".into(), n("1699999160")),
            ("labourer_id_task_status".into(), s(&format!("{LAB}_1"))),
            ("stat_rows".into(), n("12.5")),
        ]),
    )
    .await;
    put_raw(
        &client,
        &t.retry,
        HashMap::from([
            ("task_id".into(), s("r1")),
            ("labourer_id".into(), s(LAB)),
            ("created_at".into(), n("1699990000.25")),
            ("greenfield".into(), n("1731550000")),
            ("attempts".into(), n("1")),
            ("payload".into(), s(r#"{"a": 1}"#)),
            ("desired_launch_time".into(), n("1700000000")),
        ]),
    )
    .await;

    let next = store.next_queued(LAB, NOW, 10).await.expect("read");
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].created_at, 1_700_000_000.123456);
    assert_eq!(next[0].payload, json!({"shop": "x", "pages": [1, 2]}));
    let claimed = store.claim(&next[0].task_id, NOW).await.expect("claim");
    assert_eq!(claimed, ClaimOutcome::Claimed(next[0].clone()));

    let closed = store
        .get_closed_task(&id("c1"))
        .await
        .expect("read")
        .expect("closed row");
    assert_eq!(closed.payload, json!("{'shop': 'x'}"), "repr kept as text");
    assert_eq!(closed.closed_at, Some(1_699_999_160));
    assert_eq!(closed.extra.get("stat_rows"), Some(&json!(12.5)));
    let sample = store
        .closed_sample(LAB, ClosedStatus::Completed, 10)
        .await
        .expect("sample");
    assert_eq!(sample.len(), 1);
    assert_eq!(
        (sample[0].labourer_id.as_str(), sample[0].completed_at),
        (LAB, Some(1_699_999_100))
    );

    let due = store.due_retries(LAB, NOW, 10).await.expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].desired_launch_time, Some(1_700_000_000));
    drop_tables(&store).await;
}

#[tokio::test]
async fn an_undecodable_row_is_a_decode_error_naming_table_and_task() {
    let Some((store, client)) = fresh_store().await else {
        return;
    };
    let t = store.tables().clone();
    put_raw(
        &client,
        &t.tasks,
        HashMap::from([
            ("task_id".into(), s("bad1")),
            ("labourer_id".into(), s(LAB)),
            ("greenfield".into(), n("2000")),
            ("attempts".into(), s("many")),
        ]),
    )
    .await;

    let err = store
        .next_queued(LAB, NOW, 1)
        .await
        .expect_err("undecodable");

    assert!(matches!(err, sosw::Error::Decode { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&t.tasks) && msg.contains("bad1") && msg.contains("attempts"),
        "{msg}"
    );
    drop_tables(&store).await;
}

#[tokio::test]
async fn late_reports_never_create_orphan_rows() {
    let Some((store, _)) = fresh_store().await else {
        return;
    };
    let task = &queued(0..1)[0];
    store
        .enqueue(std::slice::from_ref(task), EnqueueMode::Fresh)
        .await
        .expect("enqueued");
    let ClaimOutcome::Claimed(read) = store.claim(&task.task_id, NOW).await.expect("claim") else {
        panic!("queued task not claimed");
    };
    let live = store
        .get_task(&read.task_id)
        .await
        .expect("read")
        .expect("live");
    assert_eq!(
        store
            .archive(&live, ClosedStatus::Dead, NOW + 2000)
            .await
            .expect("archive"),
        MoveOutcome::Moved
    );
    let report: TaskReport = serde_json::from_value(json!({"stats": {"rows": 1}})).expect("report");

    let late = store
        .complete(&task.task_id, &report, NOW + 2100)
        .await
        .expect("complete");
    let late_failure = store
        .record_failure(&task.task_id, &report, NOW + 2100)
        .await
        .expect("fail");

    assert_eq!(late, ReportOutcome::NotFound);
    assert_eq!(late_failure, ReportOutcome::NotFound);
    assert_eq!(
        store.get_task(&task.task_id).await.expect("read"),
        None,
        "no orphan row (sosw 0.7 bug B10)"
    );
    drop_tables(&store).await;
}

#[tokio::test]
async fn reports_record_stats_once_and_tell_completed_from_missing() {
    let Some((store, _)) = fresh_store().await else {
        return;
    };
    let task = &queued(0..1)[0];
    store
        .enqueue(std::slice::from_ref(task), EnqueueMode::Fresh)
        .await
        .expect("enqueued");
    store.claim(&task.task_id, NOW).await.expect("claim");
    // Names that are reserved words or contain dots must still be written as given.
    let report: TaskReport = serde_json::from_value(json!({
        "stats": {"size": 3, "a.b": "x"}, "result": {"status": {"ok": true}}
    }))
    .expect("report");

    let failed = store
        .record_failure(&task.task_id, &report, NOW + 10)
        .await
        .expect("fail");
    let done = store
        .complete(&task.task_id, &report, NOW + 20)
        .await
        .expect("complete");
    let again = store
        .complete(&task.task_id, &report, NOW + 30)
        .await
        .expect("complete again");

    let ReportOutcome::Recorded(failed) = failed else {
        panic!("failure not recorded: {failed:?}");
    };
    assert_eq!(failed.failed_attempts, Some(1));
    let ReportOutcome::Recorded(done) = done else {
        panic!("completion not recorded: {done:?}");
    };
    assert_eq!(done.completed_at, Some(NOW + 20));
    assert_eq!(
        done.greenfield,
        greenfield::invoked_at(NOW),
        "an invoked task keeps its greenfield"
    );
    assert_eq!(done.extra.get("stat_a.b"), Some(&json!("x")));
    assert_eq!(done.extra.get("stat_size"), Some(&json!(3)));
    assert_eq!(done.extra.get("result_status"), Some(&json!({"ok": true})));
    assert_eq!(again, ReportOutcome::AlreadyCompleted);
    assert_eq!(
        store
            .record_failure(&task.task_id, &report, NOW + 40)
            .await
            .expect("fail"),
        ReportOutcome::AlreadyCompleted
    );
    drop_tables(&store).await;
}

#[tokio::test]
async fn archive_moves_atomically_and_only_an_unchanged_row() {
    let Some((store, _)) = fresh_store().await else {
        return;
    };
    let tasks = queued(0..2);
    store
        .enqueue(&tasks, EnqueueMode::Fresh)
        .await
        .expect("enqueued");
    for t in &tasks {
        store.claim(&t.task_id, NOW).await.expect("claim");
        store
            .complete(&t.task_id, &TaskReport::default(), NOW + 5)
            .await
            .expect("complete");
    }
    let completed = store
        .list_completed(LAB, NOW + 60, 10)
        .await
        .expect("listed");
    assert_eq!(completed.len(), 2);

    // Two scavengers archive the same row: exactly one moves it.
    let (a, b) = tokio::join!(
        store.archive(&completed[0], ClosedStatus::Completed, NOW + 60),
        store.archive(&completed[0], ClosedStatus::Completed, NOW + 60),
    );
    let mut outcomes = [a.expect("archive a"), b.expect("archive b")];
    outcomes.sort_by_key(|o| *o == MoveOutcome::Conflict);
    assert_eq!(outcomes, [MoveOutcome::Moved, MoveOutcome::Conflict]);
    let closed = store
        .get_closed_task(&completed[0].task_id)
        .await
        .expect("read")
        .expect("closed");
    assert_eq!(closed.closed_at, Some(NOW + 60));
    assert_eq!(
        closed.extra.get("labourer_id_task_status"),
        Some(&json!(format!("{LAB}_1")))
    );
    assert_eq!(closed.payload, completed[0].payload, "payload stays JSON");
    assert_eq!(
        store.get_task(&completed[0].task_id).await.expect("read"),
        None
    );

    // A row read before it changed is not archived, and nothing is half-moved.
    let mut stale = completed[1].clone();
    stale.completed_at = None;
    assert_eq!(
        store
            .archive(&stale, ClosedStatus::Dead, NOW + 60)
            .await
            .expect("archive"),
        MoveOutcome::Conflict
    );
    assert!(
        store
            .get_task(&stale.task_id)
            .await
            .expect("read")
            .is_some()
    );
    assert_eq!(
        store.get_closed_task(&stale.task_id).await.expect("read"),
        None
    );
    drop_tables(&store).await;
}

#[tokio::test]
async fn expired_tasks_go_to_retry_and_back_to_the_queue_head() {
    let Some((store, _)) = fresh_store().await else {
        return;
    };
    let tasks = queued(0..3);
    store
        .enqueue(&tasks, EnqueueMode::Fresh)
        .await
        .expect("enqueued");
    store.claim(&tasks[0].task_id, NOW).await.expect("claim");
    let later = NOW + 2000;
    let markers = Markers::new(later, 1200);
    assert_eq!(store.count_running(LAB, &markers).await.expect("count"), 0);
    let expired = store.list_expired(LAB, &markers, 10).await.expect("list");
    assert_eq!(expired.len(), 1);

    assert_eq!(
        store
            .move_to_retry(&expired[0], later + 900)
            .await
            .expect("to retry"),
        MoveOutcome::Moved
    );
    assert_eq!(store.retry_length(LAB).await.expect("count"), 1);
    assert!(
        store
            .due_retries(LAB, later, 10)
            .await
            .expect("due")
            .is_empty()
    );
    let moved = sosw::store::requeue_due_retries(&store, LAB, later + 900, 10)
        .await
        .expect("requeued");

    assert_eq!(moved, 1);
    assert_eq!(store.retry_length(LAB).await.expect("count"), 0);
    let head = store.next_queued(LAB, later + 900, 1).await.expect("next");
    assert_eq!(head[0].task_id, tasks[0].task_id, "a retry goes first");
    assert_eq!(head[0].greenfield, tasks[1].greenfield - 1);
    assert_eq!(head[0].desired_launch_time, None);
    assert_eq!(head[0].attempts, 1, "attempts are kept");
    drop_tables(&store).await;
}

#[tokio::test]
async fn return_to_queue_conflicts_when_a_live_row_exists() {
    let Some((store, _)) = fresh_store().await else {
        return;
    };
    let task = &queued(0..1)[0];
    store
        .enqueue(std::slice::from_ref(task), EnqueueMode::Fresh)
        .await
        .expect("enqueued");
    store.claim(&task.task_id, NOW).await.expect("claim");
    let live = store
        .get_task(&task.task_id)
        .await
        .expect("read")
        .expect("live");
    store.move_to_retry(&live, NOW).await.expect("to retry");
    let waiting = store
        .get_retry_task(LAB, &task.task_id)
        .await
        .expect("read")
        .expect("waiting");
    // The same id enqueued again meanwhile (a resubmitted job).
    store
        .enqueue(std::slice::from_ref(task), EnqueueMode::Fresh)
        .await
        .expect("enqueued again");

    let outcome = store.return_to_queue(&waiting, 999).await.expect("move");

    assert_eq!(outcome, MoveOutcome::Conflict);
    assert!(
        store
            .get_retry_task(LAB, &task.task_id)
            .await
            .expect("read")
            .is_some(),
        "nothing half-moved"
    );
    drop_tables(&store).await;
}

#[tokio::test]
async fn skip_existing_skips_ids_in_any_of_the_three_tables() {
    let Some((store, _)) = fresh_store().await else {
        return;
    };
    let tasks = queued(0..40);
    store
        .enqueue(&tasks[..3], EnqueueMode::Fresh)
        .await
        .expect("enqueued");
    // task 1 -> closed, task 2 -> retry; task 0 stays live.
    for (t, to_retry) in [(&tasks[1], false), (&tasks[2], true)] {
        store.claim(&t.task_id, NOW).await.expect("claim");
        let live = store
            .get_task(&t.task_id)
            .await
            .expect("read")
            .expect("live");
        let moved = if to_retry {
            store.move_to_retry(&live, NOW).await
        } else {
            store.archive(&live, ClosedStatus::Dead, NOW).await
        };
        assert_eq!(moved.expect("moved"), MoveOutcome::Moved);
    }

    let report = store
        .enqueue(&tasks, EnqueueMode::SkipExisting)
        .await
        .expect("enqueued");

    assert_eq!(report.skipped_existing, 3);
    assert_eq!(report.written, 37);
    assert_eq!(report.write_requests, 2, "37 items: batches of 25 and 12");
    let live = store.queue_length(LAB, NOW).await.expect("count");
    assert_eq!(live, 38, "37 new plus the untouched task 0");
    drop_tables(&store).await;
}

#[tokio::test]
async fn queries_and_counts_read_past_the_first_page() {
    let Some((store, _)) = fresh_store().await else {
        return;
    };
    // ~10 KB per item: 160 items are over 1.5 MB, more than one 1 MB query page.
    let filler = "x".repeat(10_000);
    let tasks: Vec<Task> = queued(0..160)
        .into_iter()
        .map(|mut t| {
            t.payload = json!({"filler": filler});
            t
        })
        .collect();
    store
        .enqueue(&tasks, EnqueueMode::Fresh)
        .await
        .expect("enqueued");

    let first_page = store
        .client()
        .query()
        .table_name(&store.tables().tasks)
        .index_name(&store.tables().tasks_greenfield_index)
        .key_condition_expression("labourer_id = :lab")
        .expression_attribute_values(":lab", s(LAB))
        .select(aws_sdk_dynamodb::types::Select::Count)
        .send()
        .await
        .expect("raw count");
    assert!(
        first_page.last_evaluated_key.is_some() && first_page.count < 160,
        "the data must span pages for this test to mean anything"
    );

    let length = store.queue_length(LAB, NOW).await.expect("count");
    let all = store.next_queued(LAB, NOW, 1000).await.expect("read");
    let newest = store
        .newest_queued_greenfield(LAB, NOW)
        .await
        .expect("newest");
    let oldest = store
        .oldest_queued_greenfield(LAB, NOW)
        .await
        .expect("oldest");

    assert_eq!(length, 160, "sosw issue #43: the count covers every page");
    assert_eq!(all.len(), 160);
    let distinct: HashSet<_> = all.iter().map(|t| &t.task_id).collect();
    assert_eq!(distinct.len(), 160);
    assert!(all.windows(2).all(|w| w[0].greenfield < w[1].greenfield));
    assert_eq!(oldest, Some(tasks[0].greenfield));
    assert_eq!(newest, Some(tasks[159].greenfield));
    drop_tables(&store).await;
}

#[tokio::test]
async fn a_released_claim_puts_the_task_back_as_it_was() {
    let Some((store, _)) = fresh_store().await else {
        return;
    };
    let task = &queued(0..1)[0];
    store
        .enqueue(std::slice::from_ref(task), EnqueueMode::Fresh)
        .await
        .expect("enqueued");
    let ClaimOutcome::Claimed(before) = store.claim(&task.task_id, NOW).await.expect("claim")
    else {
        panic!("not claimed");
    };

    assert!(
        !store
            .release_claim(&before, NOW + 1)
            .await
            .expect("release"),
        "a release for another claim time changes nothing"
    );
    assert!(store.release_claim(&before, NOW).await.expect("release"));

    let row = store
        .get_task(&task.task_id)
        .await
        .expect("read")
        .expect("live");
    assert_eq!((row.greenfield, row.attempts), (task.greenfield, 0));
    drop_tables(&store).await;
}

/// A job whose body is over DynamoDB's 400 KB item limit even compressed is refused as an invalid
/// job naming the way out (`queue_bucket`), before any write: nothing is recorded.
#[tokio::test]
async fn a_job_too_large_for_an_item_is_refused_by_name_and_writes_nothing() {
    use sosw::store::{JobCounts, JobRecord, JobStatus, JobStore};
    let Some((store, _)) = fresh_store().await else {
        return;
    };
    // About 700 KB of text that DEFLATE cannot shrink below 400 KB: 64 symbols from a linear
    // congruential sequence (6 bits of information a byte).
    const SYMBOLS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let noise: String = (0..700_000)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            char::from(SYMBOLS[usize::try_from(state >> 58).expect("6 bits")])
        })
        .collect();
    let record = JobRecord {
        job_id: "huge".to_owned(),
        labourer_id: LAB.to_owned(),
        status: JobStatus::Requested,
        total: Some(1),
        enqueued: 0,
        counts: JobCounts::default(),
        created_at: NOW,
        started_at: None,
        finished_at: None,
        requesters: vec![],
        job: json!({"lambda_name": LAB, "noise": noise}),
    };
    let err = store
        .create_job(&record)
        .await
        .expect_err("over the item limit");
    let message = err.to_string();
    assert!(
        matches!(err, sosw::Error::InvalidJob { .. })
            && message.contains("over DynamoDB's 400 KB item limit")
            && message.contains("queue_bucket"),
        "{message}"
    );
    assert_eq!(
        store.get_job("huge").await.expect("reads"),
        None,
        "nothing recorded"
    );
    drop_tables(&store).await;
}
