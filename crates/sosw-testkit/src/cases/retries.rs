//! The retry table: moving expired tasks out, and back into the queue ahead of its head.

use std::sync::Arc;

use super::support::{NOW, Scope, claim, complete, ids, live, put, to_retry};
use sosw_core::store::{MoveOutcome, TaskStore, requeue_due_retries};

/// `move_to_retry` moves a task to the retry table with its `desired_launch_time` and nothing else
/// changed; moving it again, or moving a stale copy (a late completion since the read), is `Conflict`
/// and moves nothing.
pub async fn move_to_retry_moves_tasks_and_rejects_stale_copies<S: TaskStore + 'static>(
    store: Arc<S>,
) {
    let s = Scope::new("toretry");
    put(&*store, &s.queued(2)).await;
    let (moved, late) = (s.id(0), s.id(1));
    claim(&*store, &moved, NOW - 5000).await;
    claim(&*store, &late, NOW - 5000).await;

    let copy = live(&*store, &moved).await;
    let outcome = store
        .move_to_retry(&copy, NOW + 600)
        .await
        .expect("move succeeds");
    assert_eq!(outcome, MoveOutcome::Moved, "move of a fresh copy");
    let row = store.get_task(&moved).await.expect("get_task succeeds");
    assert_eq!(row, None, "the live row is gone");
    let mut expected = copy.clone();
    expected.desired_launch_time = Some(NOW + 600);
    let retry = store
        .get_retry_task(&s.labourer, &moved)
        .await
        .expect("get_retry_task succeeds");
    assert_eq!(
        retry,
        Some(expected),
        "the retry row is the task plus desired_launch_time"
    );
    let again = store
        .move_to_retry(&copy, NOW + 900)
        .await
        .expect("move succeeds");
    assert_eq!(
        again,
        MoveOutcome::Conflict,
        "a second move of the same task"
    );

    let stale = live(&*store, &late).await;
    complete(&*store, &late, NOW - 10).await;
    let before = live(&*store, &late).await;
    let outcome = store
        .move_to_retry(&stale, NOW + 600)
        .await
        .expect("move succeeds");
    assert_eq!(
        outcome,
        MoveOutcome::Conflict,
        "move of a copy read before a completion"
    );
    assert_eq!(
        live(&*store, &late).await,
        before,
        "the completed row stays live, untouched"
    );
    let retry = store
        .get_retry_task(&s.labourer, &late)
        .await
        .expect("get_retry_task succeeds");
    assert_eq!(retry, None, "no retry row for a conflicting move");
    let waiting = store
        .retry_length(&s.labourer)
        .await
        .expect("retry_length succeeds");
    assert_eq!(waiting, 1, "one task waits for retry");
}

/// `due_retries` returns this labourer's retries with `desired_launch_time <= now`, earliest first, at
/// most `limit`; `retry_length` counts due and not-due retries.
pub async fn due_retries_are_due_ones_earliest_first<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("due");
    let other = s.other();
    let mut tasks = s.queued(4);
    tasks.push(s.task_of(&other, 4, 2000));
    put(&*store, &tasks).await;
    let theirs = tasks[4].task_id.clone();
    let launches = [
        (s.id(0), NOW + 30),
        (s.id(1), NOW - 10),
        (s.id(2), NOW),
        (s.id(3), NOW + 1000),
        (theirs, NOW - 20),
    ];
    for (id, launch) in &launches {
        claim(&*store, id, NOW - 5000).await;
        to_retry(&*store, id, *launch).await;
    }

    let due = |now, limit| {
        let store = Arc::clone(&store);
        let labourer = s.labourer.clone();
        async move {
            let due = store.due_retries(&labourer, now, limit).await;
            ids(&due.expect("due_retries succeeds"))
        }
    };
    assert_eq!(
        due(NOW + 30, 10).await,
        [s.id(1), s.id(2), s.id(0)],
        "due retries of this labourer, earliest desired_launch_time first"
    );
    assert_eq!(
        due(NOW, 10).await,
        [s.id(1), s.id(2)],
        "desired_launch_time == now is due"
    );
    assert_eq!(
        due(NOW + 30, 2).await,
        [s.id(1), s.id(2)],
        "due_retries respects limit"
    );
    let lengths = (
        store
            .retry_length(&s.labourer)
            .await
            .expect("retry_length succeeds"),
        store
            .retry_length(&other)
            .await
            .expect("retry_length succeeds"),
    );
    assert_eq!(
        lengths,
        (4, 1),
        "retry_length counts due and not-due retries per labourer"
    );
}

/// `return_to_queue` puts a retry back in the live table with the given greenfield, without
/// `desired_launch_time`, attempts kept. It is `Conflict` when the retry row is gone (a second return)
/// or a live row has the id, and then moves nothing.
pub async fn return_to_queue_restores_the_task<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("return");
    put(&*store, &s.queued(2)).await;
    let (back, blocked) = (s.id(0), s.id(1));
    for id in [&back, &blocked] {
        claim(&*store, id, NOW - 5000).await;
        to_retry(&*store, id, NOW - 10).await;
    }

    let retry = store
        .get_retry_task(&s.labourer, &back)
        .await
        .expect("get_retry_task succeeds")
        .expect("the retry row exists");
    let outcome = store
        .return_to_queue(&retry, 1999)
        .await
        .expect("return succeeds");
    assert_eq!(outcome, MoveOutcome::Moved, "return of a waiting retry");
    let mut expected = retry.clone();
    expected.greenfield = 1999;
    expected.desired_launch_time = None;
    assert_eq!(
        live(&*store, &back).await,
        expected,
        "queued at 1999, attempts kept"
    );
    assert_eq!(
        expected.attempts, 1,
        "setup: the retried task was invoked once"
    );
    let left = store
        .get_retry_task(&s.labourer, &back)
        .await
        .expect("get_retry_task succeeds");
    assert_eq!(left, None, "the retry row is gone");
    let again = store
        .return_to_queue(&retry, 1998)
        .await
        .expect("return succeeds");
    assert_eq!(
        again,
        MoveOutcome::Conflict,
        "a second return of the same retry"
    );
    assert_eq!(
        live(&*store, &back).await.greenfield,
        1999,
        "the first return stands"
    );

    let retry = store
        .get_retry_task(&s.labourer, &blocked)
        .await
        .expect("get_retry_task succeeds")
        .expect("the retry row exists");
    let resubmitted = s.task(1, 5000);
    put(&*store, std::slice::from_ref(&resubmitted)).await;
    let outcome = store
        .return_to_queue(&retry, 1999)
        .await
        .expect("return succeeds");
    assert_eq!(
        outcome,
        MoveOutcome::Conflict,
        "return while a live row has the id"
    );
    assert_eq!(
        live(&*store, &blocked).await,
        resubmitted,
        "the live row is untouched"
    );
    let kept = store
        .get_retry_task(&s.labourer, &blocked)
        .await
        .expect("get_retry_task succeeds");
    assert_eq!(kept, Some(retry), "the retry row stays");
}

/// [`requeue_due_retries`] puts due retries just ahead of the queue head `L` (`L - 1`, `L - 2`, ... in
/// the order they are due; `L` = 1000 for an empty queue), so `next_queued` returns them first.
pub async fn requeue_due_retries_places_retries_ahead_of_the_queue_head<S: TaskStore + 'static>(
    store: Arc<S>,
) {
    let s = Scope::new("requeue");
    // Queued at 3000 and 4000; three more go through the retry table (two due, one not).
    let greenfields = [3000, 4000, 2000, 2100, 2200];
    let tasks: Vec<_> = (0..).zip(greenfields).map(|(n, g)| s.task(n, g)).collect();
    put(&*store, &tasks).await;
    for (id, launch) in [
        (s.id(2), NOW - 20),
        (s.id(3), NOW - 10),
        (s.id(4), NOW + 100),
    ] {
        claim(&*store, &id, NOW - 5000).await;
        to_retry(&*store, &id, launch).await;
    }

    let moved = requeue_due_retries(&*store, &s.labourer, NOW, 20)
        .await
        .expect("requeue_due_retries succeeds");
    assert_eq!(moved, 2, "the two due retries move");
    let greenfields = (
        live(&*store, &s.id(2)).await.greenfield,
        live(&*store, &s.id(3)).await.greenfield,
    );
    assert_eq!(
        greenfields,
        (2999, 2998),
        "L - 1 and L - 2 with L = 3000, in due order"
    );
    let queued = store
        .next_queued(&s.labourer, NOW, 10)
        .await
        .expect("next_queued succeeds");
    assert_eq!(
        ids(&queued),
        [s.id(3), s.id(2), s.id(0), s.id(1)],
        "retries run before the queue"
    );
    let waiting = store
        .retry_length(&s.labourer)
        .await
        .expect("retry_length succeeds");
    assert_eq!(waiting, 1, "the retry that is not due yet waits");

    let empty = Scope::new("requeue-empty");
    put(&*store, &[empty.task(0, 2000)]).await;
    claim(&*store, &empty.id(0), NOW - 5000).await;
    to_retry(&*store, &empty.id(0), NOW - 1).await;
    let moved = requeue_due_retries(&*store, &empty.labourer, NOW, 20)
        .await
        .expect("requeue_due_retries succeeds");
    assert_eq!(moved, 1, "the due retry moves");
    let row = live(&*store, &empty.id(0)).await;
    assert_eq!(
        row.greenfield, 999,
        "an empty queue's head is taken as 1000"
    );
}
