//! The fault scenarios, each on SQLite, on DynamoDB Local with sosw 0.7's tables and on DynamoDB Local
//! with the lean layout (4 shards), each asserting the queue checker's
//! figures: nothing lost, nothing unexpected, no unexplained duplicate, every task closed.

use sosw::aws::dynamodb::lean::{
    LeanOptions, LeanTaskStore, create_lean_tables_without_stream, delete_lean_tables,
};
use sosw::aws::dynamodb::{DynamoTaskStore, create_tables, delete_tables};
use sosw::embedded::SqliteTaskStore;
use sosw::store::{TableNames, TaskStore};
use sosw::testing::checker::QueueCheck;
use sosw::testing::faults::{InvokeFaults, WorkerFaults};

use std::sync::Arc;

use sosw::clock::ManualClock;

use super::rig::{Constant, Rig, RunFigures, Setup, T0};
use crate::size;

/// Which store a scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Dynamo,
    Lean,
}

/// What a scenario run gives back.
pub struct Outcome {
    pub check: QueueCheck,
    pub figures: RunFigures,
    pub injected: String,
    /// The virtual time (ms) of every invocation that reached a worker, sorted.
    pub invocation_times: Vec<i64>,
}

async fn run_on<S: TaskStore + 'static>(store: S, setup: Setup, tasks: u64) -> Outcome {
    let mut rig = Rig::new(store, setup, Box::new(Constant(1_000)));
    rig.submit("w", tasks).await;
    let figures = rig.drive().await;
    let check = rig.check().await;
    let injected = format!(
        "store calls {} (throttled {}), invoke {:?}, worker fates {:?}",
        rig.store.calls(),
        rig.store.throttled(),
        rig.invoker.counts(),
        rig.workers.fates()
    );
    let mut invocation_times = rig.workers.invocation_times();
    invocation_times.sort_unstable();
    Outcome {
        check,
        figures,
        injected,
        invocation_times,
    }
}

/// Runs `setup` over `tasks` tasks on `kind`; `None` when DynamoDB Local is not configured.
pub async fn run(kind: Kind, setup: Setup, tasks: u64) -> Option<Outcome> {
    let started = std::time::Instant::now();
    let outcome = match kind {
        Kind::Sqlite => run_on(SqliteTaskStore::in_memory().expect("SQLite"), setup, tasks).await,
        Kind::Dynamo | Kind::Lean => {
            // Under store throttling, batch writes also come back partly unprocessed, at the same rate.
            let rate = setup.store_throttle;
            let write_failures = setup.write_failures;
            let (client, unprocessed, failed) =
                sosw_integration_tests::dynamodb_client_with_faults(
                    rate,
                    write_failures,
                    setup.seed,
                )
                .await?;
            let prefix = sosw_integration_tests::unique_prefix();
            let mut outcome = if kind == Kind::Dynamo {
                let tables = TableNames::with_prefix(&prefix);
                create_tables(&client, &tables).await.expect("tables");
                let store = DynamoTaskStore::new(client.clone(), tables.clone());
                let outcome = run_on(store, setup, tasks).await;
                delete_tables(&client, &tables)
                    .await
                    .expect("tables deleted");
                outcome
            } else {
                let options = LeanOptions::with_prefix(&prefix);
                create_lean_tables_without_stream(&client, &options)
                    .await
                    .expect("lean tables");
                // Job counters per task: these scenarios check the queue, not the counters (the
                // steering scenarios and `stores::lean_job_counts` run the batched counts), and a
                // stream read by every scavenger run makes DynamoDB Local several times slower
                // when two of them run at once. The store shares the rig's clock: whether a move
                // stopped halfway may be finished is a question of its time.
                let clock = Arc::new(ManualClock::at_secs(T0));
                let store = LeanTaskStore::new(client.clone(), options.clone())
                    .expect("lean options")
                    .with_clock(clock.clone());
                let setup = Setup {
                    clock: Some(clock),
                    ..setup
                };
                let outcome = run_on(store, setup, tasks).await;
                delete_lean_tables(&client, &options)
                    .await
                    .expect("lean tables deleted");
                outcome
            };
            outcome.injected += &format!(
                ", batch writes left unprocessed {}, single writes failed {}",
                unprocessed.taken(),
                failed.failed()
            );
            if rate > 0.0 {
                assert!(unprocessed.taken() > 0, "UnprocessedItems were injected");
            }
            if write_failures > 0.0 {
                assert!(failed.failed() > 0, "failed writes were injected");
            }
            outcome
        }
    };
    println!(
        "{kind:?}, {tasks} tasks, {:.1} s wall: {}\n  run: {:?}\n  injected: {}",
        started.elapsed().as_secs_f64(),
        outcome.check,
        outcome.figures,
        outcome.injected
    );
    Some(outcome)
}

/// Nothing lost, unexpected or duplicated without cause, and every task closed.
fn assert_all_closed(outcome: &Outcome, tasks: u64) {
    let check = &outcome.check;
    assert!(check.is_sound(), "{check}");
    assert_eq!(check.submitted, tasks);
    assert_eq!(check.pending, 0, "every task closed: {check}");
    assert_eq!(check.completed + check.dead, tasks, "{check}");
}

async fn four_orchestrators_race(kind: Kind) {
    race_of_four(kind, Setup::one_labourer(11, 400)).await;
}

/// Four orchestrators over `setup`'s labourer `w`, no faults: every task completed exactly once, and
/// more than one orchestrator claimed.
async fn race_of_four(kind: Kind, setup: Setup) {
    let tasks = size(1_000, 10_000);
    let setup = Setup {
        orchestrators: 4,
        ..setup
    };
    let Some(outcome) = run(kind, setup, tasks).await else {
        return;
    };
    assert_all_closed(&outcome, tasks);
    let check = &outcome.check;
    assert_eq!(check.completed, tasks, "no faults, no dead task");
    assert_eq!(check.exactly_once_fraction(), 1.0, "{check}");
    let busy = outcome
        .figures
        .claims_per_orchestrator
        .iter()
        .filter(|c| **c > 0)
        .count();
    assert!(busy >= 2, "the orchestrators raced: {:?}", outcome.figures);
}

/// Four orchestrators race over a labourer with per-key fairness (the tasks' 8 keys, at most 60 of a
/// key running): claims lost to a rival are replaced from the same key, and every task still runs
/// exactly once. On SQLite and the lean layout: sosw 0.7's tables refuse fairness (the conformance
/// suite and the orchestrator's tests check the refusal).
async fn four_orchestrators_race_with_fairness(kind: Kind) {
    let mut settings = super::rig::labourer_settings(400, 60);
    settings["fairness"] = serde_json::json!({"key": "k", "max_per_key": 60});
    let setup = Setup {
        labourers: vec![("w".into(), settings)],
        ..Setup::one_labourer(12, 400)
    };
    race_of_four(kind, setup).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_orchestrators_race_with_fairness_on_sqlite() {
    four_orchestrators_race_with_fairness(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_orchestrators_race_with_fairness_on_the_lean_layout() {
    four_orchestrators_race_with_fairness(Kind::Lean).await;
}

async fn worker_failures_lost_reports_and_duplicates(kind: Kind) {
    let tasks = size(1_000, 10_000);
    let setup = Setup {
        worker: WorkerFaults {
            fail_rate: 0.3,
            timeout_rate: 0.0,
            lost_report_rate: 0.1,
        },
        invoke: InvokeFaults {
            duplicate_rate: 0.1,
            ..InvokeFaults::default()
        },
        orchestrators: 2,
        ..Setup::one_labourer(22, 400)
    };
    let Some(outcome) = run(kind, setup, tasks).await else {
        return;
    };
    assert_all_closed(&outcome, tasks);
    let check = &outcome.check;
    assert!(check.explained_duplicates > 0, "{check}");
    assert!(check.redeliveries > 0, "{check}");
    assert!(
        check.dead < tasks / 50,
        "few tasks use up six attempts: {check}"
    );
}

async fn throttling_everywhere(kind: Kind) {
    let tasks = size(1_000, 10_000);
    let setup = Setup {
        store_throttle: 0.1,
        invoke: InvokeFaults {
            throttle_rate: 0.1,
            unknown_rate: 0.05,
            duplicate_rate: 0.0,
        },
        orchestrators: 2,
        ..Setup::one_labourer(33, 400)
    };
    let Some(outcome) = run(kind, setup, tasks).await else {
        return;
    };
    assert_all_closed(&outcome, tasks);
    assert!(
        outcome.check.completed > tasks * 9 / 10,
        "{}",
        outcome.check
    );
}

async fn essentials_killed_mid_step(kind: Kind) {
    let tasks = size(1_000, 10_000);
    let setup = Setup {
        // One step in five, every essential dies at a seeded store call (claims made and not
        // invoked, completions recorded and not archived, retries half moved), on top of the fault mix.
        crash_every: Some(5),
        worker: WorkerFaults {
            fail_rate: 0.1,
            timeout_rate: 0.0,
            lost_report_rate: 0.0,
        },
        invoke: InvokeFaults {
            duplicate_rate: 0.05,
            ..InvokeFaults::default()
        },
        orchestrators: 2,
        ..Setup::one_labourer(44, 400)
    };
    let Some(outcome) = run(kind, setup, tasks).await else {
        return;
    };
    assert_all_closed(&outcome, tasks);
    assert!(outcome.figures.crashes > 2, "{:?}", outcome.figures);
}

/// Two orchestrators racing every step over one labourer with a rate limit of 50 invocations a
/// minute: the limit is shared through the store's ecology record, so in no window of a minute do the
/// workers get more than 50 invocations (each orchestrator counting on its own would allow 100, and
/// both are held back by the limit at some point), and the limit is used (the busiest minute is close
/// to it).
async fn two_orchestrators_share_one_rate_limit(kind: Kind) {
    const PER_MINUTE: usize = 50;
    let tasks = size(300, 2_000);
    let mut settings = super::rig::labourer_settings(400, 60);
    settings["rate_limit"] = serde_json::json!({"tasks": PER_MINUTE, "period_secs": 60});
    let setup = Setup {
        orchestrators: 2,
        labourers: vec![("w".into(), settings)],
        ..Setup::one_labourer(55, 400)
    };
    let Some(outcome) = run(kind, setup, tasks).await else {
        return;
    };
    let times = &outcome.invocation_times;
    assert_all_closed(&outcome, tasks);
    assert_eq!(
        times.len() as u64,
        tasks,
        "no faults: one invocation per task"
    );
    // Every window of a minute that starts at an invocation (the fullest windows start at one).
    let busiest = (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t < times[i] + 60_000)
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(
        busiest <= PER_MINUTE,
        "{busiest} invocations in one minute, beyond the shared limit of {PER_MINUTE}"
    );
    assert!(
        busiest >= PER_MINUTE * 9 / 10,
        "the limit is used: the busiest minute had {busiest}"
    );
    // Both orchestrators wanted more than the shared limit left them: each alone would have taken it.
    let limited = &outcome.figures.rate_limited_per_orchestrator;
    assert!(
        limited.len() == 2 && limited.iter().all(|n| *n > 0),
        "both orchestrators were held back by the shared limit: {:?}",
        outcome.figures
    );
}

/// Single-item DynamoDB writes failing on their way (5% of them), with 20% worker failures and two
/// orchestrators: each move of two writes whose second write fails is left halfway, the task in two
/// places, as a mover stopped by a throttled delete or a killed process leaves it. The next steps must
/// recognise the earlier copy as stale (or finish the move once its mover has surely stopped): every
/// task closed, nothing lost, nothing run twice without cause. On the DynamoDB stores only (SQLite
/// sends no requests; its moves are transactions).
async fn writes_failing_mid_move(kind: Kind) {
    let tasks = size(1_000, 10_000);
    let setup = Setup {
        write_failures: 0.05,
        worker: WorkerFaults {
            fail_rate: 0.2,
            ..WorkerFaults::default()
        },
        orchestrators: 2,
        ..Setup::one_labourer(66, 400)
    };
    let Some(outcome) = run(kind, setup, tasks).await else {
        return;
    };
    assert_all_closed(&outcome, tasks);
    assert!(outcome.check.redeliveries > 0, "{}", outcome.check);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_failing_mid_move_on_the_07_tables() {
    writes_failing_mid_move(Kind::Dynamo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_failing_mid_move_on_the_lean_layout() {
    writes_failing_mid_move(Kind::Lean).await;
}

on_every_store!(
    four_orchestrators_race,
    worker_failures_lost_reports_and_duplicates,
    throttling_everywhere,
    essentials_killed_mid_step,
    two_orchestrators_share_one_rate_limit,
);
