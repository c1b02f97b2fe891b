//! `sosw_worker_assistant`: closes tasks on the workers' reports.
//!
//! The contract is sosw 0.7's: `{"action": "mark_task_as_completed" | "mark_task_as_failed",
//! "task_id": "...", "stats": {...}, "result": {...}}`, where `stats` and `result` may also be JSON
//! strings, and `actions: ["..."]` (a one-element list) may stand for `action`. Their entries land on
//! the task as `stat_<k>` and `result_<k>`. This version also reads two optional keys a Python
//! WorkerAssistant ignores: `retryable` (bool, default `true`), `attempt` (the invocation the report
//! is about, `attempts + 1` of the worker payload) and `throttled` (bool, default `false`: the failure
//! was the downstream turning the task away because it is saturated).
//!
//! What a report does:
//! * **completed**: `completed_at = now`, conditionally (a report for a task that is already completed,
//!   archived, waiting for retry or unknown changes nothing: no orphan rows, bug B10); then, with
//!   `archive_completed` (the default), the task moves to the closed table as `<labourer>_1` at once.
//! * **failed**: `failed_attempts += 1` and the report's attributes; then, unlike sosw 0.7 (which let
//!   the task expire first), at once, by the scavenger's rule ([`crate::task::fate`]):
//!   * `retryable` and fewer than `max_attempts` invocations: to the retry table with the labourer's
//!     retry delay;
//!   * `retryable` with `max_attempts` used up, or not `retryable`: dead, archived as `<labourer>_0`
//!     with the report's `result_*` (the worker's error) kept in the row, and a dead-task alert;
//!   * a report about an older invocation (`attempt` given and not the task's latest), or for a task
//!     already back in the queue, is recorded only: the task is already on its way again.
//! * **throttled** (a failure with `throttled: true`): a retryable failure whatever `retryable` says
//!   (the task goes back through the retry table after the labourer's retry delay, and uses an attempt,
//!   so a downstream that never recovers does not keep a task forever); for a labourer whose `ecology`
//!   is adaptive it counts as a throttle, not a failure, for the controller.
//! * For a labourer whose `ecology` is adaptive, every recorded report is also added to the labourer's
//!   outcome counters in the store (succeeded, failed or throttled), which the orchestrators'
//!   controller reads ([`crate::store::EcologyState::add_outcomes`]); a counter that cannot be added is
//!   logged, not raised: the task's own change is done.
//! * Job counters follow each task that closes ([`crate::notify::jobs`]); a job's last task finishes it
//!   and sends the job-finished message to every requester.
//!
//! A malformed report is a `NonRetryable` error naming what is wrong; store failures are `Retryable`
//! (Lambda runs the event again; every step above is conditional, so a repeat changes nothing twice).
//! A notification that cannot be sent is logged and returned in the outcome, not raised: the task
//! changes are done, and running the event again could not resend it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::closer::{Closed, Closer};
use crate::config::WorkerAssistantConfig;
use crate::error::{Error, Result};
use crate::notify::NotificationQueue;
use crate::processor::{Invocation, Processor, Stats};
use crate::store::{
    ClosedStatus, JobCounts, MoveOutcome, OutcomeCounts, ReportOutcome, TaskReport, TaskStore,
};
use crate::task::fate::Ending;
use crate::task::{Markers, Task, TaskId, TaskState, json_kind};

/// The function name (and config document prefix) of the worker assistant.
pub const FUNCTION_NAME: &str = "sosw_worker_assistant";

/// What a worker reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssistantAction {
    /// The task is done.
    MarkTaskAsCompleted,
    /// The task failed this time.
    MarkTaskAsFailed,
}

impl AssistantAction {
    const NAMES: &'static str = "`mark_task_as_completed`, `mark_task_as_failed`";

    fn parse(name: &str) -> Result<Self> {
        match name {
            "mark_task_as_completed" => Ok(AssistantAction::MarkTaskAsCompleted),
            "mark_task_as_failed" => Ok(AssistantAction::MarkTaskAsFailed),
            other => Err(invalid(format!(
                "unsupported action `{other}`; supported: {}",
                Self::NAMES
            ))),
        }
    }
}

/// One report from a worker: sosw 0.7's `{action, task_id, stats, result}` plus optional `retryable`
/// and `attempt`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssistantRequest {
    /// What happened.
    pub action: AssistantAction,
    /// The task it happened to.
    pub task_id: TaskId,
    /// Written as `stat_<k>`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub stats: BTreeMap<String, Value>,
    /// Written as `result_<k>`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub result: BTreeMap<String, Value>,
    /// For a failure: whether running the task again may succeed (absent means `true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retryable: Option<bool>,
    /// The invocation this report is about (1 for the first), if the worker knows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// For a failure: the downstream turned the task away because it is saturated (absent means
    /// `false`). Always retryable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttled: Option<bool>,
    /// For a completion: the worker's invocation event as it received it, sent back when the event
    /// carries a claim receipt (`sosw_claim`, [`crate::task::receipt`]), so that a store closing the
    /// task in one move needs no read of the claim. An assistant that does not know the key ignores
    /// it, and one that cannot use the receipt reads the claim as without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invocation: Option<Value>,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid("worker assistant request", message)
}

impl AssistantRequest {
    /// A completion report.
    pub fn completed(task_id: TaskId) -> Self {
        AssistantRequest {
            action: AssistantAction::MarkTaskAsCompleted,
            task_id,
            stats: BTreeMap::new(),
            result: BTreeMap::new(),
            retryable: None,
            attempt: None,
            throttled: None,
            invocation: None,
        }
    }

    /// A failure report.
    pub fn failed(task_id: TaskId, retryable: bool) -> Self {
        AssistantRequest {
            action: AssistantAction::MarkTaskAsFailed,
            retryable: Some(retryable),
            ..AssistantRequest::completed(task_id)
        }
    }

    /// Reads a report as sosw 0.7's WorkerAssistant accepts it (see the module docs). Anything
    /// malformed is an [`Error::Invalid`] naming the key.
    pub fn from_event(event: &Value) -> Result<Self> {
        let Value::Object(map) = event else {
            return Err(invalid(format!(
                "expected a JSON object like {{\"action\": ..., \"task_id\": ...}}, got {}",
                json_kind(event)
            )));
        };
        Ok(AssistantRequest {
            action: action_of(map)?,
            task_id: task_id_of(map)?,
            stats: object_of(map, "stats")?,
            result: object_of(map, "result")?,
            retryable: optional(map, "retryable", Value::as_bool, "a boolean")?,
            attempt: optional(
                map,
                "attempt",
                |v| v.as_u64().and_then(|n| u32::try_from(n).ok()),
                "a positive integer",
            )?,
            throttled: optional(map, "throttled", Value::as_bool, "a boolean")?,
            invocation: match map.get("invocation") {
                None | Some(Value::Null) => None,
                Some(event @ Value::Object(_)) => Some(event.clone()),
                Some(other) => {
                    return Err(invalid(format!(
                        "`invocation` must be the worker's event (an object), got {}",
                        json_kind(other)
                    )));
                }
            },
        })
    }

    /// The report as the worker assistant's event.
    pub fn to_event(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Whether a failure may be retried (`retryable`, default `true`; a throttled one always may).
    pub fn is_retryable(&self) -> bool {
        self.is_throttled() || self.retryable.unwrap_or(true)
    }

    /// Whether a failure was a throttle (`throttled`, default `false`).
    pub fn is_throttled(&self) -> bool {
        self.throttled.unwrap_or(false)
    }

    /// The `stat_*` / `result_*` attributes it writes.
    pub fn task_report(&self) -> TaskReport {
        TaskReport {
            stats: self.stats.clone(),
            result: self.result.clone(),
            invocation: self.invocation.clone(),
        }
    }
}

fn action_of(map: &Map<String, Value>) -> Result<AssistantAction> {
    let single = match map.get("action") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(other) => {
            return Err(invalid(format!(
                "`action` must be a string, got {}",
                json_kind(other)
            )));
        }
    };
    let listed = match map.get("actions") {
        None | Some(Value::Null) => None,
        Some(Value::Array(list)) => match list.as_slice() {
            [Value::String(s)] => Some(s.as_str()),
            _ => {
                return Err(invalid(
                    "`actions` must be a list of exactly one action name",
                ));
            }
        },
        Some(other) => {
            return Err(invalid(format!(
                "`actions` must be a list of one action name, got {}",
                json_kind(other)
            )));
        }
    };
    match (single, listed) {
        (Some(a), Some(b)) if a != b => Err(invalid(format!(
            "`action` is `{a}` but `actions` is [`{b}`]; send one of them"
        ))),
        (Some(name), _) | (None, Some(name)) => AssistantAction::parse(name),
        (None, None) => Err(invalid(format!(
            "missing `action`; supported: {}",
            AssistantAction::NAMES
        ))),
    }
}

fn task_id_of(map: &Map<String, Value>) -> Result<TaskId> {
    match map.get("task_id") {
        Some(Value::String(id)) => TaskId::new(id.clone()),
        None | Some(Value::Null) => Err(invalid("missing `task_id`")),
        Some(other) => Err(invalid(format!(
            "`task_id` must be a string, got {}",
            json_kind(other)
        ))),
    }
}

/// `stats` / `result`: an object, a JSON string holding one, or absent/null/empty string for none.
fn object_of(map: &Map<String, Value>, key: &str) -> Result<BTreeMap<String, Value>> {
    let value = match map.get(key) {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::String(text)) if text.trim().is_empty() => return Ok(BTreeMap::new()),
        Some(Value::String(text)) => serde_json::from_str::<Value>(text)
            .map_err(|e| invalid(format!("`{key}` is a string but not JSON: {e}")))?,
        Some(other) => other.clone(),
    };
    match value {
        Value::Object(object) => Ok(object.into_iter().collect()),
        Value::Null => Ok(BTreeMap::new()),
        other => Err(invalid(format!(
            "`{key}` must be an object (or a JSON string of one), got {}",
            json_kind(&other)
        ))),
    }
}

fn optional<T>(
    map: &Map<String, Value>,
    key: &str,
    read: impl Fn(&Value) -> Option<T>,
    expected: &str,
) -> Result<Option<T>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => read(value)
            .map(Some)
            .ok_or_else(|| invalid(format!("`{key}` must be {expected}, got {value}"))),
    }
}

/// What a report did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AssistantOutcome {
    /// Completion recorded; `archived` says whether the task also moved to the closed table now.
    Completed {
        /// Moved to the closed table in this call.
        archived: bool,
    },
    /// Failure recorded; the task waits in the retry table until `desired_launch_time`.
    RetryScheduled {
        /// When it goes back to the queue (Unix seconds).
        desired_launch_time: i64,
    },
    /// Failure recorded; the task is dead (archived as `<labourer>_0`).
    Dead,
    /// Failure recorded; the task's job is cancelled, so instead of a retry the task closed as
    /// cancelled (`<labourer>_cancelled`).
    Cancelled,
    /// Failure recorded only: the report was about an older invocation, or the task was already
    /// queued again, or another essential moved it in the meantime.
    FailureRecorded,
    /// The task was already reported completed: nothing changed.
    Duplicate,
    /// No live task with this id (archived, waiting for retry, unknown): nothing changed.
    NotFound,
}

/// The outcome of one report, with what happened to its job and its notifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssistantReply {
    /// The task's id.
    pub task_id: TaskId,
    /// What happened to the task.
    #[serde(flatten)]
    pub outcome: AssistantOutcome,
    /// Whether this report finished the task's job.
    #[serde(default)]
    pub job_finished: bool,
    /// Why queued notifications could not all be sent (they are in the log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify_error: Option<String>,
}

/// The worker assistant: its config over a [`Closer`] (the task store, job store, notifier, clock and
/// jitter).
#[derive(Debug)]
pub struct WorkerAssistant {
    config: WorkerAssistantConfig,
    closer: Closer,
}

/// Per-task context of one report: the row as the store returned it and the labourer's settings.
struct Closing<'a> {
    task: &'a Task,
    now: i64,
    queue: &'a mut NotificationQueue,
    stats: &'a mut Stats,
}

impl WorkerAssistant {
    /// An assistant with `config`, closing tasks through `closer`.
    pub fn new(config: WorkerAssistantConfig, closer: Closer) -> Self {
        WorkerAssistant { config, closer }
    }

    /// The task store reports go to.
    pub fn store(&self) -> &Arc<dyn TaskStore> {
        self.closer.store()
    }

    /// The config.
    pub fn config(&self) -> &WorkerAssistantConfig {
        &self.config
    }

    /// Handles one report, counting what it did in `stats`, and sends the notifications it caused.
    pub async fn handle(
        &self,
        request: &AssistantRequest,
        stats: &mut Stats,
    ) -> Result<AssistantReply> {
        let mut queue = self
            .closer
            .notifications(self.config.sns_config.recipient.clone());
        let result = self.apply(request, &mut queue, stats).await;
        // Whatever happened, what was queued goes out now (never on drop, B19).
        let notify_error = match queue.commit().await {
            Ok(_) => None,
            Err(err) => {
                tracing::error!(task_id = %request.task_id, error = %err.with_causes(), "notification failed");
                Some(err.with_causes())
            }
        };
        let (outcome, job_finished) = result?;
        tracing::info!(task_id = %request.task_id, action = ?request.action, outcome = ?outcome,
            job_finished, "report handled");
        Ok(AssistantReply {
            task_id: request.task_id.clone(),
            outcome,
            job_finished,
            notify_error,
        })
    }

    async fn apply(
        &self,
        request: &AssistantRequest,
        queue: &mut NotificationQueue,
        stats: &mut Stats,
    ) -> Result<(AssistantOutcome, bool)> {
        let now = self.closer.now_secs();
        let report = request.task_report();
        let tasks = self.closer.tasks();
        let mut closed_at_once = false;
        let recorded = match request.action {
            AssistantAction::MarkTaskAsCompleted if self.config.archive_completed => {
                let (recorded, moved) = tasks
                    .mark_task_completed_and_close(&request.task_id, &report, now)
                    .await?;
                closed_at_once = moved == Some(MoveOutcome::Moved);
                recorded
            }
            AssistantAction::MarkTaskAsCompleted => {
                tasks
                    .mark_task_completed(&request.task_id, &report, now)
                    .await?
            }
            AssistantAction::MarkTaskAsFailed => {
                tasks
                    .mark_task_failed(&request.task_id, &report, now)
                    .await?
            }
        };
        let task = match recorded {
            ReportOutcome::Recorded(task) => {
                self.count_outcome(&task, request).await;
                task
            }
            ReportOutcome::AlreadyCompleted => {
                stats.inc("duplicate_reports");
                return Ok((AssistantOutcome::Duplicate, false));
            }
            ReportOutcome::NotFound => {
                stats.inc("late_reports");
                return Ok((AssistantOutcome::NotFound, false));
            }
        };
        let mut closing = Closing {
            task: &task,
            now,
            queue,
            stats,
        };
        match request.action {
            AssistantAction::MarkTaskAsCompleted => {
                self.after_completion(&mut closing, closed_at_once).await
            }
            AssistantAction::MarkTaskAsFailed => self.after_failure(request, &mut closing).await,
        }
    }

    /// After a completion was recorded; `closed_at_once` when the store archived it with the same call.
    async fn after_completion(
        &self,
        c: &mut Closing<'_>,
        closed_at_once: bool,
    ) -> Result<(AssistantOutcome, bool)> {
        c.stats.inc("marked_as_completed");
        let mut archived = closed_at_once;
        if closed_at_once {
            c.stats.add("archived_tasks", 1);
        } else if self.config.archive_completed {
            // A failed archive leaves the completed task to the scavenger's archive; the job still
            // counts the completion here (a retried report would find the task completed and count
            // nothing, so an error must not stop the count).
            archived = match self
                .closer
                .tasks()
                .archive_task(c.task, ClosedStatus::Completed, c.now)
                .await
            {
                Ok(moved) => moved == MoveOutcome::Moved,
                Err(e) => {
                    tracing::warn!(task_id = %c.task.task_id, error = %e.with_causes(),
                        "completed task not archived; the scavenger archives it");
                    c.stats.inc("archive_errors");
                    false
                }
            };
            c.stats.add("archived_tasks", u64::from(archived));
        }
        let delta = JobCounts {
            completed: 1,
            ..JobCounts::default()
        };
        let finished = self.count(c, delta).await?;
        Ok((AssistantOutcome::Completed { archived }, finished))
    }

    async fn after_failure(
        &self,
        request: &AssistantRequest,
        c: &mut Closing<'_>,
    ) -> Result<(AssistantOutcome, bool)> {
        c.stats.inc("marked_as_failed");
        let failed = JobCounts {
            failed: 1,
            ..JobCounts::default()
        };
        let labourer = self
            .config
            .task_config
            .labourer_or_default(&c.task.labourer_id);
        if !self.config.task_config.labourers.contains_key(&labourer.id) {
            tracing::warn!(labourer = %labourer.id, task_id = %c.task.task_id,
                "labourer not configured for the worker assistant: default retry settings");
        }
        let stale = request.attempt.is_some_and(|a| a != c.task.attempts);
        let queued = Markers::for_labourer(c.now, &labourer).state(c.task.greenfield, false)
            == TaskState::Queued;
        if stale || queued {
            c.stats.inc("failures_recorded_only");
            let finished = self.count(c, failed).await?;
            return Ok((AssistantOutcome::FailureRecorded, finished));
        }
        let ending = Ending::Failed {
            retryable: request.is_retryable(),
        };
        let (closed, finished) = self
            .closer
            .close(c.task, &labourer, ending, failed, c.queue, c.now)
            .await?;
        let outcome = match closed {
            Closed::Retried {
                desired_launch_time,
            } => {
                c.stats.inc("scheduled_for_retry_later_tasks");
                AssistantOutcome::RetryScheduled {
                    desired_launch_time,
                }
            }
            Closed::Dead => {
                c.stats.inc("closed_dead_tasks");
                AssistantOutcome::Dead
            }
            Closed::Conflict => AssistantOutcome::FailureRecorded,
            Closed::Cancelled => AssistantOutcome::Cancelled,
        };
        Ok((outcome, finished))
    }

    /// Adds the report to the outcome counters of the task's labourer if its `ecology` is adaptive.
    async fn count_outcome(&self, task: &Task, request: &AssistantRequest) {
        let labourer = self
            .config
            .task_config
            .labourer_or_default(&task.labourer_id);
        if labourer.adaptive().is_none() {
            return;
        }
        let mut outcomes = OutcomeCounts::default();
        match request.action {
            AssistantAction::MarkTaskAsCompleted => outcomes.succeeded = 1,
            AssistantAction::MarkTaskAsFailed if request.is_throttled() => outcomes.throttled = 1,
            AssistantAction::MarkTaskAsFailed => outcomes.failed = 1,
        }
        if let Err(e) = self.store().add_outcomes(&labourer.id, &outcomes).await {
            tracing::warn!(labourer = %labourer.id, task_id = %task.task_id, error = %e.with_causes(),
                "outcome not counted for the adaptive controller");
        }
    }

    /// Job counters for the task's job, if it has one and a job store is configured.
    async fn count(&self, c: &mut Closing<'_>, delta: JobCounts) -> Result<bool> {
        self.closer.count(c.task, delta, c.queue, c.now).await
    }
}

#[async_trait]
impl Processor for WorkerAssistant {
    type Event = Value;
    type Output = AssistantReply;

    async fn process(&self, event: Value, invocation: &mut Invocation) -> Result<AssistantReply> {
        let request = AssistantRequest::from_event(&event)?;
        self.handle(&request, &mut invocation.stats).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_completion_s_event_sent_back_travels_to_the_store() {
        let event = json!({"task_id": "t1", "k": 1, "sosw_claim": {"v": 1}});
        let request = AssistantRequest {
            invocation: Some(event.clone()),
            ..AssistantRequest::completed(TaskId::new("t1").expect("id"))
        };
        let parsed = AssistantRequest::from_event(&request.to_event()).expect("parses");
        assert_eq!(parsed, request, "the event round-trips through the report");
        assert_eq!(parsed.task_report().invocation, Some(event));
        let err = AssistantRequest::from_event(&json!({
            "action": "mark_task_as_completed", "task_id": "t1", "invocation": "x"
        }))
        .expect_err("an event must be an object");
        assert!(err.to_string().contains("`invocation`"), "{err}");
        let old = AssistantRequest::from_event(&json!({
            "action": "mark_task_as_completed", "task_id": "t1"
        }))
        .expect("parses");
        assert_eq!(old.invocation, None, "sosw 0.7's reports have none");
    }

    #[test]
    fn sosw_07_reports_parse_in_every_accepted_shape() {
        let r = AssistantRequest::from_event(&json!({
            "action": "mark_task_as_completed", "task_id": "t1",
            "stats": {"total_calls": 3}, "result": "{\"rows\": 5}"
        }))
        .expect("parses");
        assert_eq!(r.action, AssistantAction::MarkTaskAsCompleted);
        assert_eq!(r.stats["total_calls"], json!(3));
        assert_eq!(r.result["rows"], json!(5));
        assert!(r.is_retryable(), "absent retryable means retryable");
        let r = AssistantRequest::from_event(&json!({
            "actions": ["mark_task_as_failed"], "task_id": "t1", "stats": "", "result": null
        }))
        .expect("plural actions");
        assert_eq!(r.action, AssistantAction::MarkTaskAsFailed);
        assert!(r.stats.is_empty() && r.result.is_empty());
    }

    #[test]
    fn malformed_reports_are_errors_naming_the_key() {
        let cases = [
            (json!([1]), "JSON object"),
            (json!({"task_id": "t"}), "missing `action`"),
            (
                json!({"action": "mark_task_as_done", "task_id": "t"}),
                "unsupported action",
            ),
            (json!({"action": 5, "task_id": "t"}), "`action` must be"),
            (
                json!({"actions": ["a", "b"], "task_id": "t"}),
                "exactly one",
            ),
            (
                json!({"action": "mark_task_as_failed", "actions": ["mark_task_as_completed"], "task_id": "t"}),
                "send one of them",
            ),
            (
                json!({"action": "mark_task_as_failed"}),
                "missing `task_id`",
            ),
            (
                json!({"action": "mark_task_as_failed", "task_id": 7}),
                "`task_id` must be",
            ),
            (
                json!({"action": "mark_task_as_failed", "task_id": ""}),
                "empty",
            ),
            (
                json!({"action": "mark_task_as_failed", "task_id": "t", "stats": [1]}),
                "`stats` must be",
            ),
            (
                json!({"action": "mark_task_as_failed", "task_id": "t", "result": "{oops"}),
                "not JSON",
            ),
            (
                json!({"action": "mark_task_as_failed", "task_id": "t", "retryable": "no"}),
                "`retryable`",
            ),
            (
                json!({"action": "mark_task_as_failed", "task_id": "t", "attempt": -1}),
                "`attempt`",
            ),
        ];
        for (event, needle) in cases {
            let err = AssistantRequest::from_event(&event).expect_err("malformed");
            assert!(!err.is_retryable());
            assert!(err.to_string().contains(needle), "{event}: {err}");
        }
    }

    #[test]
    fn a_request_round_trips_through_its_event() {
        let mut r = AssistantRequest::failed(TaskId::new("t9").expect("id"), false);
        r.result.insert("error".into(), json!("boom"));
        r.attempt = Some(2);
        let event = r.to_event();
        assert_eq!(event["action"], "mark_task_as_failed");
        assert!(
            event.get("stats").is_none(),
            "empty maps are left out, as in sosw 0.7"
        );
        assert_eq!(AssistantRequest::from_event(&event).expect("parses"), r);
    }
}
