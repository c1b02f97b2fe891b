//! Request shapes pinned with `aws-smithy-mocks`: the real client builds every request, only the wire is
//! replaced. These pin what carries a guarantee (the claim's condition, batch sizes, transactions); the
//! behaviour itself is tested against DynamoDB Local in the integration tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput};
use aws_sdk_dynamodb::operation::delete_item::{
    DeleteItemError, DeleteItemInput, DeleteItemOutput,
};
use aws_sdk_dynamodb::operation::put_item::{PutItemInput, PutItemOutput};
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsError, TransactWriteItemsInput, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::operation::update_item::{
    UpdateItemError, UpdateItemInput, UpdateItemOutput,
};
use aws_sdk_dynamodb::types::error::{
    ConditionalCheckFailedException, TransactionCanceledException,
};
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, ReturnValue, WriteRequest};
use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};
use serde_json::json;

use super::codec::{Item, n, s, task_to_item};
use super::{BatchRetry, DynamoTaskStore};
use sosw_core::store::{
    ClaimOutcome, ClosedStatus, EnqueueMode, MoveOutcome, ReportOutcome, TaskArchive, TaskClaims,
    TaskQueue, TaskReport, TaskReports,
};
use sosw_core::task::{Task, TaskId, greenfield};

const NOW: i64 = 1_700_000_060;

fn store(client: Client) -> DynamoTaskStore {
    DynamoTaskStore::new(client, sosw_core::store::TableNames::default()).with_batch_retry(
        BatchRetry {
            max_retries: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        },
    )
}

fn tasks(count: usize) -> Vec<Task> {
    (0..count)
        .map(|i| Task::new(format!("t{i:03}"), "w", json!({"i": i}), 2000, 1.5))
        .collect()
}

fn queued_item(id: &str) -> Item {
    task_to_item(&Task::new(id, "w", json!({}), 2000, 1.5), "sosw_tasks").expect("encodes")
}

/// Records every request a rule sees.
struct Seen<T>(Arc<Mutex<Vec<T>>>);

impl<T> Default for Seen<T> {
    fn default() -> Self {
        Seen(Arc::default())
    }
}

impl<T> Clone for Seen<T> {
    fn clone(&self) -> Self {
        Seen(Arc::clone(&self.0))
    }
}

impl<T: Clone> Seen<T> {
    fn push(&self, v: &T) {
        self.0.lock().expect("not poisoned").push(v.clone());
    }
    fn all(&self) -> Vec<T> {
        self.0.lock().expect("not poisoned").clone()
    }
}

fn batch_items(req: &BatchWriteItemInput) -> Vec<WriteRequest> {
    req.request_items()
        .and_then(|m| m.get("sosw_tasks"))
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn claim_is_one_conditional_update_returning_the_old_row() {
    let seen = Seen::<UpdateItemInput>::default();
    let rec = seen.clone();
    let rule = mock!(Client::update_item).then_compute_output(move |req| {
        rec.push(req);
        UpdateItemOutput::builder()
            .set_attributes(Some(queued_item("t1")))
            .build()
    });
    let st = store(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]));

    let outcome = st.claim(&TaskId::new("t1").expect("id"), NOW).await;

    let Ok(ClaimOutcome::Claimed(task)) = outcome else {
        panic!("expected a claim, got {outcome:?}");
    };
    assert_eq!(task.greenfield, 2000, "the pre-claim row comes back");
    let reqs = seen.all();
    assert_eq!(reqs.len(), 1, "exactly one request");
    let req = &reqs[0];
    assert_eq!(req.table_name(), Some("sosw_tasks"));
    assert_eq!(
        req.update_expression(),
        Some("SET greenfield = :g, attempts = if_not_exists(attempts, :zero) + :one")
    );
    assert_eq!(
        req.condition_expression(),
        Some(
            "attribute_exists(task_id) AND greenfield < :now AND attribute_not_exists(completed_at)"
        )
    );
    assert_eq!(req.return_values(), Some(&ReturnValue::AllOld));
    let values = req.expression_attribute_values().expect("values");
    assert_eq!(values.get(":now"), Some(&n(NOW)));
    assert_eq!(values.get(":g"), Some(&n(greenfield::invoked_at(NOW))));
    assert_eq!(values.get(":one"), Some(&n(1)));
    assert_eq!(
        req.key().and_then(|k| k.get("task_id")),
        Some(&s("t1")),
        "keyed by task_id"
    );
}

#[tokio::test]
async fn a_failed_claim_condition_is_already_claimed_not_an_error() {
    let rule = mock!(Client::update_item).then_error(|| {
        UpdateItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder()
                .message("The conditional request failed")
                .build(),
        )
    });
    let st = store(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]));
    let outcome = st
        .claim(&TaskId::new("t1").expect("id"), NOW)
        .await
        .expect("an outcome");
    assert_eq!(outcome, ClaimOutcome::AlreadyClaimed);
}

#[tokio::test]
async fn enqueue_of_60_tasks_sends_batches_of_25_25_10() {
    let seen = Seen::<BatchWriteItemInput>::default();
    let rec = seen.clone();
    let rule = mock!(Client::batch_write_item).then_compute_output(move |req| {
        rec.push(req);
        BatchWriteItemOutput::builder().build()
    });
    let st = store(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]));

    let report = st
        .enqueue(&tasks(60), EnqueueMode::Fresh)
        .await
        .expect("enqueued");

    let sizes: Vec<usize> = seen.all().iter().map(|r| batch_items(r).len()).collect();
    assert_eq!(sizes, [25, 25, 10]);
    assert_eq!(report.written, 60);
    assert_eq!(report.write_requests, 3);
    let first = &batch_items(&seen.all()[0])[0];
    let item = first
        .put_request()
        .map(|p| p.item())
        .expect("a put request");
    assert_eq!(
        item.get("payload"),
        Some(&s(r#"{"i":0}"#)),
        "payload is JSON text"
    );
    assert_eq!(item.get("attempts"), Some(&n(0)));
}

#[tokio::test]
async fn unprocessed_items_are_resent_until_written() {
    let seen = Seen::<BatchWriteItemInput>::default();
    let rec = seen.clone();
    let rule = mock!(Client::batch_write_item).then_compute_output(move |req| {
        rec.push(req);
        let items = batch_items(req);
        // The first request leaves its last 5 items unprocessed; later ones succeed.
        let unprocessed = if items.len() == 25 && rec.all().len() == 1 {
            items[20..].to_vec()
        } else {
            Vec::new()
        };
        BatchWriteItemOutput::builder()
            .unprocessed_items("sosw_tasks", unprocessed)
            .build()
    });
    let st = store(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]));

    let report = st
        .enqueue(&tasks(30), EnqueueMode::Fresh)
        .await
        .expect("enqueued");

    let reqs = seen.all();
    let sizes: Vec<usize> = reqs.iter().map(|r| batch_items(r).len()).collect();
    assert_eq!(
        sizes,
        [25, 5, 5],
        "the 5 leftovers are resent before the next batch"
    );
    assert_eq!(batch_items(&reqs[1]), batch_items(&reqs[0])[20..].to_vec());
    assert_eq!(report.write_requests, 3);
    assert_eq!(report.written, 30);
}

#[tokio::test]
async fn items_left_unprocessed_past_the_bound_are_a_retryable_error() {
    let seen = Seen::<BatchWriteItemInput>::default();
    let rec = seen.clone();
    let rule = mock!(Client::batch_write_item).then_compute_output(move |req| {
        rec.push(req);
        BatchWriteItemOutput::builder()
            .unprocessed_items("sosw_tasks", batch_items(req))
            .build()
    });
    let st = store(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]));

    let err = st
        .enqueue(&tasks(3), EnqueueMode::Fresh)
        .await
        .expect_err("never processed");

    assert!(err.is_retryable(), "{err}");
    assert_eq!(seen.all().len(), 4, "the first request and 3 resends");
    assert!(err.to_string().contains("sosw_tasks"), "{err}");
}

#[tokio::test]
async fn archive_of_an_open_row_is_one_transaction_with_a_conditional_delete() {
    let seen = Seen::<TransactWriteItemsInput>::default();
    let rec = seen.clone();
    let rule = mock!(Client::transact_write_items).then_compute_output(move |req| {
        rec.push(req);
        TransactWriteItemsOutput::builder().build()
    });
    let st = store(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]));
    let task = Task::new("t1", "w", json!({"a": 1}), greenfield::invoked_at(NOW), 1.5);

    let outcome = st
        .archive(&task, ClosedStatus::Dead, NOW + 60)
        .await
        .expect("archived");

    assert_eq!(outcome, MoveOutcome::Moved);
    let reqs = seen.all();
    assert_eq!(reqs.len(), 1, "one TransactWriteItems");
    let items = reqs[0].transact_items();
    assert_eq!(items.len(), 2);
    let put = items[0].put().expect("a put first");
    assert_eq!(put.table_name(), "sosw_closed_tasks");
    assert_eq!(put.item().get("closed_at"), Some(&n(NOW + 60)));
    assert_eq!(put.item().get("labourer_id_task_status"), Some(&s("w_0")));
    assert_eq!(put.item().get("payload"), Some(&s(r#"{"a":1}"#)));
    let delete = items[1].delete().expect("a delete second");
    assert_eq!(delete.table_name(), "sosw_tasks");
    assert_eq!(delete.key().get("task_id"), Some(&s("t1")));
    let condition = resolve(
        delete.condition_expression().expect("a condition"),
        delete.expression_attribute_names(),
        delete.expression_attribute_values(),
    );
    assert_eq!(
        condition,
        format!(
            "greenfield = {} AND attribute_not_exists(completed_at)",
            task.greenfield
        )
    );
}

#[tokio::test]
async fn archive_of_a_completed_row_is_a_put_then_a_conditional_delete_without_transaction() {
    let puts = Seen::<PutItemInput>::default();
    let deletes = Seen::<DeleteItemInput>::default();
    let (put_rec, del_rec) = (puts.clone(), deletes.clone());
    let put = mock!(Client::put_item).then_compute_output(move |req| {
        put_rec.push(req);
        PutItemOutput::builder().build()
    });
    let delete = mock!(Client::delete_item).then_compute_output(move |req| {
        del_rec.push(req);
        DeleteItemOutput::builder().build()
    });
    let st = store(mock_client!(
        aws_sdk_dynamodb,
        RuleMode::MatchAny,
        [&put, &delete]
    ));
    let mut task = Task::new("t1", "w", json!({"a": 1}), greenfield::invoked_at(NOW), 1.5);
    task.completed_at = Some(NOW + 5);

    let outcome = st
        .archive(&task, ClosedStatus::Completed, NOW + 60)
        .await
        .expect("archived");

    assert_eq!(outcome, MoveOutcome::Moved);
    let puts = puts.all();
    assert_eq!(puts.len(), 1, "one PutItem");
    assert_eq!(puts[0].table_name(), Some("sosw_closed_tasks"));
    let item = puts[0].item().expect("an item");
    assert_eq!(item.get("closed_at"), Some(&n(NOW + 60)));
    assert_eq!(item.get("labourer_id_task_status"), Some(&s("w_1")));
    assert_eq!(
        resolve(
            puts[0].condition_expression().expect("a condition"),
            puts[0].expression_attribute_names(),
            puts[0].expression_attribute_values(),
        ),
        "attribute_not_exists(task_id)",
        "the put never overwrites a closed row"
    );
    let deletes = deletes.all();
    assert_eq!(deletes.len(), 1, "then one DeleteItem");
    assert_eq!(deletes[0].table_name(), Some("sosw_tasks"));
    assert_eq!(
        resolve(
            deletes[0].condition_expression().expect("a condition"),
            deletes[0].expression_attribute_names(),
            deletes[0].expression_attribute_values(),
        ),
        format!(
            "greenfield = {} AND completed_at = {}",
            task.greenfield,
            NOW + 5
        )
    );
}

#[tokio::test]
async fn a_refused_delete_of_a_completed_row_is_a_conflict_that_leaves_the_closed_row() {
    let deletes = Seen::<DeleteItemInput>::default();
    let del_rec = deletes.clone();
    let put = mock!(Client::put_item).then_output(|| PutItemOutput::builder().build());
    let delete = mock!(Client::delete_item).then_compute_response(move |req| {
        del_rec.push(req);
        MockResponse::Error(DeleteItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder().build(),
        ))
    });
    let st = store(mock_client!(
        aws_sdk_dynamodb,
        RuleMode::MatchAny,
        [&put, &delete]
    ));
    let mut task = Task::new("t1", "w", json!({}), greenfield::invoked_at(NOW), 1.5);
    task.completed_at = Some(NOW + 5);

    let outcome = st
        .archive(&task, ClosedStatus::Completed, NOW + 60)
        .await
        .expect("no error");

    assert_eq!(outcome, MoveOutcome::Conflict);
    let deletes = deletes.all();
    assert_eq!(
        deletes.iter().map(|d| d.table_name()).collect::<Vec<_>>(),
        [Some("sosw_tasks")],
        "only the live delete: another archiver may have finished the move on this put"
    );
}

#[tokio::test]
async fn a_cancelled_move_is_a_conflict_or_a_retryable_error() {
    let cancelled = |code: &'static str| {
        move || {
            TransactWriteItemsError::TransactionCanceledException(
                TransactionCanceledException::builder()
                    .cancellation_reasons(CancellationReason::builder().code("None").build())
                    .cancellation_reasons(CancellationReason::builder().code(code).build())
                    .build(),
            )
        }
    };
    let task = Task::new("t1", "w", json!({}), greenfield::invoked_at(NOW), 1.5);

    let rule = mock!(Client::transact_write_items).then_error(cancelled("ConditionalCheckFailed"));
    let st = store(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]));
    let outcome = st.archive(&task, ClosedStatus::Dead, NOW).await;
    assert_eq!(outcome.ok(), Some(MoveOutcome::Conflict));

    let rule = mock!(Client::transact_write_items).then_error(cancelled("TransactionConflict"));
    let st = store(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]));
    let err = st
        .archive(&task, ClosedStatus::Dead, NOW)
        .await
        .expect_err("contended");
    assert!(err.is_retryable(), "{err}");
}

#[tokio::test]
async fn report_attribute_names_are_all_escaped() {
    let seen = Seen::<UpdateItemInput>::default();
    let rec = seen.clone();
    let rule = mock!(Client::update_item).then_compute_output(move |req| {
        rec.push(req);
        let mut row = queued_item("t1");
        row.insert("completed_at".into(), n(NOW));
        UpdateItemOutput::builder()
            .set_attributes(Some(row))
            .build()
    });
    let st = store(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]));
    let report: TaskReport = serde_json::from_value(json!({
        "stats": {"a.b": 1, "size": 2},
        "result": {"status": "ok"}
    }))
    .expect("report");

    let outcome = st
        .complete(&TaskId::new("t1").expect("id"), &report, NOW)
        .await;

    assert!(
        matches!(outcome, Ok(ReportOutcome::Recorded(_))),
        "{outcome:?}"
    );
    let req = &seen.all()[0];
    let update = req.update_expression().expect("an update");
    for raw in ["stat_", "result_", "completed_at", "greenfield"] {
        assert!(!update.contains(raw), "{raw} is not escaped in {update}");
    }
    let names = req.expression_attribute_names().expect("names");
    for name in ["stat_a.b", "stat_size", "result_status", "completed_at"] {
        assert!(
            names.values().any(|v| v == name),
            "{name} missing from {names:?}"
        );
    }
    let condition = resolve(
        req.condition_expression().expect("a condition"),
        req.expression_attribute_names(),
        req.expression_attribute_values(),
    );
    assert_eq!(
        condition,
        format!(
            "attribute_exists(task_id) AND attribute_not_exists(completed_at) AND greenfield >= {NOW}"
        )
    );
    assert_eq!(
        req.return_values_on_condition_check_failure()
            .map(|r| r.as_str()),
        Some("ALL_OLD")
    );
}

#[tokio::test]
async fn counts_are_summed_over_every_page() {
    let seen = Seen::<QueryInput>::default();
    let rec = seen.clone();
    let rule = mock!(Client::query).then_compute_response(move |req| {
        rec.push(req);
        let first = req.exclusive_start_key().is_none();
        let mut out = QueryOutput::builder().count(if first { 3 } else { 2 });
        if first {
            out = out.last_evaluated_key("task_id", s("t2"));
        }
        MockResponse::Output(out.build())
    });
    let st = store(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]));

    let length = st.queue_length("w", NOW).await.expect("counted");

    assert_eq!(length, 5);
    let reqs = seen.all();
    assert_eq!(reqs.len(), 2, "both pages read");
    assert_eq!(reqs[0].index_name(), Some("sosw_tasks_greenfield"));
    assert_eq!(
        reqs[0].key_condition_expression(),
        Some("labourer_id = :lab AND greenfield < :now")
    );
    assert_eq!(reqs[0].select().map(|s| s.as_str()), Some("COUNT"));
    assert_eq!(
        reqs[1].exclusive_start_key().and_then(|k| k.get("task_id")),
        Some(&s("t2"))
    );
}

#[tokio::test]
async fn next_queued_reads_on_while_the_filter_leaves_pages_short() {
    let seen = Seen::<QueryInput>::default();
    let rec = seen.clone();
    let rule = mock!(Client::query).then_compute_output(move |req| {
        rec.push(req);
        // Page one: everything filtered out; page two: two tasks, no more pages.
        if req.exclusive_start_key().is_none() {
            QueryOutput::builder()
                .last_evaluated_key("task_id", s("x"))
                .build()
        } else {
            QueryOutput::builder()
                .items(queued_item("a"))
                .items(queued_item("b"))
                .build()
        }
    });
    let st = store(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]));

    let next = st.next_queued("w", NOW, 5).await.expect("read");

    let ids: Vec<&str> = next.iter().map(|t| t.task_id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    let reqs = seen.all();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[0].scan_index_forward(),
        Some(true),
        "lowest greenfield first"
    );
    assert_eq!(
        reqs[0].filter_expression(),
        Some("attribute_not_exists(completed_at)")
    );
    assert_eq!(reqs[0].limit(), Some(5));
}

/// An expression with its `#name` and `:value` placeholders replaced, for readable assertions.
fn resolve(
    expr: &str,
    names: Option<&std::collections::HashMap<String, String>>,
    values: Option<&std::collections::HashMap<String, AttributeValue>>,
) -> String {
    let mut out = expr.to_owned();
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in names.into_iter().flatten() {
        pairs.push((k.clone(), v.clone()));
    }
    for (k, v) in values.into_iter().flatten() {
        let text = match v {
            AttributeValue::N(x) | AttributeValue::S(x) => x.clone(),
            other => format!("{other:?}"),
        };
        pairs.push((k.clone(), text));
    }
    // Longest placeholder first, so `#n1` does not eat into `#n10`.
    pairs.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    for (k, v) in pairs {
        out = out.replace(&k, &v);
    }
    out
}
