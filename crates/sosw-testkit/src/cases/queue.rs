//! The queue by greenfield: `next_queued`, `queue_length` and the queue's ends.

use std::sync::Arc;

use super::support::{NOW, Scope, YEAR_AGO, claim, complete, ids, live, put};
use sosw_core::store::TaskStore;

/// `next_queued` returns the lowest greenfields first, at most `limit` of them.
pub async fn next_queued_returns_lowest_greenfield_first_within_limit<S: TaskStore + 'static>(
    store: Arc<S>,
) {
    let s = Scope::new("order");
    let greenfields = [5000, 2000, 4000, 3000, 1500];
    let tasks: Vec<_> = (0..).zip(greenfields).map(|(n, g)| s.task(n, g)).collect();
    put(&*store, &tasks).await;

    let all = store
        .next_queued(&s.labourer, NOW, 10)
        .await
        .expect("next_queued succeeds");
    let got: Vec<i64> = all.iter().map(|t| t.greenfield).collect();
    assert_eq!(
        got,
        [1500, 2000, 3000, 4000, 5000],
        "next_queued orders by greenfield, lowest first"
    );
    assert_eq!(
        all[0], tasks[4],
        "next_queued returns the stored task whole"
    );

    let head = store
        .next_queued(&s.labourer, NOW, 2)
        .await
        .expect("next_queued succeeds");
    assert_eq!(
        ids(&head),
        [s.id(4), s.id(1)],
        "next_queued with limit 2 returns the two lowest greenfields"
    );
}

/// `next_queued` and `queue_length` see only this labourer's tasks with `greenfield < now` that are not
/// completed: not other labourers', not those at or after `now`, not a completed task whose greenfield
/// fell below `now` again (invoked and completed more than a year ago).
pub async fn queue_excludes_other_labourers_unqueued_and_completed_tasks<S: TaskStore + 'static>(
    store: Arc<S>,
) {
    let s = Scope::new("filter");
    let other = s.other();
    let tasks = [
        s.task(1, 2000),
        s.task(2, 3000),
        s.task(3, NOW),
        s.task(4, NOW + 10),
        s.task(6, 1500),
        s.task_of(&other, 5, 1000),
    ];
    put(&*store, &tasks).await;
    claim(&*store, &s.id(6), YEAR_AGO).await;
    complete(&*store, &s.id(6), YEAR_AGO + 10).await;
    let old = live(&*store, &s.id(6)).await;
    assert!(
        old.greenfield < NOW && old.completed_at.is_some(),
        "setup: a task completed a year ago has a greenfield below now: {old:?}"
    );

    let queued = store
        .next_queued(&s.labourer, NOW, 10)
        .await
        .expect("next_queued succeeds");
    assert_eq!(
        ids(&queued),
        [s.id(1), s.id(2)],
        "next_queued excludes greenfield >= now, completed tasks and other labourers"
    );
    let length = store
        .queue_length(&s.labourer, NOW)
        .await
        .expect("queue_length succeeds");
    assert_eq!(
        length, 2,
        "queue_length counts the same tasks next_queued returns"
    );
    let theirs = store
        .next_queued(&other, NOW, 10)
        .await
        .expect("next_queued succeeds");
    assert_eq!(
        ids(&theirs),
        [tasks[5].task_id.clone()],
        "the other labourer's queue"
    );
}

/// `queue_length` counts the tasks queued at `now`; the oldest and newest queued greenfields are the
/// queue's ends, `None` (and a length of 0) for an empty queue.
pub async fn queue_length_and_ends_follow_the_queue<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("ends");
    let empty = (
        store
            .queue_length(&s.labourer, NOW)
            .await
            .expect("queue_length succeeds"),
        store
            .oldest_queued_greenfield(&s.labourer, NOW)
            .await
            .expect("oldest succeeds"),
        store
            .newest_queued_greenfield(&s.labourer, NOW)
            .await
            .expect("newest succeeds"),
    );
    assert_eq!(empty, (0, None, None), "an empty queue: length 0, no ends");

    put(
        &*store,
        &[
            s.task(1, 3000),
            s.task(2, 2000),
            s.task(3, 7000),
            s.task(4, NOW + 5),
        ],
    )
    .await;
    let at = |now| {
        let store = Arc::clone(&store);
        let labourer = s.labourer.clone();
        async move {
            (
                store
                    .queue_length(&labourer, now)
                    .await
                    .expect("queue_length succeeds"),
                store
                    .oldest_queued_greenfield(&labourer, now)
                    .await
                    .expect("oldest succeeds"),
                store
                    .newest_queued_greenfield(&labourer, now)
                    .await
                    .expect("newest succeeds"),
            )
        }
    };
    assert_eq!(
        at(NOW).await,
        (3, Some(2000), Some(7000)),
        "the queue at now"
    );
    assert_eq!(
        at(NOW + 6).await,
        (4, Some(2000), Some(NOW + 5)),
        "a greenfield below a later now is queued then"
    );

    claim(&*store, &s.id(2), NOW).await;
    assert_eq!(
        at(NOW).await,
        (2, Some(3000), Some(7000)),
        "a claimed task leaves the queue and its head"
    );
}
