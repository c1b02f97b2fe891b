//! The operations: `plan`, `submit`, `redrive`, `config check` (the reading commands are in
//! `inspect`).

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use sosw::config::{ConfigSource, OrchestratorConfig, SchedulerConfig, load_essential_config};
use sosw::embedded::SqliteTaskStore;
use sosw::essentials::redrive::RedriveTarget;
use sosw::essentials::scheduler::{PlanOutline, Scheduler};
use sosw::invoke::{InvokeOutcome, Invoker};
use sosw::local::{LOCAL_CONFIG_NAME, LocalConfigs, command_spec, interrupted, schedule};
use sosw::store::JobStore;
use sosw::task::TaskId;

use super::defaults::worker_registry;
use super::inspect::labourer_ids;
use super::local::read_job;
use super::stores::{backend, config_dir, config_source, open_state};
use super::{CliError, CliResult, EXIT_INTERRUPTED, Global, JobFileArgs, PlanArgs, RedriveArgs};

/// The scheduler's function name, whose document is `sosw_scheduler_config`.
const SCHEDULER_FUNCTION: &str = "sosw_scheduler";

async fn scheduler_config(global: &Global) -> CliResult<SchedulerConfig> {
    let source = config_source(global).await?;
    Ok(load_essential_config(source.as_ref(), SCHEDULER_FUNCTION, json!({}), None).await?)
}

pub(super) async fn orchestrator_config(global: &Global) -> CliResult<OrchestratorConfig> {
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

/// The most an asynchronous (`Event`) Lambda invocation takes: 1 MB (AWS's `Invoke` reference).
const MAX_EVENT_INVOCATION_BYTES: usize = 1 << 20;

/// Refuses, before anything is sent, a job the scheduler function could never receive: Lambda
/// answers a larger `Event` invocation with `RequestTooLargeException`, whose hint would otherwise
/// be the one for a wrong function name.
fn check_invocation_size(event: &Value, plan: &PlanOutline) -> CliResult<()> {
    let size = serde_json::to_vec(event).map_or(usize::MAX, |bytes| bytes.len());
    if size <= MAX_EVENT_INVOCATION_BYTES {
        return Ok(());
    }
    Err(CliError::new(format!(
        "job {} ({} tasks) is {size} bytes as JSON, over the {MAX_EVENT_INVOCATION_BYTES} bytes \
         (1 MB) AWS Lambda takes in an asynchronous invocation, so the scheduler function would \
         never receive it; nothing was sent. Split it into jobs of fewer listed values, or list \
         fewer values and let `period`/`isolate_days` multiply them",
        plan.job_id, plan.total
    )))
}

/// `sosw submit`.
pub async fn submit(global: &Global, args: JobFileArgs) -> CliResult {
    let event = read_job(&args.job)?;
    // The whole job is checked (in bounded memory) before anything is written or sent.
    let plan = outline_of(global, &event, Utc::now().date_naive()).await?;
    if global.aws {
        check_invocation_size(&event, &plan)?;
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
                let Ok(Some(job)) = store.get_job_counters(&job_id).await else {
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

/// `sosw redrive <labourer|task>` or `sosw redrive --job <job>`: dead tasks back to the queue, their
/// jobs reopened.
pub async fn redrive(global: &Global, args: RedriveArgs) -> CliResult {
    let config = orchestrator_config(global).await?;
    let store = backend(global, &config.task_config, false).await?;
    let labourers = labourer_ids(&config);
    let target = if args.job {
        RedriveTarget::Job(args.target.clone())
    } else if labourers.contains(&args.target) {
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
    // With --stagger, rounds of at most --limit tasks, --stagger apart, until the dead tasks there were
    // at the start are back (tasks that die again meanwhile wait for the next redrive).
    let rounds = match (&target, args.stagger) {
        (RedriveTarget::Labourer(labourer), Some(_)) => {
            let dead = store
                .tasks
                .closed_sample(
                    labourer,
                    sosw::store::ClosedStatus::Dead,
                    sosw::query::COUNT_CAP,
                )
                .await?
                .len();
            dead.div_ceil(args.limit.max(1)).max(1)
        }
        (RedriveTarget::Job(job_id), Some(_)) => {
            let dead = match store.jobs.get_job(job_id).await? {
                Some(job) => job.counts.dead,
                None => 0,
            };
            usize::try_from(dead)
                .unwrap_or(usize::MAX)
                .div_ceil(args.limit.max(1))
                .max(1)
        }
        _ => 1,
    };
    let mut redriven = 0;
    let mut refused = std::collections::BTreeMap::new();
    for round in 0..rounds {
        if round > 0
            && let Some(stagger) = args.stagger
        {
            say!(
                "waiting   {} (--stagger) before the next {} task(s)",
                humantime::format_duration(stagger),
                args.limit
            );
            tokio::time::sleep(stagger).await;
        }
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
            if refused.insert(id.clone(), reason.clone()).is_none() {
                tell!("refused   {id}: {reason}");
            }
        }
        if report.conflicts > 0 {
            say!(
                "skipped   {} task(s) that changed while read (another redrive?)",
                report.conflicts
            );
        }
        redriven += report.redriven.len();
        if report.redriven.is_empty() {
            break;
        }
    }
    say!(
        "{redriven} dead task(s) back in the queue of {}; `sosw local run --resume` (or the orchestrator on AWS) runs them",
        store.name
    );
    if !refused.is_empty() {
        return Err(CliError::new(format!(
            "{} dead task(s) were left in the closed table: their payload is not one a worker can read (see above)",
            refused.len()
        )));
    }
    Ok(ExitCode::SUCCESS)
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
            Err(err) => problems.push(err.with_causes()),
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
