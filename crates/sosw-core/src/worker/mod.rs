//! Writing a labourer: the [`Worker`] trait, or any async fn through [`worker_fn`].
//!
//! ```
//! use serde::Deserialize;
//! use sosw_core::worker::{WorkError, WorkerContext, worker_fn};
//!
//! #[derive(Deserialize)]
//! struct Chunk {
//!     words: Vec<String>,
//! }
//!
//! async fn count(chunk: Chunk, ctx: WorkerContext) -> Result<serde_json::Value, WorkError> {
//!     ctx.add("words", chunk.words.len() as u64);
//!     Ok(serde_json::json!({"count": chunk.words.len()}))
//! }
//!
//! // A Lambda function's `main` runs it with `sosw::worker::run(worker_fn(count)).await`.
//! let _worker = worker_fn(count);
//! ```
//!
//! **What a worker receives.** The orchestrator invokes it with sosw 0.7's payload: the task's payload
//! keys with `task_id`, `labourer_id`, `created_at`, `greenfield` and `attempts` merged in (a Python
//! sosw 0.7 orchestrator sends the same). Those five go into the [`WorkerContext`]; the rest is
//! deserialized into the worker's `Payload` type. A payload that does not fit is a non-retryable failure
//! (it will never fit).
//!
//! **What happens after.** [`WorkerRunner`] reports the outcome for the task, so the worker does not:
//! * `Ok(output)`: `mark_task_as_completed` with the context's stats and result (the output's fields, if
//!   it is an object; else the output under `output`), which the assistant writes as `stat_*` and
//!   `result_*`;
//! * `Err(error)`: `mark_task_as_failed` with `retryable` from the error and the message under
//!   `result.error`, so a dead task keeps its reason.
//!
//! Reports go to the worker assistant Lambda (`sosw_aws::assistant`) or, in-process, straight to a
//! store ([`StoreReporter`]). A report that cannot be delivered is logged and makes the invocation fail
//! (`Retryable`): it is never swallowed (sosw 0.7 did, bug B23). A work failure is also returned to
//! Lambda as a `Retryable` / `NonRetryable` diagnostic, after the failure report, so it shows in the
//! function's error metrics. sosw retries the task itself: set the function's asynchronous
//! `MaximumRetryAttempts` to 0 so Lambda does not run a failed task again on its own (a repeated run is
//! harmless, its reports change nothing, but it costs a run).

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::processor::Stats;
use crate::task::TaskId;

mod config;
mod report;
mod runner;

pub use config::{ReportInvocation, ReportTo, WorkerConfig};
pub use report::{Reporter, StoreReporter};
pub use runner::{WorkerRunner, split_payload};

/// A labourer: turns one task's payload into an output.
#[async_trait]
pub trait Worker: Send + Sync {
    /// The task payload (the payload keys sosw sends, without the task fields).
    type Payload: DeserializeOwned + Send;
    /// What the worker returns: the Lambda's response and the completion report's `result`.
    type Output: Serialize + Send;

    /// Does the work of one task. `ctx` says which task and invocation this is, and collects stats and
    /// result entries for the report.
    async fn work(
        &self,
        payload: Self::Payload,
        ctx: WorkerContext,
    ) -> Result<Self::Output, WorkError>;
}

/// Why a task failed, and whether running it again may succeed.
///
/// Any `std::error::Error` converts with `?`: a `sosw::Error` keeps its own retryability, every other
/// error counts as retryable (transient until proven otherwise; `max_attempts` bounds the cost). Use
/// [`WorkError::non_retryable`] for failures that no retry can fix (invalid input).
pub struct WorkError {
    message: String,
    retryable: bool,
    throttled: bool,
}

impl WorkError {
    /// A failure worth retrying later.
    pub fn retryable(message: impl Into<String>) -> Self {
        WorkError {
            message: message.into(),
            retryable: true,
            throttled: false,
        }
    }

    /// What the worker depends on turned the task away because it is saturated (an API's 429, a
    /// database's throttling): retried later like a retryable failure, and reported as *throttled*,
    /// which an adaptive labourer's controller reads as congestion (lower the concurrency) rather
    /// than as a failure (docs/ecology.md).
    pub fn throttled(message: impl Into<String>) -> Self {
        WorkError {
            message: message.into(),
            retryable: true,
            throttled: true,
        }
    }

    /// A failure no retry can fix: the task goes to the dead letters at once.
    pub fn non_retryable(message: impl Into<String>) -> Self {
        WorkError {
            message: message.into(),
            retryable: false,
            throttled: false,
        }
    }

    /// Whether running the task again may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// Whether the failure was a throttle ([`WorkError::throttled`]).
    pub fn is_throttled(&self) -> bool {
        self.throttled
    }

    /// What went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Debug for WorkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkError")
            .field("message", &self.message)
            .field("retryable", &self.retryable)
            .field("throttled", &self.throttled)
            .finish()
    }
}

impl fmt::Display for WorkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for WorkError {
    fn from(err: E) -> Self {
        let retryable = (&err as &dyn Any)
            .downcast_ref::<crate::Error>()
            .is_none_or(crate::Error::is_retryable);
        WorkError {
            message: err.to_string(),
            retryable,
            throttled: false,
        }
    }
}

/// The task fields of a worker payload (sosw 0.7 merges them into the payload).
#[derive(Debug, Clone, PartialEq)]
pub struct TaskMeta {
    /// The task.
    pub task_id: TaskId,
    /// The labourer it runs on.
    pub labourer_id: String,
    /// When it was created (fractional Unix seconds).
    pub created_at: f64,
    /// Its greenfield before this invocation.
    pub greenfield: i64,
    /// Invocations before this one.
    pub attempts: u32,
}

/// What the report collects while a worker runs.
#[derive(Debug, Default)]
struct Collected {
    stats: Stats,
    result: Map<String, Value>,
}

/// Everything a worker knows about its invocation. Cheap to clone; clones share the stats and result.
#[derive(Debug, Clone)]
pub struct WorkerContext {
    task: Option<TaskMeta>,
    deadline: Option<DateTime<Utc>>,
    possibly_duplicate: bool,
    request_id: String,
    config: Arc<Map<String, Value>>,
    collected: Arc<Mutex<Collected>>,
}

impl WorkerContext {
    /// A context for `task` (`None` when the worker is invoked outside sosw, without a `task_id`).
    pub fn new(task: Option<TaskMeta>) -> Self {
        WorkerContext {
            task,
            deadline: None,
            possibly_duplicate: false,
            request_id: String::new(),
            config: Arc::new(Map::new()),
            collected: Arc::new(Mutex::new(Collected::default())),
        }
    }

    /// This context with the invocation's deadline.
    pub fn with_deadline(mut self, deadline: Option<DateTime<Utc>>) -> Self {
        self.deadline = deadline;
        self
    }

    /// This context marked as a possible duplicate delivery.
    pub fn with_possibly_duplicate(mut self, possibly_duplicate: bool) -> Self {
        self.possibly_duplicate = possibly_duplicate;
        self
    }

    /// This context with the Lambda request id.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = request_id.into();
        self
    }

    /// This context with the worker's own config keys.
    pub fn with_config(mut self, config: Arc<Map<String, Value>>) -> Self {
        self.config = config;
        self
    }

    /// The task's fields, when invoked by sosw.
    pub fn task(&self) -> Option<&TaskMeta> {
        self.task.as_ref()
    }

    /// The task id, when invoked by sosw.
    pub fn task_id(&self) -> Option<&TaskId> {
        self.task.as_ref().map(|t| &t.task_id)
    }

    /// The labourer id, when invoked by sosw.
    pub fn labourer_id(&self) -> Option<&str> {
        self.task.as_ref().map(|t| t.labourer_id.as_str())
    }

    /// Which invocation of the task this is: 1 for the first, 2 for the first retry, ... (0 outside
    /// sosw).
    pub fn attempt(&self) -> u32 {
        self.task
            .as_ref()
            .map_or(0, |t| t.attempts.saturating_add(1))
    }

    /// When Lambda stops this invocation, if known.
    pub fn deadline(&self) -> Option<DateTime<Utc>> {
        self.deadline
    }

    /// Time left until the deadline at `now` (zero once passed), if the deadline is known.
    pub fn time_left(&self, now: DateTime<Utc>) -> Option<std::time::Duration> {
        self.deadline
            .map(|d| (d - now).to_std().unwrap_or_default())
    }

    /// Whether the task already looks completed or closed in the store, so this may be a duplicate
    /// delivery. Only known when the reporter can read the store; `false` otherwise. The worker decides
    /// what to do (an idempotent worker can just run; its report will change nothing).
    pub fn possibly_duplicate(&self) -> bool {
        self.possibly_duplicate
    }

    /// The Lambda request id (empty outside Lambda).
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The worker's own keys from its config document (`<function>_config`), sosw's keys removed.
    pub fn config(&self) -> &Map<String, Value> {
        &self.config
    }

    /// Adds 1 to the stat `name` (reported as `stat_<name>`).
    pub fn inc(&self, name: &str) {
        self.add(name, 1);
    }

    /// Adds `n` to the stat `name`.
    pub fn add(&self, name: &str, n: u64) {
        self.with_collected(|c| c.stats.add(name, n));
    }

    /// Sets the result entry `key` (reported as `result_<key>`).
    pub fn set_result(&self, key: &str, value: impl Into<Value>) {
        let value = value.into();
        self.with_collected(|c| {
            c.result.insert(key.to_string(), value);
        });
    }

    /// The stats counted so far.
    pub fn stats(&self) -> Stats {
        self.collected
            .lock()
            .map(|c| c.stats.clone())
            .unwrap_or_default()
    }

    /// The result entries set so far.
    pub fn result(&self) -> Map<String, Value> {
        self.collected
            .lock()
            .map(|c| c.result.clone())
            .unwrap_or_default()
    }

    fn with_collected(&self, f: impl FnOnce(&mut Collected)) {
        // A worker that panicked while holding the lock has lost nothing we cannot still count.
        let mut guard = self.collected.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard);
    }
}

/// A [`Worker`] made from an async fn `(Payload, WorkerContext) -> Result<Output, WorkError>`.
pub struct WorkerFn<F, P, O> {
    f: F,
    _types: PhantomData<fn(P) -> O>,
}

impl<F, P, O> fmt::Debug for WorkerFn<F, P, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WorkerFn")
    }
}

/// Makes a [`Worker`] of an async fn.
pub fn worker_fn<F, Fut, P, O>(f: F) -> WorkerFn<F, P, O>
where
    F: Fn(P, WorkerContext) -> Fut + Send + Sync,
    Fut: Future<Output = Result<O, WorkError>> + Send,
    P: DeserializeOwned + Send,
    O: Serialize + Send,
{
    WorkerFn {
        f,
        _types: PhantomData,
    }
}

#[async_trait]
impl<F, Fut, P, O> Worker for WorkerFn<F, P, O>
where
    F: Fn(P, WorkerContext) -> Fut + Send + Sync,
    Fut: Future<Output = Result<O, WorkError>> + Send,
    P: DeserializeOwned + Send,
    O: Serialize + Send,
{
    type Payload = P;
    type Output = O;

    async fn work(&self, payload: P, ctx: WorkerContext) -> Result<O, WorkError> {
        (self.f)(payload, ctx).await
    }
}

/// The result entries of a completion report: the output's fields if it is an object, nothing for
/// `null`, else `{"output": <output>}`; entries set on the context are kept unless the output has
/// the same key.
pub fn result_entries(output: &Value, ctx: &WorkerContext) -> BTreeMap<String, Value> {
    let mut result: BTreeMap<String, Value> = ctx.result().into_iter().collect();
    match output {
        Value::Object(map) => result.extend(map.iter().map(|(k, v)| (k.clone(), v.clone()))),
        Value::Null => {}
        other => {
            result.insert("output".to_string(), other.clone());
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_convert_with_their_retryability() {
        let io = std::io::Error::other("disk");
        let e: WorkError = io.into();
        assert!(e.is_retryable(), "unknown errors are retryable");
        let e: WorkError = crate::Error::invalid("payload", "bad").into();
        assert!(!e.is_retryable(), "sosw errors keep theirs");
        let e: WorkError = crate::Error::store("SQLite", "x", true, "busy").into();
        assert!(e.is_retryable());
        assert!(!WorkError::non_retryable("no").is_retryable());
        assert_eq!(WorkError::retryable("try").to_string(), "try");
    }

    #[test]
    fn context_collects_stats_and_results_across_clones() {
        let ctx = WorkerContext::new(None);
        let clone = ctx.clone();
        clone.inc("rows");
        ctx.add("rows", 2);
        clone.set_result("file", "a.csv");
        assert_eq!(ctx.stats().get("rows"), 3);
        assert_eq!(ctx.result()["file"], json!("a.csv"));
        assert_eq!(ctx.attempt(), 0);
        assert!(ctx.task_id().is_none());
    }

    #[test]
    fn time_left_is_zero_after_the_deadline() {
        let now = Utc::now();
        let ctx = WorkerContext::new(None).with_deadline(Some(now));
        assert_eq!(
            ctx.time_left(now + chrono::Duration::seconds(5)),
            Some(std::time::Duration::ZERO)
        );
        assert_eq!(
            ctx.time_left(now - chrono::Duration::seconds(5)),
            Some(std::time::Duration::from_secs(5))
        );
    }

    #[test]
    fn result_entries_merge_output_and_context() {
        let ctx = WorkerContext::new(None);
        ctx.set_result("a", 1);
        ctx.set_result("b", 1);
        assert_eq!(
            result_entries(&json!({"b": 2}), &ctx),
            BTreeMap::from([("a".into(), json!(1)), ("b".into(), json!(2))])
        );
        assert_eq!(result_entries(&json!(7), &ctx)["output"], json!(7));
        assert_eq!(result_entries(&Value::Null, &ctx).len(), 2);
    }
}
