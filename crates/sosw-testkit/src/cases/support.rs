//! What the cases share: their clock values, id scopes and short forms of common steps.

use serde_json::{Value, json};

use sosw_core::store::{
    ClaimOutcome, ClosedStatus, EnqueueMode, MoveOutcome, ReportOutcome, TaskReport, TaskStore,
};
use sosw_core::task::greenfield::INVOCATION_DELTA;
use sosw_core::task::{Task, TaskId};

/// The "now" of every case.
pub(super) const NOW: i64 = 1_700_000_000;

/// The expiry window (duration + cooldown) the cases use: sosw 0.7's 900 + 300.
pub(super) const WINDOW: u64 = 1200;

/// A time a year and a bit before [`NOW`]: a task invoked then has a greenfield below `NOW` again.
pub(super) const YEAR_AGO: i64 = NOW - INVOCATION_DELTA - 500;

/// The ids of one case run: a labourer of its own (random per run) and task ids derived from it.
pub(super) struct Scope {
    /// This run's labourer.
    pub labourer: String,
}

impl Scope {
    /// A scope for `case`, unique to this run.
    pub fn new(case: &str) -> Self {
        let random = TaskId::generate();
        Scope {
            labourer: format!("{case}-{}", &random.as_str()[..12]),
        }
    }

    /// A second labourer, for "other labourers are not seen" checks.
    pub fn other(&self) -> String {
        format!("{}-other", self.labourer)
    }

    /// Task id number `n` of this scope.
    pub fn id(&self, n: u64) -> TaskId {
        TaskId::for_chunk(&self.labourer, n)
    }

    /// Queued task `n` of this scope's labourer with `greenfield`.
    pub fn task(&self, n: u64, greenfield: i64) -> Task {
        self.task_of(&self.labourer, n, greenfield)
    }

    /// Queued task `n` of `labourer`, one of this scope's labourers (so the id is this run's too).
    pub fn task_of(&self, labourer: &str, n: u64, greenfield: i64) -> Task {
        let id = TaskId::for_chunk(labourer, n);
        Task::new(
            id.as_str(),
            labourer,
            json!({"n": n}),
            greenfield,
            NOW as f64,
        )
    }

    /// `count` queued tasks numbered from 0, greenfields 2000, 3000, ... as the scheduler gives them.
    pub fn queued(&self, count: u64) -> Vec<Task> {
        (0..count)
            .map(|n| self.task(n, 2000 + 1000 * n as i64))
            .collect()
    }
}

/// The ids of `tasks`, in order.
pub(super) fn ids(tasks: &[Task]) -> Vec<TaskId> {
    tasks.iter().map(|t| t.task_id.clone()).collect()
}

/// The ids of `tasks`, sorted: for listings whose order is not part of the contract.
pub(super) fn sorted_ids(tasks: &[Task]) -> Vec<TaskId> {
    let mut ids = ids(tasks);
    ids.sort();
    ids
}

/// A report with these stats and results.
pub(super) fn report(stats: Value, result: Value) -> TaskReport {
    serde_json::from_value(json!({"stats": stats, "result": result}))
        .expect("a report built by the suite is valid")
}

/// Enqueues `tasks` with [`EnqueueMode::Fresh`], checking all were written.
pub(super) async fn put<S: TaskStore + ?Sized>(store: &S, tasks: &[Task]) {
    let report = store
        .enqueue(tasks, EnqueueMode::Fresh)
        .await
        .expect("enqueue (Fresh) succeeds");
    assert_eq!(
        report.written,
        tasks.len(),
        "enqueue (Fresh) writes every task"
    );
}

/// The live row of `id`, which must exist.
pub(super) async fn live<S: TaskStore + ?Sized>(store: &S, id: &TaskId) -> Task {
    store
        .get_task(id)
        .await
        .expect("get_task succeeds")
        .unwrap_or_else(|| panic!("task `{id}` should be live"))
}

/// Claims `id` at `at`, which must succeed; returns the pre-claim task.
pub(super) async fn claim<S: TaskStore + ?Sized>(store: &S, id: &TaskId, at: i64) -> Task {
    match store.claim(id, at).await.expect("claim succeeds") {
        ClaimOutcome::Claimed(task) => task,
        ClaimOutcome::AlreadyClaimed => panic!("claim of queued task `{id}` at {at} should win"),
    }
}

/// Completes `id` at `at` with an empty report, which must be recorded.
pub(super) async fn complete<S: TaskStore + ?Sized>(store: &S, id: &TaskId, at: i64) -> Task {
    match store
        .complete(id, &TaskReport::default(), at)
        .await
        .expect("complete succeeds")
    {
        ReportOutcome::Recorded(task) => task,
        other => panic!("completion of live task `{id}` should be recorded, got {other:?}"),
    }
}

/// Archives the current live row of `id` with `status` at `closed_at`, which must move it.
pub(super) async fn archive<S: TaskStore + ?Sized>(
    store: &S,
    id: &TaskId,
    status: ClosedStatus,
    closed_at: i64,
) {
    let task = live(store, id).await;
    let outcome = store
        .archive(&task, status, closed_at)
        .await
        .expect("archive succeeds");
    assert_eq!(
        outcome,
        MoveOutcome::Moved,
        "archive of fresh copy of `{id}`"
    );
}

/// Moves the current live row of `id` to the retry table, which must move it.
pub(super) async fn to_retry<S: TaskStore + ?Sized>(store: &S, id: &TaskId, launch: i64) {
    let task = live(store, id).await;
    let outcome = store
        .move_to_retry(&task, launch)
        .await
        .expect("move_to_retry succeeds");
    assert_eq!(
        outcome,
        MoveOutcome::Moved,
        "move_to_retry of fresh copy of `{id}`"
    );
}
