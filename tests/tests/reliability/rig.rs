//! The reliability rig: the real orchestrator, worker assistant and scavenger over a store wrapped in
//! [`FaultyStore`], simulated workers behind a [`FaultyInvoker`], all on a [`ManualClock`] that the
//! driver moves in fixed steps. One step: every orchestrator makes one pass (concurrently), the
//! reports that are due reach the worker assistant, the scavenger runs when its minute comes, and the
//! clock moves on. The run ends when no task is live, waiting for retry, or completed but unarchived.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::TimeDelta;
use serde_json::{Value, json};
use sosw::clock::{Clock, ManualClock};
use sosw::config::{OrchestratorConfig, ScavengerConfig, WorkerAssistantConfig, parse_config};
use sosw::ecology::MetricsSource;
use sosw::essentials::closer::Closer;
use sosw::essentials::orchestrator::{ConfigFeed, Orchestrator, OrchestratorSettings, RunMode};
use sosw::essentials::scavenger::Scavenger;
use sosw::essentials::worker_assistant::{AssistantAction, AssistantRequest, WorkerAssistant};
use sosw::invoke::{InvokeOutcome, Invoker};
use sosw::notify::LogNotifier;
use sosw::processor::Stats;
use sosw::store::{
    EnqueueMode, JobCounts, JobRecord, JobStatus, JobStore, LabourerControl, TaskStore,
};
use sosw::task::receipt::carries_receipt;
use sosw::task::{Jitter, Markers, Task, TaskId};
use sosw::testing::checker::{Delivery, DeliveryLog, FinalState, QueueCheck, check};
use sosw::testing::faults::{
    Dice, FaultyInvoker, FaultyStore, InvokeFaults, WorkerFate, WorkerFaults,
};

/// Unix seconds at which every run starts.
pub const T0: i64 = 1_700_000_000;

/// Far enough ahead that every live, not completed task reads as queued (invoked ones included).
const EVERYTHING: i64 = i64::MAX / 4;

/// How a run is set up.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Seed of every fault and of the retry jitter.
    pub seed: u64,
    /// Labourer ids, and per labourer its settings (`task_config.labourers.<id>`).
    pub labourers: Vec<(String, Value)>,
    /// Orchestrators racing each step.
    pub orchestrators: usize,
    /// Store calls failing with a retryable throttle.
    pub store_throttle: f64,
    /// Invoke faults.
    pub invoke: InvokeFaults,
    /// Worker faults.
    pub worker: WorkerFaults,
    /// Virtual seconds per step.
    pub step_secs: i64,
    /// The scavenger runs every this many virtual seconds.
    pub scavenge_every: i64,
    /// Most steps before the run gives up.
    pub max_steps: u64,
    /// Every this many steps, the essentials "die" at a seeded store call of the step (1-30 calls
    /// in): that call and every later one of the step fail, as if the processes were killed between
    /// two steps of their work; the next step starts healed (restarted). `None`: no crashes.
    pub crash_every: Option<u64>,
    /// Single-item DynamoDB writes failing on their way (`sosw_integration_tests::failed_writes`):
    /// moves of two writes stopped halfway. Only the DynamoDB stores of `scenarios::run` see them.
    pub write_failures: f64,
    /// The rig's clock, when the store is to share it (the lean layout's moves compare its times);
    /// a new clock at [`T0`] when `None`.
    pub clock: Option<Arc<ManualClock>>,
}

impl Setup {
    /// One labourer `w` with `max_simultaneous_invocations` slots, 60 s duration, 30 s cooldown,
    /// `max_attempts` 6 and a 10-60 s exponential retry; no faults.
    pub fn one_labourer(seed: u64, slots: u32) -> Self {
        Setup {
            seed,
            labourers: vec![("w".into(), labourer_settings(slots, 60))],
            orchestrators: 1,
            store_throttle: 0.0,
            invoke: InvokeFaults::default(),
            worker: WorkerFaults::default(),
            step_secs: 5,
            scavenge_every: 60,
            max_steps: 20_000,
            crash_every: None,
            write_failures: 0.0,
            clock: None,
        }
    }
}

/// A labourer's settings with `slots` and `duration` seconds.
pub fn labourer_settings(slots: u32, duration: u64) -> Value {
    json!({
        "max_simultaneous_invocations": slots,
        "duration": duration, "cooldown": 30, "max_attempts": 6,
        "retry": {"policy": "exponential", "base_secs": 10, "cap_secs": 60}
    })
}

/// How long one attempt of a task runs, in virtual milliseconds.
pub trait Durations: Send + Sync {
    /// The run time of `attempt` of `task_id` of `labourer`.
    fn millis(&self, dice: &Dice, labourer: &str, task_id: &str, attempt: u32) -> i64;
}

/// Every attempt takes the same time.
pub struct Constant(pub i64);

impl Durations for Constant {
    fn millis(&self, _: &Dice, _: &str, _: &str, _: u32) -> i64 {
        self.0
    }
}

/// A report on its way to the worker assistant.
struct Pending {
    due_ms: i64,
    request: AssistantRequest,
}

/// Simulated workers: each delivery gets a fate from [`WorkerFaults`] and, unless it times out or
/// loses its report, a report due after its duration.
pub struct SimWorkers {
    clock: Arc<ManualClock>,
    dice: Dice,
    faults: WorkerFaults,
    durations: Box<dyn Durations>,
    pending: Mutex<Vec<Pending>>,
    fates: Mutex<BTreeMap<&'static str, u64>>,
    /// The virtual time (ms) of every invocation that reached a worker, in arrival order.
    invoked_at: Mutex<Vec<i64>>,
}

impl SimWorkers {
    fn new(
        clock: Arc<ManualClock>,
        seed: u64,
        faults: WorkerFaults,
        durations: Box<dyn Durations>,
    ) -> Self {
        SimWorkers {
            clock,
            dice: Dice::new(seed ^ 0x5eed),
            faults,
            durations,
            pending: Mutex::new(Vec::new()),
            fates: Mutex::new(BTreeMap::new()),
            invoked_at: Mutex::new(Vec::new()),
        }
    }

    /// The reports due at `now_ms`, taken out of the pending list.
    fn take_due(&self, now_ms: i64) -> Vec<AssistantRequest> {
        let mut pending = self.pending.lock().expect("lock");
        let (due, later): (Vec<Pending>, Vec<Pending>) =
            pending.drain(..).partition(|p| p.due_ms <= now_ms);
        *pending = later;
        due.into_iter().map(|p| p.request).collect()
    }

    fn pending(&self) -> usize {
        self.pending.lock().expect("lock").len()
    }

    /// The virtual time (ms) of every invocation that reached a worker, in arrival order.
    pub fn invocation_times(&self) -> Vec<i64> {
        self.invoked_at.lock().expect("lock").clone()
    }

    /// How many attempts met each fate.
    pub fn fates(&self) -> BTreeMap<&'static str, u64> {
        self.fates.lock().expect("lock").clone()
    }
}

#[async_trait]
impl Invoker for SimWorkers {
    async fn invoke(&self, function: &str, payload: &Value) -> sosw::Result<InvokeOutcome> {
        let delivery = Delivery::from_payload(payload, false)?;
        self.invoked_at
            .lock()
            .expect("lock")
            .push(self.clock.now().timestamp_millis());
        let task_id = TaskId::new(delivery.task_id.clone())?;
        let fate = self
            .faults
            .fate(&self.dice, &delivery.task_id, delivery.attempt);
        let name = match fate {
            WorkerFate::Complete => "completed",
            WorkerFate::Fail => "failed",
            WorkerFate::Timeout => "timed out",
            WorkerFate::CompletionLost => "completion lost",
        };
        *self.fates.lock().expect("lock").entry(name).or_default() += 1;
        let request = match fate {
            WorkerFate::Complete => AssistantRequest::completed(task_id),
            WorkerFate::Fail => AssistantRequest::failed(task_id, true),
            WorkerFate::Timeout | WorkerFate::CompletionLost => {
                return Ok(InvokeOutcome::Accepted);
            }
        };
        // As a worker run by sosw's worker runner reports: a completion sends back the event when
        // it carries a claim receipt (the lean layout), so these scenarios close through receipts,
        // with every fault they inject around them (late, repeated and lost reports).
        let invocation = (request.action == AssistantAction::MarkTaskAsCompleted
            && carries_receipt(payload))
        .then(|| payload.clone());
        let request = AssistantRequest {
            attempt: Some(delivery.attempt),
            invocation,
            ..request
        };
        let run_ms =
            self.durations
                .millis(&self.dice, function, &delivery.task_id, delivery.attempt);
        let due_ms = self.clock.now().timestamp_millis() + run_ms;
        self.pending
            .lock()
            .expect("lock")
            .push(Pending { due_ms, request });
        Ok(InvokeOutcome::Accepted)
    }
}

/// Counters of one run.
#[derive(Debug, Default, Clone)]
pub struct RunFigures {
    /// Steps driven.
    pub steps: u64,
    /// Virtual seconds from the first step to the last closed task.
    pub virtual_secs: i64,
    /// Reports the assistant handled (each try counts).
    pub reports: u64,
    /// Reports dropped after three retryable failures (Lambda's async retries).
    pub reports_dropped: u64,
    /// Claims the orchestrators reported.
    pub claims: u64,
    /// Claims lost to a rival orchestrator.
    pub claims_lost: u64,
    /// Retries the scavenger scheduled.
    pub scavenger_retries: u64,
    /// Dead tasks the scavenger declared.
    pub scavenger_dead: u64,
    /// Steps in which the essentials were killed.
    pub crashes: u64,
    /// Claims per orchestrator.
    pub claims_per_orchestrator: Vec<u64>,
    /// Free slots each orchestrator left empty because of a rate limit.
    pub rate_limited_per_orchestrator: Vec<u64>,
    /// Most claims in one step, per labourer.
    pub peak_claims_per_step: BTreeMap<String, u64>,
}

/// The essentials, the workers and the clock over one store.
pub struct Rig<S: TaskStore + 'static> {
    pub setup: Setup,
    pub store: Arc<FaultyStore<S>>,
    pub clock: Arc<ManualClock>,
    pub log: Arc<DeliveryLog>,
    pub workers: Arc<SimWorkers>,
    pub invoker: Arc<FaultyInvoker>,
    assistant: WorkerAssistant,
    scavenger: Scavenger,
    orchestrators: Vec<Arc<Orchestrator>>,
    dice: Dice,
    submitted: Vec<(String, TaskId)>,
    /// What the orchestrators are rebuilt from by [`Rig::steered`].
    orchestrator_config: OrchestratorConfig,
    metrics: Arc<dyn MetricsSource>,
    tc: Value,
    last_scavenge: Mutex<i64>,
    control: Option<Arc<dyn LabourerControl>>,
}

/// The closer of the rig's worker assistant or scavenger: the rig's store and clock, alerts logged,
/// retry jitter seeded with `seed`.
fn closer(store: Arc<dyn TaskStore>, clock: Arc<ManualClock>, seed: u64) -> Closer {
    Closer::new(store, Arc::new(LogNotifier))
        .with_clock(clock)
        .with_jitter(Jitter::seeded(seed))
}

fn task_config(setup: &Setup) -> Value {
    let labourers: serde_json::Map<String, Value> = setup.labourers.iter().cloned().collect();
    json!({"labourers": labourers})
}

impl<S: TaskStore + 'static> Rig<S> {
    /// A rig over `store` with the default orchestrator metrics (no health metrics: full health).
    pub fn new(store: S, setup: Setup, durations: Box<dyn Durations>) -> Self {
        Self::with_metrics(store, setup, durations, |_| {
            Arc::new(sosw::ecology::FixedMetrics::new())
        })
    }

    /// A rig whose orchestrators read health from the source `metrics` builds on the rig's clock.
    pub fn with_metrics(
        store: S,
        setup: Setup,
        durations: Box<dyn Durations>,
        metrics: impl FnOnce(Arc<dyn Clock>) -> Arc<dyn MetricsSource>,
    ) -> Self {
        let clock = setup
            .clock
            .clone()
            .unwrap_or_else(|| Arc::new(ManualClock::at_secs(T0)));
        let metrics = metrics(clock.clone());
        let setup_seed = setup.seed;
        let store =
            Arc::new(FaultyStore::new(store, setup.seed).with_throttling(setup.store_throttle));
        let log = Arc::new(DeliveryLog::default());
        let workers = Arc::new(SimWorkers::new(
            clock.clone(),
            setup.seed,
            setup.worker,
            durations,
        ));
        let invoker = Arc::new(FaultyInvoker::new(
            workers.clone(),
            setup.invoke,
            setup.seed,
            log.clone(),
        ));
        let tc = task_config(&setup);
        let orchestrator_config: OrchestratorConfig =
            parse_config("sosw_orchestrator_config", json!({"task_config": tc}))
                .expect("orchestrator config");
        let settings = OrchestratorSettings {
            mode: RunMode::SinglePass,
            ..OrchestratorSettings::default()
        };
        let orchestrators = (0..setup.orchestrators)
            .map(|_| {
                Arc::new(
                    Orchestrator::new(
                        store.clone(),
                        invoker.clone(),
                        metrics.clone(),
                        ConfigFeed::fixed(orchestrator_config.clone()),
                        clock.clone(),
                    )
                    .with_settings(settings.clone()),
                )
            })
            .collect();
        let assistant_config: WorkerAssistantConfig =
            parse_config("sosw_worker_assistant_config", json!({"task_config": tc}))
                .expect("assistant config");
        let scavenger_config: ScavengerConfig = parse_config(
            "sosw_scavenger_config",
            json!({"task_config": tc, "retry_tasks_limit": 100_000}),
        )
        .expect("scavenger config");
        let assistant = WorkerAssistant::new(
            assistant_config,
            closer(store.clone(), clock.clone(), setup.seed),
        );
        let scavenger = Scavenger::new(
            scavenger_config,
            closer(store.clone(), clock.clone(), setup.seed + 1),
        );
        Rig {
            setup,
            store,
            clock,
            log,
            workers,
            invoker,
            assistant,
            scavenger,
            orchestrators,
            dice: Dice::new(setup_seed),
            submitted: Vec::new(),
            orchestrator_config,
            metrics,
            tc,
            last_scavenge: Mutex::new(T0),
            control: None,
        }
    }

    /// Enqueues `count` tasks of `labourer` (ids `<labourer>-<n>`), as the scheduler would, in batches
    /// of 1,000, straight to the inner store (submission is not under test here).
    pub async fn submit(&mut self, labourer: &str, count: u64) {
        self.enqueue_numbered(labourer, labourer, None, count).await;
    }

    /// Enqueues `count` tasks of `labourer` with ids `<prefix>-<n>` (of job `job_id`, if given) in
    /// batches of 1,000, straight to the inner store, and records them as submitted.
    async fn enqueue_numbered(
        &mut self,
        labourer: &str,
        prefix: &str,
        job_id: Option<&str>,
        count: u64,
    ) {
        let tasks: Vec<Task> = (0..count)
            .map(|n| {
                let mut task = Task::new(
                    TaskId::for_chunk(prefix, n).as_str(),
                    labourer,
                    // `k`: a key for the scenarios with per-key fairness (8 keys).
                    json!({"n": n, "k": n % 8}),
                    2000 + n as i64,
                    T0 as f64,
                );
                task.job_id = job_id.map(str::to_owned);
                task
            })
            .collect();
        for chunk in tasks.chunks(1000) {
            self.store
                .inner()
                .enqueue(chunk, EnqueueMode::Fresh)
                .await
                .expect("enqueue");
        }
        self.submitted
            .extend(tasks.into_iter().map(|t| (labourer.to_owned(), t.task_id)));
    }

    /// Drives steps until no work is left (or `max_steps`); returns the run's figures.
    pub async fn drive(&self) -> RunFigures {
        let mut figures = RunFigures::default();
        while figures.steps < self.setup.max_steps {
            if self.step(&mut figures).await {
                break;
            }
        }
        figures.virtual_secs = self.clock.now_secs() - T0;
        figures
    }

    /// One step (see the module docs); returns whether the scavenger found every task closed.
    pub async fn step(&self, figures: &mut RunFigures) -> bool {
        figures.steps += 1;
        let crash = self
            .setup
            .crash_every
            .is_some_and(|every| figures.steps.is_multiple_of(every));
        if crash {
            let at = 1 + self.dice.below(30, "crash", "step", figures.steps);
            self.store.crash_at(at);
        }
        self.orchestrate(figures).await;
        self.report(figures).await;
        let now = self.clock.now_secs();
        let scavenge = {
            let mut last = self.last_scavenge.lock().expect("lock");
            let due = now - *last >= self.setup.scavenge_every;
            if due {
                *last = now;
            }
            due
        };
        let mut finished = false;
        if scavenge {
            let report = self.scavenger.run().await;
            let total = report.total();
            figures.scavenger_retries += total.scheduled_for_retry;
            figures.scavenger_dead += total.dead;
            finished = self.workers.pending() == 0 && self.finished().await;
        }
        if crash {
            figures.crashes += u64::from(self.store.has_crashed());
            self.store.heal();
        }
        if !finished {
            self.clock.advance_secs(self.setup.step_secs);
        }
        finished
    }

    async fn orchestrate(&self, figures: &mut RunFigures) {
        let deadline = self.clock.now() + TimeDelta::seconds(60);
        // Each run is a task of its own, so on a multi-threaded runtime they really race. The one
        // spawned first starts first, and on a busy machine (or an in-process store that rarely
        // yields) it can take every free slot before the others are polled: the order rotates with
        // the step, so no orchestrator is favoured in every step.
        let n = self.orchestrators.len();
        let first = figures.steps as usize % n.max(1);
        let mut spawned: Vec<_> = (0..n)
            .map(|k| (first + k) % n)
            .map(|i| {
                let o = self.orchestrators[i].clone();
                (i, tokio::spawn(async move { o.run(deadline).await }))
            })
            .collect();
        spawned.sort_by_key(|(i, _)| *i);
        let runs: Vec<_> = spawned.into_iter().map(|(_, run)| run).collect();
        figures
            .claims_per_orchestrator
            .resize(self.orchestrators.len(), 0);
        figures
            .rate_limited_per_orchestrator
            .resize(self.orchestrators.len(), 0);
        for (i, run) in runs.into_iter().enumerate() {
            let report = run
                .await
                .expect("an orchestrator run does not panic")
                .expect("an orchestrator run with a fixed config");
            for (labourer, l) in &report.labourers {
                figures.claims += l.claimed;
                figures.claims_per_orchestrator[i] += l.claimed;
                figures.rate_limited_per_orchestrator[i] += l.rate_limited;
                figures.claims_lost += l.skipped;
                let peak = figures
                    .peak_claims_per_step
                    .entry(labourer.clone())
                    .or_default();
                *peak = (*peak).max(l.claimed);
            }
        }
    }

    async fn report(&self, figures: &mut RunFigures) {
        let due = self.workers.take_due(self.clock.now().timestamp_millis());
        for request in due {
            // Lambda runs a failed asynchronous event twice more; a report that fails three times is lost.
            let mut delivered = false;
            for _ in 0..3 {
                figures.reports += 1;
                match self.assistant.handle(&request, &mut Stats::default()).await {
                    Ok(_) => {
                        delivered = true;
                        break;
                    }
                    Err(e) if e.is_retryable() || self.store.has_crashed() => {}
                    Err(e) => panic!("a well-formed report is refused: {e}"),
                }
            }
            figures.reports_dropped += u64::from(!delivered);
        }
    }

    /// Whether every task is closed: nothing live, waiting for retry or completed but not archived.
    async fn finished(&self) -> bool {
        let inner = self.store.inner();
        // Every live task not completed, queued or invoked: on the lean layout an invoked task is a
        // claim item, outside the queue that `queue_length` counts.
        let every_live = Markers {
            start: i64::MIN,
            invoked: i64::MIN,
            expired: i64::MAX,
        };
        for (labourer, _) in &self.setup.labourers {
            let busy = async {
                Ok::<bool, sosw::Error>(
                    !inner
                        .list_expired(labourer, &every_live, 1)
                        .await?
                        .is_empty()
                        || inner.retry_length(labourer).await? > 0
                        || !inner
                            .list_completed(labourer, EVERYTHING, 1)
                            .await?
                            .is_empty(),
                )
            };
            if busy.await.unwrap_or(true) {
                return false;
            }
        }
        true
    }

    /// The checker's verdict over everything submitted.
    pub async fn check(&self) -> QueueCheck {
        let mut state = FinalState::new();
        let mut by_labourer: BTreeMap<&str, Vec<TaskId>> = BTreeMap::new();
        for (labourer, id) in &self.submitted {
            by_labourer.entry(labourer).or_default().push(id.clone());
        }
        for (labourer, ids) in by_labourer {
            let part = FinalState::look_up(self.store.inner(), labourer, &ids)
                .await
                .expect("the final state reads");
            state.merge(part);
        }
        check(
            self.submitted.iter().map(|(_, id)| id.as_str().to_owned()),
            &self.log.snapshot(),
            &state,
        )
    }
}

impl<S: TaskStore + JobStore + 'static> Rig<S> {
    /// The same rig steered as `sosw cancel` and `sosw pause` need: its orchestrators honour the
    /// pauses in `control`, and its worker assistant and scavenger keep job records in the rig's store
    /// (so a task of a cancelled job is not retried).
    pub fn steered(mut self, control: Arc<dyn LabourerControl>) -> Self {
        let settings = OrchestratorSettings {
            mode: RunMode::SinglePass,
            ..OrchestratorSettings::default()
        };
        self.orchestrators = (0..self.setup.orchestrators)
            .map(|_| {
                Arc::new(
                    Orchestrator::new(
                        self.store.clone(),
                        self.invoker.clone(),
                        self.metrics.clone(),
                        ConfigFeed::fixed(self.orchestrator_config.clone()),
                        self.clock.clone(),
                    )
                    .with_settings(settings.clone())
                    .with_labourer_control(control.clone()),
                )
            })
            .collect();
        let jobs: Arc<dyn JobStore> = self.store.clone();
        let assistant_config: WorkerAssistantConfig = parse_config(
            "sosw_worker_assistant_config",
            json!({"task_config": self.tc}),
        )
        .expect("assistant config");
        let scavenger_config: ScavengerConfig = parse_config(
            "sosw_scavenger_config",
            json!({"task_config": self.tc, "retry_tasks_limit": 100_000}),
        )
        .expect("scavenger config");
        self.assistant = WorkerAssistant::new(
            assistant_config,
            closer(self.store.clone(), self.clock.clone(), self.setup.seed).with_jobs(jobs.clone()),
        );
        self.scavenger = Scavenger::new(
            scavenger_config,
            closer(self.store.clone(), self.clock.clone(), self.setup.seed + 1).with_jobs(jobs),
        );
        self.control = Some(control);
        self
    }

    /// The pauses the orchestrators of a [`steered`](Rig::steered) rig honour.
    pub fn steering_control(&self) -> Arc<dyn LabourerControl> {
        self.control
            .clone()
            .expect("the rig is steered (Rig::steered)")
    }

    /// Records job `job_id` (running, every task written) and enqueues its `count` tasks of
    /// `labourer` (ids `<job_id>-<n>`, `job_id` set), as the scheduler would.
    pub async fn submit_job(&mut self, labourer: &str, job_id: &str, count: u64) {
        let record = JobRecord {
            job_id: job_id.to_owned(),
            labourer_id: labourer.to_owned(),
            status: JobStatus::Running,
            total: Some(count),
            enqueued: count,
            counts: JobCounts::default(),
            created_at: T0,
            started_at: Some(T0),
            finished_at: None,
            requesters: vec!["reliability".into()],
            job: json!({}),
        };
        self.store
            .inner()
            .create_job(&record)
            .await
            .expect("job recorded");
        self.enqueue_numbered(labourer, job_id, Some(job_id), count)
            .await;
    }
}
