//! The `Invoker` port: how a task reaches its worker.
//!
//! Adapters: AWS Lambda `Invoke` with `InvocationType=Event` ([`crate::aws`]), in-process workers
//! registered by name, and `command` labourers that run a child process per task.

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
