//! Per-key fairness through the real orchestrator and worker assistant over a SQLite store, on a
//! virtual clock: one key's backlog submitted first, ten small keys after it, and a few tasks whose
//! payload lacks the key's field. With `fairness` every small key finishes within the first 5% of the
//! time the hot key's backlog takes; without it, in greenfield order, they finish after the hot key's
//! last task.
//!
//! The 5% target needs a hot backlog of more than 21 times the small keys' 1,000 tasks: sharing the
//! slots equally among 11 keys, the small keys finish after about 1,100 / slots steps, the hot key after
//! (hot + 1,000) / slots. So the hot key holds 30,000 tasks here (100,000, the figure, under
//! `SOSW_RELIABILITY_FULL=1`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::TimeDelta;
use serde_json::{Value, json};
use sosw::clock::{Clock, ManualClock};
use sosw::config::{OrchestratorConfig, parse_config};
use sosw::embedded::SqliteTaskStore;
use sosw::essentials::worker_assistant::AssistantRequest;
use sosw::invoke::{InvokeOutcome, Invoker};
use sosw::processor::Stats;
use sosw::store::{EnqueueMode, TaskQueue};
use sosw::task::{Task, TaskId};
use sosw::testing::checker::Delivery;

use super::adaptive::essentials;
use super::rig::T0;

/// The labourer's slots.
const SLOTS: u64 = 50;
/// Tasks of each small key, and how many small keys.
const SMALL_TASKS: u64 = 100;
const SMALL_KEYS: u64 = 10;
/// Tasks whose payload has no `tenant`: they share the default key.
const KEYLESS: u64 = 20;

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
}

fn tasks(hot: u64) -> (Vec<Task>, HashMap<TaskId, String>) {
    let mut keyed: Vec<(String, Value)> = (0..hot)
        .map(|n| ("hot".to_owned(), json!({"tenant": "hot", "n": n})))
        .collect();
    for k in 0..SMALL_KEYS {
        for n in 0..SMALL_TASKS {
            let key = format!("small-{k}");
            keyed.push((key.clone(), json!({"tenant": key, "n": n})));
        }
    }
    keyed.extend((0..KEYLESS).map(|n| ("keyless".to_owned(), json!({"n": n}))));
    let mut keys = HashMap::new();
    let tasks = keyed
        .into_iter()
        .enumerate()
        .map(|(i, (key, payload))| {
            let id = TaskId::for_chunk("w", i as u64);
            keys.insert(id.clone(), key);
            // The hot key's tasks come first in greenfield order: submitted first.
            Task::new(id.as_str(), "w", payload, 2000 + i as i64, T0 as f64)
        })
        .collect();
    (tasks, keys)
}

/// Runs every task to completion with `labourer` settings; returns when each group finished.
async fn run(labourer: Value, hot: u64) -> Finish {
    let clock = Arc::new(ManualClock::at_secs(T0));
    let store = Arc::new(SqliteTaskStore::in_memory().expect("SQLite"));
    let worker = Arc::new(OneSecondWorker::default());
    let task_config = json!({"labourers": {"w": labourer}});
    let (orchestrator, assistant) =
        essentials(store.clone(), worker.clone(), clock.clone(), &task_config);
    let (tasks, keys) = tasks(hot);
    let total = tasks.len();
    store
        .enqueue(&tasks, EnqueueMode::Fresh)
        .await
        .expect("enqueue");

    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    let mut done = 0usize;
    let mut peak = 0u64;
    let most_steps = 3 * total as u64 / SLOTS + 100;
    for step in 1..=most_steps {
        let now = clock.now();
        let report = orchestrator
            .run(now + TimeDelta::seconds(60))
            .await
            .expect("a run with a fixed config");
        assert_eq!(report.error_count(), 0, "step {step}: {report:?}");
        let reports: Vec<AssistantRequest> =
            std::mem::take(&mut *worker.reports.lock().expect("lock"));
        peak = peak.max(reports.len() as u64);
        clock.advance_secs(1);
        for request in reports {
            let key = keys[&request.task_id].clone();
            assistant
                .handle(&request, &mut Stats::default())
                .await
                .expect("the report is handled");
            last.insert(key, step);
            done += 1;
        }
        if done == total {
            break;
        }
    }
    assert_eq!(
        done, total,
        "every task completed within {most_steps} steps"
    );
    Finish {
        hot: last["hot"],
        small: last
            .iter()
            .filter(|(k, _)| k.starts_with("small-"))
            .map(|(_, s)| *s)
            .max()
            .expect("small keys ran"),
        keyless: last["keyless"],
        peak,
    }
}

fn labourer(fairness: Option<Value>) -> Value {
    let mut settings =
        json!({"max_simultaneous_invocations": SLOTS, "duration": 60, "cooldown": 30});
    if let Some(fairness) = fairness {
        settings["fairness"] = fairness;
    }
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_keys_finish_within_the_first_five_percent_of_a_hot_keys_backlog() {
    let hot = super::super::size(30_000, 100_000);
    let fair = run(labourer(Some(json!({"key": "tenant"}))), hot).await;
    let plain = run(labourer(None), hot).await;
    let share = |f: &Finish| f.small as f64 / f.hot as f64;
    println!(
        "hot key {hot} tasks, {SMALL_KEYS} small keys of {SMALL_TASKS}, {KEYLESS} keyless, {SLOTS} slots\n\
         fairness: {fair:?}, small keys done at {:.2}% of the hot key's time\n\
         greenfield order: {plain:?}, small keys done at {:.2}%",
        100.0 * share(&fair),
        100.0 * share(&plain)
    );
    assert!(share(&fair) <= 0.05, "{fair:?}");
    assert!(
        fair.keyless <= fair.small,
        "tasks without the key's field run in the default key's share: {fair:?}"
    );
    assert!(
        fair.peak <= SLOTS && plain.peak <= SLOTS,
        "{fair:?} {plain:?}"
    );
    // The contrast: in one line the small keys wait for the hot key's whole backlog.
    assert!(plain.small > plain.hot, "{plain:?}");
}

/// `max_per_key` caps each key's running tasks even with slots free, and a small key still gets its
/// share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_per_key_caps_every_keys_running_tasks() {
    let capped = run(
        labourer(Some(json!({"key": "tenant", "max_per_key": 3}))),
        200,
    )
    .await;
    // 12 keys (hot, ten small, the default key) at most 3 each: never more than 36 of the 50 slots.
    assert!(capped.peak <= 36, "{capped:?}");
    // The hot key, alone at the end at 3 a step, needs at least 200 / 3 steps.
    assert!(capped.hot >= 200 / 3, "{capped:?}");
    assert!(capped.small <= 40, "{capped:?}");
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
