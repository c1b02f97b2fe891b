//! The scavenger's listings and the archive.

use std::sync::Arc;

use serde_json::json;

use super::support::{NOW, Scope, WINDOW, claim, complete, ids, live, put, report, sorted_ids};
use sosw_core::store::{ClosedStatus, MoveOutcome, TaskStore};
use sosw_core::task::greenfield::INVOCATION_DELTA;
use sosw_core::task::{Markers, Task, TaskId};

/// `list_expired` returns exactly this labourer's tasks with `start <= greenfield <= expired` that are
/// not completed: a task on the `expired` boundary is expired, one a second later is not; a task on the
/// `start` boundary is expired, one a second below it is queued.
pub async fn list_expired_returns_exactly_the_expired_tasks<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("expired");
    let other = s.other();
    let markers = Markers::new(NOW, WINDOW);
    let window = WINDOW as i64;
    let mut tasks = s.queued(7);
    tasks.push(s.task_of(&other, 7, 2000));
    put(&*store, &tasks).await;
    let claims = [
        (s.id(0), NOW - window),                // greenfield == expired: expired
        (s.id(1), NOW - window + 1),            // greenfield == expired + 1: running
        (s.id(2), NOW - 5000),                  // expired
        (s.id(3), NOW - INVOCATION_DELTA),      // greenfield == start: expired
        (s.id(4), NOW - INVOCATION_DELTA - 1),  // greenfield == start - 1: queued again
        (s.id(5), NOW - 3000),                  // completed below
        (tasks[7].task_id.clone(), NOW - 5000), // another labourer's
    ];
    for (id, at) in &claims {
        claim(&*store, id, *at).await;
    }
    complete(&*store, &s.id(5), NOW - 2900).await;
    assert_eq!(
        live(&*store, &s.id(0)).await.greenfield,
        markers.expired,
        "setup"
    );
    assert_eq!(
        live(&*store, &s.id(3)).await.greenfield,
        markers.start,
        "setup"
    );

    let expired = store
        .list_expired(&s.labourer, &markers, 100)
        .await
        .expect("list_expired succeeds");
    assert_eq!(
        sorted_ids(&expired),
        [s.id(0), s.id(2), s.id(3)],
        "exactly the tasks with start <= greenfield <= expired, not completed, of this labourer"
    );
    let limited = store
        .list_expired(&s.labourer, &markers, 2)
        .await
        .expect("list_expired succeeds");
    assert_eq!(limited.len(), 2, "list_expired respects limit");
    assert!(
        limited.iter().all(|t| expired.contains(t)),
        "a limited listing is part of the full one"
    );
}

/// `list_completed` returns this labourer's completed live tasks only, at most `limit`.
pub async fn list_completed_returns_only_completed_tasks<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("completed");
    let other = s.other();
    let mut tasks = s.queued(4);
    tasks.push(s.task_of(&other, 4, 2000));
    put(&*store, &tasks).await;
    let theirs = tasks[4].task_id.clone();
    for (id, at) in [
        (s.id(0), NOW - 100),
        (s.id(1), NOW - 90),
        (s.id(2), NOW - 80),
    ] {
        claim(&*store, &id, at).await;
    }
    claim(&*store, &theirs, NOW - 70).await;
    for id in [s.id(0), s.id(1), theirs] {
        complete(&*store, &id, NOW - 10).await;
    }

    let completed = store
        .list_completed(&s.labourer, NOW, 100)
        .await
        .expect("list_completed succeeds");
    assert_eq!(
        sorted_ids(&completed),
        [s.id(0), s.id(1)],
        "completed tasks only: not running, queued or another labourer's"
    );
    assert!(
        completed.iter().all(|t| t.completed_at == Some(NOW - 10)),
        "listed rows are whole: {completed:?}"
    );
    let limited = store
        .list_completed(&s.labourer, NOW, 1)
        .await
        .expect("list_completed succeeds");
    assert_eq!(limited.len(), 1, "list_completed respects limit");
}

/// `list_closable_many` gives every labourer the first pages `list_completed` and `list_expired`
/// give it (each with its own markers), whether the store lists them together or one by one: the
/// scavenger takes its run's first pages from it where the store says it is cheaper. A task queued
/// with a greenfield inside the expired window (as a clock ahead puts one back) is expired on every
/// store.
pub async fn list_closable_many_matches_the_single_listings<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("closable-many");
    let other = s.other();
    let idle = format!("{}_idle", s.labourer);
    let markers = Markers::new(NOW, WINDOW);
    let window = WINDOW as i64;
    let mut tasks = s.queued(6);
    tasks.push(s.task_of(&other, 6, 2000));
    tasks.push(s.task_of(&other, 7, 2001));
    let mut ahead = s.task_of(&s.labourer, 8, 2002);
    ahead.greenfield = markers.start + 10;
    tasks.push(ahead.clone());
    put(&*store, &tasks).await;
    for (id, at) in [
        (s.id(0), NOW),        // running
        (s.id(1), NOW - 5000), // expired
        (s.id(2), NOW - 100),  // completed below
        (s.id(3), NOW - 90),   // completed below
        (tasks[6].task_id.clone(), NOW - 100),
        (tasks[7].task_id.clone(), NOW - window - 10), // expired at NOW, not at its markers
    ] {
        claim(&*store, &id, at).await;
    }
    for id in [s.id(2), s.id(3), tasks[6].task_id.clone()] {
        complete(&*store, &id, NOW - 50).await;
    }
    let asked = vec![
        (s.labourer.clone(), markers),
        (other.clone(), Markers::new(NOW - 4000, WINDOW)),
        (idle.clone(), markers),
    ];
    for limit in [100, 1] {
        let many = store
            .list_closable_many(&asked, limit)
            .await
            .expect("list_closable_many succeeds");
        assert_eq!(many.len(), 3, "one listing per labourer asked: {many:?}");
        for (labourer, m) in &asked {
            let completed = store
                .list_completed(labourer, m.start, limit)
                .await
                .expect("list_completed succeeds");
            let expired = store
                .list_expired(labourer, m, limit)
                .await
                .expect("list_expired succeeds");
            let listed = &many[labourer];
            assert_eq!(
                (sorted_ids(&listed.completed), sorted_ids(&listed.expired)),
                (sorted_ids(&completed), sorted_ids(&expired)),
                "`{labourer}`, limit {limit}: list_closable_many and the single listings agree"
            );
        }
    }
    let many = store
        .list_closable_many(&asked, 100)
        .await
        .expect("list_closable_many succeeds");
    let mine = &many[&s.labourer];
    assert_eq!(sorted_ids(&mine.completed), [s.id(2), s.id(3)], "completed");
    assert_eq!(
        sorted_ids(&mine.expired),
        sorted_ids(&[live(&*store, &s.id(1)).await, ahead]),
        "expired: the claim past its window and the task queued inside it"
    );
    let theirs = &many[&other];
    assert_eq!(
        (theirs.completed.len(), theirs.expired.len()),
        (1, 0),
        "the other labourer at its earlier markers: one completed, none expired yet"
    );
    assert_eq!(
        many[&idle],
        Default::default(),
        "an idle labourer has nothing"
    );
}

/// `archive` moves a task to the closed table with `closed_at`, `labourer_id_task_status` =
/// `<labourer>_1` (completed) or `<labourer>_0` (dead), its payload intact as JSON and its stats; the
/// live row is gone.
pub async fn archive_moves_tasks_to_the_closed_table<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("archive");
    let mut done = s.task(1, 2000);
    done.payload = json!({"nested": {"list": [1, "two", {"three": 3}]}, "quote": "it's \"x\""});
    let dead = s.task(2, 3000);
    put(&*store, &[done.clone(), dead.clone()]).await;
    claim(&*store, &done.task_id, NOW - 100).await;
    let rep = report(json!({"rows": 3}), json!({"ok": true}));
    store
        .complete(&done.task_id, &rep, NOW - 50)
        .await
        .expect("complete succeeds");
    claim(&*store, &dead.task_id, NOW - 5000).await;

    let cases = [
        (done.task_id.clone(), ClosedStatus::Completed, NOW, "_1"),
        (dead.task_id.clone(), ClosedStatus::Dead, NOW + 1, "_0"),
    ];
    for (id, status, closed_at, suffix) in cases {
        let copy = live(&*store, &id).await;
        let outcome = store
            .archive(&copy, status, closed_at)
            .await
            .expect("archive succeeds");
        assert_eq!(
            outcome,
            MoveOutcome::Moved,
            "archive of `{id}` as {status:?}"
        );
        let row = store.get_task(&id).await.expect("get_task succeeds");
        assert_eq!(row, None, "the live row of `{id}` is gone");
        let closed = store
            .get_closed_task(&id)
            .await
            .expect("get_closed_task succeeds")
            .unwrap_or_else(|| panic!("closed row of `{id}`"));
        let mut expected = copy.clone();
        expected.closed_at = Some(closed_at);
        let key = format!("{}{suffix}", s.labourer);
        expected
            .extra
            .insert("labourer_id_task_status".into(), json!(key));
        assert_eq!(
            closed, expected,
            "the closed row is the task plus closed_at and status"
        );
    }
    let closed = store
        .get_closed_task(&done.task_id)
        .await
        .expect("get_closed_task succeeds");
    let payload = closed.map(|t| (t.payload, t.extra.get("stat_rows").cloned()));
    assert_eq!(
        payload,
        Some((done.payload.clone(), Some(json!(3)))),
        "the closed payload is JSON that decodes to the original, and stats are kept"
    );
}

/// Archiving with a stale copy (completed, or claimed again, since it was read) is `Conflict` and moves
/// nothing; archiving the same task twice is `Conflict` the second time.
pub async fn archive_conflicts_on_stale_copies_and_repeats<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("stale");
    put(&*store, &s.queued(2)).await;
    let (late, reclaimed) = (s.id(0), s.id(1));

    claim(&*store, &late, NOW - 5000).await;
    let stale = live(&*store, &late).await;
    complete(&*store, &late, NOW - 10).await;
    refuse_archive(&*store, &stale, "completed after the read").await;

    let stale = live(&*store, &reclaimed).await;
    claim(&*store, &reclaimed, NOW).await;
    refuse_archive(&*store, &stale, "claimed after the read").await;

    let fresh = live(&*store, &late).await;
    let first = store
        .archive(&fresh, ClosedStatus::Completed, NOW)
        .await
        .expect("archive succeeds");
    assert_eq!(first, MoveOutcome::Moved, "archive of a fresh copy");
    let second = store
        .archive(&fresh, ClosedStatus::Completed, NOW + 1)
        .await
        .expect("archive succeeds");
    assert_eq!(
        second,
        MoveOutcome::Conflict,
        "a second archive of the same task"
    );
    let closed = store
        .get_closed_task(&late)
        .await
        .expect("get_closed_task succeeds");
    assert_eq!(
        closed.and_then(|t| t.closed_at),
        Some(NOW),
        "the second archive leaves the closed row alone"
    );
}

/// `redrive` moves a dead task back to the live table as a fresh task (the given greenfield, no
/// attempts, no completion or closing marks, payload intact) and removes its closed row; a second
/// redrive, or a redrive of a completed task, is `Conflict` and changes nothing.
pub async fn redrive_returns_only_dead_tasks_to_the_queue<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("redrive");
    let mut dead = s.task(1, 2000);
    dead.payload = json!({"word": "racing", "nested": [1, {"two": 2}]});
    let done = s.task(2, 3000);
    put(&*store, &[dead.clone(), done.clone()]).await;
    claim(&*store, &dead.task_id, NOW - 5000).await;
    claim(&*store, &done.task_id, NOW - 100).await;
    complete(&*store, &done.task_id, NOW - 50).await;
    for (id, status) in [
        (&dead.task_id, ClosedStatus::Dead),
        (&done.task_id, ClosedStatus::Completed),
    ] {
        let copy = live(&*store, id).await;
        let moved = store
            .archive(&copy, status, NOW)
            .await
            .expect("archive succeeds");
        assert_eq!(moved, MoveOutcome::Moved, "setup: archive of `{id}`");
    }

    let closed = closed_row(&*store, &dead.task_id).await;
    let outcome = store
        .redrive(&closed, 1234)
        .await
        .expect("redrive succeeds");
    assert_eq!(outcome, MoveOutcome::Moved, "redrive of a dead task");
    let back = live(&*store, &dead.task_id).await;
    assert_eq!(
        back.greenfield, 1234,
        "the redriven task has the given greenfield"
    );
    assert_eq!(
        back.attempts, 0,
        "the redriven task starts with no attempts"
    );
    assert_eq!(
        (back.completed_at, back.closed_at, back.desired_launch_time),
        (None, None, None),
        "no completion or closing marks"
    );
    assert!(
        !back.extra.contains_key("labourer_id_task_status"),
        "no closed status key on a live row"
    );
    assert_eq!(back.payload, dead.payload, "the payload is intact");
    let gone = store
        .get_closed_task(&dead.task_id)
        .await
        .expect("get_closed_task succeeds");
    assert_eq!(gone, None, "the dead row is gone");

    let again = store.redrive(&closed, 99).await.expect("redrive succeeds");
    assert_eq!(
        again,
        MoveOutcome::Conflict,
        "a second redrive of the same task"
    );
    assert_eq!(
        live(&*store, &dead.task_id).await,
        back,
        "the live row is untouched"
    );

    let completed = closed_row(&*store, &done.task_id).await;
    let refused = store
        .redrive(&completed, 99)
        .await
        .expect("redrive succeeds");
    assert_eq!(
        refused,
        MoveOutcome::Conflict,
        "a completed task is not redriven"
    );
    assert_eq!(
        store
            .get_task(&done.task_id)
            .await
            .expect("get_task succeeds"),
        None,
        "no live row for the completed task"
    );
    assert_eq!(
        closed_row(&*store, &done.task_id).await,
        completed,
        "the completed row is untouched"
    );
}

async fn closed_row<S: TaskStore + ?Sized>(store: &S, id: &TaskId) -> Task {
    store
        .get_closed_task(id)
        .await
        .expect("get_closed_task succeeds")
        .unwrap_or_else(|| panic!("closed row of `{id}`"))
}

async fn refuse_archive<S: TaskStore + ?Sized>(store: &S, stale: &Task, why: &str) {
    let id = &stale.task_id;
    let before = live(store, id).await;
    let outcome = store
        .archive(stale, ClosedStatus::Dead, NOW)
        .await
        .expect("archive succeeds");
    assert_eq!(
        outcome,
        MoveOutcome::Conflict,
        "archive of a stale copy: {why}"
    );
    assert_eq!(
        live(store, id).await,
        before,
        "{why}: the live row is untouched"
    );
    let closed = store
        .get_closed_task(id)
        .await
        .expect("get_closed_task succeeds");
    assert_eq!(closed, None, "{why}: no closed row");
}

/// `closed_sample` returns this labourer's closed tasks of one status, newest `closed_at` first, at most
/// `limit`, with the fields the duration estimate needs.
pub async fn closed_sample_is_newest_first_by_status<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("sample");
    let other = s.other();
    let mut tasks = s.queued(4);
    tasks.push(s.task_of(&other, 4, 2000));
    put(&*store, &tasks).await;
    let theirs = tasks[4].task_id.clone();
    let closes = [
        (s.id(0), ClosedStatus::Completed, NOW + 10),
        (s.id(1), ClosedStatus::Completed, NOW + 30),
        (s.id(2), ClosedStatus::Completed, NOW + 20),
        (s.id(3), ClosedStatus::Dead, NOW + 40),
        (theirs, ClosedStatus::Completed, NOW + 50),
    ];
    for (id, status, closed_at) in &closes {
        claim(&*store, id, NOW - 100).await;
        if *status == ClosedStatus::Completed {
            complete(&*store, id, NOW - 40).await;
        }
        super::support::archive(&*store, id, *status, *closed_at).await;
    }

    let sample = |status, limit| {
        let store = Arc::clone(&store);
        let labourer = s.labourer.clone();
        async move {
            store
                .closed_sample(&labourer, status, limit)
                .await
                .expect("closed_sample succeeds")
        }
    };
    let completed = sample(ClosedStatus::Completed, 10).await;
    assert_eq!(
        ids(&completed),
        [s.id(1), s.id(2), s.id(0)],
        "completed tasks of this labourer, newest closed_at first"
    );
    let fields: Vec<_> = completed
        .iter()
        .map(|t| {
            (
                t.labourer_id.as_str(),
                t.greenfield,
                t.attempts,
                t.completed_at,
                t.closed_at,
            )
        })
        .collect();
    let invoked = NOW - 100 + INVOCATION_DELTA;
    let lab = s.labourer.as_str();
    assert_eq!(
        fields,
        [
            (lab, invoked, 1, Some(NOW - 40), Some(NOW + 30)),
            (lab, invoked, 1, Some(NOW - 40), Some(NOW + 20)),
            (lab, invoked, 1, Some(NOW - 40), Some(NOW + 10)),
        ],
        "the sample carries labourer_id, greenfield, attempts, completed_at and closed_at"
    );
    let top: Vec<TaskId> = ids(&sample(ClosedStatus::Completed, 2).await);
    assert_eq!(top, [s.id(1), s.id(2)], "closed_sample respects limit");
    let dead = sample(ClosedStatus::Dead, 10).await;
    assert_eq!(ids(&dead), [s.id(3)], "the dead sample");
    assert_eq!(dead[0].completed_at, None, "a dead task has no completion");
    // The counts agree with the samples, up to the limit, without another labourer's task.
    for (status, limit, expected) in [
        (ClosedStatus::Completed, 10, 3),
        (ClosedStatus::Completed, 2, 2),
        (ClosedStatus::Dead, 10, 1),
        (ClosedStatus::Cancelled, 10, 0),
    ] {
        let counted = store
            .count_closed(&s.labourer, status, limit)
            .await
            .expect("count_closed succeeds");
        assert_eq!(
            counted, expected,
            "count_closed of {status:?} up to {limit}"
        );
    }
}

/// Several archivers of the same completed tasks at once (the worker assistant and scavengers): each
/// task moves exactly once, ends in the closed table as completed with one archiver's `closed_at`, and
/// is not live any more; no archiver fails.
pub async fn concurrent_archivers_move_a_completed_task_once<S: TaskStore + 'static>(
    store: Arc<S>,
) {
    let s = Scope::new("archrace");
    let tasks = s.queued(4);
    put(&*store, &tasks).await;
    let mut done = Vec::new();
    for task in &tasks {
        claim(&*store, &task.task_id, NOW - 100).await;
        done.push(complete(&*store, &task.task_id, NOW - 50).await);
    }
    let mut handles = Vec::new();
    for task in &done {
        for racer in 0..4_i64 {
            let store = Arc::clone(&store);
            let task = task.clone();
            handles.push(tokio::spawn(async move {
                let outcome = store
                    .archive(&task, ClosedStatus::Completed, NOW + racer)
                    .await
                    .expect("archive succeeds");
                (task.task_id, outcome)
            }));
        }
    }
    let mut moved: Vec<TaskId> = Vec::new();
    for handle in handles {
        let (id, outcome) = handle.await.expect("no archiver panics");
        if outcome == MoveOutcome::Moved {
            moved.push(id);
        }
    }
    moved.sort();
    assert_eq!(moved, sorted_ids(&tasks), "each task moves exactly once");
    for task in &done {
        let live_row = store
            .get_task(&task.task_id)
            .await
            .expect("get_task succeeds");
        assert_eq!(live_row, None, "`{}` is not live", task.task_id);
        let closed = store
            .get_closed_task(&task.task_id)
            .await
            .expect("get_closed_task succeeds")
            .unwrap_or_else(|| panic!("`{}` is closed", task.task_id));
        assert_eq!(closed.completed_at, task.completed_at);
        assert!(
            closed
                .closed_at
                .is_some_and(|at| (NOW..NOW + 4).contains(&at)),
            "closed by one of the archivers: {:?}",
            closed.closed_at
        );
    }
}
