use crate::SqliteTaskStore;
use serde_json::json;
use sosw_core::ecology::*;
use sosw_core::store::{ClosedStatus, TaskArchive};
use sosw_core::store::{EnqueueMode, TaskClaims, TaskLookup, TaskQueue, TaskReport, TaskReports};
use sosw_core::task::TaskId;
use sosw_core::task::{Labourer, Task};

const T0: i64 = 1_700_000_000;

/// Enqueues, claims at `invoked`, completes after `took` (or not) and archives at `closed`.
async fn close(store: &SqliteTaskStore, n: u64, invoked: i64, took: Option<i64>, closed: i64) {
    let id = TaskId::for_chunk("dur", n);
    let task = Task::new(id.as_str(), "w", json!({}), 2000 + n as i64, 0.0);
    store
        .enqueue(&[task], EnqueueMode::Fresh)
        .await
        .expect("enqueue");
    store.claim(&id, invoked).await.expect("claim");
    let status = match took {
        Some(secs) => {
            store
                .complete(&id, &TaskReport::default(), invoked + secs)
                .await
                .expect("complete");
            ClosedStatus::Completed
        }
        None => ClosedStatus::Dead,
    };
    let live = store.get_task(&id).await.expect("get").expect("live");
    store.archive(&live, status, closed).await.expect("archive");
}

#[tokio::test]
async fn the_average_uses_the_newest_closed_tasks() {
    let store = SqliteTaskStore::in_memory().expect("store");
    // Old tasks took 100 s, recent ones 10 s; a sample of 3 must see only the recent ones.
    for n in 0..5 {
        close(&store, n, T0, Some(100), T0 + 200 + n as i64).await;
    }
    for n in 5..8 {
        close(&store, n, T0 + 1000, Some(10), T0 + 2000 + n as i64).await;
    }
    let labourer = Labourer::new("w");
    assert_eq!(
        average_duration(&store, &labourer, 3).await.expect("avg"),
        Some(10)
    );
    assert_eq!(
        average_duration(&store, &labourer, 8).await.expect("avg"),
        Some(66),
        "(5 x 100 + 3 x 10) / 8 = 66.25 rounds to 66"
    );
}

#[tokio::test]
async fn dead_tasks_count_their_attempts_times_the_timeout() {
    let store = SqliteTaskStore::in_memory().expect("store");
    close(&store, 1, T0, None, T0 + 5000).await;
    close(&store, 2, T0, Some(30), T0 + 4000).await;
    let mut labourer = Labourer::new("w");
    labourer.max_duration = Some(90);
    // Dead task: 1 attempt x 90; completed: 30. Mean of [90, 30] = 60.
    assert_eq!(
        average_duration(&store, &labourer, 10).await.expect("avg"),
        Some(60)
    );
    assert_eq!(
        average_duration(&store, &Labourer::new("nobody"), 10)
            .await
            .expect("avg"),
        None
    );
}
