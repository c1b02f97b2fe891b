//! Claims, releases and the running count: what keeps two orchestrators from invoking one task.

use std::collections::HashMap;
use std::sync::Arc;

use super::support::{NOW, Scope, WINDOW, YEAR_AGO, claim, complete, live, put, to_retry};
use sosw_core::store::{ClaimOutcome, ClosedStatus, MoveOutcome, TaskStore};
use sosw_core::task::greenfield::invoked_at;
use sosw_core::task::{Markers, Task, TaskId};

/// A claim returns the task as it was before the claim (queued greenfield, old attempts: what the worker
/// payload carries) and leaves the row invoked: `greenfield = now + Δ`, `attempts + 1`, nothing else
/// changed. A second claim, at the same or a later time, is `AlreadyClaimed`.
pub async fn claim_returns_the_pre_claim_task_and_marks_it_invoked<S: TaskStore + 'static>(
    store: Arc<S>,
) {
    let s = Scope::new("claim");
    let mut task = s.task(1, 2000);
    task.attempts = 2;
    put(&*store, std::slice::from_ref(&task)).await;

    let before = claim(&*store, &task.task_id, NOW).await;
    assert_eq!(before, task, "Claimed holds the pre-claim task");
    let mut invoked = task.clone();
    invoked.greenfield = invoked_at(NOW);
    invoked.attempts = 3;
    assert_eq!(
        live(&*store, &task.task_id).await,
        invoked,
        "the claim sets greenfield = now + Δ and attempts + 1, nothing else"
    );

    for at in [NOW, NOW + 60] {
        let again = store
            .claim(&task.task_id, at)
            .await
            .expect("claim succeeds");
        assert_eq!(again, ClaimOutcome::AlreadyClaimed, "second claim at {at}");
    }
    assert_eq!(
        live(&*store, &task.task_id).await,
        invoked,
        "a lost claim changes nothing"
    );
}

/// Claiming a missing task, a completed one (even when its greenfield fell below `now` a year later) or
/// one waiting for retry is `AlreadyClaimed`, and writes nothing.
pub async fn claim_of_a_missing_completed_or_retried_task_is_already_claimed<
    S: TaskStore + 'static,
>(
    store: Arc<S>,
) {
    let s = Scope::new("noclaim");
    let missing = s.id(0);
    let outcome = store.claim(&missing, NOW).await.expect("claim succeeds");
    assert_eq!(
        outcome,
        ClaimOutcome::AlreadyClaimed,
        "claim of a missing task"
    );
    let row = store.get_task(&missing).await.expect("get_task succeeds");
    assert_eq!(row, None, "a claim of a missing task creates no row");

    put(
        &*store,
        &[s.task(1, 2000), s.task(2, 3000), s.task(3, 4000)],
    )
    .await;
    let (recent, old, retried) = (s.id(1), s.id(2), s.id(3));
    claim(&*store, &recent, NOW - 100).await;
    complete(&*store, &recent, NOW - 50).await;
    claim(&*store, &old, YEAR_AGO).await;
    complete(&*store, &old, YEAR_AGO + 10).await;
    for id in [&recent, &old] {
        let before = live(&*store, id).await;
        let outcome = store.claim(id, NOW).await.expect("claim succeeds");
        assert_eq!(
            outcome,
            ClaimOutcome::AlreadyClaimed,
            "claim of completed `{id}`"
        );
        assert_eq!(
            live(&*store, id).await,
            before,
            "a refused claim writes nothing"
        );
    }

    claim(&*store, &retried, NOW - 5000).await;
    to_retry(&*store, &retried, NOW - 10).await;
    let outcome = store.claim(&retried, NOW).await.expect("claim succeeds");
    assert_eq!(
        outcome,
        ClaimOutcome::AlreadyClaimed,
        "claim of a task waiting for retry"
    );
    let row = store.get_task(&retried).await.expect("get_task succeeds");
    assert_eq!(
        row, None,
        "a claim creates no live row for a task waiting for retry"
    );
}

/// Eight concurrent claimers, each looping `next_queued(limit 25)` + `claim` until the queue is empty,
/// over 1,000 queued tasks: every task is claimed exactly once, and every row has `attempts = 1`.
pub async fn concurrent_claimers_claim_every_task_exactly_once<S: TaskStore + 'static>(
    store: Arc<S>,
) {
    const TASKS: u64 = 1000;
    const CLAIMERS: usize = 8;
    let s = Scope::new("race");
    let tasks = s.queued(TASKS);
    put(&*store, &tasks).await;

    let claimers: Vec<_> = (0..CLAIMERS)
        .map(|_| tokio::spawn(claim_until_empty(Arc::clone(&store), s.labourer.clone())))
        .collect();
    let mut wins: HashMap<TaskId, u32> = HashMap::new();
    for claimer in claimers {
        for id in claimer.await.expect("a claimer does not panic") {
            *wins.entry(id).or_default() += 1;
        }
    }

    let total: u32 = wins.values().sum();
    assert_eq!(total, 1000, "claims won in total: each task once");
    for task in &tasks {
        let won = wins.get(&task.task_id).copied().unwrap_or(0);
        assert_eq!(won, 1, "task `{}` was claimed {won} times", task.task_id);
        let row = live(&*store, &task.task_id).await;
        assert_eq!(
            (row.attempts, row.greenfield),
            (1, invoked_at(NOW)),
            "task `{}` is invoked once",
            task.task_id
        );
    }
}

/// One claimer of the race: the ids it won.
async fn claim_until_empty<S: TaskStore + 'static>(store: Arc<S>, labourer: String) -> Vec<TaskId> {
    // Far more rounds than 1,000 tasks need; a store that never drains its queue fails, not hangs.
    const MAX_ROUNDS: usize = 10_000;
    let mut won = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let batch = store
            .next_queued(&labourer, NOW, 25)
            .await
            .expect("next_queued succeeds");
        if batch.is_empty() {
            return won;
        }
        for task in batch {
            let outcome = store
                .claim(&task.task_id, NOW)
                .await
                .expect("claim succeeds");
            if let ClaimOutcome::Claimed(_) = outcome {
                won.push(task.task_id);
            }
        }
    }
    panic!("the queue of `{labourer}` did not drain in {MAX_ROUNDS} rounds");
}

/// `release_claim` restores the pre-claim greenfield and attempts: the task is queued again and can be
/// claimed again.
pub async fn release_claim_puts_the_task_back_in_the_queue<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("release");
    let task = s.task(1, 2000);
    put(&*store, std::slice::from_ref(&task)).await;
    let before = claim(&*store, &task.task_id, NOW).await;

    let released = store
        .release_claim(&before, NOW)
        .await
        .expect("release succeeds");
    assert!(released, "release of an unchanged claim");
    assert_eq!(
        live(&*store, &task.task_id).await,
        task,
        "the row is as before the claim"
    );
    let queued = store
        .next_queued(&s.labourer, NOW + 1, 10)
        .await
        .expect("next_queued succeeds");
    assert_eq!(
        queued,
        std::slice::from_ref(&task),
        "the released task is queued again"
    );
    claim(&*store, &task.task_id, NOW + 1).await;
}

/// `release_claim` refuses (false, nothing written) when the row changed after the claim: completed,
/// claimed again at another time, claimed at another time than the caller says, or gone.
pub async fn release_claim_refuses_when_the_row_changed<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("norelease");
    put(&*store, &s.queued(3)).await;
    let (done, reclaimed, other_time) = (s.id(0), s.id(1), s.id(2));

    let claimed = claim(&*store, &done, NOW).await;
    complete(&*store, &done, NOW + 10).await;
    refuse_release(&*store, &claimed, NOW, "completed after the claim").await;

    let claimed = claim(&*store, &reclaimed, NOW).await;
    assert!(
        store
            .release_claim(&claimed, NOW)
            .await
            .expect("release succeeds")
    );
    claim(&*store, &reclaimed, NOW + 60).await;
    refuse_release(&*store, &claimed, NOW, "claimed again at another time").await;
    let row = live(&*store, &reclaimed).await;
    assert_eq!(
        (row.greenfield, row.attempts),
        (invoked_at(NOW + 60), 1),
        "the new claim stays"
    );

    let claimed = claim(&*store, &other_time, NOW).await;
    refuse_release(&*store, &claimed, NOW - 1, "claimed at another time").await;

    let never = s.task(9, 2000);
    let released = store
        .release_claim(&never, NOW)
        .await
        .expect("release succeeds");
    assert!(!released, "release of a task that does not exist");
    let row = store
        .get_task(&never.task_id)
        .await
        .expect("get_task succeeds");
    assert_eq!(row, None, "a refused release creates no row");
}

async fn refuse_release<S: TaskStore + ?Sized>(
    store: &S,
    claimed: &Task,
    claimed_at: i64,
    why: &str,
) {
    let before = live(store, &claimed.task_id).await;
    let released = store
        .release_claim(claimed, claimed_at)
        .await
        .expect("release succeeds");
    assert!(!released, "release refused: {why}");
    assert_eq!(
        live(store, &claimed.task_id).await,
        before,
        "{why}: nothing written"
    );
}

/// `count_running` counts this labourer's tasks invoked after `markers.expired` (running, or invoked by a
/// clock ahead) that are not completed. A task on the `expired` boundary is expired, not running; a
/// completed task frees its slot at once.
pub async fn count_running_counts_only_busy_tasks<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("running");
    let other = s.other();
    let markers = Markers::new(NOW, WINDOW);
    let mut tasks = s.queued(7);
    tasks.push(s.task_of(&other, 7, 2000));
    put(&*store, &tasks).await;
    let window = WINDOW as i64;
    let claims = [
        (s.id(0), NOW),                  // invoked now: counts
        (s.id(1), NOW - 600),            // running: counts
        (s.id(2), NOW + 30),             // invoked by a clock ahead: counts
        (s.id(3), NOW - window),         // on the expired boundary: expired
        (s.id(4), NOW - 5000),           // expired
        (s.id(5), NOW - 100),            // completed below
        (tasks[7].task_id.clone(), NOW), // another labourer's
    ];
    for (id, at) in &claims {
        claim(&*store, id, *at).await;
    }
    complete(&*store, &s.id(5), NOW - 50).await;
    let boundary = live(&*store, &s.id(3)).await;
    assert_eq!(
        boundary.greenfield, markers.expired,
        "setup: the boundary task"
    );

    let running = store
        .count_running(&s.labourer, &markers)
        .await
        .expect("count_running succeeds");
    assert_eq!(
        running, 3,
        "invoked now, running and invoked-ahead count; boundary, expired, completed and queued do not"
    );
    let theirs = store
        .count_running(&other, &markers)
        .await
        .expect("count_running succeeds");
    assert_eq!(
        theirs, 1,
        "the other labourer's running task counts for it only"
    );

    complete(&*store, &s.id(1), NOW).await;
    let running = store
        .count_running(&s.labourer, &markers)
        .await
        .expect("count_running succeeds");
    assert_eq!(running, 2, "a completed task stops counting at once");
}

/// `count_running_many` gives every labourer the count `count_running` gives it (each with its own
/// markers), whether the store counts them together or one by one: the orchestrator takes a round's
/// counts from it where the store says it is cheaper.
pub async fn count_running_many_matches_count_running<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("running-many");
    let other = s.other();
    let idle = format!("{}_idle", s.labourer);
    let mut tasks = s.queued(6);
    tasks.push(s.task_of(&other, 6, 2000));
    tasks.push(s.task_of(&other, 7, 2001));
    put(&*store, &tasks).await;
    let window = WINDOW as i64;
    for (id, at) in [
        (s.id(0), NOW),
        (s.id(1), NOW - 600),
        (s.id(2), NOW - 5000), // expired
        (s.id(3), NOW - 100),  // completed below
        (tasks[6].task_id.clone(), NOW),
        (tasks[7].task_id.clone(), NOW - window - 10), // expired at NOW
    ] {
        claim(&*store, &id, at).await;
    }
    complete(&*store, &s.id(3), NOW - 50).await;
    let asked = vec![
        (s.labourer.clone(), Markers::new(NOW, WINDOW)),
        (other.clone(), Markers::new(NOW - 4000, WINDOW)),
        (idle.clone(), Markers::new(NOW, WINDOW)),
    ];
    let many = store
        .count_running_many(&asked)
        .await
        .expect("count_running_many succeeds");
    assert_eq!(many.len(), 3, "one count per labourer asked: {many:?}");
    for (labourer, markers) in &asked {
        let one = store
            .count_running(labourer, markers)
            .await
            .expect("count_running succeeds");
        assert_eq!(
            many.get(labourer),
            Some(&one),
            "`{labourer}`: count_running_many and count_running agree ({many:?})"
        );
    }
    assert_eq!(
        many[&s.labourer], 2,
        "invoked now and running; expired and completed do not"
    );
    assert_eq!(
        many[&other], 2,
        "both of the other labourer's claims run at its earlier markers"
    );
    assert_eq!(many[&idle], 0, "a labourer with no task runs none");
}

/// A claim racing a move of the same queued task elsewhere (an archive, as `sosw cancel` closes a
/// queued task, or a move to the retry table), each from its own read of the queued row: exactly one
/// of them wins, and the task ends in exactly one place, the winner's. Three racers per task (two
/// claimers and the mover), over 200 tasks, so each pair meets in both orders.
pub async fn a_claim_racing_a_move_of_the_same_queued_task_leaves_one_winner<
    S: TaskStore + 'static,
>(
    store: Arc<S>,
) {
    const TASKS: u64 = 200;
    let s = Scope::new("claimmove");
    let tasks = s.queued(TASKS);
    put(&*store, &tasks).await;
    let mut racers = Vec::new();
    for (n, task) in tasks.iter().enumerate() {
        for _ in 0..2 {
            let store = Arc::clone(&store);
            let id = task.task_id.clone();
            racers.push(tokio::spawn(async move {
                let won = matches!(
                    store.claim(&id, NOW).await.expect("claim succeeds"),
                    ClaimOutcome::Claimed(_)
                );
                (id, "claim", won)
            }));
        }
        let store = Arc::clone(&store);
        let task = task.clone();
        racers.push(tokio::spawn(async move {
            let (how, outcome) = if n % 2 == 0 {
                let outcome = store
                    .archive(&task, ClosedStatus::Dead, NOW)
                    .await
                    .expect("archive succeeds");
                ("archive", outcome)
            } else {
                let outcome = store
                    .move_to_retry(&task, NOW + 600)
                    .await
                    .expect("move_to_retry succeeds");
                ("retry", outcome)
            };
            (task.task_id, how, outcome == MoveOutcome::Moved)
        }));
    }
    let mut winners: HashMap<TaskId, Vec<&'static str>> = HashMap::new();
    for racer in racers {
        let (id, how, won) = racer.await.expect("a racer does not panic");
        let entry = winners.entry(id).or_default();
        if won {
            entry.push(how);
        }
    }
    let mut claims = 0;
    for task in &tasks {
        let id = &task.task_id;
        let won = &winners[id];
        assert_eq!(won.len(), 1, "`{id}`: exactly one racer wins, not {won:?}");
        let live_row = store.get_task(id).await.expect("get_task succeeds");
        let closed = store
            .get_closed_task(id)
            .await
            .expect("get_closed_task succeeds");
        let waiting = store
            .get_retry_task(&s.labourer, id)
            .await
            .expect("get_retry_task succeeds");
        let places = (live_row.is_some(), closed.is_some(), waiting.is_some());
        let expected = match won[0] {
            "claim" => {
                claims += 1;
                assert!(
                    live_row
                        .as_ref()
                        .is_some_and(|t| t.greenfield == invoked_at(NOW)),
                    "`{id}`: claimed, so invoked"
                );
                (true, false, false)
            }
            "archive" => (false, true, false),
            _ => (false, false, true),
        };
        assert_eq!(
            places, expected,
            "`{id}` (won by {}): (live, closed, waiting)",
            won[0]
        );
    }
    assert!(claims > 0, "some claims won");
}
