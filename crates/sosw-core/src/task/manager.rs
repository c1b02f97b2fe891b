//! `TaskManager`: the one place where the task operations and the greenfield rules meet, over whichever
//! store.
//!
//! sosw 0.7's `TaskManager` held the task table's client and every operation on tasks. Here the store is
//! split into capabilities ([`TaskQueue`], [`TaskLookup`], [`TaskClaims`], [`TaskReports`],
//! [`TaskArchive`], [`TaskRetries`]) so each essential asks for only what it needs, and `TaskManager<S>`
//! is generic over them: each group of methods exists when `S` has the capability it needs. A
//! `TaskManager<dyn TaskQueue>` (the scheduler's) can create tasks but not archive them; a
//! `TaskManager<SqliteTaskStore>` or `TaskManager<DynamoTaskStore>` can do everything.
//!
//! The essentials (scheduler, orchestrator, worker assistant, scavenger) make their task store calls
//! through a `TaskManager`, so user code calling it takes the same path they do. Method names follow
//! sosw 0.7's where the operation is the same; the migration guide
//! (`docs/migrate-from-python-sosw.md`) lists each sosw 0.7 method with its counterpart.
//!
//! Times are passed in (`now`, Unix seconds) rather than read from a clock, so one run uses one `now`
//! throughout, as sosw 0.7's labourer markers did.
//!
//! ```
//! use std::sync::Arc;
//! use serde_json::json;
//! use sosw_core::store::TaskQueue;
//! use sosw_core::task::TaskManager;
//!
//! async fn demo<S: TaskQueue + ?Sized>(store: Arc<S>) -> sosw_core::Result<()> {
//!     let tasks = TaskManager::new(store);
//!     let now = 1_700_000_000;
//!     let task = tasks.create_task("my_worker", json!({"word": "hello"}), now).await?;
//!     let next = tasks.get_next_for_labourer("my_worker", now, 10).await?;
//!     assert_eq!(next[0].task_id, task.task_id);
//!     Ok(())
//! }
//! ```

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::Result;
use crate::invoke::{InvokeOutcome, Invoker};
use crate::store::{
    ClaimOutcome, ClosedStatus, EnqueueMode, EnqueueReport, MoveOutcome, ReportOutcome,
    TaskArchive, TaskClaims, TaskLookup, TaskQueue, TaskReport, TaskReports, TaskRetries,
    requeue_due_retries,
};
use crate::task::greenfield::{Markers, next_queued};
use crate::task::{Labourer, Task, TaskId};

/// Task operations over the store `S` (any store, or a `dyn` of its capabilities). Cloning shares the
/// store.
pub struct TaskManager<S: ?Sized> {
    store: Arc<S>,
}

impl<S: ?Sized> Clone for TaskManager<S> {
    fn clone(&self) -> Self {
        TaskManager {
            store: Arc::clone(&self.store),
        }
    }
}

impl<S: ?Sized> fmt::Debug for TaskManager<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskManager").finish_non_exhaustive()
    }
}

/// What [`TaskManager::invoke_task`] did with one queued task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskInvocation {
    /// The task was not queued any more (another orchestrator claimed it first, or it completed or
    /// went): nothing was invoked.
    Skipped,
    /// Claimed and accepted by the worker.
    Invoked,
    /// Claimed and sent, but whether the worker got it is unknown: the claim is kept, so the task
    /// expires and is retried if the worker never reports.
    Unknown(String),
    /// The worker refused it: the claim was released and the task is back at its place in the queue.
    Released(String),
    /// The worker refused it and the release failed or was refused (the row changed meanwhile): the
    /// claim stands and the task expires as an unknown one would.
    ReleaseFailed(String),
}

/// sosw 0.7's `construct_payload_for_task`: an object is the payload; a string is read as JSON text of
/// an object, else wrapped as `{"payload": s}`; anything else is wrapped as `{"payload": v}`.
pub fn construct_payload(payload: Value) -> Value {
    match payload {
        Value::Object(_) => payload,
        Value::String(text) => match serde_json::from_str::<Value>(&text) {
            Ok(object @ Value::Object(_)) => object,
            _ => wrap(Value::String(text)),
        },
        other => wrap(other),
    }
}

fn wrap(value: Value) -> Value {
    let mut map = Map::new();
    map.insert("payload".to_owned(), value);
    Value::Object(map)
}

impl<S: ?Sized> TaskManager<S> {
    /// A manager over `store`.
    pub fn new(store: Arc<S>) -> Self {
        TaskManager { store }
    }

    /// The store underneath.
    pub fn store(&self) -> &Arc<S> {
        &self.store
    }

    /// The run markers (`start`, `invoked`, `expired`) of `labourer` at `now`: sosw 0.7's
    /// `Labourer.start/invoked/expired`, with the labourer's effective duration and cooldown.
    pub fn markers_for(&self, labourer: &Labourer, now: i64) -> Markers {
        Markers::for_labourer(now, labourer)
    }
}

/// Creating tasks and reading the queue.
impl<S: TaskQueue + ?Sized> TaskManager<S> {
    /// Creates one task of `labourer_id` at the tail of its queue (greenfield = newest queued + 1000,
    /// 2000 in an empty queue) with a new random id, `attempts` 0 and `created_at = now`, and returns
    /// it. `payload` goes through [`construct_payload`] as in sosw 0.7. One read and one write: to
    /// create many tasks, use [`TaskManager::create_tasks`] (the scheduler does).
    pub async fn create_task(&self, labourer_id: &str, payload: Value, now: i64) -> Result<Task> {
        let newest = self
            .store
            .newest_queued_greenfield(labourer_id, now)
            .await?;
        let task = Task::new(
            TaskId::generate().as_str(),
            labourer_id,
            construct_payload(payload),
            next_queued(newest),
            now as f64,
        );
        self.store
            .enqueue(std::slice::from_ref(&task), EnqueueMode::Fresh)
            .await?;
        Ok(task)
    }

    /// Writes `tasks`, each already carrying its greenfield, in batches (the scheduler's path).
    /// Validates every task first and writes none if one is invalid.
    pub async fn create_tasks(&self, tasks: &[Task], mode: EnqueueMode) -> Result<EnqueueReport> {
        self.store.enqueue(tasks, mode).await
    }

    /// Up to `limit` queued tasks of `labourer_id` at `now`, lowest greenfield first (the next to
    /// invoke).
    pub async fn get_next_for_labourer(
        &self,
        labourer_id: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<Task>> {
        self.store.next_queued(labourer_id, now, limit).await
    }

    /// How many tasks of `labourer_id` are queued at `now`.
    pub async fn get_length_of_queue_for_labourer(
        &self,
        labourer_id: &str,
        now: i64,
    ) -> Result<u64> {
        self.store.queue_length(labourer_id, now).await
    }

    /// The lowest queued greenfield of `labourer_id` (the queue head), `None` for an empty queue
    /// (sosw 0.7 returned 1000 there; [`crate::task::greenfield::retry_sequence`] and
    /// [`next_queued`] treat `None` exactly so).
    pub async fn get_oldest_greenfield_for_labourer(
        &self,
        labourer_id: &str,
        now: i64,
    ) -> Result<Option<i64>> {
        self.store.oldest_queued_greenfield(labourer_id, now).await
    }

    /// The highest queued greenfield of `labourer_id` (the queue tail), `None` for an empty queue.
    pub async fn get_newest_greenfield_for_labourer(
        &self,
        labourer_id: &str,
        now: i64,
    ) -> Result<Option<i64>> {
        self.store.newest_queued_greenfield(labourer_id, now).await
    }
}

/// Reading one task by id.
impl<S: TaskLookup + ?Sized> TaskManager<S> {
    /// The live task (`sosw_tasks`) with this id.
    pub async fn get_task_by_id(&self, task_id: &TaskId) -> Result<Option<Task>> {
        self.store.get_task(task_id).await
    }

    /// The closed task (`sosw_closed_tasks`) with this id.
    pub async fn get_closed_task_by_id(&self, task_id: &TaskId) -> Result<Option<Task>> {
        self.store.get_closed_task(task_id).await
    }

    /// The task of `labourer_id` waiting for retry (`sosw_retry_tasks`) with this id.
    pub async fn get_retry_task_by_id(
        &self,
        labourer_id: &str,
        task_id: &TaskId,
    ) -> Result<Option<Task>> {
        self.store.get_retry_task(labourer_id, task_id).await
    }
}

/// Claims, invocations and the running count (the orchestrator's side).
impl<S: TaskClaims + ?Sized> TaskManager<S> {
    /// sosw 0.7's conditional `mark_task_invoked`: greenfield = now + Δ and attempts + 1 if the task is
    /// queued and not completed. Exactly one of any number of concurrent callers gets
    /// [`ClaimOutcome::Claimed`], holding the task as it was before the claim.
    pub async fn mark_task_invoked(&self, task_id: &TaskId, now: i64) -> Result<ClaimOutcome> {
        self.store.claim(task_id, now).await
    }

    /// Undoes a claim made at `claimed_at` whose invocation definitely failed (the task back at its
    /// place in the queue, attempts restored). Returns whether it did; not if the row changed since.
    pub async fn release_claim(&self, claimed: &Task, claimed_at: i64) -> Result<bool> {
        self.store.release_claim(claimed, claimed_at).await
    }

    /// How many tasks of `labourer_id` occupy a slot at `markers`: invoked after `markers.expired` and
    /// not completed.
    pub async fn get_count_of_running_tasks_for_labourer(
        &self,
        labourer_id: &str,
        markers: &Markers,
    ) -> Result<u64> {
        self.store.count_running(labourer_id, markers).await
    }

    /// Whether the store counts the running tasks of several labourers more cheaply together
    /// ([`crate::store::TaskClaims::counts_running_together`]).
    pub fn counts_running_together(&self) -> bool {
        self.store.counts_running_together()
    }

    /// [`TaskManager::get_count_of_running_tasks_for_labourer`] of each of `labourers`, by id, in one
    /// go where the store can.
    pub async fn get_counts_of_running_tasks(
        &self,
        labourers: &[(String, Markers)],
    ) -> Result<std::collections::HashMap<String, u64>> {
        self.store.count_running_many(labourers).await
    }

    /// sosw 0.7's `invoke_task`: claims the queued task `task_id` at `now` and sends its worker payload
    /// (the pre-claim row, [`Task::worker_payload`], with the store's claim receipt under `sosw_claim`
    /// when it gives one: [`TaskClaims::claim_receipt`]) to `labourer`'s function through `invoker`. A
    /// refused invocation releases the claim at once; an unknown one keeps it, so sosw never invokes a
    /// task twice of its own doubt. Errors are the claim's; the invoker's own errors count as unknown.
    pub async fn invoke_task(
        &self,
        invoker: &dyn Invoker,
        labourer: &Labourer,
        task_id: &TaskId,
        now: i64,
    ) -> Result<TaskInvocation> {
        let claimed = match self.mark_task_invoked(task_id, now).await? {
            ClaimOutcome::Claimed(task) => task,
            ClaimOutcome::AlreadyClaimed => return Ok(TaskInvocation::Skipped),
        };
        let mut payload = claimed.worker_payload();
        if let (Some(receipt), Some(event)) =
            (self.store.claim_receipt(task_id), payload.as_object_mut())
        {
            event.insert(super::receipt::CLAIM_RECEIPT_KEY.to_owned(), receipt);
        }
        Ok(match invoker.invoke(labourer.function(), &payload).await {
            Ok(InvokeOutcome::Accepted) => TaskInvocation::Invoked,
            Ok(InvokeOutcome::Unknown(why)) => TaskInvocation::Unknown(why),
            Err(e) => TaskInvocation::Unknown(e.to_string()),
            Ok(InvokeOutcome::Rejected(why)) => match self.release_claim(&claimed, now).await {
                Ok(true) => TaskInvocation::Released(why),
                Ok(false) => TaskInvocation::ReleaseFailed(format!(
                    "{why}; the release was refused (the task changed)"
                )),
                Err(e) => TaskInvocation::ReleaseFailed(format!("{why}; the release failed: {e}")),
            },
        })
    }
}

/// Reports from workers (the worker assistant's side).
impl<S: TaskReports + ?Sized> TaskManager<S> {
    /// Marks a live task completed at `now` with the report's `stat_*` / `result_*` attributes. A task
    /// that is not live is [`ReportOutcome::NotFound`] and nothing is written (sosw 0.7 created an
    /// orphan row, B10).
    pub async fn mark_task_completed(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<ReportOutcome> {
        self.store.complete(task_id, report, now).await
    }

    /// [`TaskManager::mark_task_completed`], closing the task too where the store does both in one
    /// move ([`TaskReports::complete_and_close`]): `Some(Moved)` when it did.
    pub async fn mark_task_completed_and_close(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<(ReportOutcome, Option<MoveOutcome>)> {
        self.store.complete_and_close(task_id, report, now).await
    }

    /// Records a failure report on a live, not completed task: `failed_attempts + 1` and the report's
    /// attributes.
    pub async fn mark_task_failed(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<ReportOutcome> {
        self.store.record_failure(task_id, report, now).await
    }
}

/// Completed, expired and closed tasks (the scavenger's side).
impl<S: TaskArchive + ?Sized> TaskManager<S> {
    /// Completed live tasks of `labourer_id`, at most `limit`.
    pub async fn get_completed_tasks_for_labourer(
        &self,
        labourer_id: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<Task>> {
        self.store.list_completed(labourer_id, now, limit).await
    }

    /// Whether the store lists the closable tasks of several labourers more cheaply together
    /// ([`crate::store::TaskArchive::lists_closable_together`]).
    pub fn lists_closable_together(&self) -> bool {
        self.store.lists_closable_together()
    }

    /// The first pages of completed and of expired tasks of each of `labourers`, by id, in one go
    /// where the store can ([`crate::store::TaskArchive::list_closable_many`]).
    pub async fn get_closable_tasks(
        &self,
        labourers: &[(String, Markers)],
        limit: usize,
    ) -> Result<std::collections::HashMap<String, crate::store::Closable>> {
        self.store.list_closable_many(labourers, limit).await
    }

    /// Expired live tasks of `labourer_id` at `markers` (invoked, not completed, past duration +
    /// cooldown), at most `limit`.
    pub async fn get_expired_tasks_for_labourer(
        &self,
        labourer_id: &str,
        markers: &Markers,
        limit: usize,
    ) -> Result<Vec<Task>> {
        self.store.list_expired(labourer_id, markers, limit).await
    }

    /// Moves `task` (as read from the live table) to the closed table as `status` at `closed_at`, in
    /// one conditional transaction (sosw 0.7 used two calls, B8): [`MoveOutcome::Conflict`] if the row
    /// changed since it was read.
    pub async fn archive_task(
        &self,
        task: &Task,
        status: ClosedStatus,
        closed_at: i64,
    ) -> Result<MoveOutcome> {
        self.store.archive(task, status, closed_at).await
    }

    /// Up to `limit` closed tasks of `labourer_id` with `status`, newest first (only the keys, times
    /// and attempts are guaranteed: what sosw 0.7's closed-table index projects).
    pub async fn get_closed_tasks_for_labourer(
        &self,
        labourer_id: &str,
        status: ClosedStatus,
        limit: usize,
    ) -> Result<Vec<Task>> {
        self.store.closed_sample(labourer_id, status, limit).await
    }

    /// sosw 0.7's `get_average_labourer_duration`: the average run time of `labourer`'s newest
    /// `sample_size` closed tasks in seconds (newest, not oldest: B7), `None` without any.
    pub async fn get_average_labourer_duration(
        &self,
        labourer: &Labourer,
        sample_size: usize,
    ) -> Result<Option<u64>> {
        crate::ecology::average_duration(&*self.store, labourer, sample_size).await
    }

    /// Moves a dead task (as read from the closed table) back to the queue with `greenfield`, its
    /// payload restored as an object ([`crate::store::restore_dead_payload`]).
    pub async fn redrive_task(&self, task: &Task, greenfield: i64) -> Result<MoveOutcome> {
        self.store.redrive(task, greenfield).await
    }
}

/// The retry table.
impl<S: TaskRetries + ?Sized> TaskManager<S> {
    /// Moves `task` (as read from the live table) to the retry table, due at `desired_launch_time`, in
    /// one conditional transaction.
    pub async fn move_task_to_retry_table(
        &self,
        task: &Task,
        desired_launch_time: i64,
    ) -> Result<MoveOutcome> {
        self.store.move_to_retry(task, desired_launch_time).await
    }

    /// Up to `limit` tasks of `labourer_id` waiting for retry and due at `now`, earliest first.
    pub async fn get_tasks_to_retry_for_labourer(
        &self,
        labourer_id: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<Task>> {
        self.store.due_retries(labourer_id, now, limit).await
    }

    /// sosw 0.7's `retry_task`: moves `task` (as read from the retry table) back to the live table with
    /// `greenfield`, in one transaction.
    pub async fn retry_task(&self, task: &Task, greenfield: i64) -> Result<MoveOutcome> {
        self.store.return_to_queue(task, greenfield).await
    }

    /// How many tasks of `labourer_id` wait in the retry table, due or not.
    pub async fn get_length_of_retry_queue_for_labourer(&self, labourer_id: &str) -> Result<u64> {
        self.store.retry_length(labourer_id).await
    }
}

/// Retries back in the queue: needs both the queue head and the retry table.
impl<S: TaskQueue + TaskRetries + ?Sized> TaskManager<S> {
    /// Moves up to `limit` due retries of `labourer_id` back to the queue ahead of its head (greenfields
    /// `head - 1`, `head - 2`, ... as sosw 0.7's scavenger gives them). Returns how many moved.
    pub async fn retry_due_tasks(
        &self,
        labourer_id: &str,
        now: i64,
        limit: usize,
    ) -> Result<usize> {
        requeue_due_retries(&*self.store, labourer_id, now, limit).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn payloads_are_constructed_as_sosw_07_did() {
        assert_eq!(construct_payload(json!({"a": 1})), json!({"a": 1}));
        assert_eq!(construct_payload(json!("{\"a\": 1}")), json!({"a": 1}));
        assert_eq!(construct_payload(json!("text")), json!({"payload": "text"}));
        assert_eq!(construct_payload(json!("[1]")), json!({"payload": "[1]"}));
        assert_eq!(construct_payload(json!(7)), json!({"payload": 7}));
        assert_eq!(construct_payload(json!([1, 2])), json!({"payload": [1, 2]}));
    }
}
