//! Completing and closing in one move on the lean layout (`LeanOptions::close_on_completion`), on
//! DynamoDB Local: the completed task lands in its closed item with the report, the claim is gone, a
//! failure report racing the close is never lost, and with the option off the call only completes.
//! Skipped without `SOSW_DYNAMODB_ENDPOINT` (failing instead when `SOSW_REQUIRE_EMULATORS=1`).

use std::collections::BTreeMap;

use serde_json::json;
use sosw::aws::dynamodb::lean::{
    LeanOptions, LeanTaskStore, create_lean_tables_without_stream, delete_lean_tables,
};
use sosw::store::{
    ClaimOutcome, ClosedStatus, EnqueueMode, MoveOutcome, ReportOutcome, TaskArchive, TaskClaims,
    TaskLookup, TaskQueue, TaskReport, TaskReports,
};
use sosw::task::Task;
use sosw_integration_tests::{dynamodb_client, put_raw, unique_prefix};

pub(super) const NOW: i64 = 1_800_000_000;

pub(super) fn report(key: &str) -> TaskReport {
    TaskReport {
        stats: BTreeMap::from([(key.to_owned(), json!(1))]),
        result: BTreeMap::new(),
        invocation: None,
    }
}

/// A lean store (`close` on or off) with `count` claimed tasks, or `None` to skip.
pub(super) async fn claimed(
    close: bool,
    count: usize,
) -> Option<(LeanTaskStore, LeanOptions, Vec<Task>)> {
    let client = dynamodb_client().await?;
    let options = LeanOptions {
        close_on_completion: close,
        ..LeanOptions::with_prefix(&unique_prefix())
    };
    create_lean_tables_without_stream(&client, &options)
        .await
        .expect("lean tables");
    let store = LeanTaskStore::new(client, options.clone()).expect("lean options");
    let tasks: Vec<Task> = (0..count)
        .map(|i| {
            Task::new(
                format!("t-{i:03}"),
                "w",
                json!({"i": i}),
                1_000 + i as i64,
                1.0,
            )
        })
        .collect();
    store
        .enqueue(&tasks, EnqueueMode::Fresh)
        .await
        .expect("enqueued");
    let head = store.next_queued("w", NOW, count).await.expect("head");
    assert_eq!(head.len(), count);
    for task in &head {
        let outcome = store.claim(&task.task_id, NOW).await.expect("claim");
        assert!(matches!(outcome, ClaimOutcome::Claimed(_)));
    }
    Some((store, options, tasks))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_closes_the_task_in_one_move() {
    let Some((store, options, tasks)) = claimed(true, 6).await else {
        return;
    };
    // One task has a failure recorded first: its count travels to the closed item.
    store
        .record_failure(&tasks[5].task_id, &report("failed_once"), NOW + 1)
        .await
        .expect("failure recorded");
    for task in &tasks {
        let (outcome, moved) = store
            .complete_and_close(&task.task_id, &report("done"), NOW + 2)
            .await
            .expect("completed");
        assert!(matches!(outcome, ReportOutcome::Recorded(_)), "{outcome:?}");
        assert_eq!(moved, Some(MoveOutcome::Moved), "closed in the same call");
        assert!(
            store.get_task(&task.task_id).await.expect("read").is_none(),
            "no live copy left"
        );
        let closed = store
            .get_closed_task(&task.task_id)
            .await
            .expect("read")
            .expect("closed");
        assert_eq!(closed.completed_at, Some(NOW + 2));
        assert_eq!(closed.closed_at, Some(NOW + 2));
        assert_eq!(closed.extra.get("stat_done"), Some(&json!(1)));
        let (again, none) = store
            .complete_and_close(&task.task_id, &report("done"), NOW + 3)
            .await
            .expect("second report");
        assert_eq!(
            (again, none),
            (ReportOutcome::NotFound, None),
            "closed already"
        );
    }
    let last = store
        .get_closed_task(&tasks[5].task_id)
        .await
        .expect("read")
        .expect("closed");
    assert_eq!(last.failed_attempts, Some(1));
    let sample = store
        .closed_sample("w", ClosedStatus::Completed, 10)
        .await
        .expect("sample");
    assert_eq!(sample.len(), tasks.len(), "closed as completed");
    delete_lean_tables(&dynamodb_client().await.expect("client"), &options)
        .await
        .expect("deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_report_racing_the_close_is_never_lost() {
    let Some((store, options, tasks)) = claimed(true, 42).await else {
        return;
    };
    // A third of the tasks: the close, then the failure; a third: the failure, then the close; a
    // third: both at once. The orders run for certain what a race only runs by chance (on a busy
    // emulator the failure's one write nearly always lands before the close's three).
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Order {
        CloseFirst,
        FailureFirst,
        Race,
    }
    let races = tasks.iter().enumerate().map(|(i, task)| {
        let store = store.clone();
        let id = task.task_id.clone();
        let order = [Order::CloseFirst, Order::FailureFirst, Order::Race][i % 3];
        async move {
            let closing = || async {
                store
                    .complete_and_close(&id, &report("done"), NOW + 2)
                    .await
                    .expect("completion")
            };
            let failing = || async {
                store
                    .record_failure(&id, &report("failed"), NOW + 2)
                    .await
                    .expect("failure")
            };
            let ((completed, moved), failed) = match order {
                Order::CloseFirst => {
                    let closed = closing().await;
                    (closed, failing().await)
                }
                Order::FailureFirst => {
                    let failed = failing().await;
                    (closing().await, failed)
                }
                Order::Race => tokio::join!(closing(), failing()),
            };
            (id, order, completed, moved, failed)
        }
    });
    let outcomes = futures::future::join_all(races).await;
    let mut closed_at_once = BTreeMap::new();
    for (id, order, completed, moved, failed) in outcomes {
        let ReportOutcome::Recorded(done) = completed else {
            panic!("{id}: the completion is recorded, not {completed:?}");
        };
        if moved.is_none() {
            // Fell back to the completion mark: the caller archives, as the worker assistant does.
            let archived = store
                .archive(&done, ClosedStatus::Completed, NOW + 2)
                .await
                .expect("archive");
            assert_eq!(archived, MoveOutcome::Moved, "{id}");
        } else {
            *closed_at_once.entry(format!("{order:?}")).or_insert(0) += 1;
        }
        if order != Order::Race {
            assert!(
                moved.is_some(),
                "{id} ({order:?}): with nothing in between the close is one move"
            );
        }
        assert!(store.get_task(&id).await.expect("read").is_none(), "{id}");
        let closed = store
            .get_closed_task(&id)
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("{id} is closed"));
        assert!(closed.completed_at.is_some(), "{id}");
        if matches!(failed, ReportOutcome::Recorded(_)) {
            assert_ne!(order, Order::CloseFirst, "{id}: a failure after the close");
            assert_eq!(
                closed.failed_attempts,
                Some(1),
                "{id}: a failure recorded before the close is in the closed item"
            );
        } else {
            assert_ne!(
                order,
                Order::FailureFirst,
                "{id}: a failure before the close"
            );
            assert_eq!(
                failed,
                ReportOutcome::NotFound,
                "{id}: the close came first"
            );
        }
    }
    println!("closed in one move, by order: {closed_at_once:?} (14 tasks each)");
    delete_lean_tables(&dynamodb_client().await.expect("client"), &options)
        .await
        .expect("deleted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_option_off_a_completion_only_completes() {
    let Some((store, options, tasks)) = claimed(false, 1).await else {
        return;
    };
    let (outcome, moved) = store
        .complete_and_close(&tasks[0].task_id, &report("done"), NOW + 2)
        .await
        .expect("completed");
    assert!(matches!(outcome, ReportOutcome::Recorded(_)));
    assert_eq!(moved, None, "left to the caller's archive");
    let live = store
        .get_task(&tasks[0].task_id)
        .await
        .expect("read")
        .expect("still live");
    assert_eq!(live.completed_at, Some(NOW + 2));
    delete_lean_tables(&dynamodb_client().await.expect("client"), &options)
        .await
        .expect("deleted");
}

/// An archive whose mover stopped after writing the closed item and before deleting the claim (a
/// delete throttled past the SDK's retries, a killed process) is finished by the next archive of the
/// task once the closed item is a minute old, instead of being refused for ever; a younger one is
/// left to its mover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_stopped_halfway_is_finished_by_the_next_one_after_a_minute() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let Some((store, options, tasks)) = claimed(false, 2).await else {
        return;
    };
    let client = dynamodb_client().await.expect("client");
    let mut done = Vec::new();
    for task in &tasks {
        let ReportOutcome::Recorded(t) = store
            .complete(&task.task_id, &report("done"), NOW + 2)
            .await
            .expect("completed")
        else {
            panic!("recorded");
        };
        done.push(t);
    }
    // The first half of each task's archive, written as the store writes it: the claim item copied
    // to the closed partition with the next move counter, closed at NOW + 2.
    let claims = client
        .scan()
        .table_name(&options.table)
        .filter_expression("begins_with(pk, :r)")
        .expression_attribute_values(":r", AttributeValue::S("r#".into()))
        .send()
        .await
        .expect("scan");
    assert_eq!(claims.count(), 2);
    for claim in claims.items() {
        let mut closed = claim.clone();
        let pk = claim["pk"].as_s().expect("pk");
        let shard = pk.trim_start_matches("r#");
        let rev: i64 = claim["lrev"].as_n().expect("lrev").parse().expect("number");
        closed.insert("pk".into(), AttributeValue::S(format!("c#w#{shard}")));
        closed.insert("lrev".into(), AttributeValue::N((rev + 1).to_string()));
        closed.insert("closed_at".into(), AttributeValue::N((NOW + 2).to_string()));
        closed.insert(
            "labourer_id_task_status".into(),
            AttributeValue::S("w_1".into()),
        );
        put_raw(&client, &options.table, closed).await;
    }
    // Ten seconds later its mover may still be at work: refused, the claim stays.
    let young = store
        .archive(&done[0], ClosedStatus::Completed, NOW + 12)
        .await
        .expect("archive");
    assert_eq!(young, MoveOutcome::Conflict);
    assert!(
        store
            .get_task(&done[0].task_id)
            .await
            .expect("read")
            .is_some()
    );
    // A minute on, the next archive finishes the move.
    for task in &done {
        let moved = store
            .archive(task, ClosedStatus::Completed, NOW + 62)
            .await
            .expect("archive");
        assert_eq!(moved, MoveOutcome::Moved, "{}", task.task_id);
        assert!(store.get_task(&task.task_id).await.expect("read").is_none());
        let closed = store
            .get_closed_task(&task.task_id)
            .await
            .expect("read")
            .expect("closed");
        assert_eq!(
            closed.closed_at,
            Some(NOW + 2),
            "the first mover's item stands"
        );
    }
    delete_lean_tables(&client, &options)
        .await
        .expect("deleted");
}

/// `closed_sample` reads the closed partitions a page at a time and keeps only the newest `limit`
/// (at most about a thousand items in memory at once): with 1,200 closed, in an order unrelated to
/// their ids and shards, the 10 newest come back, newest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_sample_of_many_keeps_the_newest_a_page_at_a_time() {
    use futures::StreamExt;
    let Some(client) = dynamodb_client().await else {
        return;
    };
    let options = LeanOptions::with_prefix(&unique_prefix());
    create_lean_tables_without_stream(&client, &options)
        .await
        .expect("lean tables");
    let store = LeanTaskStore::new(client, options.clone()).expect("lean options");
    let tasks: Vec<Task> = (0..1_200)
        .map(|i| Task::new(format!("t-{i:04}"), "w", json!({"i": i}), 1_000 + i, 1.0))
        .collect();
    store
        .enqueue(&tasks, EnqueueMode::Fresh)
        .await
        .expect("enqueue");
    // 7,919 is prime, so `i * 7919 mod 1200` closes each task at its own second.
    futures::stream::iter(tasks.iter().enumerate())
        .for_each_concurrent(16, |(i, task)| {
            let store = &store;
            async move {
                let closed_at = NOW + (i as i64 * 7_919) % 1_200;
                assert_eq!(
                    store
                        .archive(task, ClosedStatus::Cancelled, closed_at)
                        .await
                        .expect("archive"),
                    MoveOutcome::Moved
                );
            }
        })
        .await;
    let sample = store
        .closed_sample("w", ClosedStatus::Cancelled, 10)
        .await
        .expect("sample");
    let times: Vec<i64> = sample
        .iter()
        .map(|t| t.closed_at.expect("closed"))
        .collect();
    assert_eq!(
        times,
        (1_190..1_200).rev().map(|k| NOW + k).collect::<Vec<i64>>()
    );
    delete_lean_tables(store.client(), &options)
        .await
        .expect("tables deleted");
}
