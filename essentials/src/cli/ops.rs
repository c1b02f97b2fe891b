//! The operations: `plan`, `submit`, `job`, `queue`, `config check`.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use sosw::config::{ConfigSource, OrchestratorConfig, SchedulerConfig, load_essential_config};
use sosw::ecology::{EcologyManager, FixedMetrics, HealthCache, MetricsSource, STATUS_NAMES};
use sosw::embedded::SqliteTaskStore;
use sosw::essentials::redrive::RedriveTarget;
use sosw::essentials::scheduler::{PlanOutline, Scheduler};
use sosw::invoke::{InvokeOutcome, Invoker};
use sosw::local::{LOCAL_CONFIG_NAME, LocalConfigs, command_spec, interrupted, schedule};
use sosw::store::{ClosedStatus, JobRecord, JobStore};
use sosw::task::{Labourer, Markers, TaskId};

use super::defaults::worker_registry;
use super::local::read_job;
use super::stores::{Backend, backend, config_dir, config_source, open_state};
use super::{
    CliError, CliResult, EXIT_INTERRUPTED, Global, JobArgs, JobFileArgs, PlanArgs, RedriveArgs,
};

/// The scheduler's function name, whose document is `sosw_scheduler_config`.
const SCHEDULER_FUNCTION: &str = "sosw_scheduler";

/// Most closed or expired tasks counted per labourer and status by `sosw queue`.
const COUNT_CAP: usize = 100_000;

async fn scheduler_config(global: &Global) -> CliResult<SchedulerConfig> {
    let source = config_source(global).await?;
    Ok(load_essential_config(source.as_ref(), SCHEDULER_FUNCTION, json!({}), None).await?)
}

async fn orchestrator_config(global: &Global) -> CliResult<OrchestratorConfig> {
    let source = config_source(global).await?;
    Ok(load_essential_config(
        source.as_ref(),
        sosw::essentials::orchestrator::ORCHESTRATOR_FUNCTION,
        json!({}),
        None,
    )
    .await?)
}

/// A scheduler for plans: it reads no store, it only needs one to exist.
async fn plan_scheduler(global: &Global) -> CliResult<Scheduler> {
    let config = scheduler_config(global).await?;
    Ok(Scheduler::new(
        config,
        Arc::new(SqliteTaskStore::in_memory()?),
    ))
}

/// The job's outline for `today` (id, labourer, task count), checked as the scheduler checks it,
/// without keeping its tasks.
async fn outline_of(
    global: &Global,
    event: &serde_json::Value,
    today: chrono::NaiveDate,
) -> CliResult<PlanOutline> {
    let scheduler = plan_scheduler(global).await?;
    Ok(scheduler.plan_each(event, today, &mut |_| Ok(()))?)
}

/// `sosw plan`: each task printed as the chunker makes it, so a job of any size plans in bounded
/// memory.
pub async fn plan(global: &Global, args: PlanArgs) -> CliResult {
    let today = args.today.unwrap_or_else(|| Utc::now().date_naive());
    let event = read_job(&args.job)?;
    let scheduler = plan_scheduler(global).await?;
    let mut closed = false;
    let outline = scheduler.plan_each(&event, today, &mut |task| {
        let line = serde_json::to_string(&task)
            .map_err(|err| sosw::Error::invalid("plan", format!("cannot print a task: {err}")))?;
        if !say!("{line}") {
            // The reader went away (`| head`): the rest would go nowhere.
            closed = true;
            return Err(sosw::Error::invalid("plan", "stdout closed"));
        }
        Ok(())
    });
    if closed {
        return Ok(ExitCode::SUCCESS);
    }
    let outline = outline?;
    tell!(
        "job {}: {} tasks of {} on {today} (dry run: nothing written)",
        outline.job_id,
        outline.total,
        outline.labourer_id
    );
    Ok(ExitCode::SUCCESS)
}

/// `sosw submit`.
pub async fn submit(global: &Global, args: JobFileArgs) -> CliResult {
    let event = read_job(&args.job)?;
    // The whole job is checked (in bounded memory) before anything is written or sent.
    let plan = outline_of(global, &event, Utc::now().date_naive()).await?;
    if global.aws {
        let sdk = sosw::lambda::aws::sdk_config().await;
        let invoker = sosw::aws::lambda::LambdaInvoker::from_sdk_config(&sdk);
        return match invoker.invoke(&global.scheduler_function, &event).await? {
            InvokeOutcome::Accepted => {
                say!(
                    "job {} ({} tasks of {}) submitted to `{}`; follow it with `sosw job {} --aws`",
                    plan.job_id,
                    plan.total,
                    plan.labourer_id,
                    global.scheduler_function,
                    plan.job_id
                );
                Ok(ExitCode::SUCCESS)
            }
            InvokeOutcome::Rejected(why) | InvokeOutcome::Unknown(why) => {
                Err(CliError::new(format!(
                    "the scheduler function `{}` did not take the job: {why}; check the name \
                 (--scheduler-function, SOSW_SCHEDULER_FUNCTION), the region and the credentials",
                    global.scheduler_function
                )))
            }
        };
    }
    let config = scheduler_config(global).await?;
    let store = Arc::new(open_state(&global.state, true)?);
    let scheduler = Scheduler::new(config, store.clone()).with_default_requester("sosw submit");
    let progress = SubmitProgress::start(global.plain, store.clone(), &plan);
    let outcome = tokio::select! {
        outcome = schedule(&scheduler, &event) => Some(outcome),
        () = interrupted() => None,
    };
    progress.stop().await;
    let Some(report) = outcome else {
        return interrupted_submission(global, &store, &plan, &args.job).await;
    };
    let report = report?;
    say!(
        "job {}: {} tasks of {} in `{}` ({} written now); run them with `sosw local run --resume`",
        report.job_id,
        report.total,
        report.labourer_id,
        global.state.display(),
        report.written
    );
    Ok(ExitCode::SUCCESS)
}

/// What a Ctrl-C during `sosw submit` left, and how to go on: every batch is written whole with the
/// job's cursor after it, so the state is consistent and the rest is written by a resumed run.
async fn interrupted_submission(
    global: &Global,
    store: &SqliteTaskStore,
    plan: &PlanOutline,
    job_file: &Path,
) -> CliResult {
    let state = global.state.display();
    match store.get_job(&plan.job_id).await? {
        Some(job) => tell!(
            "interrupted: {} of {} tasks of job {} are written in `{state}`; the rest are written \
             by `sosw local run --resume --state {state}` (which then runs them) or by submitting \
             `{}` again",
            job.enqueued.min(plan.total),
            plan.total,
            plan.job_id,
            job_file.display()
        ),
        None => tell!(
            "interrupted before job {} was recorded: nothing is written; submit `{}` again",
            plan.job_id,
            job_file.display()
        ),
    }
    Ok(ExitCode::from(EXIT_INTERRUPTED))
}

/// How often submission progress is read from the job record.
const SUBMIT_TICK: Duration = Duration::from_millis(200);

/// Plain progress lines of a submission come at most this often.
const SUBMIT_LINE_INTERVAL: Duration = Duration::from_secs(2);

/// The progress of a submission, read from the job record's cursor while the scheduler writes: a bar
/// on stderr when it is a terminal (and --plain is not set), else a line on stderr every few seconds.
struct SubmitProgress {
    stop: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl SubmitProgress {
    fn start(plain: bool, store: Arc<SqliteTaskStore>, plan: &PlanOutline) -> Self {
        let bar = (!plain && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new(plan.total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "writing {pos}/{len} tasks [{bar:30}] {per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        let stop = Arc::new(tokio::sync::Notify::new());
        let (job_id, total) = (plan.job_id.clone(), plan.total);
        let stopped = Arc::clone(&stop);
        let task = tokio::spawn(async move {
            let mut last_line = std::time::Instant::now();
            loop {
                tokio::select! {
                    () = stopped.notified() => break,
                    () = tokio::time::sleep(SUBMIT_TICK) => {}
                }
                let Ok(Some(job)) = store.get_job(&job_id).await else {
                    continue;
                };
                let written = job.enqueued.min(total);
                match &bar {
                    Some(bar) => bar.set_position(written),
                    None if last_line.elapsed() >= SUBMIT_LINE_INTERVAL => {
                        tell!("writing job {job_id}: {written}/{total} tasks");
                        last_line = std::time::Instant::now();
                    }
                    None => {}
                }
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
        });
        SubmitProgress { stop, task }
    }

    async fn stop(self) {
        self.stop.notify_one();
        let _ = self.task.await;
    }
}

/// `sosw job`.
pub async fn job(global: &Global, args: JobArgs) -> CliResult {
    let config = orchestrator_config(global).await?;
    let store = backend(global, &config.task_config, false).await?;
    let Some(job) = store.jobs.get_job(&args.job_id).await? else {
        return Err(unknown_job(&store, &args.job_id).await);
    };
    print_job(&job);
    print_dead_tasks(&store, &job).await?;
    Ok(ExitCode::SUCCESS)
}

/// `sosw redrive <labourer|task>`: dead tasks back to the queue, their jobs reopened.
pub async fn redrive(global: &Global, args: RedriveArgs) -> CliResult {
    let config = orchestrator_config(global).await?;
    let store = backend(global, &config.task_config, false).await?;
    let labourers: Vec<String> = config
        .task_config
        .labourers_resolved()
        .into_iter()
        .map(|l| l.id)
        .collect();
    let target = if labourers.contains(&args.target) {
        RedriveTarget::Labourer(args.target.clone())
    } else {
        let id = TaskId::new(args.target.clone()).map_err(|err| {
            CliError::new(format!(
                "`{}` is neither a configured labourer ({}) nor a task id: {err}",
                args.target,
                labourers.join(", ")
            ))
        })?;
        RedriveTarget::Task(id)
    };
    let now = Utc::now().timestamp();
    let report = sosw::essentials::redrive::redrive(
        store.tasks.as_ref(),
        Some(store.jobs.as_ref()),
        &target,
        now,
        args.limit,
    )
    .await
    .map_err(|err| {
        CliError::new(format!(
            "{err}; `sosw queue` shows the dead tasks per labourer ({})",
            store.name
        ))
    })?;
    for id in &report.redriven {
        say!("redriven  {id}");
    }
    for (job, n) in &report.jobs_reopened {
        say!("reopened  job {job} ({n} task(s) back in its queue)");
    }
    for warning in &report.warnings {
        tell!("warning: {warning}");
    }
    for (id, reason) in &report.refused {
        eprintln!("refused   {id}: {reason}");
    }
    if report.conflicts > 0 {
        say!(
            "skipped   {} task(s) that changed while read (another redrive?)",
            report.conflicts
        );
    }
    say!(
        "{} dead task(s) back in the queue of {}; `sosw local run --resume` (or the orchestrator on AWS) runs them",
        report.redriven.len(),
        store.name
    );
    if !report.refused.is_empty() {
        return Err(CliError::new(format!(
            "{} dead task(s) were left in the closed table: their payload is not one a worker can read (see above)",
            report.refused.len()
        )));
    }
    Ok(ExitCode::SUCCESS)
}

async fn unknown_job(store: &Backend, job_id: &str) -> CliError {
    let recent: Vec<String> = match store.jobs.list_jobs(5).await {
        Ok(jobs) => jobs.into_iter().map(|j| j.job_id).collect(),
        Err(_) => Vec::new(),
    };
    let hint = if recent.is_empty() {
        "it has no jobs".to_owned()
    } else {
        format!("its newest jobs: {}", recent.join(", "))
    };
    CliError::new(format!("no job `{job_id}` in {}; {hint}", store.name))
}

fn print_job(job: &JobRecord) {
    let total = job
        .total
        .map_or_else(|| "unknown (still chunking)".to_owned(), |t| t.to_string());
    let closed = job.counts.completed + job.counts.dead;
    say!("job        {}", job.job_id);
    say!("labourer   {}", job.labourer_id);
    say!("status     {}", json!(job.status).as_str().unwrap_or("?"));
    say!(
        "tasks      {total} (enqueued {}, closed {closed})",
        job.enqueued
    );
    say!(
        "completed  {}\ndead       {}\nfailures   {}",
        job.counts.completed,
        job.counts.dead,
        job.counts.failed
    );
    say!("created    {}", time(Some(job.created_at)));
    say!("started    {}", time(job.started_at));
    say!("finished   {}", time(job.finished_at));
    say!("requesters {}", job.requesters.join(", "));
}

/// Most dead tasks `sosw job` shows, and how many dead tasks of the labourer it looks through.
const DEAD_SHOWN: usize = 5;
const DEAD_SEARCHED: usize = 10_000;

/// A few dead tasks of `job`, each with how its last attempt ended and the last lines its worker
/// wrote (kept by command workers under `result_exit` and `result_output`).
async fn print_dead_tasks(store: &Backend, job: &JobRecord) -> CliResult<()> {
    if job.counts.dead == 0 {
        return Ok(());
    }
    let dead: Vec<_> = store
        .tasks
        .closed_sample(&job.labourer_id, ClosedStatus::Dead, DEAD_SEARCHED)
        .await?
        .into_iter()
        .filter(|task| task.job_id.as_deref() == Some(job.job_id.as_str()))
        .take(DEAD_SHOWN)
        .collect();
    say!(
        "dead tasks ({} of {}; `sosw redrive {}` runs them again):",
        dead.len(),
        job.counts.dead,
        job.labourer_id
    );
    for task in dead {
        let exit = task
            .extra
            .get("result_exit")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("no exit recorded");
        say!("  {}  attempts {}  {exit}", task.task_id, task.attempts);
        if let Some(output) = task
            .extra
            .get("result_output")
            .and_then(serde_json::Value::as_str)
        {
            for line in output.lines() {
                say!("    | {line}");
            }
        }
    }
    Ok(())
}

fn time(secs: Option<i64>) -> String {
    secs.and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
}

/// One labourer's row of `sosw queue`.
struct QueueRow {
    labourer: String,
    counts: [u64; 6],
    eco: String,
}

/// `sosw queue`.
pub async fn queue(global: &Global) -> CliResult {
    let config = orchestrator_config(global).await?;
    let store = backend(global, &config.task_config, false).await?;
    let metrics: Arc<dyn MetricsSource> = if global.aws {
        let sdk = sosw::lambda::aws::sdk_config().await;
        Arc::new(sosw::aws::cloudwatch::CloudWatchMetrics::from_sdk_config(
            &sdk,
        ))
    } else {
        Arc::new(FixedMetrics::new())
    };
    let ecology = EcologyManager::new(
        metrics,
        config
            .task_config
            .ecology_config
            .default_metric_values
            .clone(),
        Arc::new(sosw::clock::SystemClock),
    );
    let mut cache = HealthCache::new();
    let now = Utc::now().timestamp();
    let mut rows = Vec::new();
    for labourer in config.task_config.labourers_resolved() {
        let counts = queue_counts(&store, &labourer, now).await?;
        let eco = match ecology.labourer_status(&labourer, &mut cache).await {
            Ok(status) => format!(
                "{status} {}",
                STATUS_NAMES.get(usize::from(status)).unwrap_or(&"?")
            ),
            Err(err) => format!("unknown ({err})"),
        };
        rows.push(QueueRow {
            labourer: labourer.id.clone(),
            counts,
            eco,
        });
    }
    if rows.is_empty() {
        say!("no labourers are configured: add them under `task_config.labourers`");
    }
    print_queue(&rows);
    Ok(ExitCode::SUCCESS)
}

/// queued, running, expired, completed, retry, dead.
async fn queue_counts(store: &Backend, labourer: &Labourer, now: i64) -> CliResult<[u64; 6]> {
    let tasks = &store.tasks;
    let markers = Markers::for_labourer(now, labourer);
    let id = labourer.id.as_str();
    let queued = tasks.queue_length(id, now).await?;
    let running = tasks.count_running(id, &markers).await?;
    let expired = tasks.list_expired(id, &markers, COUNT_CAP).await?.len() as u64;
    let completed_live = tasks.list_completed(id, now, COUNT_CAP).await?.len() as u64;
    let closed = tasks
        .closed_sample(id, ClosedStatus::Completed, COUNT_CAP)
        .await?
        .len() as u64;
    let retry = tasks.retry_length(id).await?;
    let dead = tasks
        .closed_sample(id, ClosedStatus::Dead, COUNT_CAP)
        .await?
        .len() as u64;
    Ok([
        queued,
        running,
        expired,
        completed_live + closed,
        retry,
        dead,
    ])
}

fn print_queue(rows: &[QueueRow]) {
    let width = rows
        .iter()
        .map(|r| r.labourer.len())
        .chain([8])
        .max()
        .unwrap_or(8);
    say!(
        "{:<width$}  {:>7}  {:>7}  {:>7}  {:>9}  {:>5}  {:>5}  eco",
        "labourer",
        "queued",
        "running",
        "expired",
        "completed",
        "retry",
        "dead"
    );
    for row in rows {
        let [queued, running, expired, completed, retry, dead] = row.counts;
        say!(
            "{:<width$}  {queued:>7}  {running:>7}  {expired:>7}  {completed:>9}  {retry:>5}  {dead:>5}  {}",
            row.labourer,
            row.eco
        );
    }
}

/// `sosw config check`.
pub async fn config_check(dir: &Path) -> CliResult {
    let source = config_dir(dir)?;
    let configs = LocalConfigs::load(&source).await?;
    let labourers = configs.orchestrator.task_config.labourers_resolved();
    let registry = worker_registry();
    let known: Vec<&str> = registry.names().collect();
    let mut problems = Vec::new();
    for (id, worker) in &configs.local.workers {
        if !known.contains(&worker.worker.as_str()) {
            problems.push(format!(
                "{LOCAL_CONFIG_NAME}: `workers.{id}.worker` names `{}`, which is not registered \
                 (known: {})",
                worker.worker,
                known.join(", ")
            ));
        }
    }
    for id in configs
        .local
        .workers
        .keys()
        .chain(configs.local.commands.keys())
    {
        if !labourers.iter().any(|l| &l.id == id) {
            problems.push(format!(
                "{LOCAL_CONFIG_NAME}: `{id}` is not a labourer of `task_config.labourers`"
            ));
        }
    }
    let base = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    for (id, command) in &configs.local.commands {
        match command_spec(id, command, Some(base.as_path())) {
            Err(err) => problems.push(err.to_string()),
            Ok(spec) => {
                if let Err(reason) = spec.check() {
                    problems.push(format!(
                        "{LOCAL_CONFIG_NAME}: labourer `{id}` cannot start its command `{}`: \
                         {reason} (relative paths are relative to `{}`)",
                        spec.display(),
                        dir.display()
                    ));
                }
            }
        }
    }
    // A directory without a local config is for AWS only: its labourers need no local worker.
    let local_document = source.get_config(LOCAL_CONFIG_NAME).await?.is_some();
    for labourer in labourers.iter().filter(|_| local_document) {
        if configs.local.commands.contains_key(&labourer.id) {
            continue;
        }
        let name = configs
            .local
            .workers
            .get(&labourer.id)
            .map_or(labourer.id.as_str(), |w| w.worker.as_str());
        if !known.contains(&name) && !configs.local.workers.contains_key(&labourer.id) {
            problems.push(format!(
                "labourer `{}` has no way to run locally: no worker named `{name}` is compiled in \
                 (known: {}) and `{LOCAL_CONFIG_NAME}.commands` has no entry for it",
                labourer.id,
                known.join(", ")
            ));
        }
    }
    if !problems.is_empty() {
        return Err(CliError::new(problems.join("\n")));
    }
    say!(
        "{}: ok ({} labourers: {})",
        dir.display(),
        labourers.len(),
        labourers
            .iter()
            .map(|l| l.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
