//! The `TaskStore` and `JobStore` conformance suites against `LeanTaskStore` (the lean layout) on
//! DynamoDB Local: every case on tables of its own, once with one shard per labourer and once with
//! several (so that merging shards is exercised). Skipped without `SOSW_DYNAMODB_ENDPOINT` (failing
//! instead when `SOSW_REQUIRE_EMULATORS=1`).

use std::sync::Arc;

use sosw::aws::dynamodb::lean::{LeanOptions, LeanTaskStore, create_lean_tables_without_stream};
use sosw_integration_tests::{dynamodb_client, unique_prefix};

/// A lean store with `shards` shards on freshly created, uniquely prefixed tables, or `None` to skip.
async fn lean_store(shards: u32) -> Option<Arc<LeanTaskStore>> {
    let client = dynamodb_client().await?;
    let options = LeanOptions::with_prefix(&unique_prefix()).shards(shards);
    create_lean_tables_without_stream(&client, &options)
        .await
        .expect("lean tables created on DynamoDB Local");
    Some(Arc::new(
        LeanTaskStore::new(client, options).expect("valid lean options"),
    ))
}

mod one_shard {
    use super::lean_store;

    sosw::task_store_conformance!(lean_store(1));
    sosw::job_store_conformance!(lean_store(1));
}

mod four_shards {
    use super::lean_store;

    sosw::task_store_conformance!(lean_store(4));
    sosw::cancel_conformance!(lean_store(4));
}
