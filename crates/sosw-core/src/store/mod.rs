//! The `TaskStore` port, split by capability so each essential takes only what it needs:
//!
//! | capability | used by |
//! |---|---|
//! | [`TaskQueue`] | scheduler (enqueue), orchestrator (next queued, queue by fairness key), CLI (queue length) |
//! | [`TaskLookup`] | everyone (get by id) |
//! | [`TaskClaims`] | orchestrator (claim, release, running count) |
//! | [`TaskReports`] | worker assistant (complete, fail) |
//! | [`TaskArchive`] | scavenger (list completed / expired, archive), ecology (closed sample) |
//! | [`TaskRetries`] | scavenger (move to retry, due retries, back to the queue) |
//! | [`TaskCancel`] | `sosw cancel` (close queued and waiting tasks as cancelled), closer |
//! | [`EcologyState`] | orchestrator (the shared rate log and controller state, by compare-and-set) |
//!
//! [`TaskStore`] is all of them. [`LabourerControl`] (`sosw pause`, `sosw resume`, every orchestrator)
//! is apart: on AWS it lives in the config table, not in the task tables. Two adapters implement it: DynamoDB with sosw 0.7's tables
//! (`sosw_aws::dynamodb::DynamoTaskStore`) and SQLite (`sosw_embedded::SqliteTaskStore`). Both
//! pass the same conformance suite (`sosw_testkit`).
//!
//! Outcomes that are part of normal operation (a claim lost to another orchestrator, a late report for
//! a task that is gone) are values of the `*Outcome` enums, never errors.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ecology::fair::FairnessKey;
use crate::error::{Error, Result};
use crate::task::{Markers, Task, TaskId, greenfield, json_kind, python_literal};

mod cancel;
mod control;
mod ecology;
mod fair;
mod jobs;
mod tables;
pub use cancel::{TaskCancel, cancelled_row};
pub use control::{LabourerControl, PausedLabourer};
pub use ecology::{
    AdaptiveRecord, Change, EcologyRecord, EcologyState, MAX_ECOLOGY_ATTEMPTS, OutcomeCounts,
    VersionedEcology, give_back_rate, rate_period_ms, take_rate, update_ecology,
};
pub use fair::{KeyedQueue, KeyedWork, fairness_unsupported, key_loads};
pub use jobs::{CreateJobOutcome, JobCounts, JobRecord, JobStatus, JobStore};
pub use tables::TableNames;

/// How [`TaskQueue::enqueue`] treats task ids that may already exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnqueueMode {
    /// The caller guarantees the ids are new (a job seen for the first time): write blindly, in
    /// batches. Writing an id that does exist overwrites it.
    Fresh,
    /// Skip every task whose id exists anywhere: live, waiting for retry, or closed. Used when resuming
    /// or resubmitting a job. Costs one batched read per batch.
    SkipExisting,
}

/// What [`TaskQueue::enqueue`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnqueueReport {
    /// Tasks written.
    pub written: usize,
    /// Tasks skipped because their id already existed ([`EnqueueMode::SkipExisting`] only).
    pub skipped_existing: usize,
    /// Write requests sent to the store (batch requests count once, retries of unprocessed items too).
    pub write_requests: usize,
}

/// The result of a claim (sosw 0.7's conditional `mark_task_invoked`).
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per call and matched at once; boxing the task would only add an allocation"
)]
pub enum ClaimOutcome {
    /// This caller now owns the invocation. Holds the task as it was *before* the claim (queued
    /// greenfield, attempts not yet incremented): exactly what the worker payload carries.
    Claimed(Task),
    /// The task was not queued any more (another orchestrator claimed it, it completed, or it is gone).
    AlreadyClaimed,
}

/// Statistics and results a worker sends with its report (sosw 0.7's `stats` and `result`, written as
/// `stat_<k>` and `result_<k>` attributes).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskReport {
    /// Written as `stat_<key>`.
    #[serde(default)]
    pub stats: BTreeMap<String, Value>,
    /// Written as `result_<key>`.
    #[serde(default)]
    pub result: BTreeMap<String, Value>,
    /// The worker's invocation event, sent back with a completion when it carries a claim receipt
    /// ([`crate::task::receipt`]); not written. A store that closes the task in one move rebuilds
    /// the claim from it instead of reading it.
    #[serde(skip)]
    pub invocation: Option<Value>,
}

impl TaskReport {
    /// The attributes this report adds to a row: `stat_<k>` and `result_<k>`.
    pub fn attributes(&self) -> impl Iterator<Item = (String, &Value)> {
        self.stats
            .iter()
            .map(|(k, v)| (format!("stat_{k}"), v))
            .chain(self.result.iter().map(|(k, v)| (format!("result_{k}"), v)))
    }

    /// Copies the report's attributes onto `task.extra`.
    pub fn apply_to(&self, task: &mut Task) {
        for (k, v) in self.attributes() {
            task.extra.insert(k, v.clone());
        }
    }
}

/// The result of a completion or failure report.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per call and matched at once; boxing the task would only add an allocation"
)]
pub enum ReportOutcome {
    /// The report was recorded. Holds the row as it is now.
    Recorded(Task),
    /// The task had already been reported completed: nothing changed (duplicate delivery).
    AlreadyCompleted,
    /// No live task has this id (archived, waiting for retry, or never existed): nothing changed, and no
    /// orphan row was created (sosw 0.7 created one, bug B10).
    NotFound,
}

/// The result of moving a row between tables (archive, retry, back to the queue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoveOutcome {
    /// Moved, atomically.
    Moved,
    /// Nothing moved: the source row is gone or changed since it was read (another scavenger, a late
    /// report, a claim). The caller re-reads if it cares.
    Conflict,
}

/// How a closed task ended (sosw 0.7's `labourer_id_task_status` suffix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedStatus {
    /// Completed by its worker: `<labourer>_1`.
    Completed,
    /// Gave up after `max_attempts` (or a non-retryable failure): `<labourer>_0`.
    Dead,
    /// Closed by `sosw cancel` before it ran (queued or waiting for retry), or instead of a retry of a
    /// cancelled job's task: `<labourer>_cancelled`. sosw 0.7 reads only `_1` and `_0` keys of its
    /// index, so it never sees these rows (not as completed, not as dead).
    Cancelled,
}

impl ClosedStatus {
    /// The closed table's `labourer_id_task_status` value.
    pub fn index_key(self, labourer_id: &str) -> String {
        match self {
            ClosedStatus::Completed => format!("{labourer_id}_1"),
            ClosedStatus::Dead => format!("{labourer_id}_0"),
            ClosedStatus::Cancelled => format!("{labourer_id}{CANCELLED_KEY_SUFFIX}"),
        }
    }
}

/// What ends the closed-table status key of a cancelled task: `<labourer>_cancelled`.
pub const CANCELLED_KEY_SUFFIX: &str = "_cancelled";

/// Queue operations: the scheduler's enqueue, the orchestrator's next queued tasks.
#[async_trait]
pub trait TaskQueue: Send + Sync {
    /// Writes `tasks` (each already carrying its greenfield) in batches. Validates every task first and
    /// writes none if one is invalid.
    async fn enqueue(&self, tasks: &[Task], mode: EnqueueMode) -> Result<EnqueueReport>;

    /// Up to `limit` queued tasks of `labourer_id` (greenfield `< now`, not completed), lowest greenfield
    /// first.
    async fn next_queued(&self, labourer_id: &str, now: i64, limit: usize) -> Result<Vec<Task>>;

    /// How many tasks of `labourer_id` are queued at `now`.
    async fn queue_length(&self, labourer_id: &str, now: i64) -> Result<u64>;

    /// [`TaskQueue::queue_length`], counting no further than `cap`: `cap` means `cap` or more. For a
    /// count repeated often (the orchestrator's `queue_length` metric after every run) on a store
    /// where a count costs in proportion to the queue (DynamoDB: the read units of every item
    /// counted). By default the whole count, then capped.
    async fn queue_length_up_to(&self, labourer_id: &str, now: i64, cap: u64) -> Result<u64> {
        Ok(self.queue_length(labourer_id, now).await?.min(cap))
    }

    /// The lowest queued greenfield of `labourer_id` (the queue head), if any.
    async fn oldest_queued_greenfield(&self, labourer_id: &str, now: i64) -> Result<Option<i64>>;

    /// The highest queued greenfield of `labourer_id` (the queue tail), if any.
    async fn newest_queued_greenfield(&self, labourer_id: &str, now: i64) -> Result<Option<i64>>;

    /// The open work of `labourer_id` by fairness key (`key` read from each task's payload,
    /// [`FairnessKey::key_of`]): for every key with tasks running (invoked after `markers.expired`, not
    /// completed) or queued (greenfield below `markers.start`, not completed), its running count and
    /// the head of its queue, at most `per_key` tasks, lowest greenfield first.
    ///
    /// Provided: refused with [`fairness_unsupported`], for stores without a per-key queue index (sosw
    /// 0.7's DynamoDB tables). The SQLite store answers it from its per-key index, the lean DynamoDB
    /// layout from its per-key queue partitions.
    async fn queue_by_key(
        &self,
        labourer_id: &str,
        key: &FairnessKey,
        markers: &Markers,
        per_key: usize,
    ) -> Result<KeyedQueue> {
        let _ = (markers, per_key);
        Err(fairness_unsupported("this store", labourer_id, key))
    }
}

/// Reading one task by id.
#[async_trait]
pub trait TaskLookup: Send + Sync {
    /// The live task (`sosw_tasks`) with this id, if any.
    async fn get_task(&self, task_id: &TaskId) -> Result<Option<Task>>;

    /// The closed task (`sosw_closed_tasks`) with this id, if any.
    async fn get_closed_task(&self, task_id: &TaskId) -> Result<Option<Task>>;

    /// The task waiting for retry (`sosw_retry_tasks`) with this id, if any.
    async fn get_retry_task(&self, labourer_id: &str, task_id: &TaskId) -> Result<Option<Task>>;
}

/// The orchestrator's operations.
#[async_trait]
pub trait TaskClaims: Send + Sync {
    /// Claims a task for invocation at `now`: sets `greenfield = now + Δ` and `attempts += 1` on the
    /// condition that the task exists, `greenfield < now` and it is not completed. Exactly one of any
    /// number of concurrent claimers of the same queued task gets [`ClaimOutcome::Claimed`].
    async fn claim(&self, task_id: &TaskId, now: i64) -> Result<ClaimOutcome>;

    /// Undoes a claim whose invocation definitely failed: restores the pre-claim greenfield and attempts
    /// of `claimed` (as returned in [`ClaimOutcome::Claimed`]), on the condition that the row still has
    /// the greenfield the claim at `claimed_at` gave it and is not completed. Returns whether it did.
    async fn release_claim(&self, claimed: &Task, claimed_at: i64) -> Result<bool>;

    /// How many tasks of `labourer_id` occupy a slot: invoked after `markers.expired` and not completed.
    /// Completed tasks do not count, archived or not.
    async fn count_running(&self, labourer_id: &str, markers: &Markers) -> Result<u64>;

    /// Whether [`TaskClaims::count_running_many`] costs less than one
    /// [`TaskClaims::count_running`] per labourer (the store reads the running tasks of every
    /// labourer at once). The orchestrator then counts all its labourers at the start of a round;
    /// otherwise each just before its turn. `false` unless a store says so.
    fn counts_running_together(&self) -> bool {
        false
    }

    /// [`TaskClaims::count_running`] of each of `labourers` (id and markers), by id. Provided: one
    /// `count_running` per labourer.
    async fn count_running_many(
        &self,
        labourers: &[(String, Markers)],
    ) -> Result<HashMap<String, u64>> {
        let mut counts = HashMap::with_capacity(labourers.len());
        for (labourer_id, markers) in labourers {
            let running = self.count_running(labourer_id, markers).await?;
            counts.insert(labourer_id.clone(), running);
        }
        Ok(counts)
    }

    /// The receipt of the claim of `task_id` this store has just made, for the worker's event
    /// ([`crate::task::receipt`]): a store that closes a completion in one move needs no read of the
    /// claim when the worker sends it back. Taken once: a second call gives `None`. Provided: `None`
    /// (no receipts).
    fn claim_receipt(&self, task_id: &TaskId) -> Option<Value> {
        let _ = task_id;
        None
    }
}

/// The worker assistant's operations.
#[async_trait]
pub trait TaskReports: Send + Sync {
    /// Marks a live task completed at `now` (`completed_at = now`) with the report's `stat_*` and
    /// `result_*` attributes. Conditional: a missing task gives [`ReportOutcome::NotFound`] and an already
    /// completed one [`ReportOutcome::AlreadyCompleted`], both without writing. A task that was back in
    /// the queue when the report came is also taken out of it (its greenfield set to `now + Δ`), so it
    /// does not run again.
    async fn complete(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<ReportOutcome>;

    /// [`TaskReports::complete`], and, where the store can do both in one move for fewer writes, the
    /// archive of the completed task as [`ClosedStatus::Completed`] at `now` too: then the second
    /// value is `Some(MoveOutcome::Moved)` and the task is closed; `None` leaves the archive to the
    /// caller (`TaskArchive::archive` with the recorded task), as after `complete`. Provided:
    /// `complete` alone. The lean DynamoDB layout overrides it when its `close_on_completion` is on.
    async fn complete_and_close(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<(ReportOutcome, Option<MoveOutcome>)> {
        Ok((self.complete(task_id, report, now).await?, None))
    }

    /// Records a failure report: `failed_attempts += 1` plus the report's attributes, on a live task that
    /// is not completed. Outcomes as for [`TaskReports::complete`].
    async fn record_failure(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<ReportOutcome>;
}

/// The scavenger's archive operations and the closed-task sample.
#[async_trait]
pub trait TaskArchive: Send + Sync {
    /// Completed live tasks of `labourer_id`, at most `limit`.
    async fn list_completed(&self, labourer_id: &str, now: i64, limit: usize) -> Result<Vec<Task>>;

    /// Expired live tasks of `labourer_id` (`markers.start <= greenfield <= markers.expired`, not
    /// completed), at most `limit`.
    async fn list_expired(
        &self,
        labourer_id: &str,
        markers: &Markers,
        limit: usize,
    ) -> Result<Vec<Task>>;

    /// Whether [`TaskArchive::list_closable_many`] costs less than a
    /// [`TaskArchive::list_completed`] and a [`TaskArchive::list_expired`] per labourer (the store
    /// reads the claimed tasks of every labourer at once). The scavenger then lists every labourer's
    /// first pages at the start of its run. `false` unless a store says so.
    fn lists_closable_together(&self) -> bool {
        false
    }

    /// The first [`TaskArchive::list_completed`] and [`TaskArchive::list_expired`] pages (at most
    /// `limit` each) of each of `labourers` (id and markers; `markers.start` is now), by id. Provided:
    /// one of each per labourer.
    async fn list_closable_many(
        &self,
        labourers: &[(String, Markers)],
        limit: usize,
    ) -> Result<HashMap<String, Closable>> {
        let mut lists = HashMap::with_capacity(labourers.len());
        for (labourer_id, markers) in labourers {
            let closable = Closable {
                completed: self
                    .list_completed(labourer_id, markers.start, limit)
                    .await?,
                expired: self.list_expired(labourer_id, markers, limit).await?,
            };
            lists.insert(labourer_id.clone(), closable);
        }
        Ok(lists)
    }

    /// Moves `task` (as read from the live table) to the closed table atomically, adding `closed_at` and
    /// `labourer_id_task_status`, on the condition that the live row is unchanged (same greenfield and
    /// completion mark). The closed row's payload is JSON text.
    async fn archive(
        &self,
        task: &Task,
        status: ClosedStatus,
        closed_at: i64,
    ) -> Result<MoveOutcome>;

    /// Up to `limit` closed tasks of `labourer_id` with `status`, newest `closed_at` first. For the
    /// duration estimate: only `task_id`, `labourer_id`, `greenfield`, `attempts`, `completed_at` and
    /// `closed_at` are guaranteed (sosw 0.7's closed-table index projects no more).
    async fn closed_sample(
        &self,
        labourer_id: &str,
        status: ClosedStatus,
        limit: usize,
    ) -> Result<Vec<Task>>;

    /// How many closed tasks of `labourer_id` with `status` there are, counting at most `limit`
    /// (`sosw queue`, the dashboard). By default the length of [`closed_sample`](Self::closed_sample);
    /// a store that can count without reading the tasks does.
    async fn count_closed(
        &self,
        labourer_id: &str,
        status: ClosedStatus,
        limit: usize,
    ) -> Result<u64> {
        let sample = self.closed_sample(labourer_id, status, limit).await?;
        Ok(sample.len() as u64)
    }

    /// Moves the dead task `task` (as read from the closed table) back to the live table as a fresh
    /// task, atomically: `greenfield` as given, `attempts` 0, without `completed_at`, `closed_at`,
    /// `desired_launch_time` and the closed status key (`sosw redrive`). Conflict if the closed row is
    /// gone or is not dead, or a live row with this id exists. The payload written is the one
    /// [`restore_dead_payload`] gives (sosw 0.7's Python repr read back into an object); a payload it
    /// refuses is an error and nothing moves.
    async fn redrive(&self, task: &Task, greenfield: i64) -> Result<MoveOutcome>;
}

/// A labourer's live tasks a scavenger run closes ([`TaskArchive::list_closable_many`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Closable {
    /// Completed, to archive ([`TaskArchive::list_completed`]).
    pub completed: Vec<Task>,
    /// Expired, to retry or close as dead ([`TaskArchive::list_expired`]).
    pub expired: Vec<Task>,
}

/// The retry table's operations.
#[async_trait]
pub trait TaskRetries: Send + Sync {
    /// Moves `task` (as read from the live table) to the retry table with `desired_launch_time`,
    /// atomically, on the condition that the live row is unchanged (same greenfield and completion mark).
    async fn move_to_retry(&self, task: &Task, desired_launch_time: i64) -> Result<MoveOutcome>;

    /// Up to `limit` tasks of `labourer_id` waiting for retry whose `desired_launch_time <= now`, earliest
    /// first.
    async fn due_retries(&self, labourer_id: &str, now: i64, limit: usize) -> Result<Vec<Task>>;

    /// Moves `task` (as read from the retry table) back to the live table with `greenfield`, without its
    /// `desired_launch_time`, atomically. Conflict if the retry row is gone or a live row with this id
    /// exists.
    async fn return_to_queue(&self, task: &Task, greenfield: i64) -> Result<MoveOutcome>;

    /// How many tasks of `labourer_id` wait in the retry table (due or not).
    async fn retry_length(&self, labourer_id: &str) -> Result<u64>;
}

/// Gives a dead task's closed row back the payload object a worker reads, or refuses with an error naming
/// the task. A JSON object is kept as it is. sosw 0.7 stored a closed row's payload as the Python repr of
/// the dict (`{'word': 'dead', 'count': 2}`, bug B9): that text is read back with a literal parser
/// ([`crate::task::python_literal`], which evaluates nothing) into the object it was, key order included.
/// Anything that does not give an object is refused, so no unreadable payload is ever requeued. Both
/// [`TaskArchive::redrive`] implementations call it on the row they write, and the redrive essential on
/// every task before moving any.
pub fn restore_dead_payload(task: &mut Task) -> Result<()> {
    let refuse = |why: String| {
        Error::invalid(
            "redrive",
            format!(
                "task `{}` was not redriven: its closed row's payload {why}, so a worker could not read \
                 it. Write the payload as a JSON object into that row of the closed table, then redrive \
                 the task again",
                task.task_id
            ),
        )
    };
    let restored = match &task.payload {
        Value::Object(_) => return Ok(()),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => Value::Object(object),
            Ok(other) => {
                return Err(refuse(format!(
                    "is JSON text of {}, not of an object",
                    json_kind(&other)
                )));
            }
            Err(_) => match python_literal::parse(text) {
                Ok(Value::Object(object)) => Value::Object(object),
                Ok(other) => {
                    return Err(refuse(format!(
                        "is a Python literal of {}, not of a dict",
                        json_kind(&other)
                    )));
                }
                Err(err) => {
                    return Err(refuse(format!(
                        "is neither JSON nor a Python dict literal as sosw 0.7 wrote them ({err})"
                    )));
                }
            },
        },
        other => return Err(refuse(format!("is {}, not an object", json_kind(other)))),
    };
    task.payload = restored;
    Ok(())
}

/// Turns a dead task's closed row into a fresh queued task with `greenfield` (what
/// [`TaskArchive::redrive`] writes): no attempts, no completion, no closing marks.
pub fn fresh_from_dead(task: &mut Task, greenfield: i64) {
    task.greenfield = greenfield;
    task.attempts = 0;
    task.completed_at = None;
    task.closed_at = None;
    task.desired_launch_time = None;
    task.extra.remove(CLOSED_STATUS_ATTRIBUTE);
}

/// The closed-table attribute holding `<labourer_id>_<status>` (sosw 0.7's status index key).
pub const CLOSED_STATUS_ATTRIBUTE: &str = "labourer_id_task_status";

/// Every capability: what a store adapter implements.
pub trait TaskStore:
    TaskQueue
    + TaskLookup
    + TaskClaims
    + TaskReports
    + TaskArchive
    + TaskRetries
    + TaskCancel
    + EcologyState
{
}

impl<T> TaskStore for T where
    T: TaskQueue
        + TaskLookup
        + TaskClaims
        + TaskReports
        + TaskArchive
        + TaskRetries
        + TaskCancel
        + EcologyState
{
}

/// Moves up to `limit` due retries of `labourer_id` back to the queue ahead of its head, as sosw 0.7
/// does: one read of the queue head, then greenfields `head - 1`, `head - 2`, ... in the order the
/// retries are due. Returns how many moved.
pub async fn requeue_due_retries<S>(
    store: &S,
    labourer_id: &str,
    now: i64,
    limit: usize,
) -> Result<usize>
where
    S: TaskQueue + TaskRetries + ?Sized,
{
    let due = store.due_retries(labourer_id, now, limit).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let head = store.oldest_queued_greenfield(labourer_id, now).await?;
    let mut moved = 0;
    for (task, g) in due.iter().zip(greenfield::retry_sequence(head, due.len())) {
        if store.return_to_queue(task, g).await? == MoveOutcome::Moved {
            moved += 1;
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn closed_status_index_keys_are_sosw_07s() {
        assert_eq!(ClosedStatus::Completed.index_key("w1"), "w1_1");
        assert_eq!(ClosedStatus::Dead.index_key("w1"), "w1_0");
        assert_eq!(ClosedStatus::Cancelled.index_key("w1"), "w1_cancelled");
    }

    #[test]
    fn report_attributes_are_prefixed() {
        let report: TaskReport =
            serde_json::from_value(json!({"stats": {"rows": 3}, "result": {"ok": true}}))
                .expect("parses");
        let mut task = Task::new("t", "w", json!({}), 2000, 0.0);
        report.apply_to(&mut task);
        assert_eq!(task.extra.get("stat_rows"), Some(&json!(3)));
        assert_eq!(task.extra.get("result_ok"), Some(&json!(true)));
    }
}

#[cfg(test)]
mod restore_tests {
    use serde_json::json;

    use super::*;

    /// Closed items written by Python sosw 0.7.47's own conversions (`scripts/sosw07_closed_rows.py`), each
    /// beside the JSON text its payload was created from.
    const SOSW07_CLOSED_ROWS: &str = include_str!("../task/testdata/sosw-0.7.47-closed-rows.json");

    fn dead(payload: Value) -> Task {
        Task::new("dead-1", "w", payload, 1000, 0.0)
    }

    #[test]
    fn every_payload_sosw_07_archived_reads_back_as_the_object_it_was() {
        let rows: Vec<Value> = serde_json::from_str(SOSW07_CLOSED_ROWS).expect("fixture is JSON");
        assert!(rows.len() >= 6, "{} rows", rows.len());
        for row in rows {
            let stored = row["closed_item"]["payload"]["S"]
                .as_str()
                .expect("sosw 0.7 stored the payload as S");
            assert!(
                serde_json::from_str::<Value>(stored).is_err() || stored == "{}",
                "the fixture shows B9: {stored}"
            );
            let mut task = dead(Value::String(stored.to_owned()));
            restore_dead_payload(&mut task).expect("restores");
            let original: Value =
                serde_json::from_str(row["payload_json"].as_str().expect("original JSON text"))
                    .expect("original is JSON");
            assert_eq!(
                serde_json::to_string(&task.payload).expect("JSON"),
                serde_json::to_string(&original).expect("JSON"),
                "{stored}"
            );
        }
    }

    #[test]
    fn objects_and_json_text_are_kept_and_the_rest_refused_naming_the_task() {
        let mut task = dead(json!({"a": 1}));
        restore_dead_payload(&mut task).expect("an object");
        assert_eq!(task.payload, json!({"a": 1}));
        let mut task = dead(json!("{\"b\": 2}"));
        restore_dead_payload(&mut task).expect("JSON text of an object");
        assert_eq!(task.payload, json!({"b": 2}));
        for bad in [
            json!("[1, 2]"),
            json!("['a']"),
            json!("'text'"),
            json!("{'a': __import__('os')}"),
            json!("{'a': 1"),
            json!("not a payload"),
            json!(7),
            json!(null),
            json!([1]),
        ] {
            let mut task = dead(bad.clone());
            let err = restore_dead_payload(&mut task).expect_err("refused");
            let msg = err.to_string();
            assert!(
                msg.contains("dead-1") && msg.contains("not redriven"),
                "{bad}: {msg}"
            );
            assert_eq!(task.payload, bad, "a refused payload is left as it was");
        }
    }
}
