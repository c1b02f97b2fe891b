//! Moves to and from the retry partition on the lean layout, stopped halfway, on DynamoDB Local.
//! Every move writes its destination first and deletes its source second; a mover that stops in
//! between (a delete throttled past the SDK's retries, a killed scavenger) leaves the task in two
//! places. These tests write such a first half by hand, as the store writes it, and check what the
//! next steps make of it: the task runs once, and nothing is left waiting for ever.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use sosw::aws::dynamodb::lean::delete_lean_tables;
use sosw::store::{
    ClaimOutcome, MoveOutcome, ReportOutcome, TaskClaims, TaskLookup, TaskQueue, TaskReports,
    TaskRetries,
};
use sosw::task::{Task, TaskId};
use sosw_integration_tests::{dynamodb_client, put_raw};

use super::lean_close::{NOW, claimed, report};

type Item = std::collections::HashMap<String, AttributeValue>;

/// The item at `pk`/`sk`, as DynamoDB holds it.
async fn raw(client: &Client, table: &str, pk: &str, sk: &str) -> Item {
    client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.to_owned()))
        .key("sk", AttributeValue::S(sk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item
        .unwrap_or_else(|| panic!("an item at {pk} / {sk}"))
}

fn number(item: &Item, name: &str) -> i64 {
    item[name]
        .as_n()
        .expect("a number")
        .parse()
        .expect("an integer")
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The claim partition of `task_id` (`r#<shard>`): the task's shard, which its queued and closed
/// items share.
async fn claim_pk(client: &Client, table: &str, task_id: &TaskId) -> String {
    let claims = client
        .scan()
        .table_name(table)
        .filter_expression("begins_with(pk, :r) AND sk = :id")
        .expression_attribute_values(":r", AttributeValue::S("r#".into()))
        .expression_attribute_values(":id", AttributeValue::S(task_id.to_string()))
        .send()
        .await
        .expect("scan");
    let item = claims.items().first().expect("the task's claim item");
    item["pk"].as_s().expect("pk").clone()
}

async fn live(store: &impl TaskLookup, task_id: &TaskId) -> Option<Task> {
    store.get_task(task_id).await.expect("get_task")
}

async fn waiting(store: &impl TaskLookup, task_id: &TaskId) -> Option<Task> {
    store
        .get_retry_task("w", task_id)
        .await
        .expect("get_retry_task")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A return whose scavenger stopped after writing the queued item and before deleting the waiting
/// item: the task is queued, claimed and closed from that item, and the waiting item left behind is
/// recognised as stale (a later move counter on the claim or on the closed item) and deleted,
/// never returned: before, it went back to the queue once the claim was gone and ran the task a
/// second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_return_stopped_halfway_never_runs_the_task_twice() {
    let Some((store, options, tasks)) = claimed(true, 2).await else {
        return;
    };
    let client = dynamodb_client().await.expect("client");
    let table = options.table.clone();
    for (n_task, task) in tasks.iter().enumerate() {
        let id = &task.task_id;
        let shard = claim_pk(&client, &table, id).await;
        let claim = live(&store, id).await.expect("claimed");
        assert_eq!(
            store.move_to_retry(&claim, NOW - 10).await.expect("move"),
            MoveOutcome::Moved
        );
        // The first half of a return to greenfield 1999: the waiting item copied to the task's
        // queue shard with the next move counter.
        let w = raw(&client, &table, "w#w", id.as_str()).await;
        let mut queued = w.clone();
        queued.remove("desired_launch_time");
        queued.remove("lmoved");
        queued.remove("greenfield");
        queued.insert(
            "pk".into(),
            AttributeValue::S(shard.replacen("r#", "q#w#", 1)),
        );
        queued.insert("sk".into(), AttributeValue::S(format!("e1999#{id}")));
        queued.insert("lrev".into(), n(number(&w, "lrev") + 1));
        put_raw(&client, &table, queued).await;
        let retry = waiting(&store, id).await.expect("waiting");

        // The queued item is exactly one move later: its mover may still be at work, so the
        // waiting item is left to it.
        assert_eq!(
            store.return_to_queue(&retry, 1998).await.expect("return"),
            MoveOutcome::Conflict
        );
        assert!(waiting(&store, id).await.is_some(), "left to its mover");
        assert_eq!(live(&store, id).await.expect("queued").greenfield, 1999);

        let head = store.next_queued("w", NOW + 100, 10).await.expect("head");
        assert_eq!(head.len(), 1, "queued once: {head:?}");
        assert!(matches!(
            store.claim(id, NOW + 100).await.expect("claim"),
            ClaimOutcome::Claimed(_)
        ));
        if n_task == 1 {
            // Closed before any scavenger looked at the waiting item again.
            let (outcome, moved) = store
                .complete_and_close(id, &report("done"), NOW + 110)
                .await
                .expect("complete");
            assert!(matches!(outcome, ReportOutcome::Recorded(_)), "{outcome:?}");
            assert_eq!(moved, Some(MoveOutcome::Moved), "closed");
            assert!(live(&store, id).await.is_none(), "closed");
        }
        let again = store.return_to_queue(&retry, 1997).await.expect("return");
        assert_eq!(again, MoveOutcome::Conflict, "{id}: the task moved on");
        assert!(
            waiting(&store, id).await.is_none(),
            "{id}: the stale waiting item is deleted"
        );
        assert!(
            store
                .next_queued("w", NOW + 200, 10)
                .await
                .expect("head")
                .is_empty(),
            "{id}: nothing queued again"
        );
    }
    delete_lean_tables(&client, &options)
        .await
        .expect("deleted");
}

/// A move to retry whose mover stopped after writing the waiting item and before deleting the claim:
/// once the waiting item is a minute old, the next move of the claim finishes the move (the claim
/// deleted) and the waiting item's return deletes the claim it was moved from and goes on; a younger
/// one is left to its mover. Before, the claim blocked the return and the return blocked the claim:
/// the task waited for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_to_retry_stopped_halfway_is_finished_after_a_minute() {
    let Some((store, options, tasks)) = claimed(true, 2).await else {
        return;
    };
    let client = dynamodb_client().await.expect("client");
    let table = options.table.clone();
    // The first half of a move to retry of each claim, one written 2 minutes ago, one just now.
    let mut claims = Vec::new();
    for (task, moved_at) in tasks.iter().zip([now() - 120, now()]) {
        let shard = claim_pk(&client, &table, &task.task_id).await;
        let claim = raw(&client, &table, &shard, task.task_id.as_str()).await;
        let mut w = claim.clone();
        w.insert("pk".into(), AttributeValue::S("w#w".into()));
        w.insert("lrev".into(), n(number(&claim, "lrev") + 1));
        w.insert("desired_launch_time".into(), n(NOW - 10));
        w.insert("lmoved".into(), n(moved_at));
        put_raw(&client, &table, w).await;
        claims.push(live(&store, &task.task_id).await.expect("still claimed"));
    }
    let (old, young) = (&claims[0], &claims[1]);

    // The old one: the scavenger's next move of the claim finishes the move.
    assert_eq!(
        store.move_to_retry(old, NOW + 5).await.expect("move"),
        MoveOutcome::Moved
    );
    assert!(live(&store, &old.task_id).await.is_none(), "claim deleted");
    let retry = waiting(&store, &old.task_id).await.expect("waiting");
    assert_eq!(
        retry.desired_launch_time,
        Some(NOW - 10),
        "the first mover's item stands"
    );
    assert_eq!(
        store.return_to_queue(&retry, 1999).await.expect("return"),
        MoveOutcome::Moved
    );

    // The young one: its mover may still be at work, so neither the move nor the return touches it.
    assert_eq!(
        store.move_to_retry(young, NOW + 5).await.expect("move"),
        MoveOutcome::Conflict
    );
    let retry = waiting(&store, &young.task_id).await.expect("waiting");
    assert_eq!(
        store.return_to_queue(&retry, 1998).await.expect("return"),
        MoveOutcome::Conflict
    );
    assert_eq!(live(&store, &young.task_id).await.as_ref(), Some(young));
    // A minute on (the same item, its time set back), the return deletes the claim it came from.
    client
        .update_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("w#w".into()))
        .key("sk", AttributeValue::S(young.task_id.to_string()))
        .update_expression("SET lmoved = :t")
        .expression_attribute_values(":t", n(now() - 120))
        .send()
        .await
        .expect("update");
    assert_eq!(
        store.return_to_queue(&retry, 1998).await.expect("return"),
        MoveOutcome::Moved
    );
    assert!(waiting(&store, &young.task_id).await.is_none());

    // Each task is queued once, at its return's greenfield, and nowhere else.
    let head = store.next_queued("w", NOW + 100, 10).await.expect("head");
    let mut queued: Vec<_> = head
        .iter()
        .map(|t| (t.task_id.to_string(), t.greenfield))
        .collect();
    queued.sort();
    assert_eq!(
        queued,
        vec![
            (old.task_id.to_string(), 1999),
            (young.task_id.to_string(), 1998)
        ]
    );
    for task in &claims {
        let found = live(&store, &task.task_id).await.expect("queued");
        assert!(found.greenfield < 2000, "the queued item, not the claim");
    }
    delete_lean_tables(&client, &options)
        .await
        .expect("deleted");
}
