//! A lean table's shard count is recorded with each labourer's first registration, and a process set
//! to another count is refused by name wherever it would read or write the labourer's tasks under the
//! wrong keys (enqueue, an orchestrator round, a scavenger run, a lookup by id), instead of
//! stranding them. On DynamoDB Local; skipped without `SOSW_DYNAMODB_ENDPOINT` (failing instead when
//! `SOSW_REQUIRE_EMULATORS=1`).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;
use serde_json::json;
use sosw::aws::dynamodb::lean::reshard::{ReshardSettings, reshard};
use sosw::aws::dynamodb::lean::{
    LeanOptions, LeanTaskStore, create_lean_tables_without_stream, delete_lean_tables,
};
use sosw::store::{
    ClaimOutcome, ClosedStatus, EnqueueMode, TaskArchive, TaskClaims, TaskLookup, TaskQueue,
    TaskReport, TaskReports,
};
use sosw::task::{Markers, Task, TaskId};
use sosw_integration_tests::{dynamodb_client, unique_prefix};

fn task(id: &str, labourer: &str) -> Task {
    Task::new(id, labourer, json!({"id": id}), 1_000, 1.0)
}

fn refused(result: sosw::Result<impl std::fmt::Debug>, doing: &str) -> String {
    let message = match result {
        Ok(v) => panic!("{doing} with 2 shards on a 4-shard table was allowed: {v:?}"),
        Err(e) => e.to_string(),
    };
    for part in [
        "under 4 shards",
        "set to 2",
        "SOSW_LEAN_SHARDS=4",
        "`alpha`",
    ] {
        assert!(
            message.contains(part),
            "{doing}: `{part}` not in: {message}"
        );
    }
    message
}

/// A new lean table of `shards` on DynamoDB Local; `None` without the emulator.
async fn fresh_table(shards: u32) -> Option<(aws_sdk_dynamodb::Client, LeanOptions)> {
    let client = dynamodb_client().await?;
    let options = LeanOptions::with_prefix(&unique_prefix()).shards(shards);
    create_lean_tables_without_stream(&client, &options)
        .await
        .expect("lean tables created on DynamoDB Local");
    Some((client, options))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_with_another_shard_count_is_refused_by_name_and_strands_nothing() {
    let Some((client, options)) = fresh_table(4).await else {
        return;
    };
    let four = LeanTaskStore::new(client.clone(), options.clone()).expect("options");
    let ids: Vec<String> = (0..8).map(|i| format!("alpha-{i}")).collect();
    let tasks: Vec<Task> = ids.iter().map(|id| task(id, "alpha")).collect();
    four.enqueue(&tasks, EnqueueMode::Fresh)
        .await
        .expect("enqueued under 4 shards");

    // Another process, set to 2 shards: every way into alpha's tasks is refused.
    let two = LeanTaskStore::new(client.clone(), options.clone().shards(2)).expect("options");
    let now = Utc::now().timestamp();
    refused(
        two.enqueue(&[task("alpha-new", "alpha")], EnqueueMode::Fresh)
            .await,
        "enqueue",
    );
    refused(
        two.next_queued("alpha", now, 10).await,
        "the round's queue head",
    );
    let markers = Markers::new(now, 900);
    refused(
        two.list_closable_many(&[("alpha".to_owned(), markers)], 10)
            .await,
        "the scavenger's lists",
    );
    let id = TaskId::new("alpha-3").expect("id");
    refused(two.get_closed_task(&id).await, "a lookup of a closed task");

    // Nothing was written under the wrong keys: the 4-shard process still sees exactly its 8 tasks,
    // and the refused enqueue left no task behind.
    let mut head: Vec<String> = four
        .next_queued("alpha", now, 100)
        .await
        .expect("the 4-shard process reads the queue")
        .into_iter()
        .map(|t| t.task_id.as_str().to_owned())
        .collect();
    head.sort();
    assert_eq!(head, ids, "the queue as written, nothing added or lost");

    // A second process with the recorded count is welcome.
    let again = LeanTaskStore::new(client.clone(), options.clone()).expect("options");
    again
        .enqueue(&[task("alpha-8", "alpha")], EnqueueMode::Fresh)
        .await
        .expect("a process with the recorded count enqueues");
    assert_eq!(
        again
            .queue_length("alpha", now)
            .await
            .expect("queue length"),
        9
    );

    delete_lean_tables(&client, &options)
        .await
        .expect("lean tables deleted");
}

/// Ids of `labourer`'s queued tasks as `store` reads them, sorted.
async fn queued(store: &LeanTaskStore, labourer: &str) -> Vec<String> {
    let mut ids: Vec<String> = store
        .next_queued(labourer, Utc::now().timestamp(), 10_000)
        .await
        .expect("queue read")
        .into_iter()
        .map(|t| t.task_id.as_str().to_owned())
        .collect();
    ids.sort();
    ids
}

/// The shard of `task_id` under `shards` (FNV-1a, as the store computes it; docs/layout-lean.md).
fn shard_of(task_id: &str, shards: u64) -> u64 {
    let hash = task_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    hash % shards
}

/// The items of the partition `pk` (raw, consistent).
pub(super) async fn items_of(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    pk: &str,
) -> Vec<HashMap<String, AttributeValue>> {
    client
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(pk.to_owned()))
        .consistent_read(true)
        .send()
        .await
        .expect("query")
        .items
        .unwrap_or_default()
}

/// Marks `labourer`'s two record items as a reshard from `from` to `to` shards that stopped before
/// its moves.
pub(super) async fn mark_as_stopped_reshard(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    labourer: &str,
    (from, to): (u32, u32),
) {
    for (pk, sk) in [
        ("labourers".to_owned(), labourer.to_owned()),
        (format!("k#{labourer}"), "~shards".to_owned()),
    ] {
        client
            .update_item()
            .table_name(table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk))
            .update_expression("SET shards = :zero, reshard_from = :from, reshard_to = :to")
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .expression_attribute_values(":from", AttributeValue::N(from.to_string()))
            .expression_attribute_values(":to", AttributeValue::N(to.to_string()))
            .send()
            .await
            .expect("mark");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reshard_moves_every_queued_task_to_its_new_shard_and_keeps_closed_ones_findable() {
    let Some((client, options)) = fresh_table(4).await else {
        return;
    };
    let table = options.table.clone();
    let four = LeanTaskStore::new(client.clone(), options.clone()).expect("options");
    let alpha: Vec<Task> = (0..60)
        .map(|i| task(&format!("alpha-{i:02}"), "alpha"))
        .collect();
    let beta: Vec<Task> = (0..20)
        .map(|i| task(&format!("beta-{i:02}"), "beta"))
        .collect();
    // Alpha's tasks each in an item of their own (stopped moves are simulated on them by hand
    // below), beta's in packs (the default), which the reshard moves task by task.
    let unpacked = LeanTaskStore::new(
        client.clone(),
        LeanOptions {
            pack_queued: false,
            ..options.clone()
        },
    )
    .expect("options");
    unpacked
        .enqueue(&alpha, EnqueueMode::Fresh)
        .await
        .expect("enqueued under 4 shards");
    four.enqueue(&beta, EnqueueMode::Fresh)
        .await
        .expect("enqueued under 4 shards");
    let packs = items_of(&client, &table, "q#beta#0").await.len()
        + items_of(&client, &table, "q#beta#1").await.len()
        + items_of(&client, &table, "q#beta#2").await.len()
        + items_of(&client, &table, "q#beta#3").await.len();
    assert!(packs < 20, "beta's 20 tasks are packed: {packs} items");
    // Five of alpha's tasks run and close under 4 shards; a sixth is still running.
    let now = Utc::now().timestamp();
    for i in 0..6 {
        let id = TaskId::new(format!("alpha-{i:02}")).expect("id");
        let claimed = four.claim(&id, now).await.expect("claim");
        assert!(matches!(claimed, ClaimOutcome::Claimed(_)), "{claimed:?}");
        if i < 5 {
            four.complete(&id, &TaskReport::default(), now)
                .await
                .expect("complete");
            let task = four.get_task(&id).await.expect("get").expect("claimed");
            four.archive(&task, ClosedStatus::Completed, now)
                .await
                .expect("archive");
        }
    }
    let alpha_queued = queued(&four, "alpha").await;
    let beta_queued = queued(&four, "beta").await;
    assert_eq!((alpha_queued.len(), beta_queued.len()), (54, 20));

    let eight_options = options.clone().shards(8);
    let eight = LeanTaskStore::new(client.clone(), eight_options.clone()).expect("options");
    let quick = ReshardSettings {
        settle: Duration::ZERO,
        ..ReshardSettings::default()
    };

    // A running task: refused, nothing marked.
    let err = reshard(&eight, quick).await.expect_err("a task is running");
    assert!(
        err.to_string().contains("1 tasks of the lean table"),
        "{err}"
    );
    assert_eq!(
        queued(&four, "alpha").await,
        alpha_queued,
        "nothing marked or moved"
    );

    // A dry run counts: about half of the 74 queued tasks change shard from 4 to 8.
    let dry = reshard(
        &eight,
        ReshardSettings {
            dry_run: true,
            ..quick
        },
    )
    .await
    .expect("dry run");
    assert_eq!(
        (dry.queued_found, dry.running, dry.queued_moved),
        (74, 1, 0)
    );
    assert!(
        (20..=54).contains(&dry.queued_to_move),
        "about half move: {dry:?}"
    );
    assert_eq!(
        queued(&four, "alpha").await,
        alpha_queued,
        "dry run wrote nothing"
    );

    // The running task finishes; a stop between the two writes of a move is simulated by copying
    // one queued item to its new shard by hand.
    let running = TaskId::new("alpha-05").expect("id");
    four.complete(&running, &TaskReport::default(), now)
        .await
        .expect("complete");
    let task5 = four
        .get_task(&running)
        .await
        .expect("get")
        .expect("claimed");
    four.archive(&task5, ClosedStatus::Completed, now)
        .await
        .expect("archive");
    let mut copy = items_of(&client, &table, "q#alpha#0")
        .await
        .into_iter()
        .next()
        .expect("a queued item in shard 0");
    // Under 8 shards a task of shard 0 goes to 0 or 4: the copy is in one of its two places.
    copy.insert("pk".into(), AttributeValue::S("q#alpha#4".into()));
    client
        .put_item()
        .table_name(&table)
        .set_item(Some(copy))
        .send()
        .await
        .expect("copy");
    // And a task whose later state is at its new place already (a stopped move of it): the
    // reshard's copy of the older item is refused there, and the older item only deleted.
    let shard_one = items_of(&client, &table, "q#alpha#1").await;
    let mut later = shard_one
        .into_iter()
        .find(|item| {
            let sk = item["sk"].as_s().expect("sk");
            let id = sk.split_once('#').expect("order#id").1;
            shard_of(id, 8) == 5
        })
        .expect("a task of shard 1 that goes to shard 5");
    let rev: i64 = later["lrev"].as_n().expect("lrev").parse().expect("number");
    later.insert("pk".into(), AttributeValue::S("q#alpha#5".into()));
    later.insert("lrev".into(), AttributeValue::N((rev + 1).to_string()));
    client
        .put_item()
        .table_name(&table)
        .set_item(Some(later))
        .send()
        .await
        .expect("later state");
    mark_as_stopped_reshard(&client, &table, "alpha", (4, 8)).await;
    // (New processes: a round reuses the registry it read for 2 seconds, which is why a reshard
    // waits before it moves anything.)
    for count in [4, 8] {
        let store =
            LeanTaskStore::new(client.clone(), options.clone().shards(count)).expect("options");
        let err = store
            .next_queued("alpha", now, 10)
            .await
            .expect_err("refused while resharding")
            .to_string();
        assert!(err.contains("being resharded from 4 to 8"), "{err}");
    }

    let report = reshard(&eight, quick).await.expect("reshard");
    assert_eq!(report.from, vec![4]);
    assert_eq!(report.to, 8);
    assert_eq!(
        report.queued_found, 76,
        "74 queued tasks and the two copies"
    );
    assert_eq!(report.queued_moved, report.queued_to_move);
    assert_eq!(
        report.passes, 2,
        "the second pass finds nothing left: {report:?}"
    );
    assert_eq!(report.running, 0);

    // Now the old count is refused and the new one reads exactly the queue as it was.
    let err = LeanTaskStore::new(client.clone(), options.clone())
        .expect("options")
        .next_queued("alpha", now, 10)
        .await
        .expect_err("the old count is refused")
        .to_string();
    assert!(
        err.contains("under 8 shards") && err.contains("set to 4"),
        "{err}"
    );
    assert_eq!(
        queued(&eight, "alpha").await,
        alpha_queued,
        "no task lost or doubled"
    );
    assert_eq!(queued(&eight, "beta").await, beta_queued);
    let mut in_new_shards = 0;
    for shard in 4..8 {
        in_new_shards += items_of(&client, &table, &format!("q#alpha#{shard}"))
            .await
            .len();
    }
    assert!(
        in_new_shards > 0,
        "some queued items live in shards 4 to 7 now"
    );
    // Closed items stay where they were written and are still found by id.
    for i in 0..6 {
        let id = TaskId::new(format!("alpha-{i:02}")).expect("id");
        let closed = eight
            .get_closed_task(&id)
            .await
            .expect("lookup")
            .expect("found under the earlier count");
        assert_eq!(closed.task_id, id);
    }
    // The new count runs a task end to end, and a second reshard has nothing to do.
    let id = TaskId::new("beta-07").expect("id");
    let claimed = eight.claim(&id, now).await.expect("claim");
    assert!(matches!(claimed, ClaimOutcome::Claimed(_)), "{claimed:?}");
    eight
        .complete(&id, &TaskReport::default(), now)
        .await
        .expect("complete");
    let again = reshard(&eight, quick).await.expect("again");
    assert_eq!(again.passes, 0, "{again:?}");

    delete_lean_tables(&client, &options)
        .await
        .expect("lean tables deleted");
}
