//! The orchestrator's claim and invocation rules, over the SQLite store with scripted invokers.

use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::SqliteTaskStore;
use chrono::{DateTime, Utc};
use sosw_core::clock::{Clock, ManualClock};
use sosw_core::config::{InvocationCoefficients, OrchestratorConfig};
use sosw_core::ecology::FixedMetrics;
use sosw_core::ecology::fair::FairnessKey;
use sosw_core::essentials::orchestrator::*;
use sosw_core::invoke::{InvokeOutcome, Invoker, WorkerTimeouts};
use sosw_core::store::{ClaimOutcome, KeyedQueue, TaskClaims, TaskQueue, fairness_unsupported};
use sosw_core::store::{EnqueueMode, TaskLookup, TaskReport, TaskReports};
use sosw_core::task::{Markers, TaskId};
use sosw_core::task::{RateLimit, Task};
use std::sync::Arc;
use std::time::Duration;

const T0: i64 = 1_700_000_000;

/// Records every invocation and answers with the outcome `answer` gives for it.
struct Scripted {
    calls: Mutex<Vec<(String, Value)>>,
    answer: Box<dyn Fn(&Value) -> InvokeOutcome + Send + Sync>,
}

impl Scripted {
    fn new(answer: impl Fn(&Value) -> InvokeOutcome + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Scripted {
            calls: Mutex::new(Vec::new()),
            answer: Box::new(answer),
        })
    }

    fn accepting() -> Arc<Self> {
        Self::new(|_| InvokeOutcome::Accepted)
    }

    fn calls(&self) -> Vec<(String, Value)> {
        self.calls.lock().expect("lock").clone()
    }

    fn task_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .calls()
            .iter()
            .filter_map(|(_, p)| p["task_id"].as_str().map(str::to_string))
            .collect();
        ids.sort();
        ids
    }
}

#[async_trait]
impl Invoker for Scripted {
    async fn invoke(&self, function: &str, payload: &Value) -> sosw_core::Result<InvokeOutcome> {
        self.calls
            .lock()
            .expect("lock")
            .push((function.to_string(), payload.clone()));
        Ok((self.answer)(payload))
    }
}

struct Setup {
    store: Arc<SqliteTaskStore>,
    clock: Arc<ManualClock>,
    metrics: Arc<FixedMetrics>,
}

impl Setup {
    /// A store with `count` queued tasks of `labourer`.
    async fn new(labourer: &str, count: u64) -> Self {
        let store = Arc::new(SqliteTaskStore::in_memory().expect("store"));
        let setup = Setup {
            store,
            clock: Arc::new(ManualClock::at_secs(T0)),
            metrics: Arc::new(FixedMetrics::new()),
        };
        setup.enqueue(labourer, 0, count).await;
        setup
    }

    async fn enqueue(&self, labourer: &str, from: u64, count: u64) {
        let tasks: Vec<Task> = (from..from + count)
            .map(|n| {
                let id = TaskId::for_chunk(labourer, n);
                Task::new(
                    id.as_str(),
                    labourer,
                    json!({"n": n}),
                    2000 + 1000 * n as i64,
                    T0 as f64 - 60.0,
                )
            })
            .collect();
        self.store
            .enqueue(&tasks, EnqueueMode::Fresh)
            .await
            .expect("enqueue");
    }

    fn orchestrator(&self, invoker: Arc<dyn Invoker>, config: Value) -> Orchestrator {
        let config: OrchestratorConfig =
            sosw_core::config::parse_config("sosw_orchestrator_config", config).expect("config");
        Orchestrator::new(
            self.store.clone(),
            invoker,
            self.metrics.clone(),
            ConfigFeed::fixed(config),
            self.clock.clone(),
        )
        .with_settings(OrchestratorSettings {
            mode: RunMode::SinglePass,
            ..OrchestratorSettings::default()
        })
    }

    fn deadline(&self) -> DateTime<Utc> {
        self.clock.now() + chrono::Duration::seconds(60)
    }

    async fn task(&self, labourer: &str, n: u64) -> Task {
        self.store
            .get_task(&TaskId::for_chunk(labourer, n))
            .await
            .expect("get")
            .expect("live")
    }
}

fn labourers(settings: Value) -> Value {
    json!({"task_config": {"labourers": settings}})
}

#[test]
fn desired_counts_follow_sosw_07s_coefficients() {
    let coefficients = InvocationCoefficients::default();
    let by_status: Vec<u64> = (0..=4)
        .map(|s| desired_invocations(10, coefficients.for_status(s)))
        .collect();
    assert_eq!(by_status, [0, 0, 5, 7, 10], "sosw 0.7's unit test values");
    assert_eq!(desired_invocations(0, 1.0), 0);
    assert_eq!(desired_invocations(u32::MAX, 1e12), u64::MAX, "saturates");
    assert_eq!(desired_invocations(3, f64::NAN), 0);
}

#[tokio::test]
async fn a_pass_invokes_the_lowest_tasks_with_their_pre_claim_payload() {
    let setup = Setup::new("w", 5).await;
    let invoker = Scripted::accepting();
    let arn = "arn:aws:lambda:us-west-2:000000000000:function:w";
    let orchestrator = setup.orchestrator(
        invoker.clone(),
        labourers(json!({"w": {"max_simultaneous_invocations": 3, "arn": arn}})),
    );
    let report = orchestrator.run(setup.deadline()).await.expect("run");
    let entry = &report.labourers["w"];
    assert_eq!(
        (entry.status, entry.desired, entry.running),
        (Some(4), 3, 0)
    );
    assert_eq!((entry.claimed, entry.invoked), (3, 3));
    let calls = invoker.calls();
    assert!(calls.iter().all(|(f, _)| f == arn), "invoked by ARN");
    let mut payloads: Vec<Value> = calls.into_iter().map(|(_, p)| p).collect();
    payloads.sort_by_key(|p| p["n"].as_u64());
    let expected: Vec<Value> = (0..3u64)
        .map(|n| {
            json!({"n": n, "task_id": TaskId::for_chunk("w", n).as_str(), "labourer_id": "w",
                   "created_at": T0 as f64 - 60.0, "greenfield": 2000 + 1000 * n, "attempts": 0})
        })
        .collect();
    assert_eq!(
        payloads, expected,
        "sosw 0.7's worker payload of the queued row"
    );
    let claimed = setup.task("w", 0).await;
    assert_eq!(claimed.attempts, 1);
    assert_eq!(
        claimed.greenfield,
        T0 + sosw_core::task::greenfield::INVOCATION_DELTA
    );
    assert_eq!(setup.task("w", 3).await.attempts, 0, "beyond the slots");
}

#[tokio::test]
async fn running_tasks_take_slots_and_completed_ones_free_them_at_once() {
    let setup = Setup::new("w", 10).await;
    let invoker = Scripted::accepting();
    let orchestrator = setup.orchestrator(
        invoker.clone(),
        labourers(json!({"w": {"max_simultaneous_invocations": 4}})),
    );
    orchestrator.run(setup.deadline()).await.expect("run 1");
    setup.clock.advance_secs(5);
    let report = orchestrator.run(setup.deadline()).await.expect("run 2");
    assert_eq!(report.labourers["w"].running, 4);
    assert_eq!(report.labourers["w"].invoked, 0, "every slot is taken");
    for n in 0..3 {
        setup
            .store
            .complete(&TaskId::for_chunk("w", n), &TaskReport::default(), T0 + 5)
            .await
            .expect("complete");
    }
    setup.clock.advance_secs(1);
    let report = orchestrator.run(setup.deadline()).await.expect("run 3");
    assert_eq!(report.labourers["w"].running, 1);
    assert_eq!(
        report.labourers["w"].invoked, 3,
        "three completions, three new tasks"
    );
    assert_eq!(invoker.calls().len(), 7);
}

#[tokio::test]
async fn a_paused_labourer_is_not_invoked_and_reads_no_metrics() {
    let setup = Setup::new("w", 3).await;
    let invoker = Scripted::accepting();
    let orchestrator = setup.orchestrator(
        invoker.clone(),
        labourers(json!({"w": {
            "max_simultaneous_invocations": 0,
            "health_metrics": {"cpu": {
                "details": {"Namespace": "N", "MetricName": "cpu"},
                "feelings": {"4": 50}, "feeling_comparison_operator": "<="}}
        }})),
    );
    let report = orchestrator.run(setup.deadline()).await.expect("run");
    assert_eq!(report.labourers["w"].desired, 0);
    assert!(invoker.calls().is_empty());
    assert_eq!(setup.metrics.fetches(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_rejected_task_is_released_at_once_and_not_retried_in_the_same_run() {
    let setup = Setup::new("w", 5).await;
    let rejected = TaskId::for_chunk("w", 1);
    let bad = rejected.as_str().to_string();
    let invoker = Scripted::new(move |p| {
        if p["task_id"] == bad.as_str() {
            InvokeOutcome::Rejected("RequestTooLargeException".into())
        } else {
            InvokeOutcome::Accepted
        }
    });
    let orchestrator = setup
        .orchestrator(
            invoker.clone(),
            labourers(json!({"w": {"max_simultaneous_invocations": 10}})),
        )
        .with_settings(OrchestratorSettings {
            poll_interval: Duration::from_millis(1),
            ..OrchestratorSettings::default()
        });
    for run in 1..=3 {
        let report = orchestrator.run(setup.deadline()).await.expect("run");
        let entry = &report.labourers["w"];
        assert_eq!(entry.released, 1, "run {run}: {entry:?}");
        // Round 1 is cut short by the refusal; round 2 finds only the released task and ends the run.
        assert_eq!(report.rounds, 2, "run {run}");
        let released = setup.task("w", 1).await;
        assert_eq!(
            (released.attempts, released.greenfield),
            (0, 3000),
            "back at its place in the queue, attempts restored"
        );
    }
    let tries = invoker
        .calls()
        .iter()
        .filter(|(_, p)| p["task_id"] == rejected.as_str())
        .count();
    assert_eq!(tries, 3, "once per run, not in a loop");
    assert_eq!(
        invoker.calls().len(),
        3 + 4,
        "the other four went out in the first run"
    );
}

#[tokio::test]
async fn an_unknown_outcome_keeps_the_claim() {
    let setup = Setup::new("w", 2).await;
    let invoker = Scripted::new(|_| InvokeOutcome::Unknown("timed out".into()));
    let orchestrator = setup.orchestrator(
        invoker.clone(),
        labourers(json!({"w": {"max_simultaneous_invocations": 1}})),
    );
    let report = orchestrator.run(setup.deadline()).await.expect("run");
    assert_eq!(report.labourers["w"].unknown, 1);
    let task = setup.task("w", 0).await;
    assert_eq!(
        task.attempts, 1,
        "still claimed: it expires and retries if never run"
    );
    setup.clock.advance_secs(1);
    let report = orchestrator.run(setup.deadline()).await.expect("run 2");
    assert_eq!(
        report.labourers["w"].running, 1,
        "the kept claim takes the slot"
    );
    assert_eq!(invoker.calls().len(), 1);
}

/// A store that lets another claimer win the first task of every queue read (with `true`: of every
/// key's queue head too), as a racing orchestrator would. With `false` it has no per-key queue, as
/// sosw 0.7's DynamoDB layout.
struct Contested(Arc<SqliteTaskStore>, bool);

#[async_trait]
impl TaskQueue for Contested {
    async fn enqueue(
        &self,
        tasks: &[Task],
        mode: EnqueueMode,
    ) -> sosw_core::Result<sosw_core::store::EnqueueReport> {
        self.0.enqueue(tasks, mode).await
    }
    async fn next_queued(
        &self,
        labourer_id: &str,
        now: i64,
        limit: usize,
    ) -> sosw_core::Result<Vec<Task>> {
        let queued = self.0.next_queued(labourer_id, now, limit).await?;
        if let Some(first) = queued.first() {
            self.0.claim(&first.task_id, now).await?;
        }
        Ok(queued)
    }
    async fn queue_length(&self, labourer_id: &str, now: i64) -> sosw_core::Result<u64> {
        self.0.queue_length(labourer_id, now).await
    }
    async fn oldest_queued_greenfield(&self, l: &str, now: i64) -> sosw_core::Result<Option<i64>> {
        self.0.oldest_queued_greenfield(l, now).await
    }
    async fn newest_queued_greenfield(&self, l: &str, now: i64) -> sosw_core::Result<Option<i64>> {
        self.0.newest_queued_greenfield(l, now).await
    }
    async fn queue_by_key(
        &self,
        labourer_id: &str,
        key: &FairnessKey,
        markers: &Markers,
        per_key: usize,
    ) -> sosw_core::Result<KeyedQueue> {
        if !self.1 {
            return Err(fairness_unsupported("Contested", labourer_id, key));
        }
        let queue = self
            .0
            .queue_by_key(labourer_id, key, markers, per_key)
            .await?;
        for work in queue.values() {
            if let Some(first) = work.queued.first() {
                self.0.claim(&first.task_id, markers.start).await?;
            }
        }
        Ok(queue)
    }
}

#[async_trait]
impl TaskClaims for Contested {
    async fn claim(&self, task_id: &TaskId, now: i64) -> sosw_core::Result<ClaimOutcome> {
        self.0.claim(task_id, now).await
    }
    async fn release_claim(&self, claimed: &Task, claimed_at: i64) -> sosw_core::Result<bool> {
        self.0.release_claim(claimed, claimed_at).await
    }
    async fn count_running(&self, labourer_id: &str, markers: &Markers) -> sosw_core::Result<u64> {
        // The rival's claims are its own slots' business: count none, so ours are all free.
        let _ = (labourer_id, markers);
        Ok(0)
    }
}

#[async_trait]
impl sosw_core::store::EcologyState for Contested {
    async fn read_ecology(
        &self,
        labourer_id: &str,
    ) -> sosw_core::Result<sosw_core::store::VersionedEcology> {
        self.0.read_ecology(labourer_id).await
    }
    async fn write_ecology(
        &self,
        labourer_id: &str,
        expected_version: u64,
        record: &sosw_core::store::EcologyRecord,
    ) -> sosw_core::Result<bool> {
        self.0
            .write_ecology(labourer_id, expected_version, record)
            .await
    }
    async fn add_outcomes(
        &self,
        labourer_id: &str,
        outcomes: &sosw_core::store::OutcomeCounts,
    ) -> sosw_core::Result<()> {
        self.0.add_outcomes(labourer_id, outcomes).await
    }
}

/// An orchestrator over [`Contested`] (with a per-key queue or without) for one labourer `w` with
/// `settings`, on `clock`.
fn contested(
    setup: &Setup,
    invoker: Arc<dyn Invoker>,
    settings: Value,
    clock: Arc<dyn Clock>,
    per_key_queue: bool,
) -> Orchestrator {
    let config: OrchestratorConfig =
        sosw_core::config::parse_config("c", labourers(json!({"w": settings}))).expect("config");
    Orchestrator::new(
        Arc::new(Contested(setup.store.clone(), per_key_queue)),
        invoker,
        setup.metrics.clone(),
        ConfigFeed::fixed(config),
        clock,
    )
}

#[tokio::test]
async fn a_task_claimed_by_another_orchestrator_is_skipped_and_the_next_one_taken() {
    let setup = Setup::new("w", 10).await;
    let invoker = Scripted::accepting();
    let orchestrator = contested(
        &setup,
        invoker.clone(),
        json!({"max_simultaneous_invocations": 3}),
        setup.clock.clone(),
        false,
    )
    .with_settings(OrchestratorSettings {
        mode: RunMode::SinglePass,
        ..OrchestratorSettings::default()
    });
    let report = orchestrator.run(setup.deadline()).await.expect("run");
    let entry = &report.labourers["w"];
    assert_eq!(
        entry.invoked, 3,
        "the slots are filled despite the lost claims"
    );
    assert!(entry.skipped >= 1, "{entry:?}");
    let expected: Vec<String> = [1u64, 2, 4]
        .iter()
        .map(|n| TaskId::for_chunk("w", *n).to_string())
        .collect();
    assert_eq!(
        invoker.task_ids(),
        expected,
        "task 0 and 3 went to the rival (first of each read)"
    );
}

#[tokio::test]
async fn the_rate_limit_caps_invocations_per_period() {
    let setup = Setup::new("w", 20).await;
    let invoker = Scripted::accepting();
    let limit = RateLimit {
        tasks: 3,
        period_secs: 60,
    };
    let orchestrator = setup.orchestrator(
        invoker.clone(),
        labourers(json!({"w": {"max_simultaneous_invocations": 10, "rate_limit": limit}})),
    );
    let report = orchestrator.run(setup.deadline()).await.expect("run 1");
    assert_eq!(report.labourers["w"].invoked, 3);
    assert_eq!(report.labourers["w"].rate_limited, 7);
    setup.clock.advance_secs(30);
    let report = orchestrator.run(setup.deadline()).await.expect("run 2");
    assert_eq!(report.labourers["w"].invoked, 0, "still inside the period");
    setup.clock.advance_secs(31);
    let report = orchestrator.run(setup.deadline()).await.expect("run 3");
    assert_eq!(report.labourers["w"].invoked, 3);
}

struct FixedTimeout(u64, Mutex<u32>);

#[async_trait]
impl WorkerTimeouts for FixedTimeout {
    async fn timeout_secs(&self, _function: &str) -> sosw_core::Result<Option<u64>> {
        *self.1.lock().expect("lock") += 1;
        Ok(Some(self.0))
    }
}

#[tokio::test]
async fn the_real_worker_timeout_decides_when_a_silent_task_stops_taking_a_slot() {
    let setup = Setup::new("w", 4).await;
    let invoker = Scripted::accepting();
    let config = labourers(json!({"w": {"max_simultaneous_invocations": 1, "cooldown": 0}}));
    let timeouts = Arc::new(FixedTimeout(10, Mutex::new(0)));
    let with_timeouts = setup
        .orchestrator(invoker.clone(), config.clone())
        .with_worker_timeouts(timeouts.clone());
    let without = setup.orchestrator(invoker.clone(), config);
    with_timeouts.run(setup.deadline()).await.expect("run 1");
    setup.clock.advance_secs(20);
    let report = without.run(setup.deadline()).await.expect("900 s default");
    assert_eq!(report.labourers["w"].running, 1, "900 s have not passed");
    let report = with_timeouts
        .run(setup.deadline())
        .await
        .expect("10 s timeout");
    assert_eq!(
        report.labourers["w"].running, 0,
        "expired after its real 10 s timeout"
    );
    assert_eq!(report.labourers["w"].invoked, 1);
    assert_eq!(*timeouts.1.lock().expect("lock"), 2, "read once per run");
}

/// A clock that follows tokio's time (paused in these tests), starting at [`T0`].
#[derive(Debug)]
struct TokioClock(tokio::time::Instant);

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = i64::try_from(self.0.elapsed().as_millis()).unwrap_or(i64::MAX);
        DateTime::from_timestamp_millis(T0 * 1000 + elapsed).unwrap_or_default()
    }
}

fn continuous(
    setup: &Setup,
    invoker: Arc<dyn Invoker>,
    stop_when_idle: bool,
) -> (Orchestrator, Arc<TokioClock>) {
    let clock = Arc::new(TokioClock(tokio::time::Instant::now()));
    let config: OrchestratorConfig = sosw_core::config::parse_config(
        "c",
        labourers(json!({"w": {"max_simultaneous_invocations": 10}})),
    )
    .expect("config");
    let orchestrator = Orchestrator::new(
        setup.store.clone(),
        invoker,
        setup.metrics.clone(),
        ConfigFeed::fixed(config),
        clock.clone(),
    )
    .with_settings(OrchestratorSettings {
        margin: Duration::from_secs(10),
        poll_interval: Duration::from_millis(500),
        stop_when_idle,
        ..OrchestratorSettings::default()
    });
    (orchestrator, clock)
}

#[tokio::test(start_paused = true)]
async fn a_continuous_run_ends_when_no_labourer_has_queued_work() {
    let setup = Setup::new("w", 3).await;
    let invoker = Scripted::accepting();
    let (orchestrator, clock) = continuous(&setup, invoker.clone(), true);
    let report = orchestrator
        .run(clock.now() + chrono::Duration::seconds(60))
        .await
        .expect("run");
    assert_eq!(report.rounds, 1, "the queue ran dry in the first round");
    assert_eq!(report.invoked(), 3);
    assert_eq!(report.elapsed_secs(), 0.0);
}

#[tokio::test(start_paused = true)]
async fn a_continuous_run_keeps_polling_until_the_deadline_minus_the_margin() {
    let setup = Setup::new("w", 3).await;
    let invoker = Scripted::accepting();
    let (orchestrator, clock) = continuous(&setup, invoker.clone(), false);
    let deadline = clock.now() + chrono::Duration::seconds(60);
    let store = setup.store.clone();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(20)).await;
        let task = Task::new("late", "w", json!({}), 900, T0 as f64);
        store
            .enqueue(&[task], EnqueueMode::Fresh)
            .await
            .expect("enqueue");
    });
    let report = orchestrator.run(deadline).await.expect("run");
    late.await.expect("the late task was queued");
    let stop_at = deadline - chrono::Duration::seconds(10);
    assert!(report.finished_at <= stop_at, "{report:?}");
    assert!(
        report.finished_at > stop_at - chrono::Duration::milliseconds(1000),
        "ran for most of its time: {report:?}"
    );
    assert_eq!(report.rounds, 100, "one round per 500 ms over 50 s");
    assert_eq!(report.invoked(), 4, "the task queued mid-run was picked up");
    assert!(invoker.task_ids().contains(&"late".to_string()));
}

/// A labourer with `fairness` on a store without a per-key queue (here `Contested`, which keeps the
/// port's provided `queue_by_key`, as sosw 0.7's DynamoDB layout does) gets no invocation, and a continuous
/// run records the refusal once and stops trying: the setting is never ignored silently.
#[tokio::test(start_paused = true)]
async fn fairness_on_a_store_without_a_per_key_queue_is_refused_not_ignored() {
    let setup = Setup::new("w", 5).await;
    let invoker = Scripted::accepting();
    let clock = Arc::new(TokioClock(tokio::time::Instant::now()));
    let orchestrator = contested(
        &setup,
        invoker.clone(),
        json!({"max_simultaneous_invocations": 3, "fairness": {"key": "n"}}),
        clock.clone(),
        false,
    )
    .with_settings(OrchestratorSettings {
        stop_when_idle: false,
        ..OrchestratorSettings::default()
    });
    let report = orchestrator
        .run(clock.now() + chrono::Duration::seconds(15))
        .await
        .expect("run");
    let entry = &report.labourers["w"];
    assert!(invoker.calls().is_empty(), "nothing invoked");
    assert!(report.rounds > 1, "{report:?}");
    assert_eq!(entry.errors.len(), 1, "refused once per run: {entry:?}");
    assert!(
        entry.errors[0].contains("fairness") && entry.errors[0].contains("per-key queue index"),
        "{entry:?}"
    );
}

/// Three keys of `count` tasks each (payload `{"k": "a"}` and so on), queued after `setup`'s.
async fn enqueue_keyed(setup: &Setup, count: u64) {
    let tasks: Vec<Task> = ["a", "b", "c"]
        .iter()
        .enumerate()
        .flat_map(|(i, k)| {
            (0..count).map(move |n| {
                let n = 100 * i as u64 + n;
                let id = TaskId::for_chunk("w", n);
                Task::new(
                    id.as_str(),
                    "w",
                    json!({"k": k, "n": n}),
                    2000 + 1000 * n as i64,
                    T0 as f64 - 60.0,
                )
            })
        })
        .collect();
    setup
        .store
        .enqueue(&tasks, EnqueueMode::Fresh)
        .await
        .expect("enqueue");
}

/// One single-pass run over [`Contested`] with a per-key queue, on three keys of five tasks each, for
/// labourer `w` with `settings`.
async fn run_fair_contested(settings: Value) -> (Setup, Arc<Scripted>, LabourerReport) {
    let setup = Setup::new("w", 0).await;
    enqueue_keyed(&setup, 5).await;
    let invoker = Scripted::accepting();
    let orchestrator = contested(&setup, invoker.clone(), settings, setup.clock.clone(), true)
        .with_settings(OrchestratorSettings {
            mode: RunMode::SinglePass,
            ..OrchestratorSettings::default()
        });
    let mut report = orchestrator.run(setup.deadline()).await.expect("run");
    let entry = report.labourers.remove("w").expect("labourer w reported");
    (setup, invoker, entry)
}

/// With fairness, a claim a rival orchestrator wins is replaced by the next head of the same key, so
/// the labourer's slots are filled in the same round, each key getting its share.
#[tokio::test]
async fn fair_claims_lost_to_a_rival_are_replaced_from_the_same_key() {
    let (_setup, invoker, entry) =
        run_fair_contested(json!({"max_simultaneous_invocations": 6, "fairness": {"key": "k"}}))
            .await;
    assert_eq!(
        entry.invoked, 6,
        "every slot filled despite lost claims: {entry:?}"
    );
    assert_eq!(
        entry.skipped, 3,
        "the rival won each key's first head: {entry:?}"
    );
    let mut per_key: std::collections::BTreeMap<String, u64> = Default::default();
    for (_, payload) in invoker.calls() {
        let key = payload["k"].as_str().map(str::to_owned);
        *per_key.entry(key.unwrap_or_default()).or_default() += 1;
    }
    assert_eq!(
        per_key.into_iter().collect::<Vec<_>>(),
        [("a".into(), 2), ("b".into(), 2), ("c".into(), 2)],
        "two of each key (the rival's claims are its own slots' business)"
    );
}

/// A lost claim is not replaced past the key's cap: the rival's claim runs too.
#[tokio::test]
async fn a_lost_fair_claim_is_not_replaced_past_the_keys_cap() {
    let (setup, _invoker, entry) = run_fair_contested(json!({
        "max_simultaneous_invocations": 6,
        "fairness": {"key": "k", "max_per_key": 2}
    }))
    .await;
    assert_eq!(
        entry.invoked, 3,
        "one of ours per key beside the rival's: {entry:?}"
    );
    let markers = Markers::new(T0, 3600);
    let key: FairnessKey = serde_json::from_value(json!("k")).expect("a path");
    let queue = setup
        .store
        .queue_by_key("w", &key, &markers, 10)
        .await
        .expect("read");
    assert_eq!(queue.len(), 3, "{queue:?}");
    for (k, work) in &queue {
        assert_eq!(work.running, 2, "key {k}: the cap, ours and the rival's");
    }
}
