//! # sosw: Serverless Orchestrator of Serverless Workers
//!
//! The Rust successor of the orchestration layer of Python sosw 0.7. It reads and writes the same
//! DynamoDB tables, config rows and worker payloads, so a deployment can switch one essential at a time.
//!
//! This crate is the facade: it re-exports the `sosw-*` crates under one name, chosen by features.
//!
//! | feature | brings | crate |
//! |---|---|---|
//! | (always) | [`task`], [`job`], [`config`], [`ports`], [`ecology`], [`essentials`], [`notify`], [`blob`], [`siblings`], [`clock`] | `sosw-core` |
//! | `worker` | [`worker::run`]: a `Worker` as a Lambda function; [`processor::serve`] | `sosw-lambda`, `sosw-aws` (DynamoDB, Lambda, SNS) |
//! | `dynamodb-client` | `dynamo_db`: `DynamoDbClient`, sosw 0.7's client of a worker's own tables | `sosw-aws` (no CloudWatch, EventBridge, S3) |
//! | `aws` | `aws`: every AWS adapter (CloudWatch, EventBridge, S3 too) | `sosw-aws` |
//! | `essentials` | `lambda`: the four essentials as Lambda services | `sosw-lambda` |
//! | `s3-payloads` | workers read payloads the scheduler stored in S3 | `sosw-lambda` |
//! | `local` | `embedded` (the SQLite store), `local` (`sosw local`), local invokers | `sosw-embedded` |
//! | `testkit` | `testing`: the conformance suite, faults, the queue checker | `sosw-testkit` |
//!
//! The default is `worker`, `aws`, `local` and `essentials`. A worker Lambda needs only
//! `sosw = { version = "0.1", default-features = false, features = ["worker"] }`: no SQLite, no
//! CloudWatch, EventBridge or S3 client. See `docs/architecture.md` for how the crates depend on each
//! other.
#![forbid(unsafe_code)]

pub use sosw_core::{
    Error, Result, blob, clock, config, ecology, error, essentials, job, notify, ports, query,
    siblings, store, task,
};

/// The `Invoker` port and, with `local`, the invokers of local workers.
pub mod invoke {
    pub use sosw_core::invoke::*;
    #[cfg(feature = "local")]
    pub use sosw_embedded::invoke::{command, inprocess};
}

/// What every sosw function shares ([`Processor`](processor::Processor), stats, config loading) and,
/// with `worker`, its Lambda service.
pub mod processor {
    pub use sosw_core::processor::*;
    #[cfg(feature = "worker")]
    pub use sosw_lambda::service::{ProcessorService, diagnostic, serve};
}

/// Writing a labourer: the [`Worker`](worker::Worker) trait and, with `worker`, its Lambda loop.
pub mod worker {
    pub use sosw_core::worker::*;
    #[cfg(feature = "worker")]
    pub use sosw_lambda::worker::{HandleEvent, run, run_with};
}

#[cfg(feature = "aws")]
pub use sosw_aws as aws;

#[cfg(feature = "worker")]
pub use sosw_lambda as lambda;

#[cfg(feature = "dynamodb-client")]
pub use sosw_aws::dynamo_db_client as dynamo_db;

#[cfg(feature = "local")]
pub use sosw_embedded as embedded;
#[cfg(feature = "local")]
pub use sosw_embedded::local;

#[cfg(feature = "testkit")]
pub use sosw_testkit as testing;
#[cfg(feature = "testkit")]
pub use sosw_testkit::{
    cancel_conformance, job_store_conformance, labourer_control_conformance, task_store_conformance,
};
