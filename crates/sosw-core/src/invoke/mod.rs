//! The `Invoker` port: how a task reaches its worker.
//!
//! Adapters: AWS Lambda `Invoke` with `InvocationType=Event` (`sosw_aws::lambda::LambdaInvoker`),
//! in-process workers registered by name (`sosw_embedded::invoke::inprocess::InProcessInvoker`), and `command` labourers
//! that run a child process per task (`sosw_embedded::invoke::command::CommandInvoker`).
//!
//! The outcome decides what happens to the task's claim (see [`crate::essentials::orchestrator`]):
//! [`InvokeOutcome::Rejected`] releases it at once, [`InvokeOutcome::Unknown`] keeps it, so a task that
//! may be running is never invoked twice by sosw itself; if it never reports, it expires and is retried.

use async_trait::async_trait;
use serde_json::Value;

use crate::error::Result;

/// What became of one asynchronous invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvokeOutcome {
    /// The worker accepted the task (Lambda answered 202, the process started, ...).
    Accepted,
    /// The task definitely did not reach the worker (function missing, throttled beyond retries,
    /// payload rejected): its claim may be released at once.
    Rejected(String),
    /// Unknown whether the worker got it (timeout, connection dropped after sending): the claim must be
    /// kept, and the task expires and retries if the worker never reports.
    Unknown(String),
}

/// Invokes workers asynchronously.
#[async_trait]
pub trait Invoker: Send + Sync {
    /// Sends `payload` to `function` (a labourer's function name or ARN) without waiting for the work.
    /// Errors are reserved for the invoker itself being unusable; per-task results are outcomes.
    async fn invoke(&self, function: &str, payload: &Value) -> Result<InvokeOutcome>;
}

/// Where the real timeout of a worker function comes from (sosw 0.7's `max_duration`, read with Lambda
/// `GetFunctionConfiguration`). It sets how long an invoked task counts as running when the labourer's
/// config gives no `duration`.
#[async_trait]
pub trait WorkerTimeouts: Send + Sync {
    /// The timeout of `function` in seconds, or `None` when the function has none to report.
    async fn timeout_secs(&self, function: &str) -> Result<Option<u64>>;
}
