//! # sosw-embedded: sosw on one machine
//!
//! * [`SqliteTaskStore`]: the `TaskStore` and `JobStore` over one SQLite file (or memory), with sosw
//!   0.7's three task tables.
//! * [`local`]: every essential on one machine over that store (`sosw local run`).
//! * [`invoke`]: invokers for local workers: in-process workers registered by name, and `command`
//!   labourers run as a child process per task.
//!
//! # Example: the scheduler over SQLite in memory
//!
//! ```
//! use std::sync::Arc;
//!
//! use chrono::{TimeDelta, Utc};
//! use serde_json::json;
//! use sosw_core::config::{SchedulerConfig, parse_config};
//! use sosw_embedded::SqliteTaskStore;
//! use sosw_core::essentials::scheduler::{JobOutcome, Scheduler};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> sosw_core::Result<()> {
//! let config: SchedulerConfig = parse_config(
//!     "sosw_scheduler_config",
//!     json!({
//!         "task_config": {"labourers": {"worker": {}}},
//!         "job_schema": {"chunkable_attrs": [["section", {}]]},
//!     }),
//! )?;
//! let store = Arc::new(SqliteTaskStore::in_memory()?);
//! let scheduler = Scheduler::new(config, store);
//! let job = json!({
//!     "job": {"lambda_name": "worker", "isolate_sections": true, "sections": ["a", "b", "c"]},
//!     "requester": "docs",
//! });
//! let deadline = Utc::now() + TimeDelta::minutes(15);
//! let report = scheduler.run(&job, deadline).await?;
//! assert_eq!((report.outcome, report.written), (JobOutcome::Enqueued, 3));
//! // The same job again: the same id, nothing written, the requester recorded.
//! let again = scheduler.run(&job, deadline).await?;
//! assert_eq!((again.job_id, again.outcome), (report.job_id, JobOutcome::AlreadyEnqueued));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod invoke;
pub mod local;
mod sqlite;

pub use sqlite::{LabourerCounts, SqliteTaskStore};

#[cfg(test)]
mod essentials_tests;
