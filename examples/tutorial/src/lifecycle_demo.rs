//! A job's tasks through their whole life on the embedded SQLite store: enqueue, claim, complete, expire,
//! retry ahead of the queue head, archive, and dead after too many attempts.
//!
//! Time is a [`ManualClock`], so the demo shows an hour of sosw in a fraction of a second. Run it with
//! `cargo run -p sosw-tutorial --bin lifecycle-demo -- [state.sqlite]`; it prints one line per round and
//! returns what the job came to ([`Outcome`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::json;
use sosw::clock::{Clock, ManualClock};
use sosw::embedded::SqliteTaskStore;
use sosw::store::{
    ClaimOutcome, ClosedStatus, EnqueueMode, MoveOutcome, ReportOutcome, TaskClaims, TaskLookup,
    TaskQueue, TaskReport, TaskReports, TaskRetries, TaskStore, requeue_due_retries,
};
use sosw::task::fate::{self, Ending};
use sosw::task::{Labourer, Markers, Task, greenfield};

/// The job's tasks.
pub const TASKS: usize = 12;
const SLOTS: usize = 4;

/// What one run of the demo came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Tasks the job enqueued.
    pub enqueued: usize,
    /// Tasks of the job already in the store (closed in an earlier run over the same file).
    pub already_there: usize,
    /// Tasks closed as completed.
    pub completed: usize,
    /// Tasks closed as dead.
    pub dead: usize,
    /// Tasks retried after they expired, in this run.
    pub retried: usize,
}

/// Runs the demo's job on the SQLite file `state` (in memory when `None`) until every task is closed.
pub async fn run(state: Option<&Path>) -> sosw::Result<Outcome> {
    let store = match state {
        Some(path) => SqliteTaskStore::open(path)?,
        None => SqliteTaskStore::in_memory()?,
    };
    let clock = ManualClock::at_secs(1_700_000_000);
    let labourer = Labourer {
        duration: Some(60),
        cooldown: Some(30),
        max_attempts: Some(2),
        ..Labourer::new("hello_worker")
    };

    let (enqueued, already_there) = enqueue_job(&store, &clock, &labourer).await?;
    let mut tally = Tally::default();
    // One "minute" per round: claim free slots, let the workers run, scavenge.
    for round in 1..=30 {
        let now = clock.now_secs();
        let claimed = claim_free_slots(&store, &labourer, now).await?;
        for task in &claimed {
            // Every task whose number is divisible by 5 never reports back: it expires, is retried
            // once, and dies.
            if task.payload["n"].as_u64().is_some_and(|n| n % 5 == 0) {
                continue;
            }
            let report = TaskReport {
                stats: BTreeMap::from([("rows".into(), json!(task.payload["n"]))]),
                ..TaskReport::default()
            };
            if let ReportOutcome::Recorded(_) =
                store.complete(&task.task_id, &report, now + 5).await?
            {
                tally.completed += 1;
            }
        }
        clock.advance_secs(60);
        scavenge(&store, &labourer, clock.now_secs(), &mut tally).await?;
        println!(
            "round {round:>2}  t={:>4}s  invoked {:>2}  queued {:>2}  running {:>2}  retry {:>2}  \
             completed {:>2}  dead {:>2}",
            clock.now_secs() - 1_700_000_000,
            claimed.len(),
            store.queue_length(&labourer.id, clock.now_secs()).await?,
            store
                .count_running(
                    &labourer.id,
                    &Markers::for_labourer(clock.now_secs(), &labourer)
                )
                .await?,
            store.retry_length(&labourer.id).await?,
            tally.archived,
            tally.dead,
        );
        if let Some((completed, dead)) = closed_counts(&store).await? {
            println!(
                "\nall {TASKS} tasks closed: {completed} completed, {dead} dead, {} retried",
                tally.retried
            );
            return Ok(Outcome {
                enqueued,
                already_there,
                completed,
                dead,
                retried: tally.retried,
            });
        }
    }
    Err(sosw::Error::invalid(
        "demo",
        "the job did not finish in 30 rounds",
    ))
}

/// `(completed, dead)` once every task of the job is in the closed table, read from the closed rows.
async fn closed_counts(store: &SqliteTaskStore) -> sosw::Result<Option<(usize, usize)>> {
    let (mut completed, mut dead) = (0, 0);
    for n in 0..TASKS {
        let id = sosw::task::TaskId::new(format!("demo-{n:03}"))?;
        match store.get_closed_task(&id).await? {
            Some(task) if task.completed_at.is_some() => completed += 1,
            Some(_) => dead += 1,
            None => return Ok(None),
        }
    }
    Ok(Some((completed, dead)))
}

#[derive(Default)]
struct Tally {
    completed: usize,
    archived: usize,
    retried: usize,
    dead: usize,
}

async fn enqueue_job(
    store: &SqliteTaskStore,
    clock: &ManualClock,
    labourer: &Labourer,
) -> sosw::Result<(usize, usize)> {
    let now = clock.now_secs();
    let newest = store.newest_queued_greenfield(&labourer.id, now).await?;
    let tasks: Vec<Task> = greenfield::queued_sequence(newest, TASKS)
        .enumerate()
        .map(|(n, g)| {
            Task::new(
                format!("demo-{n:03}"),
                &labourer.id,
                json!({"n": n, "greeting": "hello"}),
                g,
                clock.now_f64(),
            )
        })
        .collect();
    let report = store.enqueue(&tasks, EnqueueMode::SkipExisting).await?;
    println!(
        "enqueued {} tasks ({} already there), greenfields {}..{}",
        report.written,
        report.skipped_existing,
        tasks.first().map_or(0, |t| t.greenfield),
        tasks.last().map_or(0, |t| t.greenfield)
    );
    Ok((report.written, report.skipped_existing))
}

async fn claim_free_slots(
    store: &SqliteTaskStore,
    labourer: &Labourer,
    now: i64,
) -> sosw::Result<Vec<Task>> {
    let running = store
        .count_running(&labourer.id, &Markers::for_labourer(now, labourer))
        .await?;
    let free = SLOTS.saturating_sub(usize::try_from(running).unwrap_or(SLOTS));
    let mut claimed = Vec::new();
    for task in store.next_queued(&labourer.id, now, free).await? {
        if let ClaimOutcome::Claimed(task) = store.claim(&task.task_id, now).await? {
            claimed.push(task);
        }
    }
    Ok(claimed)
}

async fn scavenge<S: TaskStore>(
    store: &S,
    labourer: &Labourer,
    now: i64,
    tally: &mut Tally,
) -> sosw::Result<()> {
    for task in store.list_completed(&labourer.id, now, 100).await? {
        if store.archive(&task, ClosedStatus::Completed, now).await? == MoveOutcome::Moved {
            tally.archived += 1;
        }
    }
    let markers = Markers::for_labourer(now, labourer);
    for task in store.list_expired(&labourer.id, &markers, 100).await? {
        let retry =
            fate::should_retry(task.attempts, fate::max_attempts(labourer), Ending::Expired);
        let moved = if retry {
            store.move_to_retry(&task, now + 30).await?
        } else {
            store.archive(&task, ClosedStatus::Dead, now).await?
        };
        match (moved, retry) {
            (MoveOutcome::Moved, true) => tally.retried += 1,
            (MoveOutcome::Moved, false) => tally.dead += 1,
            (MoveOutcome::Conflict, _) => println!("task {} changed under us", task.task_id),
        }
    }
    requeue_due_retries(store, &labourer.id, now, 20).await?;
    Ok(())
}
