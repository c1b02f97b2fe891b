//! # sosw: Serverless Orchestrator of Serverless Workers
//!
//! The Rust successor of the orchestration layer of Python sosw 0.7. It reads and writes the same
//! DynamoDB tables, config rows and worker payloads, so a deployment can switch one essential at a time.
//!
//! * [`task`]: tasks, labourers and the greenfield state encoding.
//! * [`job`]: job payloads, chunking into tasks and date periods.
//! * [`config`]: typed configuration with sosw 0.7's layering.
//! * [`store`]: the `TaskStore` port, split by capability.
//! * [`blob`]: the `BlobStore` port (spool files, large payloads) and its directory adapter.
//! * [`aws`]: the DynamoDB and S3 adapters; [`embedded`]: the SQLite adapter for local mode.
//! * [`testing`] (feature `test-util`): the conformance suite every store passes.
//! * [`worker`]: the `Worker` trait for labourers and its reporting; [`processor`]: what every sosw
//!   Lambda shares (config, stats, diagnostics).
//! * [`local`]: every essential on one machine over SQLite (`sosw local run`).
//! * [`essentials`]: the scheduler, orchestrator, worker assistant and scavenger; [`notify`]: alerts and job messages;
//!   [`siblings`]: continuations of a function before its deadline.
#![forbid(unsafe_code)]

pub mod aws;
pub mod blob;
pub mod clock;
pub mod config;
pub mod ecology;
pub mod embedded;
pub mod error;
pub mod essentials;
pub mod invoke;
pub mod job;
pub mod local;
pub mod notify;
pub mod processor;
pub mod siblings;
pub mod store;
pub mod task;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod worker;

pub use error::{Error, Result};
