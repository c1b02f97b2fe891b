//! Running a [`Worker`]: one invocation's payload in, its outcome reported ([`WorkerRunner`]).
//! The Lambda loop around it is `sosw_lambda::worker`.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{Reporter, TaskMeta, WorkError, Worker, WorkerConfig, WorkerContext, result_entries};
use crate::blob::{BlobStore, payload_ref_key, resolve_payload};
use crate::error::{Error, Result};
use crate::essentials::worker_assistant::AssistantRequest;
use crate::processor::{HandlerError, LifetimeStats, Stats};
use crate::task::receipt::{CLAIM_RECEIPT_KEY, WORKER_TASK_KEYS, carries_receipt};
use crate::task::{TaskId, json_kind};

/// A worker's event larger than this is not sent back with its completion (the store then reads the
/// claim): the report stays well within Lambda's limit for an event invocation.
const MAX_ECHOED_EVENT_BYTES: usize = 64 * 1024;

/// A worker with its reporter: handles invocations and reports their outcomes.
pub struct WorkerRunner<W> {
    worker: W,
    reporter: Arc<dyn Reporter>,
    blobs: Option<Arc<dyn BlobStore>>,
    config: Arc<Map<String, Value>>,
    lifetime: Mutex<LifetimeStats>,
}

impl<W> std::fmt::Debug for WorkerRunner<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerRunner").finish_non_exhaustive()
    }
}

impl<W: Worker> WorkerRunner<W> {
    /// Runs `worker`, reporting through `reporter`.
    pub fn new(worker: W, reporter: Arc<dyn Reporter>) -> Self {
        WorkerRunner {
            worker,
            reporter,
            blobs: None,
            config: Arc::new(Map::new()),
            lifetime: Mutex::new(LifetimeStats::default()),
        }
    }

    /// Gives the worker its own config keys ([`WorkerContext::config`]).
    pub fn with_config(mut self, config: &WorkerConfig) -> Self {
        self.config = Arc::new(config.custom.clone());
        self
    }

    /// Where payloads stored by the scheduler as pointers (`{"sosw_payload_ref": "<key>"}`) are fetched
    /// from before the worker sees them.
    pub fn with_blobs(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.blobs = Some(blobs);
        self
    }

    /// The container's lifetime stats so far (`total_*`).
    pub fn lifetime_stats(&self) -> Stats {
        self.lifetime
            .lock()
            .map(|l| l.sums().clone())
            .unwrap_or_default()
    }

    /// Handles one invocation's payload: the Lambda loop calls it with the invocation's deadline and
    /// request id (`sosw_lambda::worker::handle`), an in-process invoker without a deadline.
    pub async fn handle_payload(
        &self,
        payload: Value,
        deadline: Option<DateTime<Utc>>,
        request_id: &str,
    ) -> Result<Value, HandlerError> {
        // The event as received (a payload stored as a pointer still a pointer), sent back with the
        // completion when it carries a claim receipt.
        let echo = carries_receipt(&payload).then(|| payload.clone());
        let payload = self.resolve(payload).await?;
        let (meta, body) = split_payload(payload).map_err(HandlerError::from)?;
        let ctx = self.context(meta, deadline, request_id).await;
        let outcome = self.work(body, ctx.clone()).await;
        let reported = self.report(&ctx, &outcome, echo).await;
        self.count(&ctx, &outcome, &reported);
        reported?;
        outcome.map_err(|err| {
            let message = format!("{}{}", task_label(&ctx), err.message());
            if err.is_retryable() {
                HandlerError::retryable(message)
            } else {
                HandlerError::non_retryable(message)
            }
        })
    }

    /// The payload itself, or the one a pointer refers to.
    async fn resolve(&self, payload: Value) -> Result<Value, HandlerError> {
        match (&self.blobs, payload_ref_key(&payload)) {
            (_, None) => Ok(payload),
            (Some(blobs), Some(_)) => resolve_payload(blobs.as_ref(), payload)
                .await
                .map_err(HandlerError::from),
            (None, Some(key)) => Err(HandlerError::from(Error::invalid(
                "task payload",
                format!(
                    "it is stored in the blob store at `{key}`, but this worker has no \
                     `payload_bucket` configured to fetch it from"
                ),
            ))),
        }
    }

    async fn context(
        &self,
        meta: Option<TaskMeta>,
        deadline: Option<DateTime<Utc>>,
        request_id: &str,
    ) -> WorkerContext {
        let possibly_duplicate = match &meta {
            Some(meta) => match self.reporter.already_closed(&meta.task_id).await {
                Ok(closed) => closed.unwrap_or(false),
                Err(err) => {
                    // Only a hint for the worker: run the task rather than fail on it.
                    tracing::warn!(task_id = %meta.task_id, error = %err.with_causes(),
                        "cannot tell whether the task is already closed");
                    false
                }
            },
            None => false,
        };
        WorkerContext::new(meta)
            .with_deadline(deadline)
            .with_possibly_duplicate(possibly_duplicate)
            .with_request_id(request_id)
            .with_config(self.config.clone())
    }

    async fn work(&self, body: Value, ctx: WorkerContext) -> Result<Value, WorkError> {
        let payload: W::Payload = serde_json::from_value(body).map_err(|err| {
            WorkError::non_retryable(format!("the payload does not fit the worker: {err}"))
        })?;
        let output = self.worker.work(payload, ctx).await?;
        serde_json::to_value(output).map_err(|err| {
            WorkError::non_retryable(format!("the worker's output cannot be encoded: {err}"))
        })
    }

    /// Sends the completion or failure report of a task invocation; nothing outside sosw.
    async fn report(
        &self,
        ctx: &WorkerContext,
        outcome: &Result<Value, WorkError>,
        echo: Option<Value>,
    ) -> Result<(), HandlerError> {
        let Some(meta) = ctx.task() else {
            return Ok(());
        };
        let mut request = build_request(meta, ctx, outcome);
        if outcome.is_ok() {
            request.invocation = echo.filter(|event| {
                serde_json::to_vec(event).is_ok_and(|bytes| bytes.len() <= MAX_ECHOED_EVENT_BYTES)
            });
        }
        self.reporter.report(&request).await.map_err(|err| {
            tracing::error!(task_id = %meta.task_id, action = ?request.action, error = %err.with_causes(),
                "the report could not be delivered");
            let err = HandlerError::from(err);
            let message = format!(
                "task `{}`: the {:?} report could not be delivered: {}",
                meta.task_id,
                request.action,
                err.message()
            );
            // The task is safe either way (it expires and retries); running the invocation again
            // is the quickest way to deliver its report.
            HandlerError::retryable(message)
        })
    }

    fn count(
        &self,
        ctx: &WorkerContext,
        outcome: &Result<Value, WorkError>,
        reported: &Result<(), HandlerError>,
    ) {
        let mut stats = ctx.stats();
        stats.inc("processor_calls");
        stats.inc(if outcome.is_ok() {
            "tasks_succeeded"
        } else {
            "tasks_failed"
        });
        if reported.is_err() {
            stats.inc("reports_failed");
        }
        let totals = match self.lifetime.lock() {
            Ok(mut lifetime) => {
                lifetime.absorb(&stats);
                lifetime.sums().clone()
            }
            Err(_) => Stats::new(),
        };
        match outcome {
            Ok(_) => tracing::info!(task_id = ?ctx.task_id(), attempt = ctx.attempt(),
                stats = ?stats, totals = ?totals, "task done"),
            Err(err) => tracing::warn!(task_id = ?ctx.task_id(), attempt = ctx.attempt(),
                error = %err, retryable = err.is_retryable(), stats = ?stats, "task failed"),
        }
    }
}

fn task_label(ctx: &WorkerContext) -> String {
    ctx.task_id()
        .map(|id| format!("task `{id}`: "))
        .unwrap_or_default()
}

fn build_request(
    meta: &TaskMeta,
    ctx: &WorkerContext,
    outcome: &Result<Value, WorkError>,
) -> AssistantRequest {
    let mut request = match outcome {
        Ok(output) => {
            let mut r = AssistantRequest::completed(meta.task_id.clone());
            r.result = result_entries(output, ctx);
            r
        }
        Err(err) => {
            let mut r = AssistantRequest::failed(meta.task_id.clone(), err.is_retryable());
            r.throttled = err.is_throttled().then_some(true);
            r.result = ctx.result().into_iter().collect();
            r.result
                .insert("error".to_string(), Value::from(err.message()));
            r
        }
    };
    request.stats = ctx.stats().to_json_map().into_iter().collect();
    request.attempt = Some(meta.attempts.saturating_add(1));
    request
}

/// Splits a worker payload into the task fields and the worker's own payload.
///
/// A payload without `task_id` is an invocation outside sosw (no report). A payload that is not an
/// object, or whose task fields are malformed, is a non-retryable error: it cannot be reported, as the
/// task is unknown, so it is only returned to Lambda.
pub fn split_payload(payload: Value) -> Result<(Option<TaskMeta>, Value)> {
    let Value::Object(mut map) = payload else {
        return Err(Error::invalid(
            "worker payload",
            format!("expected a JSON object, got {}", json_kind(&payload)),
        ));
    };
    let fields: Map<String, Value> = WORKER_TASK_KEYS
        .iter()
        .filter_map(|k| map.shift_remove(*k).map(|v| (k.to_string(), v)))
        .collect();
    // The claim receipt is sosw's, not the worker's: sent back with the completion, never seen by the
    // worker's typed payload.
    map.shift_remove(CLAIM_RECEIPT_KEY);
    let meta = match fields.get("task_id") {
        None | Some(Value::Null) => None,
        Some(_) => Some(task_meta(&fields)?),
    };
    Ok((meta, Value::Object(map)))
}

fn task_meta(fields: &Map<String, Value>) -> Result<TaskMeta> {
    let task_id = match fields.get("task_id") {
        Some(Value::String(id)) => TaskId::new(id.clone())?,
        Some(other) => {
            return Err(Error::invalid(
                "worker payload",
                format!("`task_id` must be a string, got {}", json_kind(other)),
            ));
        }
        None => return Err(Error::invalid("worker payload", "missing `task_id`")),
    };
    Ok(TaskMeta {
        task_id,
        labourer_id: fields
            .get("labourer_id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        created_at: number(fields, "created_at")?.unwrap_or(0.0),
        greenfield: number(fields, "greenfield")?.map_or(0, |g| g as i64),
        attempts: number(fields, "attempts")?
            .map_or(0, |a| a.clamp(0.0, f64::from(u32::MAX)) as u32),
    })
}

/// A number, or a numeric string (sosw 0.7 rows often carry numbers as strings).
fn number(fields: &Map<String, Value>, key: &str) -> Result<Option<f64>> {
    match fields.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(n.as_f64()),
        Some(Value::String(s)) => s.trim().parse::<f64>().map(Some).map_err(|_| {
            Error::invalid("worker payload", format!("`{key}` is not a number: {s:?}"))
        }),
        Some(other) => Err(Error::invalid(
            "worker payload",
            format!("`{key}` must be a number, got {}", json_kind(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_sosw_payload_splits_into_task_fields_and_the_workers_payload() {
        let (meta, body) = split_payload(json!({
            "task_id": "t1", "labourer_id": "w", "created_at": "1700000000.5",
            "greenfield": 2000, "attempts": 1, "words": ["a"]
        }))
        .expect("splits");
        let meta = meta.expect("a sosw task");
        assert_eq!(meta.task_id.as_str(), "t1");
        assert_eq!(meta.attempts, 1);
        assert_eq!(meta.created_at, 1_700_000_000.5);
        assert_eq!(body, json!({"words": ["a"]}));
    }

    /// Keeps every report it is given.
    #[derive(Default)]
    struct Kept(std::sync::Mutex<Vec<AssistantRequest>>);

    #[async_trait::async_trait]
    impl Reporter for Kept {
        async fn report(&self, request: &AssistantRequest) -> Result<()> {
            self.0.lock().expect("not poisoned").push(request.clone());
            Ok(())
        }
    }

    /// Fails when the payload says so, and refuses payloads with keys it does not know.
    struct Strict;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct StrictPayload {
        fail: bool,
        #[serde(default)]
        pad: String,
    }

    #[async_trait::async_trait]
    impl Worker for Strict {
        type Payload = StrictPayload;
        type Output = Value;

        async fn work(
            &self,
            payload: StrictPayload,
            _ctx: WorkerContext,
        ) -> Result<Value, WorkError> {
            if payload.fail {
                Err(WorkError::non_retryable(format!(
                    "asked to fail{}",
                    payload.pad
                )))
            } else {
                Ok(json!({"ok": true}))
            }
        }
    }

    #[tokio::test]
    async fn a_completion_sends_back_an_event_with_a_claim_receipt_and_the_worker_never_sees_it() {
        let kept = Arc::new(Kept::default());
        let runner = WorkerRunner::new(Strict, kept.clone());
        let receipt = json!({"v": 1, "rev": 3});
        let event = |fail: bool, with_receipt: bool| {
            let mut e = json!({"task_id": "t1", "labourer_id": "w", "created_at": 1.5,
                "greenfield": 2000, "attempts": 0, "fail": fail});
            if with_receipt {
                e[CLAIM_RECEIPT_KEY] = receipt.clone();
            }
            e
        };
        runner
            .handle_payload(event(false, true), None, "r1")
            .await
            .expect("the worker's strict payload does not see the receipt");
        runner
            .handle_payload(event(false, false), None, "r2")
            .await
            .expect("done");
        let failed = runner.handle_payload(event(true, true), None, "r3").await;
        assert!(failed.is_err(), "the failure is returned to Lambda too");
        let big = {
            let mut e = event(false, true);
            e["pad"] = json!("x".repeat(MAX_ECHOED_EVENT_BYTES));
            e
        };
        runner.handle_payload(big, None, "r4").await.expect("done");
        let kept = kept.0.lock().expect("not poisoned").clone();
        assert_eq!(kept.len(), 4);
        assert_eq!(
            kept[0].invocation,
            Some(event(false, true)),
            "a completion carries the event as received"
        );
        assert_eq!(kept[1].invocation, None, "no receipt, nothing sent back");
        assert_eq!(
            kept[2].action,
            crate::essentials::worker_assistant::AssistantAction::MarkTaskAsFailed
        );
        assert_eq!(kept[2].invocation, None, "a failure sends nothing back");
        assert_eq!(
            kept[3].invocation, None,
            "an event too large is not sent back"
        );
    }

    #[test]
    fn a_payload_without_task_id_is_outside_sosw() {
        let (meta, body) = split_payload(json!({"x": 1})).expect("splits");
        assert!(meta.is_none());
        assert_eq!(body, json!({"x": 1}));
    }

    #[test]
    fn malformed_task_fields_are_errors_not_panics() {
        for bad in [
            json!([1]),
            json!({"task_id": 5}),
            json!({"task_id": ""}),
            json!({"task_id": "t", "attempts": "many"}),
            json!({"task_id": "t", "greenfield": [1]}),
        ] {
            let err = split_payload(bad.clone()).expect_err("malformed");
            assert!(!err.is_retryable(), "{bad}: {err}");
        }
    }
}
