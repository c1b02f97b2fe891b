//! [`TaskCancel`]: closing a job's tasks as cancelled (`sosw cancel`).

use async_trait::async_trait;

use super::{ClosedStatus, MoveOutcome, TaskArchive};
use crate::error::Result;
use crate::task::Task;

/// Closing tasks as cancelled: moved to the closed table with the status key
/// `<labourer>_cancelled` ([`ClosedStatus::Cancelled`]) and `closed_at`.
#[async_trait]
pub trait TaskCancel: TaskArchive {
    /// Closes the queued live task `task` (as read: `greenfield < closed_at`, not completed) as
    /// cancelled, atomically, on the condition that the live row is unchanged since it was read (so a
    /// task an orchestrator claimed meanwhile is left to run: [`MoveOutcome::Conflict`]). A `task` that
    /// was not queued when read is a conflict too, and nothing moves.
    async fn cancel_queued(&self, task: &Task, closed_at: i64) -> Result<MoveOutcome> {
        if task.completed_at.is_some() || task.greenfield >= closed_at {
            return Ok(MoveOutcome::Conflict);
        }
        self.archive(task, ClosedStatus::Cancelled, closed_at).await
    }

    /// Moves the task `task` (as read from the retry table) to the closed table as cancelled,
    /// atomically, without its `desired_launch_time`. Conflict if the retry row is gone (the scavenger
    /// returned it to the queue, or another cancel got there first).
    async fn cancel_retry(&self, task: &Task, closed_at: i64) -> Result<MoveOutcome>;
}

/// A retry row as its cancelled closed row: `closed_at`, the status key, no `desired_launch_time`.
pub fn cancelled_row(task: &Task, closed_at: i64) -> Task {
    let mut closed = task.clone();
    closed.closed_at = Some(closed_at);
    closed.desired_launch_time = None;
    closed.extra.insert(
        super::CLOSED_STATUS_ATTRIBUTE.to_owned(),
        serde_json::Value::from(ClosedStatus::Cancelled.index_key(&task.labourer_id)),
    );
    closed
}
