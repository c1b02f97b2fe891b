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
