//! The stores and config sources against what they run on: `DynamoTaskStore`, `LeanTaskStore` and `DynamoConfigSource`
//! on DynamoDB Local (the conformance suites and the behaviour request-shape tests cannot show), and the
//! sample config documents of `examples/configs`.
//!
//! One test binary (each links the AWS SDK): a module per former test file, so test names read
//! `stores::<file>::<test>`. DynamoDB Local tests are skipped without `SOSW_DYNAMODB_ENDPOINT` (failing
//! instead when `SOSW_REQUIRE_EMULATORS=1`).

mod stores {
    mod config_dynamodb;
    mod config_examples;
    mod config_rows_sosw07;
    mod dynamo_db_client;
    mod dynamodb_conformance;
    mod dynamodb_store;
    mod jobs_sosw07;
    mod lean_close;
    mod lean_conformance;
    mod lean_fairness;
    mod lean_job_counts;
    mod lean_retry_moves;
    mod lean_running;
    mod lean_shards;
    mod partition_model;
    mod redrive_sosw07;
}
