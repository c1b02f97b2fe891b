//! Where a worker's reports go: the [`Reporter`] port and its in-process adapter.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::essentials::worker_assistant::{AssistantRequest, WorkerAssistant};
use crate::processor::Stats;
use crate::task::TaskId;

/// Delivers a worker's completion and failure reports.
#[async_trait]
pub trait Reporter: Send + Sync {
    /// Delivers one report. `Ok` means the worker assistant has it (or, for a fire-and-forget
    /// adapter, that it was accepted for delivery); anything else is an error, never swallowed.
    async fn report(&self, request: &AssistantRequest) -> Result<()>;

    /// Whether the task is already completed or closed, if this reporter can see the store (`None`
    /// when it cannot tell).
    async fn already_closed(&self, task_id: &TaskId) -> Result<Option<bool>> {
        let _ = task_id;
        Ok(None)
    }
}

/// Reports straight to the store by running the worker assistant's logic in-process: the same
/// conditional writes, retries, dead letters, job counters and notifications as the Lambda.
#[derive(Debug, Clone)]
pub struct StoreReporter {
    assistant: Arc<WorkerAssistant>,
}

impl StoreReporter {
    /// Reports through `assistant`.
    pub fn new(assistant: Arc<WorkerAssistant>) -> Self {
        StoreReporter { assistant }
    }
}

#[async_trait]
impl Reporter for StoreReporter {
    async fn report(&self, request: &AssistantRequest) -> Result<()> {
        let reply = self.assistant.handle(request, &mut Stats::new()).await?;
        tracing::debug!(task_id = %request.task_id, reply = ?reply, "reported in-process");
        Ok(())
    }

    async fn already_closed(&self, task_id: &TaskId) -> Result<Option<bool>> {
        let store = self.assistant.store();
        if let Some(task) = store.get_task(task_id).await? {
            return Ok(Some(task.completed_at.is_some()));
        }
        Ok(Some(store.get_closed_task(task_id).await?.is_some()))
    }
}
