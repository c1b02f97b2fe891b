//! Four orchestrators racing over one store of 10,000 queued tasks invoke every task exactly once per
//! attempt, counted by the workers: on SQLite, and on DynamoDB Local when its endpoint is set.

use crate::orchestrator_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sosw::aws::dynamodb::{DynamoTaskStore, create_tables};
use sosw::clock::{Clock, SystemClock};
use sosw::essentials::orchestrator::OrchestratorReport;
use sosw::invoke::Invoker;
use sosw::store::{EnqueueMode, TableNames, TaskQueue, TaskStore};

use orchestrator_support::{
    Deliveries, RejectingFirst, completing_workers, config, continuous, orchestrator, queued,
    sqlite_with,
};

const TASKS: u64 = 10_000;
const ORCHESTRATORS: usize = 4;

/// Runs four orchestrators at once until the queue is empty (each run ends when it finds nothing
/// left to start); returns their reports.
async fn race<S: TaskStore + 'static>(
    store: Arc<S>,
    invoker: Arc<dyn Invoker>,
) -> Vec<OrchestratorReport> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let mut reports = Vec::new();
    // A run may end while a rival still holds tasks it will release; a few rounds of runs drain those.
    for _ in 0..5 {
        let runs = (0..ORCHESTRATORS).map(|_| {
            let orchestrator = orchestrator(
                store.clone(),
                invoker.clone(),
                config(
                    json!({"w": {"max_simultaneous_invocations": 200}}),
                    json!({}),
                ),
                clock.clone(),
                continuous(Duration::from_millis(5)),
            );
            let deadline = clock.now() + chrono::Duration::seconds(300);
            tokio::spawn(async move { orchestrator.run(deadline).await.expect("run") })
        });
        for run in join_runs(runs.collect()).await {
            reports.push(run);
        }
        if store
            .queue_length("w", clock.now_secs())
            .await
            .expect("length")
            == 0
        {
            break;
        }
    }
    reports
}

async fn join_runs(
    handles: Vec<tokio::task::JoinHandle<OrchestratorReport>>,
) -> Vec<OrchestratorReport> {
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("the run task does not panic"));
    }
    out
}

/// Every task completed in the store, after exactly one claim that stood.
async fn assert_all_completed_once<S: TaskStore>(store: &S) {
    let completed = store
        .list_completed("w", SystemClock.now_secs(), TASKS as usize + 1)
        .await
        .expect("list completed");
    assert_eq!(completed.len() as u64, TASKS, "every task completed");
    let attempts: HashMap<u32, usize> = completed.iter().fold(HashMap::new(), |mut m, t| {
        *m.entry(t.attempts).or_default() += 1;
        m
    });
    assert_eq!(
        attempts,
        HashMap::from([(1, TASKS as usize)]),
        "one standing claim per task"
    );
}

/// Races the orchestrators over `store` (already holding the tasks) and checks the outcome.
async fn four_orchestrators_over<S: TaskStore + 'static>(store: Arc<S>) {
    let deliveries = Arc::new(Deliveries::default());
    let workers = Arc::new(completing_workers(
        "w",
        store.clone(),
        Arc::new(SystemClock),
        Duration::ZERO,
        deliveries.clone(),
    ));
    let reports = race(store.clone(), workers.clone()).await;
    workers.wait_idle().await;

    let per_task = deliveries.per_task();
    assert_eq!(per_task.len() as u64, TASKS, "every task was delivered");
    let twice: Vec<_> = per_task.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let invoked: u64 = reports.iter().map(|r| r.invoked()).sum();
    assert_eq!(invoked, TASKS, "the reports agree with the workers");
    let busy = reports.iter().filter(|r| r.invoked() > 0).count();
    assert!(
        busy >= 2,
        "the orchestrators really raced: {busy} invoked anything"
    );
    let skipped: u64 = reports
        .iter()
        .flat_map(|r| r.labourers.values())
        .map(|l| l.skipped)
        .sum();
    println!(
        "race: {TASKS} tasks, {} runs, {skipped} claims lost to a rival",
        reports.len()
    );
    assert_all_completed_once(store.as_ref()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_orchestrators_invoke_every_task_exactly_once() {
    four_orchestrators_over(sqlite_with("w", TASKS).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_orchestrators_invoke_every_task_exactly_once_on_dynamodb_local() {
    let Some(client) = sosw_integration_tests::dynamodb_client().await else {
        return;
    };
    let tables = TableNames::with_prefix(&sosw_integration_tests::unique_prefix());
    create_tables(&client, &tables).await.expect("tables");
    let store = Arc::new(DynamoTaskStore::new(client, tables));
    for chunk in queued("w", 0, TASKS).chunks(1000) {
        store
            .enqueue(chunk, EnqueueMode::Fresh)
            .await
            .expect("enqueue");
    }
    four_orchestrators_over(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rejected_invocations_are_released_and_invoked_again_exactly_once() {
    let store = sqlite_with("w", TASKS).await;
    let deliveries = Arc::new(Deliveries::default());
    let workers = Arc::new(completing_workers(
        "w",
        store.clone(),
        Arc::new(SystemClock),
        Duration::ZERO,
        deliveries.clone(),
    ));
    // Every seventh task is refused on its first invocation (as a throttle beyond retries would be).
    let invoker = Arc::new(RejectingFirst {
        inner: workers.clone(),
        reject: |p: &Value| p["n"].as_u64().is_some_and(|n| n % 7 == 0),
        rejected: Mutex::new(HashMap::new()),
    });
    let reports = race(store.clone(), invoker.clone()).await;
    workers.wait_idle().await;

    let per_task = deliveries.per_task();
    assert_eq!(per_task.len() as u64, TASKS, "no task was lost");
    assert!(
        per_task.values().all(|n| *n == 1),
        "accepted exactly once each"
    );
    let refused = invoker.rejected.lock().expect("lock").len() as u64;
    assert_eq!(
        refused,
        TASKS.div_ceil(7),
        "every seventh task was refused once"
    );
    let released: u64 = reports
        .iter()
        .flat_map(|r| r.labourers.values())
        .map(|l| l.released)
        .sum();
    assert_eq!(released, refused, "each refusal released its claim");
    // The released tasks were claimed again with their attempts restored: one standing claim each.
    assert_all_completed_once(store.as_ref()).await;
}
