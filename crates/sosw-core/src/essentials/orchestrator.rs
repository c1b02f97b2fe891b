//! The orchestrator: keeps every labourer exactly as busy as its health allows.
//!
//! For each labourer, each round:
//! 1. its **status** 0-4 from its health metrics ([`crate::ecology`]), each metric read once per run;
//! 2. **desired** = `floor(max_simultaneous_invocations x invocation_number_coefficient[status])`;
//!    `max_simultaneous_invocations: 0` pauses the labourer (sosw 0.7 turned 0 into 1, bug B5); for
//!    a labourer whose `ecology` is adaptive, that is the ceiling of the adaptive controller's limit,
//!    whose state every orchestrator shares through the store (docs/ecology.md);
//! 3. **free** = desired minus the tasks **running** now (invoked, not expired, not completed: a
//!    completed task frees its slot at once, not when the scavenger archives it), capped by the
//!    labourer's optional rate limit, whose grants are taken from the rate log in the store that every
//!    orchestrator shares ([`take_rate`], by compare-and-set); grants left unused go back at the end of
//!    the round;
//! 4. up to *free* queued tasks, lowest greenfield first (for a labourer with `fairness`: shared
//!    max-min fairly among the keys with queued work, [`fair_starts`], each key's queue head first), are **claimed** with the store's conditional
//!    claim (sosw 0.7's `mark_task_invoked`) and **invoked** with their sosw 0.7 worker payload
//!    ([`Task::worker_payload`](crate::task::Task::worker_payload) of the pre-claim row), concurrently up to
//!    [`OrchestratorSettings::max_concurrent_invocations`]. A task another orchestrator claimed first
//!    is skipped and the next one taken.
//!
//! What an invocation's outcome does to the claim:
//! * [`InvokeOutcome::Accepted`]: the claim stands; the worker reports completion.
//! * [`InvokeOutcome::Rejected`] (function missing, throttled beyond retries, payload refused): the
//!   task definitely did not reach the worker, so its claim is **released** at once
//!   ([`TaskClaims::release_claim`]: pre-claim greenfield and attempts restored) and the task is back
//!   at its place in the queue, instead of sitting "invoked" for duration + cooldown as in sosw 0.7.
//!   The labourer gets no more invocations this round, and a released task is not claimed again in the
//!   same run, so a function that refuses everything costs one refusal per task per run, not a loop.
//! * [`InvokeOutcome::Unknown`] (timeout, connection lost after sending, server error) and invoker
//!   errors: the claim is **kept**, so sosw never invokes a task twice because of its own doubt. If
//!   the worker never got it, the task expires and the scavenger retries it.
//!
//! **Continuous mode** (the default): one run repeats rounds every
//! [`OrchestratorSettings::poll_interval`] until its deadline minus
//! [`OrchestratorSettings::margin`], so slots freed by finished tasks are refilled within a poll
//! interval instead of at the next scheduled run (sosw 0.7's ceiling: one batch per minute). With
//! [`OrchestratorSettings::stop_when_idle`] the run ends early once no labourer has queued work it
//! could start. [`RunMode::SinglePass`] makes one round, as sosw 0.7 does. An orchestrator built
//! [`with_wake`](Orchestrator::with_wake) starts its next round as soon as it is notified (a local run
//! notifies it whenever a worker ends), so a freed slot is refilled at once.
//!
//! Two orchestrators may run at once (an overlapping schedule, a manual run): the conditional claim
//! still invokes each queued task once per attempt, but both count the same running tasks, so together
//! they may briefly exceed a labourer's `max_simultaneous_invocations`, as in sosw 0.7. Its
//! `rate_limit` they never exceed together: they take from one shared rate log.
//!
//! **Paused labourers.** An orchestrator built [`with_labourer_control`](Orchestrator::with_labourer_control)
//! reads the paused labourers (`sosw pause`) at the start of every round, and skips a paused labourer
//! (no claim, no invocation, no metrics read; its report entry says `paused`). A pause stored while a
//! round runs takes effect at the next round, a poll interval later at most; a round that cannot read
//! the pauses invokes nothing and records the error for every labourer.
//!
//! Labourers and coefficients come from a [`ConfigFeed`], read every round: a reloading feed picks up
//! labourers added, changed or removed in the config table within its TTL.
//!
//! [`InvokeOutcome::Accepted`]: crate::invoke::InvokeOutcome::Accepted
//! [`InvokeOutcome::Rejected`]: crate::invoke::InvokeOutcome::Rejected
//! [`InvokeOutcome::Unknown`]: crate::invoke::InvokeOutcome::Unknown

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::StreamExt;

use crate::clock::Clock;
use crate::config::{InvocationCoefficients, OrchestratorConfig};
use crate::ecology::adaptive::{AdaptiveConfig, Controller, ControllerState, Observation};
use crate::ecology::fair::{Fairness, fair_starts};
use crate::ecology::{EcologyManager, HealthCache, MetricsSource, NoDataPolicy};
use crate::error::Error;
use crate::invoke::{Invoker, WorkerTimeouts};
use crate::processor::{Invocation, Processor};
use crate::store::{
    AdaptiveRecord, Change, EcologyState, LabourerControl, OutcomeCounts, TaskClaims, TaskQueue,
    give_back_rate, key_loads, take_rate, update_ecology,
};
use crate::task::{Labourer, Markers, TaskId, TaskInvocation, TaskManager};

mod feed;
mod report;

pub use feed::{ConfigFeed, DEFAULT_CONFIG_TTL, ORCHESTRATOR_FUNCTION};
pub use report::{LabourerReport, OrchestratorReport};

/// What the orchestrator needs of a task store: the queue, the claims and the shared ecology state
/// (the rate log every orchestrator takes from).
pub trait OrchestratorStore: TaskQueue + TaskClaims + EcologyState {}

impl<T: TaskQueue + TaskClaims + EcologyState + ?Sized> OrchestratorStore for T {}

/// Most queue reads per labourer per round: each read after the first replaces tasks another
/// orchestrator claimed first, so a few are plenty.
const MAX_QUEUE_READS_PER_ROUND: usize = 8;

/// One round or many.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunMode {
    /// Refill freed slots until the deadline minus the margin.
    #[default]
    Continuous,
    /// One round per run, as sosw 0.7.
    SinglePass,
}

/// How a run behaves. Every default is stated on its field.
#[derive(Debug, Clone, PartialEq)]
pub struct OrchestratorSettings {
    /// One round or many. Default [`RunMode::Continuous`].
    pub mode: RunMode,
    /// A continuous run stops starting rounds this long before its deadline. Default 10 s: a run
    /// given a 60 s deadline (a one-minute schedule) works for 50 s.
    pub margin: Duration,
    /// Pause between rounds of a continuous run. Default 500 ms.
    pub poll_interval: Duration,
    /// Most claims and invocations in flight at once. Default 64.
    pub max_concurrent_invocations: usize,
    /// End a continuous run early when a round finds no labourer with queued work it could start.
    /// Default true: new tasks then wait for the next scheduled run, as in sosw 0.7.
    pub stop_when_idle: bool,
    /// What a health metric without datapoints counts as. Default [`NoDataPolicy::Ignore`].
    pub no_data: NoDataPolicy,
}

impl Default for OrchestratorSettings {
    fn default() -> Self {
        OrchestratorSettings {
            mode: RunMode::Continuous,
            margin: Duration::from_secs(10),
            poll_interval: Duration::from_millis(500),
            max_concurrent_invocations: 64,
            stop_when_idle: true,
            no_data: NoDataPolicy::Ignore,
        }
    }
}

/// The orchestrator essential. Build it once per container; call [`Orchestrator::run`] per event, or
/// run it as a [`Processor`] (the event is not read; the run lasts until the invocation's deadline).
pub struct Orchestrator {
    tasks: TaskManager<dyn OrchestratorStore>,
    invoker: Arc<dyn Invoker>,
    metrics: Arc<dyn MetricsSource>,
    config: ConfigFeed,
    clock: Arc<dyn Clock>,
    timeouts: Option<Arc<dyn WorkerTimeouts>>,
    settings: OrchestratorSettings,
    store: Arc<dyn OrchestratorStore>,
    wake: Option<Arc<tokio::sync::Notify>>,
    control: Option<Arc<dyn LabourerControl>>,
}

impl fmt::Debug for Orchestrator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Orchestrator")
            .field("config", &self.config)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// What one run remembers between its rounds.
struct RunState {
    report: OrchestratorReport,
    health: HealthCache,
    /// Labourers whose status failed this run: skipped until the next run.
    unhealthy: HashSet<String>,
    /// Worker timeouts read this run (once per labourer per run at most).
    timeouts: HashMap<String, Option<u64>>,
    /// Tasks whose invocation was rejected and claim released this run: not claimed again this run.
    released: HashMap<String, HashSet<TaskId>>,
    /// Running counts read for every labourer at the start of this round, where the store counts
    /// them more cheaply together; each is taken (used once) at its labourer's turn.
    running_this_round: HashMap<String, u64>,
    stop_at: DateTime<Utc>,
}

/// Whether a labourer may have more to do in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    /// Its queue is empty, or it may not run anything this run (paused, status 0, failing).
    Idle,
    /// Its slots are full, or it started tasks and may have more queued.
    Busy,
}

/// What one wave of claims did.
#[derive(Debug, Default)]
struct WaveCounts {
    /// Slots taken (invoked, unknown, or rejected and still claimed).
    used: u64,
    /// Claims another orchestrator won.
    lost: u64,
    /// Whether the invoker rejected any task.
    rejected: bool,
    /// Rejections that were throttles (Lambda's 429 TooManyRequests after its retries).
    throttled: u64,
}

/// One key's part of a fair wave.
struct KeyPlan {
    /// Tasks still to start (its share, plus one for every claim a rival won).
    due: u64,
    /// Claims its cap still allows (won or lost: a rival's claim runs too).
    room: u64,
    /// Its queue head, in order, not tried yet.
    heads: std::collections::VecDeque<TaskId>,
}

impl KeyPlan {
    /// The next tasks of key `key` to claim: as many as are due and the cap allows.
    fn next_wave(&mut self, key: &str) -> Vec<(String, TaskId)> {
        let take = self.due.min(self.room).min(self.heads.len() as u64);
        self.due -= take;
        self.room -= take;
        self.heads
            .drain(..to_usize(take))
            .map(|id| (key.to_owned(), id))
            .collect()
    }
}

/// What became of one queued task.
enum Step {
    Skipped,
    Invoked,
    Unknown(String),
    Released(TaskId, String),
    ReleaseFailed(String),
    Failed(Error),
}

impl Orchestrator {
    /// An orchestrator claiming from `store`, invoking through `invoker`, reading health from `metrics`
    /// and labourers from `config`, at `clock`'s time, with default settings.
    pub fn new(
        store: Arc<dyn OrchestratorStore>,
        invoker: Arc<dyn Invoker>,
        metrics: Arc<dyn MetricsSource>,
        config: ConfigFeed,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Orchestrator {
            tasks: TaskManager::new(Arc::clone(&store)),
            invoker,
            metrics,
            config,
            clock,
            timeouts: None,
            settings: OrchestratorSettings::default(),
            store,
            wake: None,
            control: None,
        }
    }

    /// Honours the labourers paused in `control` (`sosw pause`): read at the start of every round, a
    /// paused labourer gets no invocations.
    pub fn with_labourer_control(mut self, control: Arc<dyn LabourerControl>) -> Self {
        self.control = Some(control);
        self
    }

    /// Starts the next round of a continuous run as soon as `wake` is notified (e.g. when a worker
    /// ends and frees its slot) instead of waiting out the poll interval, which then only bounds the
    /// wait. Local runs use it; a Lambda orchestrator has nothing to wake it.
    pub fn with_wake(mut self, wake: Arc<tokio::sync::Notify>) -> Self {
        self.wake = Some(wake);
        self
    }

    /// Sets the run settings.
    pub fn with_settings(mut self, settings: OrchestratorSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Reads each worker's real timeout from `timeouts` (Lambda `GetFunctionConfiguration`) for labourers
    /// whose config sets neither `duration` nor `max_duration`; without it they use 900 s.
    pub fn with_worker_timeouts(mut self, timeouts: Arc<dyn WorkerTimeouts>) -> Self {
        self.timeouts = Some(timeouts);
        self
    }

    /// The settings in use.
    pub fn settings(&self) -> &OrchestratorSettings {
        &self.settings
    }

    /// One run, until `deadline` minus the margin (continuous mode) or one round (single pass).
    ///
    /// Fails only when no config can be had; everything that goes wrong for one labourer (store,
    /// metrics, its health config) is in its report entry and the other labourers go on.
    pub async fn run(&self, deadline: DateTime<Utc>) -> crate::Result<OrchestratorReport> {
        let started = self.clock.now();
        let mut run = RunState {
            report: OrchestratorReport::new(started),
            health: HealthCache::new(),
            unhealthy: HashSet::new(),
            timeouts: HashMap::new(),
            released: HashMap::new(),
            running_this_round: HashMap::new(),
            stop_at: self.stop_at(deadline),
        };
        loop {
            let config = self.config.current().await?;
            let activity = self.round(&config, &mut run).await;
            run.report.rounds += 1;
            if !self.another_round(activity, &run) {
                break;
            }
            self.pause().await;
        }
        run.report.finished_at = self.clock.now();
        run.report.log();
        Ok(run.report)
    }

    /// Waits for the poll interval, or less when woken.
    async fn pause(&self) {
        let sleep = tokio::time::sleep(self.settings.poll_interval);
        match &self.wake {
            Some(wake) => {
                tokio::select! {
                    () = sleep => {}
                    () = wake.notified() => {}
                }
            }
            None => sleep.await,
        }
    }

    /// When a run stops claiming: the deadline minus the margin in continuous mode; the deadline itself
    /// for a single pass, which has no later round to leave room for.
    fn stop_at(&self, deadline: DateTime<Utc>) -> DateTime<Utc> {
        match self.settings.mode {
            RunMode::Continuous => deadline - to_chrono(self.settings.margin),
            RunMode::SinglePass => deadline,
        }
    }

    fn another_round(&self, activity: Activity, run: &RunState) -> bool {
        if self.settings.mode == RunMode::SinglePass {
            return false;
        }
        if activity == Activity::Idle && self.settings.stop_when_idle {
            return false;
        }
        self.clock.now() + to_chrono(self.settings.poll_interval) < run.stop_at
    }

    /// One round over every labourer, in config order. Busy if any labourer is.
    async fn round(&self, config: &OrchestratorConfig, run: &mut RunState) -> Activity {
        let ecology = EcologyManager::new(
            Arc::clone(&self.metrics),
            config
                .task_config
                .ecology_config
                .default_metric_values
                .clone(),
            Arc::clone(&self.clock),
        )
        .with_no_data_policy(self.settings.no_data);
        let mut activity = Activity::Idle;
        let labourers = config.task_config.labourers_resolved();
        let paused: HashSet<String> = match &self.control {
            None => HashSet::new(),
            Some(control) => match control.paused_labourers().await {
                Ok(paused) => paused.into_iter().map(|p| p.labourer_id).collect(),
                Err(e) => {
                    tracing::warn!(error = %e.with_causes(), "paused labourers unknown; nothing invoked this round");
                    for labourer in &labourers {
                        run.report
                            .labourer(&labourer.id)
                            .error(format!("paused labourers unknown: {e}"));
                    }
                    // Busy: a continuous run tries again at its next round.
                    return Activity::Busy;
                }
            },
        };
        self.count_running_together(&labourers, &paused, run).await;
        for mut labourer in labourers {
            if self.clock.now() >= run.stop_at {
                break;
            }
            let is_paused = paused.contains(&labourer.id);
            run.report.labourer(&labourer.id).paused = is_paused;
            if is_paused {
                run.report.labourer(&labourer.id).desired = 0;
                continue;
            }
            let began = self.clock.now();
            self.fill_in_timeout(&mut labourer, run).await;
            let coefficients = &config.invocation_number_coefficient;
            let result = self
                .labourer_round(&labourer, coefficients, &ecology, run)
                .await;
            let entry = run.report.labourer(&labourer.id);
            entry.elapsed_ms += elapsed_ms(began, self.clock.now());
            if result == Activity::Busy {
                activity = Activity::Busy;
            }
        }
        activity
    }

    /// Where the store counts running tasks more cheaply together (the lean layout: every labourer's
    /// claims share the claim shards), reads the counts of this round's labourers at once into
    /// `run.running_this_round`. A labourer's count is then as old as the round (its completions since
    /// only make it higher, so no slot is given twice; claims other orchestrators made since are missed
    /// as they would be between any count and the claims after it). On an error every labourer counts
    /// on its own, as with other stores.
    async fn count_running_together(
        &self,
        labourers: &[Labourer],
        paused: &HashSet<String>,
        run: &mut RunState,
    ) {
        run.running_this_round.clear();
        if !self.tasks.counts_running_together() {
            return;
        }
        let now = self.clock.now().timestamp();
        let mut wanted = Vec::new();
        for labourer in labourers {
            if paused.contains(&labourer.id)
                || labourer.is_paused()
                || run.unhealthy.contains(&labourer.id)
            {
                continue;
            }
            let mut labourer = labourer.clone();
            self.fill_in_timeout(&mut labourer, run).await;
            wanted.push((labourer.id.clone(), Markers::for_labourer(now, &labourer)));
        }
        if wanted.len() < 2 {
            return;
        }
        match self.tasks.get_counts_of_running_tasks(&wanted).await {
            Ok(counts) => run.running_this_round = counts,
            Err(e) => {
                tracing::warn!(error = %e.with_causes(), "running counts of the round unknown; each labourer counts on its own");
            }
        }
    }

    /// Sets `max_duration` from the worker's real timeout when the config gives neither it nor
    /// `duration` (read once per labourer per run; the adapter caches it per container).
    async fn fill_in_timeout(&self, labourer: &mut Labourer, run: &mut RunState) {
        let Some(timeouts) = &self.timeouts else {
            return;
        };
        if labourer.duration.is_some() || labourer.max_duration.is_some() {
            return;
        }
        if let Some(known) = run.timeouts.get(&labourer.id) {
            labourer.max_duration = *known;
            return;
        }
        let timeout = match timeouts.timeout_secs(labourer.function()).await {
            Ok(timeout) => timeout,
            Err(e) => {
                tracing::warn!(labourer = %labourer.id, error = %e.with_causes(), "worker timeout unknown; using the default duration");
                None
            }
        };
        run.timeouts.insert(labourer.id.clone(), timeout);
        labourer.max_duration = timeout;
    }

    async fn labourer_round(
        &self,
        labourer: &Labourer,
        coefficients: &InvocationCoefficients,
        ecology: &EcologyManager,
        run: &mut RunState,
    ) -> Activity {
        if labourer.is_paused() || run.unhealthy.contains(&labourer.id) {
            // A paused labourer (B5) needs no metrics either.
            run.report.labourer(&labourer.id).desired = 0;
            return Activity::Idle;
        }
        let status = match ecology.labourer_status(labourer, &mut run.health).await {
            Ok(status) => status,
            Err(e) => {
                tracing::warn!(labourer = %labourer.id, error = %e.with_causes(), "labourer status unknown; skipped this run");
                run.report.labourer(&labourer.id).error(e.with_causes());
                run.unhealthy.insert(labourer.id.clone());
                return Activity::Idle;
            }
        };
        let max = labourer.max_simultaneous_invocations.unwrap_or(0);
        let desired = desired_invocations(max, coefficients.for_status(status));
        let entry = run.report.labourer(&labourer.id);
        entry.status = Some(status);
        entry.desired = desired;
        if desired == 0 {
            return Activity::Idle;
        }
        let now = self.clock.now();
        let markers = Markers::for_labourer(now.timestamp(), labourer);
        let counted = match run.running_this_round.remove(&labourer.id) {
            Some(running) => Ok(running),
            None => {
                self.tasks
                    .get_count_of_running_tasks_for_labourer(&labourer.id, &markers)
                    .await
            }
        };
        let running = match counted {
            Ok(running) => running,
            Err(e) => {
                entry.error(e.with_causes());
                return Activity::Busy;
            }
        };
        entry.running = running;
        let desired = match labourer.adaptive() {
            None => desired,
            Some(config) => match self
                .adaptive_limit(labourer, config, desired, running)
                .await
            {
                Ok(limit) => {
                    entry.desired = limit;
                    limit
                }
                Err(e) => {
                    entry.error(e.with_causes());
                    return Activity::Busy;
                }
            },
        };
        let free = desired.saturating_sub(running);
        if free == 0 {
            return Activity::Busy;
        }
        let Some(limit) = labourer.rate_limit else {
            return self.fill(labourer, free, now.timestamp(), run).await.0;
        };
        // Grants come from the rate log every orchestrator shares, taken by compare-and-set.
        let taken_at = now.timestamp_millis();
        let allowed =
            match take_rate(self.store.as_ref(), &labourer.id, limit, taken_at, free).await {
                Ok(allowed) => allowed,
                Err(e) => {
                    entry.error(e.with_causes());
                    return Activity::Busy;
                }
            };
        entry.rate_limited = free - allowed;
        if allowed == 0 {
            return Activity::Busy;
        }
        let (activity, used) = self.fill(labourer, allowed, now.timestamp(), run).await;
        // Grants the queue or lost claims left unused go back, so they do not count against the limit.
        let unused = allowed.saturating_sub(used);
        if let Err(e) =
            give_back_rate(self.store.as_ref(), &labourer.id, limit, taken_at, unused).await
        {
            tracing::warn!(labourer = %labourer.id, error = %e.with_causes(), unused, "unused rate-limit grants not given back; they count until their period ends");
        }
        activity
    }

    /// The adaptive controller's limit for `labourer`, under `ceiling` (the thresholds' result), with
    /// `running` tasks. Reads the labourer's record and outcome counters; when its observation window
    /// is over (or congestion shows before), observes the window's outcomes and writes the new state
    /// back by compare-and-set, so every orchestrator shares one controller. Losing every attempt to
    /// other writers gives 0 this round.
    ///
    /// The limit counts as "in use" (the controller grows it only then) when the labourer has queued
    /// work: every round fills every free slot, so work still queued is work the limit held back.
    async fn adaptive_limit(
        &self,
        labourer: &Labourer,
        config: &AdaptiveConfig,
        ceiling: u64,
        running: u64,
    ) -> crate::Result<u64> {
        let controller = Controller::new(config.clone());
        let clock_now = self.clock.now();
        let backlog = !self
            .tasks
            .get_next_for_labourer(&labourer.id, clock_now.timestamp(), 1)
            .await?
            .is_empty();
        let now = clock_now.timestamp_millis() as f64 / 1000.0;
        let limit = update_ecology(self.store.as_ref(), &labourer.id, |record, outcomes| {
            let first = record.controller.is_none();
            let mut adaptive = record.controller.clone().unwrap_or_else(|| AdaptiveRecord {
                state: ControllerState::new(config),
                window_start: now,
                seen: *outcomes,
            });
            let window = outcomes.since(&adaptive.seen);
            let observation = Observation {
                succeeded: window.succeeded,
                throttled: window.throttled,
                failed: window.failed,
                running,
                limited: backlog,
            };
            let due = now - adaptive.window_start >= config.window_secs
                || controller.should_observe_now(&adaptive.state, &observation, now);
            if due {
                adaptive.state =
                    controller.observe(&adaptive.state, &observation, ceiling as f64, now);
                adaptive.window_start = now;
                adaptive.seen = *outcomes;
            }
            let limit = adaptive.state.allowed(config, now).min(ceiling);
            if due || first {
                record.controller = Some(adaptive);
                Change::Write(limit)
            } else {
                Change::Keep(limit)
            }
        })
        .await?;
        Ok(limit.unwrap_or(0))
    }

    /// Claims and invokes up to `wanted` queued tasks of `labourer` at `now`. Returns the activity and
    /// how many slots it used.
    ///
    /// Claims lost to another orchestrator are replaced from the same read where it holds more
    /// candidates, and each further read asks for as many extra tasks as claims were lost so far, since
    /// rivals take from the same queue head.
    async fn fill(
        &self,
        labourer: &Labourer,
        wanted: u64,
        now: i64,
        run: &mut RunState,
    ) -> (Activity, u64) {
        if let Some(fairness) = &labourer.fairness {
            return self.fill_fair(labourer, fairness, wanted, now, run).await;
        }
        let mut remaining = to_usize(wanted);
        let used = |remaining: usize| wanted.saturating_sub(remaining as u64);
        let mut lost = 0usize;
        for _ in 0..MAX_QUEUE_READS_PER_ROUND {
            if remaining == 0 || self.clock.now() >= run.stop_at {
                return (Activity::Busy, used(remaining));
            }
            let released = run.released.entry(labourer.id.clone()).or_default();
            let limit = remaining
                .saturating_add(released.len())
                .saturating_add(lost);
            let queued = match self
                .tasks
                .get_next_for_labourer(&labourer.id, now, limit)
                .await
            {
                Ok(queued) => queued,
                Err(e) => {
                    run.report.labourer(&labourer.id).error(e.with_causes());
                    return (Activity::Busy, used(remaining));
                }
            };
            let exhausted = queued.len() < limit;
            let mut candidates: Vec<TaskId> = queued
                .into_iter()
                .map(|t| t.task_id)
                .filter(|id| !released.contains(id))
                .collect();
            if candidates.is_empty() {
                return (Activity::Idle, used(remaining));
            }
            while remaining > 0 && !candidates.is_empty() {
                let rest = candidates.split_off(remaining.min(candidates.len()));
                let wave = std::mem::replace(&mut candidates, rest);
                let steps = self.claim_and_invoke_all(labourer, wave, now).await;
                let counts = self.account(labourer, steps, run);
                self.count_throttles(labourer, counts.throttled).await;
                remaining = remaining.saturating_sub(to_usize(counts.used));
                lost = lost.saturating_add(to_usize(counts.lost));
                if counts.rejected {
                    return (Activity::Busy, used(remaining));
                }
            }
            if exhausted {
                return (Activity::Idle, used(remaining));
            }
        }
        (Activity::Busy, used(remaining))
    }

    /// [`Orchestrator::fill`] for a labourer with per-key fairness: a read of its open work by key
    /// ([`TaskQueue::queue_by_key`]), then [`fair_starts`] divides the running tasks plus `wanted` among
    /// the keys with queued work, and the heads of their queues are claimed and invoked in waves.
    ///
    /// A claim lost to another orchestrator is replaced by the next head of the same key from the same
    /// read, as long as the key's cap leaves room (the rival's claim runs too, so it counts against the
    /// cap). When a key's heads run out while claims are still to replace, the queue is read again (at
    /// most [`MAX_QUEUE_READS_PER_ROUND`] reads a round); the tasks this round claimed or lost count as
    /// running for their key even where the new read does not show them yet, so no read lets a key past
    /// its cap. A store without a per-key queue refuses the setting: the labourer gets nothing for the
    /// rest of the run and its report entry says why.
    async fn fill_fair(
        &self,
        labourer: &Labourer,
        fairness: &Fairness,
        wanted: u64,
        now: i64,
        run: &mut RunState,
    ) -> (Activity, u64) {
        let markers = Markers::for_labourer(now, labourer);
        let mut remaining = wanted;
        let mut used = 0u64;
        // This round's claims, won or lost: never taken from a read again, and per key the tasks
        // they put to running (ours, or a rival's) on top of the first read's count.
        let mut tried: HashSet<TaskId> = HashSet::new();
        let mut taken: BTreeMap<String, u64> = BTreeMap::new();
        let mut first_running: Option<BTreeMap<String, u64>> = None;
        for _ in 0..MAX_QUEUE_READS_PER_ROUND {
            if remaining == 0 || self.clock.now() >= run.stop_at {
                return (Activity::Busy, used);
            }
            let released = run.released.entry(labourer.id.clone()).or_default().clone();
            let per_key = to_usize(remaining)
                .saturating_add(released.len())
                .saturating_add(tried.len());
            let mut queue = match self
                .store
                .queue_by_key(&labourer.id, &fairness.key, &markers, per_key)
                .await
            {
                Ok(queue) => queue,
                Err(e) => {
                    if matches!(e, Error::Invalid { .. }) {
                        tracing::warn!(labourer = %labourer.id, error = %e.with_causes(), "fairness refused; labourer skipped this run");
                        run.unhealthy.insert(labourer.id.clone());
                    }
                    run.report.labourer(&labourer.id).error(e.with_causes());
                    return (Activity::Busy, used);
                }
            };
            for work in queue.values_mut() {
                work.queued
                    .retain(|t| !released.contains(&t.task_id) && !tried.contains(&t.task_id));
            }
            let first = first_running
                .get_or_insert_with(|| queue.iter().map(|(k, w)| (k.clone(), w.running)).collect());
            for (k, n) in &taken {
                let at_least = first.get(k).copied().unwrap_or(0).saturating_add(*n);
                let work = queue.entry(k.clone()).or_default();
                work.running = work.running.max(at_least);
            }
            if queue.values().all(|w| w.queued.is_empty()) {
                return (Activity::Idle, used);
            }
            let loads = key_loads(&queue);
            let running: u64 = loads.values().map(|l| l.running).sum();
            let starts = fair_starts(&loads, running.saturating_add(remaining), fairness.cap());
            if starts.is_empty() {
                // Every key with queued work is at its cap.
                return (Activity::Busy, used);
            }
            let mut plan: BTreeMap<String, KeyPlan> = starts
                .into_iter()
                .map(|(k, n)| {
                    let work = queue.remove(&k).unwrap_or_default();
                    let room = fairness
                        .cap()
                        .map_or(u64::MAX, |cap| cap.saturating_sub(work.running));
                    let heads = work.queued.into_iter().map(|t| t.task_id).collect();
                    (
                        k,
                        KeyPlan {
                            due: n,
                            room,
                            heads,
                        },
                    )
                })
                .collect();
            let mut lost_any = false;
            loop {
                let wave: Vec<(String, TaskId)> =
                    plan.iter_mut().flat_map(|(k, p)| p.next_wave(k)).collect();
                if wave.is_empty() {
                    break;
                }
                tried.extend(wave.iter().map(|(_, id)| id.clone()));
                let steps = self.claim_and_invoke_keyed(labourer, wave, now).await;
                let mut plain = Vec::with_capacity(steps.len());
                for (k, step) in steps {
                    match step {
                        Step::Skipped => {
                            lost_any = true;
                            *taken.entry(k.clone()).or_default() += 1;
                            if let Some(p) = plan.get_mut(&k) {
                                p.due += 1;
                            }
                        }
                        Step::Invoked | Step::Unknown(_) | Step::ReleaseFailed(_) => {
                            *taken.entry(k).or_default() += 1;
                        }
                        Step::Released(..) | Step::Failed(_) => {}
                    }
                    plain.push(step);
                }
                let counts = self.account(labourer, plain, run);
                self.count_throttles(labourer, counts.throttled).await;
                used = used.saturating_add(counts.used);
                remaining = remaining.saturating_sub(counts.used);
                if counts.rejected {
                    return (Activity::Busy, used);
                }
            }
            if !lost_any || plan.values().all(|p| p.due == 0 || p.room == 0) {
                return (Activity::Busy, used);
            }
        }
        (Activity::Busy, used)
    }

    /// [`Orchestrator::claim_and_invoke_all`] keeping each task's fairness key beside its step.
    async fn claim_and_invoke_keyed(
        &self,
        labourer: &Labourer,
        wave: Vec<(String, TaskId)>,
        now: i64,
    ) -> Vec<(String, Step)> {
        futures::stream::iter(wave)
            .map(|(key, task_id)| async move {
                (key, self.claim_and_invoke(labourer, task_id, now).await)
            })
            .buffer_unordered(self.settings.max_concurrent_invocations.max(1))
            .collect()
            .await
    }

    /// Adds `throttled` invoke throttles to an adaptive labourer's outcome counters, where its
    /// controller reads them as congestion.
    async fn count_throttles(&self, labourer: &Labourer, throttled: u64) {
        if throttled == 0 || labourer.adaptive().is_none() {
            return;
        }
        let outcomes = OutcomeCounts {
            throttled,
            ..OutcomeCounts::default()
        };
        if let Err(e) = self.store.add_outcomes(&labourer.id, &outcomes).await {
            tracing::warn!(labourer = %labourer.id, error = %e.with_causes(), throttled, "invoke throttles not counted for the adaptive controller");
        }
    }

    async fn claim_and_invoke_all(
        &self,
        labourer: &Labourer,
        wave: Vec<TaskId>,
        now: i64,
    ) -> Vec<Step> {
        futures::stream::iter(wave)
            .map(|task_id| self.claim_and_invoke(labourer, task_id, now))
            .buffer_unordered(self.settings.max_concurrent_invocations.max(1))
            .collect()
            .await
    }

    async fn claim_and_invoke(&self, labourer: &Labourer, task_id: TaskId, now: i64) -> Step {
        match self
            .tasks
            .invoke_task(self.invoker.as_ref(), labourer, &task_id, now)
            .await
        {
            Ok(TaskInvocation::Skipped) => Step::Skipped,
            Ok(TaskInvocation::Invoked) => Step::Invoked,
            Ok(TaskInvocation::Unknown(why)) => Step::Unknown(why),
            Ok(TaskInvocation::Released(why)) => Step::Released(task_id, why),
            Ok(TaskInvocation::ReleaseFailed(why)) => Step::ReleaseFailed(why),
            Err(e) => Step::Failed(e),
        }
    }

    /// Adds `steps` to the report.
    fn account(&self, labourer: &Labourer, steps: Vec<Step>, run: &mut RunState) -> WaveCounts {
        let entry = run.report.labourers.entry(labourer.id.clone()).or_default();
        let released = run.released.entry(labourer.id.clone()).or_default();
        let mut counts = WaveCounts::default();
        for step in steps {
            match step {
                Step::Skipped => {
                    entry.skipped += 1;
                    counts.lost += 1;
                }
                Step::Invoked => {
                    entry.claimed += 1;
                    entry.invoked += 1;
                    counts.used += 1;
                }
                Step::Unknown(why) => {
                    entry.claimed += 1;
                    entry.unknown += 1;
                    counts.used += 1;
                    tracing::warn!(labourer = %labourer.id, reason = %why, "invocation outcome unknown; the claim is kept");
                }
                Step::Released(task_id, why) => {
                    entry.claimed += 1;
                    entry.released += 1;
                    counts.rejected = true;
                    counts.throttled += u64::from(is_throttle(&why));
                    released.insert(task_id);
                    tracing::warn!(labourer = %labourer.id, reason = %why, "invocation rejected; the claim is released");
                }
                Step::ReleaseFailed(why) => {
                    entry.claimed += 1;
                    entry.release_failed += 1;
                    counts.rejected = true;
                    counts.used += 1;
                    entry.error(why);
                }
                Step::Failed(e) => entry.error(e.with_causes()),
            }
        }
        counts
    }
}

/// Whether an invocation's rejection says the invoke service throttled it (Lambda's 429
/// `TooManyRequestsException`, "throttled N times" after the invoker's retries).
pub fn is_throttle(reason: &str) -> bool {
    let reason = reason.to_ascii_lowercase();
    reason.contains("throttl") || reason.contains("toomanyrequests")
}

/// `floor(max x coefficient)`, never negative.
pub fn desired_invocations(max_simultaneous_invocations: u32, coefficient: f64) -> u64 {
    let desired = (f64::from(max_simultaneous_invocations) * coefficient).floor();
    if desired > 0.0 {
        // Saturates at u64::MAX; NaN fails the comparison above.
        desired as u64
    } else {
        0
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

fn elapsed_ms(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    u64::try_from((to - from).num_milliseconds()).unwrap_or(0)
}

#[async_trait]
impl Processor for Orchestrator {
    /// The schedule's event, not read.
    type Event = serde_json::Value;
    type Output = OrchestratorReport;

    /// [`Orchestrator::run`] until the invocation's deadline (refilling freed slots in continuous
    /// mode).
    async fn process(
        &self,
        _event: serde_json::Value,
        invocation: &mut Invocation,
    ) -> crate::Result<OrchestratorReport> {
        let report = self.run(invocation.deadline).await?;
        let stats = &mut invocation.stats;
        stats.add("rounds", u64::from(report.rounds));
        stats.add("claimed_tasks", report.claimed());
        stats.add("invoked_tasks", report.invoked());
        stats.add("labourer_errors", report.error_count());
        Ok(report)
    }
}
