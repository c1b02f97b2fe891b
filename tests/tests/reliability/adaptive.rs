//! The adaptive controller through the real orchestrator and worker assistant over a SQLite store, on
//! a virtual clock, against a downstream whose capacity the workers are never told: 40 requests at
//! once for the first 200 s, then 12. A worker whose downstream is full reports its task *throttled*
//! (the task goes back through the retry table); one that gets in completes after 3 s.
//!
//! The same run with sosw 0.7's thresholds (no `ecology` setting) keeps its 100 slots full whatever the
//! capacity: most of what it sends after the drop is turned away. The adaptive labourer follows the
//! capacity down, keeps it mostly used, and is turned away rarely; its controller state is in the
//! store, where every orchestrator reads it.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::TimeDelta;
use serde_json::{Value, json};
use sosw::clock::{Clock, ManualClock};
use sosw::config::{OrchestratorConfig, WorkerAssistantConfig, parse_config};
use sosw::embedded::SqliteTaskStore;
use sosw::essentials::closer::Closer;
use sosw::essentials::orchestrator::{ConfigFeed, Orchestrator, OrchestratorSettings, RunMode};
use sosw::essentials::worker_assistant::{AssistantRequest, WorkerAssistant};
use sosw::invoke::{InvokeOutcome, Invoker};
use sosw::notify::LogNotifier;
use sosw::processor::Stats;
use sosw::store::{EcologyState, EnqueueMode, TaskQueue, TaskStore, requeue_due_retries};
use sosw::task::{Task, TaskId};
use sosw::testing::checker::Delivery;

use super::rig::T0;

/// How long a task holds its downstream slot, in virtual ms.
const TASK_MS: i64 = 3_000;
/// Where the capacity drops, in virtual seconds from the start.
const DROP_AT: i64 = 200;
/// The end of the run.
const END_AT: i64 = 400;
const CAPACITY_BEFORE: usize = 40;
const CAPACITY_AFTER: usize = 12;

fn capacity(t: i64) -> usize {
    if t < DROP_AT {
        CAPACITY_BEFORE
    } else {
        CAPACITY_AFTER
    }
}

/// A worker in front of a downstream of hidden capacity: each invocation either gets a slot (and
/// reports completion when its time is up) or reports throttled at once.
struct Downstream {
    clock: Arc<ManualClock>,
    state: Mutex<DownstreamState>,
    /// The capacity at each second of the run; `None`: an outage, every request fails at once.
    profile: fn(i64) -> Option<usize>,
}

#[derive(Default)]
struct DownstreamState {
    /// End (ms) of each request holding a slot.
    busy: Vec<i64>,
    /// Reports on their way to the worker assistant: (due ms, report).
    reports: Vec<(i64, AssistantRequest)>,
    /// Per second of the run: (requests admitted, requests turned away).
    seconds: Vec<(u64, u64)>,
}

impl DownstreamState {
    fn second(&mut self, t: i64) -> &mut (u64, u64) {
        let i = usize::try_from(t).expect("t >= 0");
        if self.seconds.len() <= i {
            self.seconds.resize(i + 1, (0, 0));
        }
        &mut self.seconds[i]
    }
}

#[async_trait]
impl Invoker for Downstream {
    async fn invoke(&self, _function: &str, payload: &Value) -> sosw::Result<InvokeOutcome> {
        let delivery = Delivery::from_payload(payload, false)?;
        let task_id = TaskId::new(delivery.task_id)?;
        let now = self.clock.now().timestamp_millis();
        let t = (now / 1000) - T0;
        let mut state = self.state.lock().expect("lock");
        state.busy.retain(|end| *end > now);
        let report = match (self.profile)(t) {
            None => {
                // An outage: the downstream fails the request (an error, not a throttle).
                state.second(t).1 += 1;
                (now + 100, AssistantRequest::failed(task_id, true))
            }
            Some(capacity) if state.busy.len() < capacity => {
                state.busy.push(now + TASK_MS);
                state.second(t).0 += 1;
                (now + TASK_MS, AssistantRequest::completed(task_id))
            }
            Some(_) => {
                state.second(t).1 += 1;
                let mut report = AssistantRequest::failed(task_id, true);
                report.throttled = Some(true);
                (now + 100, report)
            }
        };
        let attempt = delivery.attempt;
        state.reports.push((
            report.0,
            AssistantRequest {
                attempt: Some(attempt),
                ..report.1
            },
        ));
        Ok(InvokeOutcome::Accepted)
    }
}

/// What one run saw per phase, over its last 60 s (the steady state).
#[derive(Debug)]
struct Phase {
    /// Slot-seconds used at the downstream, over those it had.
    used: f64,
    /// Requests turned away over all requests.
    turned_away: f64,
}

/// The real orchestrator (one pass per run, no health metrics) and worker assistant over `store`, with
/// the labourers of `task_config`, on `clock`.
pub(super) fn essentials<S: TaskStore + 'static>(
    store: Arc<S>,
    invoker: Arc<dyn Invoker>,
    clock: Arc<ManualClock>,
    task_config: &Value,
) -> (Orchestrator, WorkerAssistant) {
    let orchestrator_config: OrchestratorConfig = parse_config(
        "sosw_orchestrator_config",
        json!({"task_config": task_config}),
    )
    .expect("orchestrator config");
    let orchestrator = Orchestrator::new(
        store.clone(),
        invoker,
        Arc::new(sosw::ecology::FixedMetrics::new()),
        ConfigFeed::fixed(orchestrator_config),
        clock.clone(),
    )
    .with_settings(OrchestratorSettings {
        mode: RunMode::SinglePass,
        ..OrchestratorSettings::default()
    });
    let assistant_config: WorkerAssistantConfig = parse_config(
        "sosw_worker_assistant_config",
        json!({"task_config": task_config}),
    )
    .expect("assistant config");
    let assistant = WorkerAssistant::new(
        assistant_config,
        Closer::new(store, Arc::new(LogNotifier)).with_clock(clock),
    );
    (orchestrator, assistant)
}

/// Runs one labourer with `settings` through the whole capacity profile; returns the steady state of
/// each phase and the store.
async fn run(settings: Value) -> (Phase, Phase, Arc<SqliteTaskStore>) {
    let (seconds, store) = simulate(settings, |t| Some(capacity(t)), END_AT).await;
    let phase = |from: i64, to: i64| {
        let seconds = &seconds[from as usize..to as usize];
        let admitted: u64 = seconds.iter().map(|s| s.0).sum();
        let turned_away: u64 = seconds.iter().map(|s| s.1).sum();
        // Slot-seconds the admitted requests held, over the slot-seconds there were.
        let held = admitted as f64 * TASK_MS as f64 / 1000.0;
        Phase {
            used: held / (seconds.len() as f64 * capacity(from) as f64),
            turned_away: turned_away as f64 / (admitted + turned_away).max(1) as f64,
        }
    };
    (
        phase(DROP_AT - 60, DROP_AT),
        phase(END_AT - 60, END_AT),
        store,
    )
}

/// Runs one labourer with `settings` for `end` virtual seconds against a downstream of capacity
/// `profile`; returns per second (requests admitted, requests turned away or failed) and the store.
async fn simulate(
    settings: Value,
    profile: fn(i64) -> Option<usize>,
    end: i64,
) -> (Vec<(u64, u64)>, Arc<SqliteTaskStore>) {
    let clock = Arc::new(ManualClock::at_secs(T0));
    let store = Arc::new(SqliteTaskStore::in_memory().expect("SQLite"));
    let downstream = Arc::new(Downstream {
        clock: clock.clone(),
        state: Mutex::new(DownstreamState::default()),
        profile,
    });
    let task_config = json!({"labourers": {"w": settings}});
    let (orchestrator, assistant) = essentials(
        store.clone(),
        downstream.clone(),
        clock.clone(),
        &task_config,
    );
    // More than the run can finish: the queue never runs dry.
    let tasks: Vec<Task> = (0..8_000)
        .map(|n| {
            Task::new(
                TaskId::for_chunk("w", n).as_str(),
                "w",
                json!({"n": n}),
                2000 + n as i64,
                T0 as f64,
            )
        })
        .collect();
    store
        .enqueue(&tasks, EnqueueMode::Fresh)
        .await
        .expect("enqueue");

    for _ in 0..end {
        let now = clock.now();
        orchestrator
            .run(now + TimeDelta::seconds(60))
            .await
            .expect("a run with a fixed config");
        // Reports due within this second, in time order, as the worker assistant would get them.
        let next_ms = (now + TimeDelta::seconds(1)).timestamp_millis();
        let due: Vec<AssistantRequest> = {
            let mut state = downstream.state.lock().expect("lock");
            state.reports.sort_by_key(|(due, _)| *due);
            let split = state.reports.partition_point(|(due, _)| *due < next_ms);
            state.reports.drain(..split).map(|(_, r)| r).collect()
        };
        clock.advance_secs(1);
        for report in due {
            assistant
                .handle(&report, &mut Stats::default())
                .await
                .expect("the report is handled");
        }
        requeue_due_retries(&*store, "w", clock.now_secs(), 1_000)
            .await
            .expect("retries back to the queue");
    }

    let mut state = downstream.state.lock().expect("lock");
    state.second(end - 1);
    (std::mem::take(&mut state.seconds), store)
}

fn settings(ecology: Option<Value>) -> Value {
    let mut settings = json!({
        "max_simultaneous_invocations": 100,
        "duration": 60, "cooldown": 30, "max_attempts": 1000,
        "retry": {"policy": "exponential", "base_secs": 1, "cap_secs": 2}
    });
    if let Some(ecology) = ecology {
        settings["ecology"] = ecology;
    }
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adaptive_labourer_follows_a_capacity_drop_that_thresholds_ignore() {
    let (before, after, store) = run(settings(Some(json!({"policy": "adaptive"})))).await;
    let (fixed_before, fixed_after, _) = run(settings(None)).await;
    println!(
        "adaptive: before the drop {before:?}, after {after:?}\n\
         thresholds: before the drop {fixed_before:?}, after {fixed_after:?}"
    );
    // The thresholds keep 100 slots full: most requests are turned away, before and after the drop.
    assert!(fixed_before.turned_away > 0.5, "{fixed_before:?}");
    assert!(fixed_after.turned_away > 0.8, "{fixed_after:?}");
    // The adaptive labourer uses most of the capacity, before and after the drop, and is rarely
    // turned away.
    for (phase, name) in [(&before, "before"), (&after, "after")] {
        assert!(phase.used >= 0.65, "{name} the drop: {phase:?}");
        assert!(phase.turned_away <= 0.1, "{name} the drop: {phase:?}");
    }
    // Its state is in the store, near the capacity after the drop.
    let record = store.read_ecology("w").await.expect("read_ecology");
    let controller = record
        .record
        .controller
        .expect("the controller state is stored");
    let limit = controller.state.limit;
    assert!(
        (0.5 * CAPACITY_AFTER as f64..=1.5 * CAPACITY_AFTER as f64).contains(&limit),
        "the stored limit {limit} follows the capacity {CAPACITY_AFTER}"
    );
    assert!(
        record.outcomes.succeeded > 0 && record.outcomes.throttled > 0,
        "the worker assistant counted outcomes: {:?}",
        record.outcomes
    );
}

/// Where the outage starts and ends, in virtual seconds from the start, and the end of its run.
const OUTAGE_FROM: i64 = 120;
const OUTAGE_TO: i64 = 420;
const OUTAGE_END_AT: i64 = 600;

/// 40 requests at once, then a 5-minute outage in which every request fails, then 40 again.
fn outage(t: i64) -> Option<usize> {
    (!(OUTAGE_FROM..OUTAGE_TO).contains(&t)).then_some(CAPACITY_BEFORE)
}

/// A downstream outage through the real orchestrator and worker assistant: the breaker opens (the
/// labourer is paused but for a few probes every `open_secs`), and after the outage the probes succeed
/// and the labourer is back to 90% of the capacity within 2 minutes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_pauses_during_an_outage_probes_and_recovers_within_two_minutes() {
    let (seconds, store) = simulate(
        settings(Some(json!({"policy": "adaptive"}))),
        outage,
        OUTAGE_END_AT,
    )
    .await;
    let requests = |from: i64, to: i64| -> u64 {
        seconds[from as usize..to as usize]
            .iter()
            .map(|s| s.0 + s.1)
            .sum()
    };
    // The first seconds of the outage fail whatever was sent (the breaker needs two bad windows);
    // after that, only probes: 3 per open period of 20 s at most.
    let trip = 30;
    let during = requests(OUTAGE_FROM + trip, OUTAGE_TO);
    let periods = ((OUTAGE_TO - OUTAGE_FROM - trip) / 20 + 1) as u64;
    let before = requests(OUTAGE_FROM - 30, OUTAGE_FROM);
    println!(
        "outage: {} requests in its first {trip} s, {during} in the remaining {} s \
         ({periods} open periods); {before} in the 30 s before it",
        requests(OUTAGE_FROM, OUTAGE_FROM + trip),
        OUTAGE_TO - OUTAGE_FROM - trip
    );
    assert!(during <= 3 * periods, "paused but for probes: {during}");
    assert!(
        during >= periods / 2,
        "it keeps probing through the outage: {during} in {periods} periods"
    );
    // Recovery: the first 10 s window after the outage in which the admitted requests held at
    // least 90% of the slots.
    let held = |from: i64| -> f64 {
        let admitted: u64 = seconds[from as usize..(from + 10) as usize]
            .iter()
            .map(|s| s.0)
            .sum();
        admitted as f64 * TASK_MS as f64 / 1000.0 / (10.0 * CAPACITY_BEFORE as f64)
    };
    let recovered = (OUTAGE_TO..OUTAGE_END_AT - 10).find(|t| held(*t) >= 0.9);
    println!(
        "back to 90% of the capacity {:?} s after the outage ended",
        recovered.map(|t| t - OUTAGE_TO)
    );
    let recovered = recovered.expect("back to 90% of the capacity before the run ends");
    assert!(
        recovered - OUTAGE_TO <= 120,
        "recovered {} s after the outage",
        recovered - OUTAGE_TO
    );
    let record = store.read_ecology("w").await.expect("read_ecology");
    assert!(
        record.outcomes.failed > 0 && record.outcomes.succeeded > 0,
        "{:?}",
        record.outcomes
    );
}

/// Tasks that expire (invoked, never reported) count as failures for an adaptive labourer's
/// controller when the scavenger retries them; a labourer on thresholds gets no counters.
#[tokio::test]
async fn the_scavenger_counts_expiries_of_adaptive_labourers_only() {
    use sosw::config::ScavengerConfig;
    use sosw::essentials::scavenger::Scavenger;
    use sosw::store::{OutcomeCounts, TaskClaims};

    let clock = Arc::new(ManualClock::at_secs(T0));
    let store = Arc::new(SqliteTaskStore::in_memory().expect("SQLite"));
    let short = |ecology: Option<Value>| {
        let mut s = settings(ecology);
        s["duration"] = json!(10);
        s["cooldown"] = json!(5);
        s
    };
    let task_config = json!({"labourers": {
        "adaptive": short(Some(json!({"policy": "adaptive"}))),
        "thresholds": short(None),
    }});
    for labourer in ["adaptive", "thresholds"] {
        let tasks: Vec<Task> = (0..3)
            .map(|n| {
                Task::new(
                    TaskId::for_chunk(labourer, n).as_str(),
                    labourer,
                    json!({}),
                    2000 + n as i64,
                    T0 as f64,
                )
            })
            .collect();
        store
            .enqueue(&tasks, EnqueueMode::Fresh)
            .await
            .expect("enqueue");
        for task in &tasks {
            store.claim(&task.task_id, T0).await.expect("claim");
        }
    }
    clock.advance_secs(60);
    let config: ScavengerConfig =
        parse_config("sosw_scavenger_config", json!({"task_config": task_config}))
            .expect("scavenger config");
    let scavenger = Scavenger::new(
        config,
        Closer::new(store.clone(), Arc::new(LogNotifier)).with_clock(clock.clone()),
    );
    let report = scavenger.run().await;
    assert_eq!(report.total().scheduled_for_retry, 6, "{report:?}");
    let adaptive = store.read_ecology("adaptive").await.expect("read");
    assert_eq!(
        adaptive.outcomes,
        OutcomeCounts {
            failed: 3,
            ..OutcomeCounts::default()
        }
    );
    let thresholds = store.read_ecology("thresholds").await.expect("read");
    assert_eq!(thresholds.outcomes, OutcomeCounts::default());
}
