//! # sosw-core: the domain of sosw, over ports
//!
//! Everything sosw decides, with no AWS SDK, no SQLite and no Lambda runtime: adapters live in
//! `sosw-aws` and `sosw-embedded`, the Lambda loop in `sosw-lambda`, and users depend on the `sosw`
//! facade. The compiler keeps that direction: this crate cannot name an adapter.
//!
//! * [`task`]: tasks, labourers, the greenfield state encoding and a task's fate ([`task::retry`]).
//! * [`job`]: job payloads, chunking into tasks and date periods.
//! * [`config`]: typed configuration with sosw 0.7's layering.
//! * [`ports`]: every port trait in one index (stores, invoker, metrics, config, blobs, notifier, clock).
//! * [`ecology`]: labourer health and how many tasks each may run now.
//! * [`essentials`]: the scheduler, orchestrator, worker assistant, scavenger and redrive logic.
//! * [`worker`]: the `Worker` trait for labourers and its reporting; [`processor`]: what every sosw
//!   function shares (config, stats).
//! * [`notify`]: alerts and job messages; [`siblings`]: continuations of a function before its deadline.
#![forbid(unsafe_code)]

pub mod blob;
pub mod clock;
pub mod config;
pub mod ecology;
pub mod error;
pub mod essentials;
pub mod invoke;
pub mod job;
pub mod notify;
pub mod ports;
pub mod processor;
pub mod query;
pub mod siblings;
pub mod store;
pub mod task;
pub mod worker;

pub use error::{Error, Result};
