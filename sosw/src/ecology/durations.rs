//! How long a labourer's tasks take, from its recently closed tasks.

use crate::error::Result;
use crate::store::{ClosedStatus, TaskArchive};
use crate::task::{Labourer, Task, greenfield};

/// The average run time of `labourer`'s tasks in whole seconds, from its `sample_size` most recently
/// closed tasks (sosw 0.7's `get_average_labourer_duration`, `max_closed_to_analyse_for_duration`
/// tasks), or `None` when it has none.
///
/// As in sosw 0.7, a completed task counts its run time (`completed_at` minus its last invocation) and a
/// dead task counts `attempts` times the worker's timeout (`max_duration`, else the labourer's duration).
/// Unlike sosw 0.7, the sample is the *newest* tasks by `closed_at`, not the oldest (bug B7).
pub async fn average_duration<S>(
    store: &S,
    labourer: &Labourer,
    sample_size: usize,
) -> Result<Option<u64>>
where
    S: TaskArchive + ?Sized,
{
    if sample_size == 0 {
        return Ok(None);
    }
    let mut closed = store
        .closed_sample(&labourer.id, ClosedStatus::Completed, sample_size)
        .await?;
    closed.extend(
        store
            .closed_sample(&labourer.id, ClosedStatus::Dead, sample_size)
            .await?,
    );
    closed.sort_by_key(|task| std::cmp::Reverse(task.closed_at));
    closed.truncate(sample_size);
    let timeout = labourer
        .max_duration
        .unwrap_or_else(|| labourer.effective_duration());
    let samples: Vec<u64> = closed
        .iter()
        .flat_map(|task| task_durations(task, timeout))
        .collect();
    if samples.is_empty() {
        return Ok(None);
    }
    let total: u128 = samples.iter().map(|s| u128::from(*s)).sum();
    let mean = total as f64 / samples.len() as f64;
    Ok(Some(mean.round() as u64))
}

/// The durations one closed task contributes.
fn task_durations(task: &Task, timeout: u64) -> Vec<u64> {
    match task.completed_at {
        Some(done) => {
            let secs = greenfield::run_duration(task.greenfield, done);
            vec![u64::try_from(secs).unwrap_or(0)]
        }
        None => vec![timeout; task.attempts as usize],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded::SqliteTaskStore;
    use crate::store::{EnqueueMode, TaskClaims, TaskLookup, TaskQueue, TaskReport, TaskReports};
    use crate::task::TaskId;
    use serde_json::json;

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
}
