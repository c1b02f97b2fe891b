//! [`LocalRunner`]: the scheduler, the orchestrator, the workers, the worker assistant and the scavenger
//! together over one SQLite file, until the jobs are finished.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use serde_json::Value;
use tokio::sync::Notify;

use super::config::LocalConfigs;
use super::counting::CountingJobs;
use super::summary::Summary;
use super::workers::{LocalInvoker, WorkerRegistry};
use crate::SqliteTaskStore;
use sosw_core::clock::{Clock, SystemClock};
use sosw_core::ecology::FixedMetrics;
use sosw_core::error::{Error, Result};
use sosw_core::essentials::closer::Closer;
use sosw_core::essentials::orchestrator::{ConfigFeed, Orchestrator, OrchestratorSettings};
use sosw_core::essentials::scavenger::Scavenger;
use sosw_core::essentials::scheduler::{
    LocalContinuation, Scheduler, SchedulerReport, continuation_payload,
};
use sosw_core::essentials::worker_assistant::WorkerAssistant;
use sosw_core::notify::Notifier;
use sosw_core::store::{JobRecord, JobStore, LabourerControl};
use sosw_core::task::Markers;

/// The requester recorded for jobs submitted by a local run.
const LOCAL_REQUESTER: &str = "sosw local";

/// The recipient of notifications when the configs name none.
const LOCAL_RECIPIENT: &str = "sosw-local";

/// How long one scheduler run may write before it hands on (it never needs to locally).
const SCHEDULER_BUDGET: TimeDelta = TimeDelta::minutes(15);

/// How often a run reads the progress of its jobs.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Most jobs a state file is searched for unfinished ones.
const MAX_JOBS: usize = 10_000;

/// Runs `scheduler` on `event` in this process until the job's tasks are all written, feeding any
/// continuation it hands on back to it; returns the last run's report.
pub async fn schedule(scheduler: &Scheduler, event: &Value) -> Result<SchedulerReport> {
    let continuation = Arc::new(LocalContinuation::new());
    let scheduler = scheduler.clone().with_continuation(continuation.clone());
    let clock = SystemClock;
    let mut report = scheduler.run(event, clock.now() + SCHEDULER_BUDGET).await?;
    while let Some(next) = continuation.take() {
        report = scheduler.run(&next, clock.now() + SCHEDULER_BUDGET).await?;
    }
    Ok(report)
}

/// Completes on the first Ctrl-C (SIGINT) this process receives (never, if it cannot listen for
/// one): the `stop` of [`LocalRunner::run_until_finished_or`] for a command line. Listening replaces
/// the default action of SIGINT (ending the process) for as long as the process lives.
pub async fn interrupted() {
    if let Err(err) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %err, "cannot listen for Ctrl-C");
        std::future::pending::<()>().await;
    }
}

/// Where one labourer's tasks are, for progress displays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabourerProgress {
    /// The labourer.
    pub labourer_id: String,
    /// Tasks of the watched jobs on this labourer (known once their chunking is done).
    pub total: u64,
    /// Closed as completed.
    pub completed: u64,
    /// Closed as dead.
    pub dead: u64,
    /// Failure reports received so far (a task may fail, retry, then complete).
    pub failures: u64,
    /// Queued now (of every job on this labourer).
    pub queued: u64,
    /// Invoked and not expired or completed.
    pub running: u64,
    /// Waiting in the retry table.
    pub retry: u64,
}

impl LabourerProgress {
    /// Completed plus dead.
    pub fn closed(&self) -> u64 {
        self.completed + self.dead
    }
}

/// Hears about a run's progress, a few times a second.
pub trait RunObserver: Send + Sync {
    /// The progress of every labourer of the watched jobs, by labourer id.
    fn update(&self, progress: &[LabourerProgress]);
}

/// Every essential of sosw on one machine, over one SQLite file. See the [module docs](super).
pub struct LocalRunner {
    store: Arc<SqliteTaskStore>,
    configs: LocalConfigs,
    scheduler: Scheduler,
    orchestrator: Arc<Orchestrator>,
    scavenger: Arc<Scavenger>,
    invoker: Arc<LocalInvoker>,
    jobs: Arc<CountingJobs>,
    clock: Arc<dyn Clock>,
    /// Notified whenever a worker ends: the orchestrator refills its slot at once.
    wake: Arc<Notify>,
}

impl fmt::Debug for LocalRunner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalRunner")
            .field("store", &self.store)
            .field("invoker", &self.invoker)
            .finish_non_exhaustive()
    }
}

impl LocalRunner {
    /// A runner over `store` with `configs`, running labourers with the workers of `registry` or as
    /// commands, sending notifications (dead tasks, finished jobs) to `notifier`. Fails when a
    /// configured labourer has no way to run here.
    pub fn new(
        store: Arc<SqliteTaskStore>,
        mut configs: LocalConfigs,
        registry: &WorkerRegistry,
        notifier: Arc<dyn Notifier>,
    ) -> Result<Self> {
        // Locally every notification goes to `notifier`; a recipient keeps the essentials from
        // warning that none is configured.
        for sns in [
            &mut configs.assistant.sns_config,
            &mut configs.scavenger.sns_config,
        ] {
            sns.recipient
                .get_or_insert_with(|| LOCAL_RECIPIENT.to_owned());
        }
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        // Tasks are closed (and counted on their job) by the worker assistant and the scavenger: both
        // count through `jobs`, so the summary counts this process's closes only.
        let jobs = Arc::new(CountingJobs::new(store.clone()));
        let assistant = Arc::new(WorkerAssistant::new(
            configs.assistant.clone(),
            Closer::new(store.clone(), Arc::clone(&notifier))
                .with_jobs(jobs.clone())
                .with_clock(Arc::clone(&clock)),
        ));
        let invoker = Arc::new(LocalInvoker::for_labourers(
            &configs.orchestrator.task_config,
            &configs.local,
            registry,
            assistant,
        )?);
        // A worker that ends wakes the orchestrator, which refills the freed slot at once; the poll
        // interval only bounds the wait for work that appears otherwise (retries coming due).
        let wake = Arc::new(Notify::new());
        invoker.notify_ended(Arc::clone(&wake));
        let settings = OrchestratorSettings {
            poll_interval: Duration::from_millis(configs.local.poll_interval_ms.max(1)),
            margin: Duration::ZERO,
            ..OrchestratorSettings::default()
        };
        let orchestrator = Orchestrator::new(
            store.clone(),
            invoker.clone(),
            Arc::new(FixedMetrics::new()),
            ConfigFeed::fixed(configs.orchestrator.clone()),
            Arc::clone(&clock),
        )
        .with_settings(settings)
        .with_wake(Arc::clone(&wake))
        .with_labourer_control(store.clone());
        let scavenger = Scavenger::new(
            configs.scavenger.clone(),
            Closer::new(store.clone(), notifier)
                .with_jobs(jobs.clone())
                .with_clock(Arc::clone(&clock)),
        );
        let scheduler = Scheduler::new(configs.scheduler.clone(), store.clone())
            .with_clock(Arc::clone(&clock))
            .with_default_requester(LOCAL_REQUESTER);
        Ok(LocalRunner {
            store,
            configs,
            scheduler,
            orchestrator: Arc::new(orchestrator),
            scavenger: Arc::new(scavenger),
            invoker,
            jobs,
            clock,
            wake,
        })
    }

    /// Logs every invocation to `path` (JSON lines, appended) for the queue checker: see
    /// [`LocalInvoker::log_deliveries_to`].
    pub fn log_deliveries_to(&self, path: &std::path::Path) -> Result<()> {
        self.invoker.log_deliveries_to(path)
    }

    /// The store.
    pub fn store(&self) -> &Arc<SqliteTaskStore> {
        &self.store
    }

    /// The configs.
    pub fn configs(&self) -> &LocalConfigs {
        &self.configs
    }

    /// Schedules `event` (a job, sosw 0.7's scheduler event) into the store: idempotent, so the same job
    /// on the same day writes nothing twice.
    pub async fn submit(&self, event: &Value) -> Result<SchedulerReport> {
        self.schedule(event).await
    }

    /// Jobs in the store that are not finished, oldest first.
    pub async fn unfinished_jobs(&self) -> Result<Vec<JobRecord>> {
        let mut jobs: Vec<JobRecord> = self
            .store
            .list_job_counters(MAX_JOBS)
            .await?
            .into_iter()
            .filter(|job| !job.status.is_finished())
            .collect();
        jobs.reverse();
        Ok(jobs)
    }

    /// Finishes writing the tasks of `job` if a run stopped while scheduling it.
    pub async fn resume_scheduling(&self, job: &JobRecord) -> Result<Option<SchedulerReport>> {
        if job.total.is_some_and(|total| job.enqueued >= total) {
            return Ok(None);
        }
        let event = continuation_payload(&job.job_id, &job.labourer_id, None);
        self.schedule(&event).await.map(Some)
    }

    async fn schedule(&self, event: &Value) -> Result<SchedulerReport> {
        schedule(&self.scheduler, event).await
    }

    /// Runs the orchestrator (continuous) and the scavenger until every job of `job_ids` is finished or
    /// `timeout` passes, telling `observer` how it goes; then returns the summary of those jobs.
    pub async fn run_until_finished(
        &self,
        job_ids: &[String],
        observer: &dyn RunObserver,
        timeout: Option<Duration>,
    ) -> Result<Summary> {
        self.run_until_finished_or(job_ids, observer, timeout, std::future::pending())
            .await
    }

    /// As [`run_until_finished`](Self::run_until_finished), and stops early when `stop` completes
    /// (e.g. on Ctrl-C): the summary then says [`Summary::interrupted`]. Before anything runs, a job
    /// that could never progress here is an error that says why and what to change: its labourer is
    /// not configured, is paused (`sosw pause`, or `max_simultaneous_invocations: 0`), or its command
    /// cannot start. A worker process that cannot start during the run stops it with the same error.
    /// At any early end the running worker processes are killed (each with every process it started);
    /// their tasks run again on a resumed run.
    pub async fn run_until_finished_or(
        &self,
        job_ids: &[String],
        observer: &dyn RunObserver,
        timeout: Option<Duration>,
        stop: impl std::future::Future<Output = ()> + Send,
    ) -> Result<Summary> {
        let started = Instant::now();
        self.preflight(job_ids).await?;
        let closed_before = self.jobs.closed();
        let loops = [self.orchestrate(), self.scavenge()];
        let outcome = self.watch(job_ids, observer, started, timeout, stop).await;
        for handle in &loops {
            handle.abort();
        }
        let interrupted = match outcome {
            Ok(finished) => !finished,
            Err(err) => {
                self.invoker.stop();
                return Err(err);
            }
        };
        if interrupted {
            self.invoker.stop();
        }
        // Workers of finished jobs are done; only a duplicate run could still be going.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.invoker.wait_idle()).await;
        let wall = started.elapsed();
        let mut summary = Summary::collect(self.store.as_ref(), job_ids, wall).await?;
        summary.closed_this_run = self.jobs.closed().saturating_sub(closed_before);
        summary.interrupted = interrupted;
        Ok(summary)
    }

    /// Refuses jobs that could never finish here, saying why and what to change.
    async fn preflight(&self, job_ids: &[String]) -> Result<()> {
        for job_id in job_ids {
            let Some(job) = self.store.get_job(job_id).await? else {
                continue;
            };
            if job.status.is_finished() {
                continue;
            }
            let open = job
                .total
                .unwrap_or(job.enqueued)
                .saturating_sub(job.counts.closed());
            let task_config = &self.configs.orchestrator.task_config;
            let Ok(labourer) = task_config.labourer(&job.labourer_id) else {
                let known: Vec<String> = task_config
                    .labourers_resolved()
                    .into_iter()
                    .map(|l| l.id)
                    .collect();
                return Err(Error::invalid(
                    "local run",
                    format!(
                        "job {job_id} runs on labourer `{}`, which the config does not have \
                         (configured: {}), so its {open} open tasks can never run: add the labourer \
                         under `task_config.labourers` in sosw_essential_config.json and a worker or \
                         command for it in sosw_local_config.json, or pass the --config the job was \
                         submitted with",
                        job.labourer_id,
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            };
            if labourer.max_simultaneous_invocations == Some(0) && open > 0 {
                return Err(Error::invalid(
                    "local run",
                    format!(
                        "labourer `{}` is paused (`max_simultaneous_invocations: 0`), so the {open} \
                         open tasks of job {job_id} can never start: set \
                         `task_config.labourers.{}.max_simultaneous_invocations` above 0 in \
                         sosw_essential_config.json, then continue with `sosw local run --resume`",
                        labourer.id, labourer.id
                    ),
                ));
            }
            if open > 0
                && self
                    .store
                    .paused_labourers()
                    .await?
                    .iter()
                    .any(|p| p.labourer_id == labourer.id)
            {
                let state = self
                    .store
                    .path()
                    .map_or_else(String::new, |p| format!(" --state {}", p.display()));
                return Err(Error::invalid(
                    "local run",
                    format!(
                        "labourer `{}` is paused (`sosw pause`), so the {open} open tasks of job \
                         {job_id} cannot start: run `sosw resume {}{state}`, then continue with \
                         `sosw local run --resume{state}`",
                        labourer.id, labourer.id
                    ),
                ));
            }
            self.invoker.check_command(&labourer.id)?;
        }
        Ok(())
    }

    /// Waits until the jobs are finished (`Ok(true)`) or `stop` completes (`Ok(false)`); fails on the
    /// timeout or a worker process that cannot start.
    async fn watch(
        &self,
        job_ids: &[String],
        observer: &dyn RunObserver,
        started: Instant,
        timeout: Option<Duration>,
        stop: impl std::future::Future<Output = ()> + Send,
    ) -> Result<bool> {
        tokio::pin!(stop);
        let mut next_progress = Instant::now();
        loop {
            if Instant::now() >= next_progress {
                // Counting a long queue costs time the workers' reports wait for: read it at most
                // a twentieth of the time.
                let began = Instant::now();
                let progress = self.progress(job_ids).await?;
                observer.update(&progress);
                next_progress = Instant::now() + PROGRESS_INTERVAL.max(began.elapsed() * 20);
            }
            if let Some(err) = self.invoker.fatal_error() {
                return Err(err);
            }
            if self.all_finished(job_ids).await? {
                return Ok(true);
            }
            if timeout.is_some_and(|limit| started.elapsed() >= limit) {
                return Err(Error::invalid(
                    "local run",
                    format!(
                        "the jobs did not finish within {} s; their state is kept: run again with \
                         `--resume` to continue",
                        started.elapsed().as_secs()
                    ),
                ));
            }
            tokio::select! {
                () = &mut stop => return Ok(false),
                () = tokio::time::sleep(PROGRESS_INTERVAL) => {}
            }
        }
    }

    fn orchestrate(&self) -> tokio::task::JoinHandle<()> {
        let orchestrator = Arc::clone(&self.orchestrator);
        let clock = Arc::clone(&self.clock);
        let pause = orchestrator.settings().poll_interval;
        let wake = Arc::clone(&self.wake);
        tokio::spawn(async move {
            loop {
                // A continuous run returns when no labourer has work it could start; the next one
                // starts when a worker ends, or a poll interval later.
                if let Err(err) = orchestrator.run(clock.now() + TimeDelta::minutes(1)).await {
                    tracing::warn!(error = %err.with_causes(), "orchestrator run failed");
                }
                tokio::select! {
                    () = tokio::time::sleep(pause) => {}
                    () = wake.notified() => {}
                }
            }
        })
    }

    fn scavenge(&self) -> tokio::task::JoinHandle<()> {
        let scavenger = Arc::clone(&self.scavenger);
        let pause = Duration::from_millis(self.configs.local.scavenge_interval_ms.max(1));
        tokio::spawn(async move {
            loop {
                let report = scavenger.run().await;
                for failure in &report.failures {
                    tracing::warn!(labourer = %failure.labourer_id, error = %failure.error,
                        "scavenger run failed for a labourer");
                }
                tokio::time::sleep(pause).await;
            }
        })
    }

    async fn all_finished(&self, job_ids: &[String]) -> Result<bool> {
        for job_id in job_ids {
            match self.store.get_job(job_id).await? {
                Some(job) if job.status.is_finished() => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }

    /// The progress of the labourers of `job_ids`, by labourer id.
    pub async fn progress(&self, job_ids: &[String]) -> Result<Vec<LabourerProgress>> {
        let mut by_labourer: BTreeMap<String, LabourerProgress> = BTreeMap::new();
        for job_id in job_ids {
            let Some(job) = self.store.get_job(job_id).await? else {
                continue;
            };
            let entry = by_labourer
                .entry(job.labourer_id.clone())
                .or_insert_with(|| LabourerProgress {
                    labourer_id: job.labourer_id.clone(),
                    ..LabourerProgress::default()
                });
            entry.total += job.total.unwrap_or(job.enqueued);
            entry.completed += job.counts.completed;
            entry.dead += job.counts.dead;
            entry.failures += job.counts.failed;
        }
        // The job counters first, then the tasks in one snapshot: a task that closes in between is
        // missing from both (its counter is read before it was added), never counted twice.
        let now = self.clock.now_secs();
        for entry in by_labourer.values_mut() {
            let labourer = self
                .configs
                .orchestrator
                .task_config
                .labourer(&entry.labourer_id)?;
            let markers = Markers::for_labourer(now, &labourer);
            let counts = self.store.labourer_counts(&labourer.id, now, &markers)?;
            entry.queued = counts.queued;
            entry.running = counts.running;
            entry.retry = counts.retry;
        }
        Ok(by_labourer.into_values().collect())
    }
}
