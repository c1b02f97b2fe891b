//! Every port of sosw in one index: the traits the domain talks to, and where their adapters live.
//!
//! | Port | What it does | AWS adapter (`sosw-aws`) | Embedded adapter (`sosw-embedded`, or here) |
//! |---|---|---|---|
//! | [`TaskStore`] ([`TaskQueue`], [`TaskLookup`], [`TaskClaims`], [`TaskReports`], [`TaskArchive`], [`TaskRetries`], [`TaskCancel`]) | the task queue, claims, reports, archive, retries and cancels | `DynamoTaskStore` (sosw 0.7 tables) | `SqliteTaskStore` |
//! | [`JobStore`] | job records: totals, progress, status, requesters | `DynamoTaskStore` | `SqliteTaskStore` |
//! | [`LabourerControl`] | labourers paused by `sosw pause` | `DynamoConfigSource` (one item of the `config` table) | `SqliteTaskStore` |
//! | [`Invoker`] | send a task to its worker | `LambdaInvoker` (`Invoke`, `Event`) | `InProcessInvoker`, `CommandInvoker` |
//! | [`WorkerTimeouts`] | a worker function's real timeout | `FunctionTimeouts` (`GetFunctionConfiguration`) | none needed |
//! | [`MetricsSource`] | health metric datapoints for the ecology | `CloudWatchMetrics` | fixed values |
//! | [`ConfigSource`] | named config documents | `DynamoConfigSource` (the `config` table) | [`StaticConfigSource`](crate::config::StaticConfigSource), files |
//! | [`BlobStore`] | the scheduler's spool, large payloads | `S3BlobStore` | [`DirBlobStore`](crate::blob::DirBlobStore) |
//! | [`Notifier`] | dead tasks, finished jobs | `SnsNotifier` | [`LogNotifier`](crate::notify::LogNotifier), [`FileNotifier`](crate::notify::FileNotifier) |
//! | [`Reporter`] | a worker's outcome to the assistant | `LambdaAssistantReporter` | [`StoreReporter`](crate::worker::StoreReporter) |
//! | [`ScheduleRules`] | the orchestrator's own schedule, for siblings | `EventBridgeRules` | none |
//! | [`Clock`] | now | [`SystemClock`](crate::clock::SystemClock) | [`SystemClock`](crate::clock::SystemClock), virtual clocks in tests |
//!
//! The conformance suite in `sosw-testkit` runs against every `TaskStore` and `JobStore` adapter.

pub use crate::blob::BlobStore;
pub use crate::clock::Clock;
pub use crate::config::ConfigSource;
pub use crate::ecology::MetricsSource;
pub use crate::invoke::{Invoker, WorkerTimeouts};
pub use crate::notify::Notifier;
pub use crate::siblings::ScheduleRules;
pub use crate::store::{
    JobStore, LabourerControl, TaskArchive, TaskCancel, TaskClaims, TaskLookup, TaskQueue,
    TaskReports, TaskRetries, TaskStore,
};
pub use crate::worker::Reporter;
