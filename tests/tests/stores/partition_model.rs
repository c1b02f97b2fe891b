//! The partition model (`sosw_testkit::partition::PartitionProxy`) in front of DynamoDB Local, with
//! `DynamoTaskStore` on sosw 0.7's tables: a labourer's queue is one partition of the
//! `sosw_tasks_greenfield` index, so that partition is where the limit bites, the throttles come back
//! as DynamoDB's own error, and the store still loses nothing.
//!
//! The limits are scaled down (100 write units per second instead of 1,000) so the ceiling shows in a
//! few hundred tasks. Skipped without `SOSW_DYNAMODB_ENDPOINT` (failing instead when
//! `SOSW_REQUIRE_EMULATORS=1`).

use serde_json::json;
use sosw::aws::dynamodb::{DynamoTaskStore, create_tables, delete_tables};
use sosw::store::{EnqueueMode, TableNames, TaskQueue};
use sosw::task::Task;
use sosw_integration_tests::{
    DYNAMODB_ENDPOINT_VAR, dynamodb_client_at, emulator_endpoint, unique_prefix,
};
use sosw_testkit::partition::{Direction, PartitionLimits, PartitionProxy};

const LIMITS: PartitionLimits = PartitionLimits {
    write_units_per_sec: 100.0,
    read_units_per_sec: 300.0,
};

fn tasks(labourer: &str, count: usize) -> Vec<Task> {
    (0..count)
        .map(|i| {
            Task::new(
                format!("{labourer}-{i:05}"),
                labourer,
                json!({"i": i}),
                1_000 + i as i64,
                1.0,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_labourers_queue_is_throttled_at_its_index_partition_and_nothing_is_lost() {
    let Some(endpoint) = emulator_endpoint(DYNAMODB_ENDPOINT_VAR) else {
        return;
    };
    let direct = dynamodb_client_at(&endpoint).await;
    let tables = TableNames::with_prefix(&unique_prefix());
    create_tables(&direct, &tables)
        .await
        .expect("tables created");
    let proxy = PartitionProxy::start(&endpoint, LIMITS)
        .await
        .expect("the proxy starts");
    let store = DynamoTaskStore::new(dynamodb_client_at(proxy.url()).await, tables.clone());

    // 600 tasks of one labourer: 600 index writes on one index key, six seconds' worth at 100/s.
    let hot = tasks("hot_lambda", 600);
    for chunk in hot.chunks(100) {
        store
            .enqueue(chunk, EnqueueMode::Fresh)
            .await
            .expect("enqueued despite the throttling");
    }
    assert_eq!(
        store
            .queue_length("hot_lambda", 1_000_000)
            .await
            .expect("counted"),
        600,
        "every task is queued once"
    );

    let stats = proxy.stats();
    let index_key = stats
        .iter()
        .find(|s| s.direction == Direction::Write && s.partition.index.is_some())
        .expect("the greenfield index partition was written");
    assert_eq!(
        index_key.partition.index.as_deref(),
        Some(tables.tasks_greenfield_index.as_str())
    );
    assert_eq!(index_key.partition.key, r#"{"S":"hot_lambda"}"#);
    assert!(index_key.units >= 600.0, "{index_key:?}");
    assert!(
        index_key.throttled > 0,
        "the hot index key was throttled: {index_key:?}"
    );
    // The model never served a key more than its limit in one second, plus the one-second bucket it
    // starts with.
    for s in stats.iter().filter(|s| s.direction == Direction::Write) {
        assert!(
            s.peak_units_per_sec <= 2.0 * LIMITS.write_units_per_sec,
            "{s:?}"
        );
    }
    // The table's own keys (one per task) never came near their limit.
    assert!(
        stats
            .iter()
            .filter(|s| s.partition.index.is_none())
            .all(|s| s.throttled == 0),
        "only the index key is hot"
    );
    delete_tables(&direct, &tables)
        .await
        .expect("tables deleted");
}
