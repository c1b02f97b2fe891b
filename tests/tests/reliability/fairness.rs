//! Per-key fairness through the real orchestrator and worker assistant, on a virtual clock: one key's
//! backlog submitted first, ten small keys after it, and a few tasks whose payload lacks the key's
//! field. With `fairness` every small key finishes within the first 5% of the time the hot key's
//! backlog takes; without it, in greenfield order, they finish after the hot key's last task. On the
//! SQLite store and on the lean DynamoDB layout (DynamoDB Local, smaller sizes).
//!
//! The 5% target needs a hot backlog of more than 21 times the small keys' tasks: sharing the slots
//! equally among 12 keys, the small keys finish after about 12 x their size / slots steps, the hot key
//! after (hot + small) / slots. On SQLite the hot key holds 30,000 tasks against 10 x 100 (100,000,
//! the figure, under `SOSW_RELIABILITY_FULL=1`); on the lean layout 6,000 against 10 x 10.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::TimeDelta;
use serde_json::{Value, json};
use sosw::aws::dynamodb::lean::{
    LeanOptions, LeanTaskStore, create_lean_tables_without_stream, delete_lean_tables,
};
use sosw::clock::{Clock, ManualClock};
use sosw::config::{OrchestratorConfig, parse_config};
use sosw::embedded::SqliteTaskStore;
use sosw::essentials::worker_assistant::AssistantRequest;
use sosw::invoke::{InvokeOutcome, Invoker};
use sosw::processor::Stats;
use sosw::store::{EnqueueMode, TaskQueue, TaskStore};
use sosw::task::{Task, TaskId};
use sosw::testing::checker::Delivery;

use super::adaptive::essentials;
use super::rig::T0;

/// The labourer's slots.
const SLOTS: u64 = 50;

/// How many tasks of each kind.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    hot: u64,
    /// Tasks of each small key, and how many small keys.
    small_tasks: u64,
    small_keys: u64,
    /// Tasks whose payload has no `tenant`: they share the default key.
    keyless: u64,
}

/// The SQLite sizes.
fn sqlite_sizes() -> Sizes {
    Sizes {
        hot: super::super::size(30_000, 100_000),
        small_tasks: 100,
        small_keys: 10,
        keyless: 20,
    }
}

/// The lean layout's sizes: what DynamoDB Local runs in about a minute.
fn lean_sizes() -> Sizes {
    Sizes {
        hot: super::super::size(6_000, 20_000),
        small_tasks: 10,
        small_keys: 10,
        keyless: 20,
    }
}

/// A worker that takes one virtual second per task: every invocation's completion report is
/// handled at the next step.
#[derive(Default)]
struct OneSecondWorker {
    reports: Mutex<Vec<AssistantRequest>>,
}

#[async_trait]
impl Invoker for OneSecondWorker {
    async fn invoke(&self, _function: &str, payload: &Value) -> sosw::Result<InvokeOutcome> {
        let delivery = Delivery::from_payload(payload, false)?;
        let mut report = AssistantRequest::completed(TaskId::new(delivery.task_id)?);
        report.attempt = Some(delivery.attempt);
        self.reports.lock().expect("lock").push(report);
        Ok(InvokeOutcome::Accepted)
    }
}

/// When each key's last task completed, in steps (virtual seconds) from the start.
#[derive(Debug)]
struct Finish {
    hot: u64,
    /// The latest of the small keys.
    small: u64,
    keyless: u64,
    /// The most tasks running at once.
    peak: u64,
    /// The most tasks of one key running at once.
    peak_per_key: u64,
    steps: u64,
}

/// The tasks (the hot key's first in greenfield order: submitted first) and each one's key.
fn tasks(sizes: Sizes) -> (Vec<Task>, HashMap<TaskId, String>) {
    let mut keyed: Vec<(String, Value)> = (0..sizes.hot)
        .map(|n| ("hot".to_owned(), json!({"tenant": "hot", "n": n})))
        .collect();
    for k in 0..sizes.small_keys {
        for n in 0..sizes.small_tasks {
            let key = format!("small-{k}");
            keyed.push((key.clone(), json!({"tenant": key, "n": n})));
        }
    }
    keyed.extend((0..sizes.keyless).map(|n| ("keyless".to_owned(), json!({"n": n}))));
    let mut keys = HashMap::new();
    let tasks = keyed
        .into_iter()
        .enumerate()
        .map(|(i, (key, payload))| {
            let id = TaskId::for_chunk("w", i as u64);
            keys.insert(id.clone(), key);
            Task::new(id.as_str(), "w", payload, 2000 + i as i64, T0 as f64)
        })
        .collect();
    (tasks, keys)
}

/// One stretch of a run: the labourer's settings, the tasks queued before it, and at most how many
/// steps it lasts (`None`: until every task is done).
struct Stretch {
    labourer: Value,
    enqueue: Vec<Task>,
    steps: Option<u64>,
}

/// Runs `stretches` in turn over `store` until every task in `keys` completed; returns when each group
/// finished. Every task must be invoked exactly once.
async fn run_stretches<S: TaskStore + 'static>(
    store: Arc<S>,
    stretches: Vec<Stretch>,
    keys: &HashMap<TaskId, String>,
) -> Finish {
    let clock = Arc::new(ManualClock::at_secs(T0));
    let worker = Arc::new(OneSecondWorker::default());
    let total = keys.len();
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    let mut completed: HashSet<TaskId> = HashSet::new();
    let mut peak = 0u64;
    let mut peak_per_key = 0u64;
    let most_steps = 3 * total as u64 / SLOTS + 100;
    let mut step = 0u64;
    for stretch in stretches {
        let task_config = json!({"labourers": {"w": stretch.labourer}});
        let (orchestrator, assistant) =
            essentials(store.clone(), worker.clone(), clock.clone(), &task_config);
        if !stretch.enqueue.is_empty() {
            store
                .enqueue(&stretch.enqueue, EnqueueMode::Fresh)
                .await
                .expect("enqueue");
        }
        let end = stretch.steps.map_or(most_steps, |n| step + n);
        while step < end.min(most_steps) && completed.len() < total {
            step += 1;
            let now = clock.now();
            let report = orchestrator
                .run(now + TimeDelta::seconds(60))
                .await
                .expect("a run with a fixed config");
            assert_eq!(report.error_count(), 0, "step {step}: {report:?}");
            let reports: Vec<AssistantRequest> =
                std::mem::take(&mut *worker.reports.lock().expect("lock"));
            peak = peak.max(reports.len() as u64);
            // Every task of this step runs until the next: the step's invocations per key are what
            // runs of each key at once.
            let mut running: HashMap<&str, u64> = HashMap::new();
            for request in &reports {
                *running.entry(keys[&request.task_id].as_str()).or_default() += 1;
            }
            peak_per_key = peak_per_key.max(running.values().copied().max().unwrap_or(0));
            clock.advance_secs(1);
            for request in reports {
                assistant
                    .handle(&request, &mut Stats::default())
                    .await
                    .expect("the report is handled");
                last.insert(keys[&request.task_id].clone(), step);
                assert!(
                    completed.insert(request.task_id.clone()),
                    "task {} invoked twice",
                    request.task_id
                );
            }
        }
    }
    assert_eq!(
        completed.len(),
        total,
        "every task completed within {most_steps} steps"
    );
    let group = |name: &str| last.get(name).copied().unwrap_or(0);
    Finish {
        hot: group("hot"),
        small: last
            .iter()
            .filter(|(k, _)| k.starts_with("small-"))
            .map(|(_, s)| *s)
            .max()
            .unwrap_or(0),
        keyless: group("keyless"),
        peak,
        peak_per_key,
        steps: step,
    }
}

/// Every task of `sizes` queued at once and run to completion with `labourer` settings.
async fn run<S: TaskStore + 'static>(store: Arc<S>, labourer: Value, sizes: Sizes) -> Finish {
    let (tasks, keys) = tasks(sizes);
    let stretches = vec![Stretch {
        labourer,
        enqueue: tasks,
        steps: None,
    }];
    run_stretches(store, stretches, &keys).await
}

fn labourer(fairness: Option<Value>) -> Value {
    let mut settings =
        json!({"max_simultaneous_invocations": SLOTS, "duration": 60, "cooldown": 30});
    if let Some(fairness) = fairness {
        settings["fairness"] = fairness;
    }
    settings
}

fn sqlite() -> Arc<SqliteTaskStore> {
    Arc::new(SqliteTaskStore::in_memory().expect("SQLite"))
}

/// A lean store (4 shards) on fresh tables of DynamoDB Local, or `None` to skip; the tables are
/// deleted by [`drop_lean`].
async fn lean() -> Option<Arc<LeanTaskStore>> {
    let client = sosw_integration_tests::dynamodb_client().await?;
    let options = LeanOptions::with_prefix(&sosw_integration_tests::unique_prefix());
    create_lean_tables_without_stream(&client, &options)
        .await
        .expect("lean tables");
    Some(Arc::new(
        LeanTaskStore::new(client, options).expect("lean options"),
    ))
}

async fn drop_lean(store: &LeanTaskStore) {
    delete_lean_tables(store.client(), store.options())
        .await
        .expect("lean tables deleted");
}

/// The share of the hot key's time the small keys took, printed with the run.
fn small_share(what: &str, sizes: Sizes, fair: &Finish) -> f64 {
    let share = fair.small as f64 / fair.hot as f64;
    println!(
        "{what}: hot key {} tasks, {} small keys of {}, {} keyless, {SLOTS} slots: {fair:?}, small \
         keys done at {:.2}% of the hot key's time",
        sizes.hot,
        sizes.small_keys,
        sizes.small_tasks,
        sizes.keyless,
        100.0 * share
    );
    share
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_keys_finish_within_the_first_five_percent_of_a_hot_keys_backlog() {
    let sizes = sqlite_sizes();
    let fair = run(sqlite(), labourer(Some(json!({"key": "tenant"}))), sizes).await;
    let plain = run(sqlite(), labourer(None), sizes).await;
    let share = small_share("SQLite, fairness", sizes, &fair);
    let plain_share = small_share("SQLite, greenfield order", sizes, &plain);
    assert!(share <= 0.05, "{fair:?}");
    assert!(
        fair.keyless <= fair.small,
        "tasks without the key's field run in the default key's share: {fair:?}"
    );
    assert!(
        fair.peak <= SLOTS && plain.peak <= SLOTS,
        "{fair:?} {plain:?}"
    );
    // The contrast: in one line the small keys wait for the hot key's whole backlog.
    assert!(plain_share > 1.0, "{plain:?}");
}

/// The same on the lean layout, the fairness path announced by an orchestrator run before the tasks
/// are queued (as a deployed orchestrator's schedule does): every task is filed under its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn small_keys_finish_within_the_first_five_percent_on_the_lean_layout() {
    let Some(store) = lean().await else { return };
    let sizes = lean_sizes();
    let (tasks, keys) = tasks(sizes);
    let fair = labourer(Some(json!({"key": "tenant"})));
    let stretches = vec![
        Stretch {
            labourer: fair.clone(),
            enqueue: vec![],
            steps: Some(1),
        },
        Stretch {
            labourer: fair,
            enqueue: tasks,
            steps: None,
        },
    ];
    let started = std::time::Instant::now();
    let finish = run_stretches(store.clone(), stretches, &keys).await;
    println!("lean layout run: {:.1} s", started.elapsed().as_secs_f64());
    drop_lean(&store).await;
    let share = small_share("lean layout, fairness", sizes, &finish);
    assert!(share <= 0.05, "{finish:?}");
    assert!(finish.keyless <= finish.small, "{finish:?}");
    assert!(finish.peak <= SLOTS, "{finish:?}");
}

/// `max_per_key` caps each key's running tasks even with slots free, and a small key still gets its
/// share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_per_key_caps_every_keys_running_tasks() {
    let sizes = Sizes {
        hot: 200,
        ..sqlite_sizes()
    };
    let capped = run(
        sqlite(),
        labourer(Some(json!({"key": "tenant", "max_per_key": 3}))),
        sizes,
    )
    .await;
    assert!(capped.peak_per_key <= 3, "{capped:?}");
    // 12 keys (hot, ten small, the default key) at most 3 each: never more than 36 of the 50 slots.
    assert!(capped.peak <= 36, "{capped:?}");
    // The hot key, alone at the end at 3 a step, needs at least 200 / 3 steps.
    assert!(capped.hot >= 200 / 3, "{capped:?}");
    assert!(capped.small <= 40, "{capped:?}");
}

/// The same cap on the lean layout, its tasks queued before the path was announced (read from the
/// plain partitions) and after (filed under their keys).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn max_per_key_is_never_exceeded_on_the_lean_layout() {
    let Some(store) = lean().await else { return };
    let sizes = Sizes {
        hot: 200,
        ..lean_sizes()
    };
    let (mut tasks, keys) = tasks(sizes);
    let later = tasks.split_off(tasks.len() / 2);
    let capped = labourer(Some(json!({"key": "tenant", "max_per_key": 3})));
    let stretches = vec![
        Stretch {
            labourer: capped.clone(),
            enqueue: tasks,
            steps: Some(5),
        },
        Stretch {
            labourer: capped,
            enqueue: later,
            steps: None,
        },
    ];
    let finish = run_stretches(store.clone(), stretches, &keys).await;
    drop_lean(&store).await;
    println!("lean layout, max_per_key 3: {finish:?}");
    assert!(finish.peak_per_key <= 3, "{finish:?}");
    assert!(finish.hot >= 200 / 3, "{finish:?}");
}

/// Fairness switched on while tasks are queued in the plain partitions, then off again while tasks
/// are filed under their keys: no task is stranded, each runs once. On the lean layout (the SQLite
/// store keys its rows on every read and has nothing to strand).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fairness_change_strands_no_task_on_the_lean_layout() {
    let Some(store) = lean().await else { return };
    let sizes = Sizes {
        hot: 300,
        ..lean_sizes()
    };
    let (mut first, keys) = tasks(sizes);
    let second = first.split_off(first.len() / 2);
    let stretches = vec![
        // Queued with no fairness: the plain partitions.
        Stretch {
            labourer: labourer(None),
            enqueue: first,
            steps: Some(2),
        },
        // Fairness configured: the plain partitions' tasks are read by their payload's key.
        Stretch {
            labourer: labourer(Some(json!({"key": "tenant", "max_per_key": 4}))),
            enqueue: vec![],
            steps: Some(2),
        },
        // Queued while keyed: filed under the keys' partitions.
        Stretch {
            labourer: labourer(Some(json!({"key": "tenant", "max_per_key": 4}))),
            enqueue: second,
            steps: Some(2),
        },
        // Another path: every key's partitions are read whole and regrouped.
        Stretch {
            labourer: labourer(Some(json!({"key": "n"}))),
            enqueue: vec![],
            steps: Some(2),
        },
        // Fairness removed: the plain queue walk reads every key's partitions too.
        Stretch {
            labourer: labourer(None),
            enqueue: vec![],
            steps: None,
        },
    ];
    let finish = run_stretches(store.clone(), stretches, &keys).await;
    let left = store
        .queue_length("w", T0 + finish.steps as i64 + 10)
        .await
        .expect("queue length");
    drop_lean(&store).await;
    println!("lean layout, fairness on, changed and off: {finish:?}");
    assert_eq!(left, 0, "nothing left queued");
}

#[test]
fn bad_fairness_settings_are_refused_when_the_config_is_read() {
    for (fairness, names) in [
        (json!({"key": ""}), "fairness.key"),
        (json!({"key": "a..b"}), "fairness.key"),
        (json!({"key": "tenant", "max_per_key": 0}), "max_per_key"),
        (json!({"key": "tenant", "per_key": 2}), "per_key"),
        (json!("tenant"), "fairness"),
    ] {
        let config = json!({"task_config": {"labourers": {"w": labourer(Some(fairness.clone()))}}});
        let err = parse_config::<OrchestratorConfig>("sosw_orchestrator_config", config)
            .expect_err("refused");
        let msg = err.to_string();
        assert!(msg.contains(names), "{fairness}: {msg}");
    }
}
