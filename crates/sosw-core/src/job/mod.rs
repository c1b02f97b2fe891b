//! Scheduler jobs: parsing the event, chunking the job into task payloads, and date periods.
//!
//! Pure logic, no I/O: the scheduler essential reads the event, picks the [`JobSchema`] (the configured one,
//! or the variant named by [`Job::schema_name`]), chunks with today's date and queues the tasks.
//!
//! ```
//! use chrono::NaiveDate;
//! use serde_json::json;
//! use sosw_core::job::{Chunker, Job, JobSchema, PeriodRegistry};
//!
//! let job = Job::from_event(&json!({
//!     "lambda_name": "arn:aws:lambda:us-west-2:000000000000:function:worker",
//!     "period": "last_2_days",
//!     "isolate_days": true,
//!     "isolate_sections": true,
//!     "sections": ["a", "b"],
//! }))?;
//! let schema = JobSchema::new(["section", "store"])?;
//! let periods = PeriodRegistry::default();
//! let today = NaiveDate::from_ymd_opt(2026, 11, 25).expect("a valid date");
//! let tasks = Chunker::new(&schema, &periods).chunk(&job, today)?;
//! assert_eq!(tasks.len(), 4);
//! assert_eq!(
//!     serde_json::Value::Object(tasks[1].clone()),
//!     json!({
//!         "labourer_id": "worker",
//!         "date_list": ["2026-11-23"],
//!         "isolate_sections": true,
//!         "sections": ["b"],
//!     })
//! );
//! # Ok::<(), sosw_core::Error>(())
//! ```

mod chunking;
mod payload;
mod period;
#[cfg(test)]
mod properties;
mod schema;

pub(crate) use chunking::truthy;
pub use chunking::{Chunker, DEFAULT_MAX_OUTPUT_BYTES, DEFAULT_MAX_TASKS, MAX_BATCH, TaskPayload};
pub(crate) use payload::object_or_json_string;
pub use payload::{DERIVED_JOB_ID_HEX_LEN, Job, JobIdOrigin, MAX_JOB_ID_LEN, derive_job_id};
pub use period::{MAX_PERIOD_DAYS, PeriodFn, PeriodRegistry};
pub use schema::{JobSchema, MAX_CHUNKABLE_ATTRS};
