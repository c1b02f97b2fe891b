//! A sustained run under the partition model, scaled down: the real pipeline (a feeder enqueueing
//! through the store, the real [`Orchestrator`] claiming and invoking, in-process workers reporting
//! through the real [`WorkerAssistant`], which completes, archives and counts each task in its job
//! record) for a fixed time against a [`PartitionProxy`] whose limits are DynamoDB's divided by a
//! factor `D` ([`PartitionLimits::scaled_down`]).
//!
//! **Why the scaling holds.** What a task costs each partition key (write units, read units) does not
//! depend on how fast tasks go, and a key's budget is a rate. A pipeline that sustains `X` tasks a second
//! under limits divided by `D` therefore puts on its hottest key the same share of that key's budget as
//! `X * D` tasks a second under DynamoDB's real limits: the run stands for `X * D` tasks a second
//! ("virtual"), provided nothing but the partition limits holds it back. That proviso is checked by
//! running the same pipeline with limits nothing reaches ([`SustainedRun::run`] on a proxy with huge
//! limits): its rate must be well above the scaled run's.
//!
//! **What it does not model.** Per-key token buckets without burst credit or adaptive capacity (as
//! the proxy: see [`super`]); costs that come per second rather than per task (the orchestrator's
//! running-count and queue reads each round) are D times too heavy relative to the tasks, which can
//! only lower the figure; and in-flight concurrency: at `X * D` tasks a second a real deployment needs
//! `D` times as many requests in flight (or `D` times shorter round trips) as this run.
//!
//! The run is measured over a steady window after a warm-up: tasks completed (reported by their
//! worker, recorded, archived and counted in the job by the worker assistant) per second, the hottest partition key's write units per second and per task,
//! the requests the proxy turned away, and at the end the queue checker
//! ([`crate::checker::check`]) over every task submitted, after every worker report has landed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{TimeDelta, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sosw_core::clock::{ManualClock, SystemClock};
use sosw_core::config::{OrchestratorConfig, ScavengerConfig, WorkerAssistantConfig, parse_config};
use sosw_core::ecology::FixedMetrics;
use sosw_core::error::{Error, Result};
use sosw_core::essentials::closer::Closer;
use sosw_core::essentials::orchestrator::{ConfigFeed, Orchestrator, OrchestratorSettings};
use sosw_core::essentials::scavenger::Scavenger;
use sosw_core::essentials::worker_assistant::{AssistantRequest, WorkerAssistant};
use sosw_core::invoke::{InvokeOutcome, Invoker};
use sosw_core::notify::LogNotifier;
use sosw_core::processor::Stats;
use sosw_core::store::{
    EnqueueMode, JobCounts, JobRecord, JobStatus, JobStore, TaskQueue, TaskStore,
};
use sosw_core::task::{Task, TaskId};
use tokio::task::JoinHandle;

use super::model::{Direction, Partition, PartitionLimits};
use super::proxy::PartitionProxy;
use crate::checker::{Delivery, DeliveryLog, FinalState, QueueCheck, check};
use crate::faults::{FaultyInvoker, InvokeFaults};

/// Tasks per enqueue call of the feeder.
const FEED_CHUNK: usize = 100;

/// Most tries of one worker report (retryable failures only) before it counts as dropped.
const REPORT_TRIES: u32 = 20;

/// How long one orchestrator run of the pipeline lasts (runs follow each other until the end).
const ORCHESTRATOR_RUN: Duration = Duration::from_secs(3);

/// The longest the window waits, after the warm-up, for the pipeline's first completed task.
const START_WAIT: Duration = Duration::from_secs(90);

/// How one sustained run is set up.
#[derive(Debug, Clone)]
pub struct SustainedRun {
    /// The one labourer; its task ids are `<labourer>-<n>`, its jobs `<labourer>-job-<j>`.
    pub labourer: String,
    /// Jobs the tasks are spread over (round robin), each with a job record the worker assistant
    /// counts outcomes in.
    pub jobs: usize,
    /// Tasks queued ahead of the orchestrator: written before the run, then kept at this depth by a
    /// feeder that enqueues (through the store under test) as many tasks as were completed.
    pub backlog: usize,
    /// The labourer's `max_simultaneous_invocations`.
    pub slots: u64,
    /// Time before the measured window (not counted).
    pub warmup: Duration,
    /// The measured window.
    pub window: Duration,
    /// The scavenger runs this often during the run (it finishes archive moves a throttle
    /// interrupted, as its scheduled runs do in production), and once more at the end.
    pub scavenge_every: Duration,
}

impl SustainedRun {
    /// `jobs` jobs of labourer `labourer`, a backlog of 400 tasks, 256 slots, a 3 s warm-up and a
    /// window of `window`.
    pub fn new(labourer: &str, jobs: usize, window: Duration) -> Self {
        SustainedRun {
            labourer: labourer.to_owned(),
            jobs,
            backlog: 400,
            slots: 256,
            warmup: Duration::from_secs(3),
            window,
            scavenge_every: Duration::from_secs(5),
        }
    }
}

/// A partition key and what it served in the window.
#[derive(Debug, Clone, Serialize)]
pub struct KeyLoad {
    /// `table [index i] key`.
    pub key: String,
    /// Units served in the window.
    pub units: f64,
    /// Requests turned away in the window.
    pub throttled: u64,
}

/// What a sustained run measured.
#[derive(Debug, Clone, Serialize)]
pub struct SustainedFigures {
    /// DynamoDB's write limit per key over the proxy's: the scale `D` of the run (about 0 for a proxy
    /// with limits nothing reaches).
    pub dilation: f64,
    /// Seconds from the start to the window's start: the warm-up, longer when the pipeline had not
    /// completed a task by then.
    pub warmup_secs: f64,
    /// The measured window, in seconds.
    pub window_secs: f64,
    /// Tasks whose completion report the worker assistant accepted in the window (it archives them
    /// at once; a move a throttle interrupts is finished by the scavenger).
    pub completed: u64,
    /// `completed / window_secs`.
    pub real_tasks_per_sec: f64,
    /// `real_tasks_per_sec * dilation`: the rate under DynamoDB's real limits.
    pub virtual_tasks_per_sec: f64,
    /// Write requests (or batch items) the proxy turned away in the window.
    pub write_throttles: u64,
    /// Read requests the proxy turned away in the window.
    pub read_throttles: u64,
    /// The key with the most write units in the window.
    pub hottest_write_key: KeyLoad,
    /// The five keys with the most write units in the window, busiest first.
    pub top_write_keys: Vec<KeyLoad>,
    /// The hottest key's write units per task completed in the window.
    pub hottest_write_units_per_task: f64,
    /// Its write units per second in the window, times `dilation`: against DynamoDB's 1,000.
    pub hottest_virtual_write_units_per_sec: f64,
    /// The key with the most read units in the window.
    pub hottest_read_key: Option<KeyLoad>,
    /// Its read units per second in the window, times `dilation`: against DynamoDB's 3,000.
    pub hottest_virtual_read_units_per_sec: f64,
    /// Tasks submitted in all (backlog and feeder).
    pub submitted: u64,
    /// Worker reports retried after a retryable failure.
    pub report_retries: u64,
    /// Worker reports given up after 20 tries or a failure that is not retryable.
    pub reports_dropped: u64,
    /// Feeder enqueue calls retried after a failure.
    pub enqueue_retries: u64,
    /// Tasks the scavenger archived during the run (moves the worker assistant could not finish).
    pub scavenger_archived: u64,
    /// Tasks the scavenger's last pass, after the run, archived.
    pub scavenger_archived_at_end: u64,
    /// Tasks the scavenger's pass a minute after that archived: moves a throttle interrupted between
    /// their two writes, which the store leaves to their mover for a minute. The queue checker's
    /// final state is read after it (at rest).
    pub scavenger_archived_a_minute_later: u64,
    /// Completions counted in the job records at the end (the sum over the jobs).
    pub job_counted_completed: u64,
    /// Orchestrator runs (each a few seconds long, one after another until the end of the window).
    pub orchestrator_runs: u64,
    /// Errors the orchestrator runs reported (throttles that outlasted the SDK's retries, mostly).
    pub orchestrator_errors: u64,
    /// The longest orchestrator run, in seconds. A run stops claiming a few seconds after it starts
    /// (3 s here), so a much longer one had its round held by slow requests: what the partition
    /// limits do to a throttled request, or an emulator slower than the limits assume.
    pub longest_orchestrator_run_secs: f64,
    /// The longest enqueue call of the feeder, in seconds (one call of up to 100 tasks).
    pub longest_enqueue_secs: f64,
    /// The first few error messages of the orchestrator, the workers and the feeder.
    pub errors: Vec<String>,
    /// The queue checker's verdict over every submitted task.
    pub check: QueueCheck,
    /// The first few tasks the checker found in several places, with the places (`id: [..]`).
    pub several_places: Vec<String>,
}

/// The in-process workers: each delivery spawns a worker that reports completion through the worker
/// assistant at once (retrying a retryable failure, as Lambda retries an asynchronous event).
struct Workers {
    assistant: Arc<WorkerAssistant>,
    completed: Arc<AtomicU64>,
    retries: Arc<AtomicU64>,
    dropped: Arc<AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
    running: Mutex<Vec<JoinHandle<()>>>,
}

fn note(errors: &Mutex<Vec<String>>, message: String) {
    let mut errors = errors.lock().unwrap_or_else(|p| p.into_inner());
    if errors.len() < 5 {
        errors.push(message);
    }
}

#[async_trait]
impl Invoker for Workers {
    async fn invoke(&self, _function: &str, payload: &Value) -> Result<InvokeOutcome> {
        let delivery = Delivery::from_payload(payload, false)?;
        // As a worker run by sosw's worker runner reports: its event sent back when it carries a
        // claim receipt.
        let request = AssistantRequest {
            attempt: Some(delivery.attempt),
            invocation: sosw_core::task::receipt::carries_receipt(payload).then(|| payload.clone()),
            ..AssistantRequest::completed(TaskId::new(delivery.task_id)?)
        };
        let (assistant, completed, retries, dropped, errors) = (
            self.assistant.clone(),
            self.completed.clone(),
            self.retries.clone(),
            self.dropped.clone(),
            self.errors.clone(),
        );
        let worker = tokio::spawn(async move {
            for attempt in 1..=REPORT_TRIES {
                match assistant.handle(&request, &mut Stats::default()).await {
                    Ok(_) => {
                        completed.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    Err(e) if e.is_retryable() && attempt < REPORT_TRIES => {
                        retries.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                    }
                    Err(e) => {
                        note(&errors, format!("worker report: {e}"));
                        break;
                    }
                }
            }
            dropped.fetch_add(1, Ordering::SeqCst);
        });
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        running.retain(|w| !w.is_finished());
        running.push(worker);
        Ok(InvokeOutcome::Accepted)
    }
}

impl Workers {
    /// Waits for every worker started so far.
    async fn wait(&self) {
        loop {
            let running: Vec<JoinHandle<()>> =
                std::mem::take(&mut *self.running.lock().unwrap_or_else(|p| p.into_inner()));
            if running.is_empty() {
                return;
            }
            for worker in running {
                let _ = worker.await;
            }
        }
    }
}

/// The units and throttles per (partition, direction) the proxy counted so far.
fn snapshot(proxy: &PartitionProxy) -> HashMap<(Partition, Direction), (f64, u64)> {
    proxy
        .stats()
        .into_iter()
        .map(|s| ((s.partition, s.direction), (s.units, s.throttled)))
        .collect()
}

fn key_name(p: &Partition) -> String {
    format!(
        "{}{} {}",
        p.table,
        p.index
            .as_deref()
            .map(|i| format!(" index {i}"))
            .unwrap_or_default(),
        p.key
    )
}

/// The per-key differences between two snapshots in `direction`, busiest first.
fn window_loads(
    before: &HashMap<(Partition, Direction), (f64, u64)>,
    after: &HashMap<(Partition, Direction), (f64, u64)>,
    direction: Direction,
) -> Vec<KeyLoad> {
    let mut loads: Vec<KeyLoad> = after
        .iter()
        .filter(|((_, d), _)| *d == direction)
        .map(|(k, (units, throttled))| {
            let (u0, t0) = before.get(k).copied().unwrap_or_default();
            KeyLoad {
                key: key_name(&k.0),
                units: units - u0,
                throttled: throttled - t0,
            }
        })
        .collect();
    loads.sort_by(|a, b| b.units.total_cmp(&a.units));
    loads
}

/// The tasks `from..to` of `run`'s labourer, each in its job.
fn tasks(run: &SustainedRun, from: usize, to: usize) -> Vec<Task> {
    (from..to)
        .map(|n| {
            let mut task = Task::new(
                format!("{}-{n:07}", run.labourer),
                &run.labourer,
                json!({"n": n}),
                2_000 + n as i64,
                1_700_000_000.0,
            );
            task.job_id = Some(format!("{}-job-{}", run.labourer, n % run.jobs.max(1)));
            task
        })
        .collect()
}

impl SustainedRun {
    /// Runs the pipeline over `store` (whose client goes through `proxy`) for the warm-up and the
    /// window, then waits for every worker and checks the queue. `direct` is the same tables without
    /// the proxy: the job records and the first backlog are written, and the final state read, through
    /// it (outside what is measured). The tables must be empty.
    pub async fn run<S>(
        &self,
        store: Arc<S>,
        direct: Arc<S>,
        proxy: &PartitionProxy,
    ) -> Result<SustainedFigures>
    where
        S: TaskStore + JobStore + 'static,
    {
        if self.jobs == 0 || self.backlog == 0 || self.slots == 0 || self.window.is_zero() {
            return Err(Error::invalid(
                "sustained run",
                format!(
                    "jobs, backlog, slots and window must be positive: {} jobs, backlog {}, {} \
                     slots, window {:?}",
                    self.jobs, self.backlog, self.slots, self.window
                ),
            ));
        }
        let dilation =
            PartitionLimits::default().write_units_per_sec / proxy.limits().write_units_per_sec;
        for j in 0..self.jobs {
            let record = JobRecord {
                job_id: format!("{}-job-{j}", self.labourer),
                labourer_id: self.labourer.clone(),
                status: JobStatus::Running,
                total: None,
                enqueued: 0,
                counts: JobCounts::default(),
                created_at: 1_700_000_000,
                started_at: Some(1_700_000_000),
                finished_at: None,
                requesters: vec!["sustained run".into()],
                job: json!({}),
            };
            direct.create_job(&record).await?;
        }
        let first = tasks(self, 0, self.backlog);
        for chunk in first.chunks(FEED_CHUNK * 10) {
            direct.enqueue(chunk, EnqueueMode::Fresh).await?;
        }
        let submitted = Arc::new(Mutex::new(
            first
                .iter()
                .map(|t| t.task_id.as_str().to_owned())
                .collect::<Vec<_>>(),
        ));

        let task_config = json!({"labourers": {self.labourer.as_str(): {
            "max_simultaneous_invocations": self.slots, "duration": 900, "max_attempts": 3,
        }}});
        let assistant_config: WorkerAssistantConfig = parse_config(
            "sosw_worker_assistant_config",
            json!({"task_config": task_config}),
        )?;
        let closer = |store: Arc<S>| {
            Closer::new(store.clone(), Arc::new(LogNotifier)).with_jobs(store.clone())
        };
        let scavenger_config: ScavengerConfig = parse_config(
            "sosw_scavenger_config",
            json!({"task_config": task_config, "retry_tasks_limit": 100_000}),
        )?;
        let scavenger = Arc::new(Scavenger::new(
            scavenger_config.clone(),
            closer(store.clone()),
        ));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let workers = Arc::new(Workers {
            assistant: Arc::new(WorkerAssistant::new(
                assistant_config,
                closer(store.clone()),
            )),
            completed: Arc::new(AtomicU64::new(0)),
            retries: Arc::new(AtomicU64::new(0)),
            dropped: Arc::new(AtomicU64::new(0)),
            errors: errors.clone(),
            running: Mutex::new(Vec::new()),
        });
        let log = Arc::new(DeliveryLog::default());
        let invoker = Arc::new(FaultyInvoker::new(
            workers.clone(),
            InvokeFaults::default(),
            0,
            log.clone(),
        ));
        let orchestrator_config: OrchestratorConfig = parse_config(
            "sosw_orchestrator_config",
            json!({"task_config": task_config}),
        )?;
        // Production settings (rounds every 500 ms, 64 claims in flight), but the run keeps going
        // while the queue is momentarily empty.
        let settings = OrchestratorSettings {
            stop_when_idle: false,
            ..OrchestratorSettings::default()
        };
        let orchestrator = Arc::new(
            Orchestrator::new(
                store.clone(),
                invoker,
                Arc::new(FixedMetrics::new()),
                ConfigFeed::fixed(orchestrator_config),
                Arc::new(SystemClock),
            )
            .with_settings(settings.clone()),
        );

        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let enqueue_retries = Arc::new(AtomicU64::new(0));
        let feeder = tokio::spawn(feed(
            self.clone(),
            store.clone(),
            workers.completed.clone(),
            submitted.clone(),
            stop.clone(),
            enqueue_retries.clone(),
            errors.clone(),
        ));
        let margin = settings.margin;
        let runs = {
            let stop = stop.clone();
            tokio::spawn(async move {
                let (mut runs, mut failures, mut messages) = (0_u64, 0_u64, Vec::new());
                let mut longest = Duration::ZERO;
                // Runs of a few seconds each until the window is over (its end is not known in
                // advance: the window starts once the pipeline has completed a task).
                while !stop.load(Ordering::SeqCst) {
                    let deadline = Utc::now()
                        + TimeDelta::from_std(ORCHESTRATOR_RUN + margin)
                            .unwrap_or(TimeDelta::zero());
                    runs += 1;
                    let began = Instant::now();
                    let result = orchestrator.run(deadline).await;
                    longest = longest.max(began.elapsed());
                    match result {
                        Ok(report) => {
                            for l in report.labourers.values() {
                                failures += l.error_count;
                                messages.extend(l.errors.iter().take(2).cloned());
                            }
                        }
                        Err(e) => {
                            failures += 1;
                            messages.push(format!("orchestrator run: {e}"));
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                (runs, failures, messages, longest)
            })
        };

        let every = self.scavenge_every;
        let scavenging = {
            let (stop, errors) = (stop.clone(), errors.clone());
            tokio::spawn(async move {
                let mut archived = 0;
                while !stop.load(Ordering::SeqCst) {
                    tokio::time::sleep(every).await;
                    let report = scavenger.run().await;
                    archived += report.total().archived;
                    for failure in report.failures {
                        note(&errors, format!("scavenger: {}", failure.error));
                    }
                }
                archived
            })
        };

        tokio::time::sleep_until((started + self.warmup).into()).await;
        // A machine slower than the one the warm-up was chosen on (or an emulator still warming
        // its own caches) may not have completed anything yet: the window waits for the first
        // completion, at most START_WAIT longer.
        let give_up = Instant::now() + START_WAIT;
        while workers.completed.load(Ordering::SeqCst) == 0 && Instant::now() < give_up {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let warmup_secs = started.elapsed().as_secs_f64();
        let end = Instant::now() + self.window;
        let (completed_before, stats_before, at_start) = (
            workers.completed.load(Ordering::SeqCst),
            snapshot(proxy),
            Instant::now(),
        );
        tokio::time::sleep_until(end.into()).await;
        let (completed_after, stats_after, at_end) = (
            workers.completed.load(Ordering::SeqCst),
            snapshot(proxy),
            Instant::now(),
        );
        stop.store(true, Ordering::SeqCst);
        let (orchestrator_runs, orchestrator_errors, messages, longest_run) = runs
            .await
            .map_err(|e| Error::invalid("sustained run", format!("the orchestrator loop: {e}")))?;
        let longest_enqueue = feeder
            .await
            .map_err(|e| Error::invalid("sustained run", format!("the feeder: {e}")))?;
        workers.wait().await;
        let scavenger_archived = scavenging
            .await
            .map_err(|e| Error::invalid("sustained run", format!("the scavenger loop: {e}")))?;
        let last = Scavenger::new(scavenger_config.clone(), closer(direct.clone()))
            .run()
            .await;
        if let Some(failure) = last.failures.first() {
            return Err(Error::invalid(
                "sustained run",
                format!("the scavenger's last pass failed: {}", failure.error),
            ));
        }
        // At rest: the pass a scheduled scavenger makes a minute later, which finishes the moves a
        // throttle interrupted between their two writes (a store leaves such a move to its mover
        // for a minute). Its clock is two minutes ahead instead of the run waiting for one.
        let ahead = Arc::new(ManualClock::at_secs(Utc::now().timestamp() + 120));
        let rest = Scavenger::new(scavenger_config, closer(direct.clone()).with_clock(ahead))
            .run()
            .await;
        if let Some(failure) = rest.failures.first() {
            return Err(Error::invalid(
                "sustained run",
                format!(
                    "the scavenger's pass a minute later failed: {}",
                    failure.error
                ),
            ));
        }
        let mut job_counted_completed = 0;
        for j in 0..self.jobs {
            let job_id = format!("{}-job-{j}", self.labourer);
            if let Some(record) = direct.get_job(&job_id).await? {
                job_counted_completed += record.counts.completed;
            }
        }

        let window_secs = (at_end - at_start).as_secs_f64();
        let completed = completed_after - completed_before;
        let real_tasks_per_sec = completed as f64 / window_secs;
        let writes = window_loads(&stats_before, &stats_after, Direction::Write);
        let reads = window_loads(&stats_before, &stats_after, Direction::Read);
        let hottest_write_key = writes.first().cloned().ok_or_else(|| {
            Error::invalid("sustained run", "no write reached the proxy in the window")
        })?;
        let hottest_read_key = reads.first().cloned();

        let ids: Vec<String> = submitted.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let task_ids = ids
            .iter()
            .map(|id| TaskId::new(id.as_str()))
            .collect::<Result<Vec<_>>>()?;
        let state = FinalState::look_up(direct.as_ref(), &self.labourer, &task_ids).await?;
        let check = check(ids.iter().cloned(), &log.snapshot(), &state);
        let several_places = check
            .in_several_places
            .iter()
            .take(5)
            .map(|id| format!("{id}: {:?}", state.places(id)))
            .collect();

        let mut all_errors = messages;
        all_errors.truncate(5);
        all_errors.extend(errors.lock().unwrap_or_else(|p| p.into_inner()).clone());
        Ok(SustainedFigures {
            dilation,
            warmup_secs,
            window_secs,
            completed,
            real_tasks_per_sec,
            virtual_tasks_per_sec: real_tasks_per_sec * dilation,
            write_throttles: writes.iter().map(|l| l.throttled).sum(),
            read_throttles: reads.iter().map(|l| l.throttled).sum(),
            hottest_write_units_per_task: hottest_write_key.units / completed.max(1) as f64,
            hottest_virtual_write_units_per_sec: hottest_write_key.units / window_secs * dilation,
            hottest_virtual_read_units_per_sec: hottest_read_key
                .as_ref()
                .map_or(0.0, |k| k.units / window_secs * dilation),
            hottest_write_key,
            hottest_read_key,
            top_write_keys: writes.iter().take(5).cloned().collect(),
            submitted: ids.len() as u64,
            scavenger_archived,
            scavenger_archived_at_end: last.total().archived,
            scavenger_archived_a_minute_later: rest.total().archived,
            job_counted_completed,
            report_retries: workers.retries.load(Ordering::SeqCst),
            reports_dropped: workers.dropped.load(Ordering::SeqCst),
            enqueue_retries: enqueue_retries.load(Ordering::SeqCst),
            orchestrator_runs,
            orchestrator_errors,
            longest_orchestrator_run_secs: longest_run.as_secs_f64(),
            longest_enqueue_secs: longest_enqueue.as_secs_f64(),
            errors: all_errors,
            check,
            several_places,
        })
    }
}

/// Keeps the queue `run.backlog` deep: every few milliseconds, enqueues through `store` as many new
/// tasks as were completed since (in chunks of [`FEED_CHUNK`]). A failed enqueue is retried with
/// [`EnqueueMode::SkipExisting`] (some of its tasks may be written); a task counts as submitted once
/// its enqueue succeeded. Returns the longest enqueue call.
async fn feed<S>(
    run: SustainedRun,
    store: Arc<S>,
    completed: Arc<AtomicU64>,
    submitted: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    retries: Arc<AtomicU64>,
    errors: Arc<Mutex<Vec<String>>>,
) -> Duration
where
    S: TaskQueue + 'static,
{
    let mut next = run.backlog;
    let mut longest = Duration::ZERO;
    while !stop.load(Ordering::SeqCst) {
        let queued = next.saturating_sub(completed.load(Ordering::SeqCst) as usize);
        let want = run.backlog.saturating_sub(queued).min(FEED_CHUNK);
        if want < FEED_CHUNK / 4 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let chunk = tasks(&run, next, next + want);
        let mut mode = EnqueueMode::Fresh;
        loop {
            let began = Instant::now();
            let result = store.enqueue(&chunk, mode).await;
            longest = longest.max(began.elapsed());
            match result {
                Ok(_) => break,
                Err(e) if stop.load(Ordering::SeqCst) => {
                    // Never accepted: not submitted (a task of it that was written and delivered
                    // shows as unexpected in the check).
                    note(&errors, format!("feeder enqueue, given up at the end: {e}"));
                    return longest;
                }
                Err(e) => {
                    note(&errors, format!("feeder enqueue: {e}"));
                    retries.fetch_add(1, Ordering::SeqCst);
                    mode = EnqueueMode::SkipExisting;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        submitted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(chunk.iter().map(|t| t.task_id.as_str().to_owned()));
        next += want;
    }
    longest
}
