//! Per-key fairness on the lean layout (docs/layout-lean.md, "Per-key fairness"), on DynamoDB Local:
//! once a labourer's path is announced (its first `queue_by_key`), its queued tasks are filed under
//! their key's partitions, and every move back to the queue (release, retry, redrive) files them
//! there too; every read of the queue (the plain walk, lookups by id, `queue_by_key`) finds them
//! wherever they are, tasks queued before the announcement included. Skipped without
//! `SOSW_DYNAMODB_ENDPOINT` (failing instead when `SOSW_REQUIRE_EMULATORS=1`).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use sosw::aws::dynamodb::lean::reshard::{ReshardSettings, reshard};
use sosw::aws::dynamodb::lean::{
    LeanOptions, LeanTaskStore, create_lean_tables_without_stream, delete_lean_tables,
};
use sosw::ecology::fair::FairnessKey;
use sosw::store::{
    ClaimOutcome, ClosedStatus, EnqueueMode, KeyedQueue, MoveOutcome, TaskArchive, TaskClaims,
    TaskLookup, TaskQueue, TaskReport, TaskReports, TaskRetries,
};
use sosw::task::{Markers, Task, TaskId};
use sosw_integration_tests::{dynamodb_client, unique_prefix};

use super::lean_shards::{items_of, mark_as_stopped_reshard};

const NOW: i64 = 1_700_000_000;
const WINDOW: u64 = 3600;
const LABOURER: &str = "fair";

async fn lean_store(shards: u32) -> Option<LeanTaskStore> {
    let client = dynamodb_client().await?;
    let options = LeanOptions::with_prefix(&unique_prefix()).shards(shards);
    create_lean_tables_without_stream(&client, &options)
        .await
        .expect("lean tables created on DynamoDB Local");
    Some(LeanTaskStore::new(client, options).expect("valid lean options"))
}

fn path(p: &str) -> FairnessKey {
    serde_json::from_value(json!(p)).expect("a valid path")
}

fn task(n: u64, tenant: Value) -> Task {
    let id = TaskId::for_chunk(LABOURER, n);
    Task::new(
        id.as_str(),
        LABOURER,
        json!({"tenant": tenant, "n": n}),
        2000 + 1000 * n as i64,
        NOW as f64 - 60.0,
    )
}

/// `(key, running, queued task numbers)` of every key.
fn summary(queue: &KeyedQueue) -> BTreeMap<String, (u64, Vec<String>)> {
    queue
        .iter()
        .map(|(k, w)| {
            let ids = w.queued.iter().map(|t| t.task_id.to_string()).collect();
            (k.clone(), (w.running, ids))
        })
        .collect()
}

fn ids(ns: &[u64]) -> Vec<String> {
    ns.iter()
        .map(|n| TaskId::for_chunk(LABOURER, *n).to_string())
        .collect()
}

/// The number of items in the partition `pk` (raw, consistent).
/// The tasks filed under `pk`: one per item of its own, each of a pack's.
async fn items_under(store: &LeanTaskStore, pk: &str) -> usize {
    items_of(store.client(), &store.options().table, pk)
        .await
        .iter()
        .map(|item| match item.get("pt") {
            Some(AttributeValue::M(entries)) => entries.len(),
            _ => 1,
        })
        .sum()
}

/// The number of items under key `key` of path `tenant` (one shard).
async fn under_key(store: &LeanTaskStore, key: &str) -> usize {
    items_under(store, &format!("q#{LABOURER}#k#tenant#{key}#0")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keyed_tasks_are_filed_by_key_and_found_through_every_move() {
    let Some(store) = lean_store(1).await else {
        return;
    };
    let tenant = path("tenant");
    let markers = Markers::new(NOW, WINDOW);
    // Queued before any announcement: the plain partition.
    store
        .enqueue(&[task(0, json!("a"))], EnqueueMode::Fresh)
        .await
        .expect("enqueue");
    let first = store
        .queue_by_key(LABOURER, &tenant, &markers, 10)
        .await
        .expect("queue by key");
    assert_eq!(
        summary(&first),
        BTreeMap::from([("a".into(), (0, ids(&[0])))]),
        "a task of the plain partition is grouped by its payload's key"
    );
    // Announced now: new tasks go under their key (an odd key hashed, a missing one the default).
    let later = [
        task(1, json!("a")),
        task(2, json!("a")),
        task(3, json!("b")),
        task(4, json!("weird # key with spaces and ünicode")),
        task(5, Value::Null),
    ];
    store
        .enqueue(&later, EnqueueMode::Fresh)
        .await
        .expect("enqueue");
    assert_eq!(items_under(&store, &format!("q#{LABOURER}#0")).await, 1);
    assert_eq!(under_key(&store, "a").await, 2);
    assert_eq!(under_key(&store, "b").await, 1);
    assert_eq!(
        under_key(&store, "").await,
        1,
        "the default key's partition"
    );
    let queue = store
        .queue_by_key(LABOURER, &tenant, &markers, 2)
        .await
        .expect("queue by key");
    assert_eq!(
        summary(&queue),
        BTreeMap::from([
            ("".into(), (0, ids(&[5]))),
            ("a".into(), (0, ids(&[0, 1]))),
            ("b".into(), (0, ids(&[3]))),
            ("weird # key with spaces and ünicode".into(), (0, ids(&[4]))),
        ]),
        "per key its head, plain and keyed partitions merged, at most 2"
    );
    // The plain walk sees every partition.
    assert_eq!(store.queue_length(LABOURER, NOW).await.expect("len"), 6);
    assert_eq!(
        store
            .oldest_queued_greenfield(LABOURER, NOW)
            .await
            .expect("head"),
        Some(2000)
    );
    assert_eq!(
        store
            .newest_queued_greenfield(LABOURER, NOW)
            .await
            .expect("tail"),
        Some(7000)
    );
    let next: Vec<String> = store
        .next_queued(LABOURER, NOW, 3)
        .await
        .expect("next")
        .iter()
        .map(|t| t.task_id.to_string())
        .collect();
    assert_eq!(next, ids(&[0, 1, 2]));
    let skipped = store
        .enqueue(&later, EnqueueMode::SkipExisting)
        .await
        .expect("enqueue again");
    assert_eq!(skipped.written, 0, "keyed tasks are found as existing");
    // A lookup by id (no payload known) finds a keyed task.
    let found = store
        .get_task(&TaskId::for_chunk(LABOURER, 3))
        .await
        .expect("get")
        .expect("a live task");
    assert_eq!(found.payload["tenant"], "b");

    // Claim and release: back under its key.
    let ClaimOutcome::Claimed(claimed) = store
        .claim(&TaskId::for_chunk(LABOURER, 1), NOW)
        .await
        .expect("claim")
    else {
        panic!("task 1 claimed");
    };
    let running = store
        .queue_by_key(LABOURER, &tenant, &markers, 10)
        .await
        .expect("queue by key");
    assert_eq!(running["a"].running, 1, "{:?}", summary(&running));
    assert_eq!(running["a"].queued.len(), 2);
    assert!(store.release_claim(&claimed, NOW).await.expect("release"));
    assert_eq!(under_key(&store, "a").await, 2);

    // Completed, then moved to retry and back: under its key again.
    let t3 = TaskId::for_chunk(LABOURER, 3);
    store.claim(&t3, NOW).await.expect("claim 3");
    let report = TaskReport::default();
    store
        .record_failure(&t3, &report, NOW + 1)
        .await
        .expect("failure");
    let failed = store.get_task(&t3).await.expect("get").expect("live");
    assert_eq!(
        store
            .move_to_retry(&failed, NOW + 10)
            .await
            .expect("to retry"),
        MoveOutcome::Moved
    );
    assert_eq!(under_key(&store, "b").await, 0);
    let waiting = store
        .get_retry_task(LABOURER, &t3)
        .await
        .expect("get")
        .expect("waiting");
    assert_eq!(
        store.return_to_queue(&waiting, 1500).await.expect("return"),
        MoveOutcome::Moved
    );
    assert_eq!(under_key(&store, "b").await, 1);

    // Dead, then redriven: under its key.
    let t2 = TaskId::for_chunk(LABOURER, 2);
    store.claim(&t2, NOW).await.expect("claim 2");
    let live = store.get_task(&t2).await.expect("get").expect("live");
    assert_eq!(
        store
            .archive(&live, ClosedStatus::Dead, NOW + 2)
            .await
            .expect("archive"),
        MoveOutcome::Moved
    );
    let dead = store
        .get_closed_task(&t2)
        .await
        .expect("get")
        .expect("closed");
    assert_eq!(
        store.redrive(&dead, 9000).await.expect("redrive"),
        MoveOutcome::Moved
    );
    assert_eq!(under_key(&store, "a").await, 2, "tasks 1 and 2");

    // A queued keyed task archived straight from the queue (a cancel) and one completed while queued.
    let t4 = store
        .get_task(&TaskId::for_chunk(LABOURER, 4))
        .await
        .expect("get")
        .expect("live");
    assert_eq!(
        store
            .archive(&t4, ClosedStatus::Cancelled, NOW + 3)
            .await
            .expect("cancel"),
        MoveOutcome::Moved
    );
    store
        .complete(&TaskId::for_chunk(LABOURER, 5), &report, NOW + 3)
        .await
        .expect("complete a queued task");
    let end = store
        .queue_by_key(LABOURER, &tenant, &markers, 10)
        .await
        .expect("queue by key");
    assert_eq!(
        summary(&end),
        BTreeMap::from([
            ("a".into(), (0, ids(&[0, 1, 2]))),
            ("b".into(), (0, ids(&[3]))),
        ]),
        "released, returned and redriven tasks back in their keys' queues; closed ones gone"
    );
    delete_lean_tables(store.client(), store.options())
        .await
        .expect("tables deleted");
}

/// Another path regroups every task by the new path (each read whole), and tasks queued after are
/// filed under the new path's keys; nothing is lost in between.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_path_regroups_the_queue_and_files_new_tasks_by_it() {
    let Some(store) = lean_store(4).await else {
        return;
    };
    let markers = Markers::new(NOW, WINDOW);
    store
        .queue_by_key(LABOURER, &path("tenant"), &markers, 10)
        .await
        .expect("announce tenant");
    let before: Vec<Task> = (0..8)
        .map(|n| task(n, json!(if n % 2 == 0 { "a" } else { "b" })))
        .collect();
    store
        .enqueue(&before, EnqueueMode::Fresh)
        .await
        .expect("enqueue");
    let by_n = store
        .queue_by_key(LABOURER, &path("n"), &markers, 10)
        .await
        .expect("read by n");
    assert_eq!(by_n.len(), 8, "one key per task: {:?}", summary(&by_n));
    store
        .enqueue(&[task(8, json!("a"))], EnqueueMode::Fresh)
        .await
        .expect("enqueue");
    let by_n = store
        .queue_by_key(LABOURER, &path("n"), &markers, 10)
        .await
        .expect("read by n");
    assert_eq!(by_n.len(), 9, "{:?}", summary(&by_n));
    let by_tenant = store
        .queue_by_key(LABOURER, &path("tenant"), &markers, 10)
        .await
        .expect("read by tenant again");
    assert_eq!(
        by_tenant
            .iter()
            .map(|(k, w)| (k.as_str(), w.queued.len()))
            .collect::<Vec<_>>(),
        [("a", 5), ("b", 4)]
    );
    assert_eq!(store.queue_length(LABOURER, NOW).await.expect("len"), 9);
    delete_lean_tables(store.client(), store.options())
        .await
        .expect("tables deleted");
}

/// A registered key whose partitions are empty drops out of the registry once its registry item is an
/// hour old; a key with queued tasks stays whatever its age.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn empty_keys_drop_out_of_the_registry_after_an_hour() {
    let Some(store) = lean_store(2).await else {
        return;
    };
    let markers = Markers::new(NOW, WINDOW);
    let tenant = path("tenant");
    store
        .queue_by_key(LABOURER, &tenant, &markers, 10)
        .await
        .expect("announce");
    store
        .enqueue(&[task(0, json!("busy"))], EnqueueMode::Fresh)
        .await
        .expect("enqueue");
    let registry = format!("k#{LABOURER}");
    let an_hour_ago = chrono::Utc::now().timestamp() - 3700;
    for (key, touched_at) in [("busy", an_hour_ago), ("gone", an_hour_ago), ("fresh", 0)] {
        let touched_at = if touched_at == 0 {
            chrono::Utc::now().timestamp()
        } else {
            touched_at
        };
        store
            .client()
            .put_item()
            .table_name(&store.options().table)
            .item("pk", AttributeValue::S(registry.clone()))
            .item("sk", AttributeValue::S(format!("tenant#{key}")))
            .item("path", AttributeValue::S("tenant".into()))
            .item("fkey", AttributeValue::S(key.into()))
            .item("touched_at", AttributeValue::N(touched_at.to_string()))
            .send()
            .await
            .expect("registry item");
    }
    // The three keys, the path announcement (`~path`) and the shard count (`~shards`), which are
    // no keys.
    assert_eq!(items_under(&store, &registry).await, 5);
    let queue = store
        .queue_by_key(LABOURER, &tenant, &markers, 10)
        .await
        .expect("queue by key");
    assert_eq!(queue.len(), 1, "{:?}", summary(&queue));
    let out = store
        .client()
        .query()
        .table_name(&store.options().table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(registry))
        .consistent_read(true)
        .send()
        .await
        .expect("query");
    let mut left: Vec<String> = out
        .items
        .unwrap_or_default()
        .iter()
        .filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).cloned())
        .collect();
    left.sort();
    assert_eq!(left, ["tenant#busy", "tenant#fresh", "~path", "~shards"]);
    delete_lean_tables(store.client(), store.options())
        .await
        .expect("tables deleted");
}

/// A reshard moves a keyed labourer's queued tasks within each key's partitions too: after it, the
/// new count reads every key's queue as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reshard_moves_tasks_within_their_keys_partitions() {
    let Some(two) = lean_store(2).await else {
        return;
    };
    let tenant = path("tenant");
    let markers = Markers::new(NOW, WINDOW);
    two.queue_by_key(LABOURER, &tenant, &markers, 10)
        .await
        .expect("announce");
    let tasks: Vec<Task> = (0..24)
        .map(|n| task(n, json!(if n % 3 == 0 { "a" } else { "b" })))
        .collect();
    two.enqueue(&tasks, EnqueueMode::Fresh)
        .await
        .expect("enqueue");
    let before = summary(
        &two.queue_by_key(LABOURER, &tenant, &markers, 100)
            .await
            .expect("queue by key"),
    );
    let four =
        LeanTaskStore::new(two.client().clone(), two.options().clone().shards(4)).expect("options");
    let report = reshard(
        &four,
        ReshardSettings {
            settle: std::time::Duration::ZERO,
            ..ReshardSettings::default()
        },
    )
    .await
    .expect("reshard");
    assert_eq!(report.queued_found, 24, "{report:?}");
    assert!(report.queued_moved > 0, "{report:?}");
    let after = summary(
        &four
            .queue_by_key(LABOURER, &tenant, &markers, 100)
            .await
            .expect("queue by key"),
    );
    assert_eq!(after, before, "every key's queue as it was");
    let mut in_new_shards = 0;
    for key in ["a", "b"] {
        for shard in 2..4 {
            in_new_shards +=
                items_under(&four, &format!("q#{LABOURER}#k#tenant#{key}#{shard}")).await;
        }
    }
    assert_eq!(in_new_shards as u64, report.queued_moved);
    delete_lean_tables(four.client(), four.options())
        .await
        .expect("tables deleted");
}

/// A round reuses the registry it read for 2 seconds, but a key this process registers (by queueing
/// a task of a key new to the registry) is in its next round at once: the rounds of an orchestrator
/// that shares its store with the enqueuer (local mode, tests) never miss such a task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_this_process_registers_is_in_its_next_round_at_once() {
    let Some(store) = lean_store(2).await else {
        return;
    };
    store
        .queue_by_key(LABOURER, &path("tenant"), &Markers::new(NOW, WINDOW), 10)
        .await
        .expect("announce");
    let empty = store.next_queued(LABOURER, NOW, 10).await.expect("round");
    assert!(empty.is_empty(), "nothing queued yet: {empty:?}");
    store
        .enqueue(&[task(0, json!("new"))], EnqueueMode::Fresh)
        .await
        .expect("enqueue");
    let next = store.next_queued(LABOURER, NOW, 10).await.expect("round");
    assert_eq!(
        next.iter()
            .map(|t| t.task_id.to_string())
            .collect::<Vec<_>>(),
        ids(&[0]),
        "the task of the key registered just now"
    );
    delete_lean_tables(store.client(), store.options())
        .await
        .expect("tables deleted");
}

/// A lean table of 4 shards read at most 40 unkeyed items a round, with 200 tasks of `hot`, then 20
/// of `small` queued before any path was recorded; `None` without the emulator.
/// The backlog's tasks from `packed_from` on are written in packs (the default), the ones before
/// each in an item of its own.
async fn hot_and_small_backlog(
    packed_from: usize,
) -> Option<(LeanTaskStore, aws_sdk_dynamodb::Client)> {
    let client = dynamodb_client().await?;
    let options = LeanOptions {
        unkeyed_read_max: 40,
        ..LeanOptions::with_prefix(&unique_prefix()).shards(4)
    };
    create_lean_tables_without_stream(&client, &options)
        .await
        .expect("lean tables created on DynamoDB Local");
    let store = LeanTaskStore::new(client.clone(), options.clone()).expect("options");
    let backlog: Vec<Task> = (0..220)
        .map(|n| task(n, json!(if n < 200 { "hot" } else { "small" })))
        .collect();
    let unpacked = LeanTaskStore::new(
        client.clone(),
        LeanOptions {
            pack_queued: false,
            ..options
        },
    )
    .expect("options");
    unpacked
        .enqueue(&backlog[..packed_from], EnqueueMode::Fresh)
        .await
        .expect("enqueue");
    store
        .enqueue(&backlog[packed_from..], EnqueueMode::Fresh)
        .await
        .expect("enqueue");
    Some((store, client))
}

/// Leaves `store`'s labourer as a refile (4 shards to 4) that stopped midway: the record items
/// marked, the key `hot` under path `tenant` registered, and one plain `hot` item copied under that
/// key (same sort key and move counter) but not deleted.
async fn stop_a_refile_after_one_copy(store: &LeanTaskStore) {
    let (client, table) = (store.client(), &store.options().table);
    mark_as_stopped_reshard(client, table, LABOURER, (4, 4)).await;
    client
        .put_item()
        .table_name(table)
        .item("pk", AttributeValue::S(format!("k#{LABOURER}")))
        .item("sk", AttributeValue::S("tenant#hot".into()))
        .item("path", AttributeValue::S("tenant".into()))
        .item("fkey", AttributeValue::S("hot".into()))
        .item(
            "touched_at",
            AttributeValue::N(chrono::Utc::now().timestamp().to_string()),
        )
        .send()
        .await
        .expect("registration");
    let mut copy = items_of(client, table, &format!("q#{LABOURER}#1"))
        .await
        .into_iter()
        .find(|i| i["payload"].as_s().is_ok_and(|p| p.contains("\"hot\"")))
        .expect("a plain `hot` item in shard 1");
    copy.insert(
        "pk".into(),
        AttributeValue::S(format!("q#{LABOURER}#k#tenant#hot#1")),
    );
    sosw_integration_tests::put_raw(client, table, copy).await;
}

/// `sosw migrate-layout --aws --reshard --refile-keys` at the recorded count: a backlog queued before
/// the labourer's path was recorded (plain partitions) and tasks filed under an earlier path move
/// under their key's partitions, while a task stays claimed (claims do not move); the next round
/// serves every key at once, and every task is still there exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refile_files_a_backlog_queued_before_the_path_under_its_keys() {
    // The first 20 each in an item of its own (a stopped refile is simulated on one of them by
    // hand), the rest in packs, which a refile moves task by task.
    let Some((store, _)) = hot_and_small_backlog(20).await else {
        return;
    };
    // 10 more under an earlier path (`region`), then the path the orchestrator reads by now.
    let region = path("region");
    store
        .queue_by_key(LABOURER, &region, &Markers::new(NOW, WINDOW), 10)
        .await
        .expect("announce region");
    let earlier: Vec<Task> = (220..230).map(|n| task(n, json!("small"))).collect();
    store
        .enqueue(&earlier, EnqueueMode::Fresh)
        .await
        .expect("enqueue");
    let first = by_tenant(&store, 10).await;
    // One task runs through the refile.
    let running = first["hot"].queued[0].task_id.clone();
    assert!(matches!(
        store.claim(&running, NOW).await.expect("claim"),
        ClaimOutcome::Claimed(_)
    ));

    let settings = ReshardSettings {
        settle: std::time::Duration::ZERO,
        refile_keys: true,
        ..ReshardSettings::default()
    };
    let dry = reshard(
        &store,
        ReshardSettings {
            dry_run: true,
            ..settings
        },
    )
    .await
    .expect("dry run");
    assert_eq!(
        (dry.queued_found, dry.queued_to_move, dry.queued_refiled),
        (229, 229, 229),
        "{dry:?}"
    );
    assert_eq!((dry.running, dry.keyed_labourers), (1, 1), "{dry:?}");
    let plain: usize = {
        let mut n = 0;
        for shard in 0..4 {
            n += items_under(&store, &format!("q#{LABOURER}#{shard}")).await;
        }
        n
    };
    assert_eq!(plain, 219, "a dry run writes nothing");

    // A refile that stopped after its mark, a key's registration and one copy (its original not
    // deleted yet): the run below finishes it.
    stop_a_refile_after_one_copy(&store).await;

    // While it runs, every process that reads the labourer's registry is refused, by name.
    let running_refile = tokio::spawn({
        let store = store.clone();
        async move {
            reshard(
                &store,
                ReshardSettings {
                    settle: std::time::Duration::from_millis(1500),
                    ..settings
                },
            )
            .await
        }
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let other =
        LeanTaskStore::new(store.client().clone(), store.options().clone()).expect("options");
    let refused = other
        .enqueue(&[task(500, json!("small"))], EnqueueMode::Fresh)
        .await
        .expect_err("an enqueue during the refile is refused")
        .to_string();
    assert!(
        refused.contains("being refiled under its fairness keys"),
        "{refused}"
    );
    let report = running_refile
        .await
        .expect("the refile's task")
        .expect("refile");
    assert_eq!(
        report.running, 1,
        "a refile at the same count runs beside a claim"
    );
    assert_eq!(
        (
            report.queued_found,
            report.queued_moved,
            report.queued_refiled
        ),
        (230, 229, 229),
        "the stopped run's copy is found too, and its original only deleted: {report:?}"
    );
    for shard in 0..4 {
        assert_eq!(
            items_under(&store, &format!("q#{LABOURER}#{shard}")).await,
            0,
            "plain shard {shard} emptied"
        );
    }
    let mut under_tenant = 0;
    for key in ["hot", "small"] {
        for shard in 0..4 {
            under_tenant +=
                items_under(&store, &format!("q#{LABOURER}#k#tenant#{key}#{shard}")).await;
        }
    }
    assert_eq!(under_tenant, 229, "every queued task under its tenant key");

    // The next round serves both keys at once, each its oldest first.
    let round = by_tenant(&store, 10).await;
    assert_eq!(round["small"].queued.len(), 10, "{:?}", summary(&round));
    assert_eq!(
        round["small"].queued[0].task_id,
        TaskId::for_chunk(LABOURER, 200)
    );
    assert_eq!(
        round["hot"].running,
        1,
        "the claim stayed: {:?}",
        summary(&round)
    );
    assert_eq!(store.queue_length(LABOURER, NOW).await.expect("len"), 229);
    let live = store
        .get_task(&running)
        .await
        .expect("get")
        .expect("still claimed");
    assert_eq!(
        store
            .archive(&live, ClosedStatus::Completed, NOW + 1)
            .await
            .expect("archive"),
        MoveOutcome::Moved,
        "the running task closes as usual"
    );
    let again = reshard(&store, settings).await.expect("second refile");
    assert_eq!(again.queued_to_move, 0, "nothing left to file: {again:?}");
    delete_lean_tables(store.client(), store.options())
        .await
        .expect("tables deleted");
}

/// One per-key round of `store` by `tenant` at [`NOW`], at most `per_key` tasks a key.
async fn by_tenant(store: &LeanTaskStore, per_key: usize) -> KeyedQueue {
    store
        .queue_by_key(
            LABOURER,
            &path("tenant"),
            &Markers::new(NOW, WINDOW),
            per_key,
        )
        .await
        .expect("queue by key")
}

/// A backlog queued before the labourer's path was recorded (plain partitions, the key only in the
/// payload) is read oldest first and at most `unkeyed_read_max` items a round (here 40 over 4
/// shards), not whole into memory every round: a key whose old tasks sit behind the bound shows up
/// once the rounds before have taken the head, and every task is claimed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backlog_queued_before_the_path_is_read_a_bounded_head_at_a_time() {
    // Unpacked: the bound counts items (a pack is one), and the case counts tasks.
    let Some((store, client)) = hot_and_small_backlog(220).await else {
        return;
    };
    let options = store.options().clone();

    let first = by_tenant(&store, 10).await;
    assert_eq!(
        summary(&first),
        BTreeMap::from([("hot".into(), (0, ids(&(0..10).collect::<Vec<_>>())))]),
        "the oldest 10 of each shard are hot: `small` is past the bound"
    );
    // The default bound (10,000) reads this backlog whole: both keys, each its oldest.
    let whole = LeanTaskStore::new(
        client,
        LeanOptions {
            unkeyed_read_max: LeanOptions::default().unkeyed_read_max,
            ..options
        },
    )
    .expect("options");
    let both = by_tenant(&whole, 10).await;
    assert_eq!(both["small"].queued.len(), 10, "{:?}", summary(&both));
    assert_eq!(
        both["small"].queued[0].task_id,
        TaskId::for_chunk(LABOURER, 200)
    );

    // Rounds that claim each key's head and close it drain the backlog, each task once.
    let mut claims: BTreeMap<String, u32> = BTreeMap::new();
    let mut small_from = None;
    for round in 0..60 {
        let queue = by_tenant(&store, 10).await;
        let heads: Vec<Task> = queue.values().flat_map(|w| w.queued.clone()).collect();
        if heads.is_empty() {
            break;
        }
        if small_from.is_none() && queue.get("small").is_some_and(|w| !w.queued.is_empty()) {
            small_from = Some(round);
        }
        for head in heads {
            let ClaimOutcome::Claimed(_) = store.claim(&head.task_id, NOW).await.expect("claim")
            else {
                panic!("{} was in a head but not claimed", head.task_id);
            };
            *claims.entry(head.task_id.to_string()).or_default() += 1;
            let live = store
                .get_task(&head.task_id)
                .await
                .expect("get")
                .expect("claimed");
            assert_eq!(
                store
                    .archive(&live, ClosedStatus::Dead, NOW + 1)
                    .await
                    .expect("archive"),
                MoveOutcome::Moved
            );
        }
    }
    assert_eq!(claims.len(), 220, "every task claimed");
    assert!(claims.values().all(|c| *c == 1), "each once: {claims:?}");
    let small_from = small_from.expect("`small` showed up");
    assert!(
        small_from > 0,
        "`small` waited behind the bound for a round at least"
    );
    assert_eq!(store.queue_length(LABOURER, NOW).await.expect("len"), 0);
    delete_lean_tables(store.client(), store.options())
        .await
        .expect("tables deleted");
}

/// The peak resident memory of this process so far (kB), from `/proc/self/status`; 0 where there
/// is none.
fn peak_resident_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// `SOSW_BACKLOG_TASKS`, else 100,000.
fn backlog_size() -> u64 {
    std::env::var("SOSW_BACKLOG_TASKS")
        .ok()
        .map(|v| v.parse().expect("SOSW_BACKLOG_TASKS is a number"))
        .unwrap_or(100_000)
}

/// A lean table of 4 shards with `tasks` tasks of 50 keys queued before any path was recorded
/// (plain partitions), queued a chunk at a time, so that the backlog itself never sits in this
/// process's memory; `None` without the emulator.
async fn deep_backlog(tasks: u64) -> Option<LeanTaskStore> {
    let client = dynamodb_client().await?;
    let options = LeanOptions::with_prefix(&unique_prefix()).shards(4);
    create_lean_tables_without_stream(&client, &options)
        .await
        .expect("lean tables created on DynamoDB Local");
    let store = LeanTaskStore::new(client, options).expect("options");
    for start in (0..tasks).step_by(5_000) {
        let chunk: Vec<Task> = (start..tasks.min(start + 5_000))
            .map(|n| task(n, json!(format!("t{}", n % 50))))
            .collect();
        store
            .enqueue(&chunk, EnqueueMode::Fresh)
            .await
            .expect("enqueue");
    }
    Some(store)
}

/// One per-key round of `store` over a backlog of `tasks` (50 keys): its time and the peak memory
/// it added, printed.
async fn measured_round(what: &str, store: &LeanTaskStore, tasks: u64) {
    let before = peak_resident_kb();
    let started = std::time::Instant::now();
    let queue = by_tenant(store, 10).await;
    let heads: usize = queue.values().map(|w| w.queued.len()).sum();
    assert_eq!(heads, 500, "50 keys, 10 each");
    println!(
        "{tasks} queued before the path, one round {what}: {:.2} s, peak memory +{} MB",
        started.elapsed().as_secs_f64(),
        (peak_resident_kb() - before) / 1024
    );
}

/// A measurement, not a check of speed: one round of `queue_by_key` over a backlog of
/// `SOSW_BACKLOG_TASKS` (default 100,000) tasks queued before the path was recorded, with the
/// default bound and then read whole (what every round did before the bound), then the queue's
/// length and a resumed enqueue batch over it, printing the time and the peak memory each added. `cargo test --workspace --all-features --test stores --
/// --ignored a_deep_backlog --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement of a large backlog (about a minute on DynamoDB Local); run by hand"]
async fn a_deep_backlog_queued_before_the_path_costs_a_round_the_bound_not_the_backlog() {
    let tasks = backlog_size();
    let Some(store) = deep_backlog(tasks).await else {
        return;
    };
    let (client, options) = (store.client().clone(), store.options().clone());
    let whole = LeanTaskStore::new(
        client,
        LeanOptions {
            unkeyed_read_max: usize::MAX,
            ..options
        },
    )
    .expect("options");
    measured_round("bounded (default)", &store, tasks).await;
    // The orchestrator's queue_length metric after each run, and a resumed scheduler batch (its
    // first half already written): counted and looked for a page at a time, not read into memory.
    let before = peak_resident_kb();
    let started = std::time::Instant::now();
    let length = store.queue_length(LABOURER, NOW).await.expect("length");
    assert_eq!(length, tasks);
    println!(
        "queue_length of {tasks}: {:.2} s, peak memory +{} MB",
        started.elapsed().as_secs_f64(),
        (peak_resident_kb() - before) / 1024
    );
    let started = std::time::Instant::now();
    let capped = store
        .queue_length_up_to(LABOURER, NOW, 10_000)
        .await
        .expect("length");
    assert_eq!(capped, tasks.min(10_000));
    println!(
        "queue_length_up_to 10,000 of {tasks}: {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let batch: Vec<Task> = (tasks - 250..tasks + 250)
        .map(|n| task(n, json!(format!("t{}", n % 50))))
        .collect();
    let before = peak_resident_kb();
    let started = std::time::Instant::now();
    let report = store
        .enqueue(&batch, EnqueueMode::SkipExisting)
        .await
        .expect("enqueue");
    assert_eq!((report.written, report.skipped_existing), (250, 250));
    println!(
        "a resumed batch of 500 (250 written before) into {tasks}: {:.2} s, peak memory +{} MB",
        started.elapsed().as_secs_f64(),
        (peak_resident_kb() - before) / 1024
    );
    // Last, as it sets the peak: a round that reads the backlog whole.
    measured_round("whole (before)", &whole, tasks).await;
    delete_lean_tables(store.client(), store.options())
        .await
        .expect("tables deleted");
}

/// A measurement, not a check of speed: `--refile-keys` (at the recorded count) of a backlog of
/// `SOSW_BACKLOG_TASKS` (default 100,000) tasks of 50 keys queued before the path was recorded,
/// printing its time and the peak memory it added, then one per-key round over the refiled queue.
/// `cargo test --workspace --all-features --test stores -- --ignored a_refile_of_a_deep_backlog
/// --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement of a large backlog (about a minute on DynamoDB Local); run by hand"]
async fn a_refile_of_a_deep_backlog_moves_it_a_page_at_a_time() {
    let tasks = backlog_size();
    let Some(store) = deep_backlog(tasks).await else {
        return;
    };
    measured_round("before the refile (bounded)", &store, tasks).await;
    let before = peak_resident_kb();
    let started = std::time::Instant::now();
    let report = reshard(
        &store,
        ReshardSettings {
            refile_keys: true,
            ..ReshardSettings::default()
        },
    )
    .await
    .expect("refile");
    assert_eq!(
        (report.queued_moved, report.queued_refiled),
        (tasks, tasks),
        "{report:?}"
    );
    println!(
        "refile of {tasks} (4 shards, 50 keys): {:.1} s (5 of them the settling wait), {} passes, \
         peak memory +{} MB",
        started.elapsed().as_secs_f64(),
        report.passes,
        (peak_resident_kb() - before) / 1024
    );
    measured_round("after the refile (by key)", &store, tasks).await;
    assert_eq!(store.queue_length(LABOURER, NOW).await.expect("len"), tasks);
    delete_lean_tables(store.client(), store.options())
        .await
        .expect("tables deleted");
}
