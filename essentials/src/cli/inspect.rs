//! The reading commands: `jobs`, `job`, `tasks`, `queue` (each with `--output json`), `--watch` on
//! `job` and `queue`, and `completions`. What they show comes from [`sosw::query`], the same layer
//! the dashboard reads.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, CommandFactory, ValueEnum};
use serde::Serialize;
use sosw::config::OrchestratorConfig;
use sosw::ecology::{EcologyManager, FixedMetrics, HealthCache, MetricsSource, STATUS_NAMES};
use sosw::query::{
    self, JobFilter, JobSummary, LabourerCounts, TaskStatus, TaskView, job_status_name,
};
use sosw::store::{JobRecord, JobStatus};

use super::ops::orchestrator_config;
use super::output;
use super::stores::{Backend, backend};
use super::{Cli, CliError, CliResult, Global, JobArgs};

/// How a reading command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned text for people.
    Text,
    /// JSON: one object, or one object per line for lists (docs/guide.md has the schema).
    Json,
}

/// `--output`, on the reading commands only (the others print text for people).
#[derive(Debug, Clone, Copy, Args)]
pub struct Output {
    /// How it prints: `text` for people, `json` for programs (one JSON object, or one per line for
    /// lists; the schema is in docs/guide.md).
    #[arg(
        long = "output",
        env = "SOSW_OUTPUT",
        default_value = "text",
        value_name = "FORMAT"
    )]
    pub format: OutputFormat,
}

impl Output {
    pub(super) fn json(self) -> bool {
        self.format == OutputFormat::Json
    }
}

/// `sosw jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Only jobs in this status.
    #[arg(long, value_enum)]
    pub status: Option<JobStatusArg>,
    /// Only jobs running on this labourer.
    #[arg(long, value_name = "ID")]
    pub labourer: Option<String>,
    /// At most this many jobs.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub limit: usize,
    /// `--output text|json`.
    #[command(flatten)]
    pub output: Output,
}

/// A job status on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JobStatusArg {
    /// Accepted, tasks being created.
    Requested,
    /// Tasks in the queue.
    Running,
    /// Every task completed.
    Finished,
    /// Every task closed, some dead.
    FinishedWithFailures,
    /// Cancelled with `sosw cancel`.
    Cancelled,
}

impl From<JobStatusArg> for JobStatus {
    fn from(arg: JobStatusArg) -> Self {
        match arg {
            JobStatusArg::Requested => JobStatus::Requested,
            JobStatusArg::Running => JobStatus::Running,
            JobStatusArg::Finished => JobStatus::Finished,
            JobStatusArg::FinishedWithFailures => JobStatus::FinishedWithFailures,
            JobStatusArg::Cancelled => JobStatus::Cancelled,
        }
    }
}

/// `sosw tasks`.
#[derive(Debug, Args)]
pub struct TasksArgs {
    /// The labourer, e.g. sosw_tutorial_flaky_hashtags (`sosw queue` lists them).
    pub labourer: String,
    /// Which tasks: queued, running, retry, dead, completed or cancelled.
    #[arg(long, default_value = "queued", value_parser = parse_task_status)]
    pub status: TaskStatus,
    /// At most this many tasks.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub limit: usize,
    /// `--output text|json`.
    #[command(flatten)]
    pub output: Output,
}

fn parse_task_status(s: &str) -> Result<TaskStatus, String> {
    s.parse()
}

/// `sosw queue`.
#[derive(Debug, Args)]
pub struct QueueArgs {
    /// Show it again every SECS seconds (default 2) until interrupted.
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "2")]
    pub watch: Option<u64>,
    /// `--output text|json`.
    #[command(flatten)]
    pub output: Output,
}

/// `sosw completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell: bash, elvish, fish, powershell or zsh.
    pub shell: clap_complete::Shell,
}

/// Prints `value` as one line of JSON.
pub(super) fn json_line(value: &impl Serialize) -> CliResult<bool> {
    let line = serde_json::to_string(value)
        .map_err(|err| CliError::new(format!("cannot print JSON: {err}")))?;
    Ok(say!("{line}"))
}

fn now() -> i64 {
    Utc::now().timestamp()
}

/// `sosw completions <shell>`.
pub fn completions(args: &CompletionsArgs) -> CliResult {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "sosw", &mut script);
    let text = String::from_utf8_lossy(&script);
    say!("{}", text.trim_end());
    Ok(ExitCode::SUCCESS)
}

/// `sosw jobs`.
pub async fn jobs(global: &Global, args: JobsArgs) -> CliResult {
    let config = orchestrator_config(global).await?;
    let store = backend(global, &config.task_config, false).await?;
    let filter = JobFilter {
        status: args.status.map(JobStatus::from),
        labourer: args.labourer,
    };
    let jobs = query::list_jobs(store.jobs.as_ref(), &filter, args.limit, now()).await?;
    if args.output.json() {
        for job in &jobs {
            if !json_line(job)? {
                break;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if jobs.is_empty() {
        say!("no jobs in {} match", store.name);
        return Ok(ExitCode::SUCCESS);
    }
    let id_width = jobs
        .iter()
        .map(|j| j.job_id.len())
        .max()
        .unwrap_or(3)
        .max(3);
    let lab_width = jobs
        .iter()
        .map(|j| j.labourers.join(",").len())
        .max()
        .unwrap_or(9)
        .max(9);
    say!(
        "{:<id_width$}  {:<lab_width$}  {:<22}  {:>15}  {:>5}  {:>5}",
        "job",
        "labourers",
        "status",
        "progress",
        "dead",
        "age"
    );
    for job in &jobs {
        let shown = say!(
            "{:<id_width$}  {:<lab_width$}  {:<22}  {:>15}  {:>5}  {:>5}",
            job.job_id,
            job.labourers.join(","),
            job.status_name(),
            progress(job),
            job.dead,
            age(job.age_secs)
        );
        if !shown {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `closed/total pct%`, or `closed/?` while chunking.
fn progress(job: &JobSummary) -> String {
    match (job.total, job.progress) {
        (Some(total), Some(p)) => format!("{}/{total} {:>3.0}%", job.closed, p * 100.0),
        _ => format!("{}/?", job.closed),
    }
}

/// `42s`, `5m`, `3h`, `2d`.
pub fn age(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7_200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3_600),
        s => format!("{}d", s / 86_400),
    }
}

/// Most failed tasks `sosw job` shows without `--tasks`.
const FAILURES_SHOWN: usize = 20;

/// `sosw job`'s JSON object: the summary, its failed tasks and, with `--tasks`, every task.
#[derive(Serialize)]
struct JobDetail<'a> {
    #[serde(flatten)]
    summary: &'a JobSummary,
    failures: &'a [TaskView],
    #[serde(skip_serializing_if = "Option::is_none")]
    tasks: Option<&'a [TaskView]>,
}

/// `sosw job`.
pub async fn job(global: &Global, args: JobArgs) -> CliResult {
    let config = orchestrator_config(global).await?;
    let store = backend(global, &config.task_config, false).await?;
    loop {
        let Some(job) = store.jobs.get_job_counters(&args.job_id).await? else {
            return Err(unknown_job(&store, &args.job_id).await);
        };
        let finished = job.status.is_finished();
        if args.watch.is_some() {
            clear_screen(args.output);
        }
        show_job(&store, &job, &args).await?;
        match args.watch {
            // A reader that went away (`| head`) ends a watch.
            Some(_) if !output::stdout_open() => return Ok(ExitCode::SUCCESS),
            Some(every) if !finished => tokio::time::sleep(Duration::from_secs(every.max(1))).await,
            _ => return Ok(ExitCode::SUCCESS),
        }
    }
}

async fn show_job(store: &Backend, job: &JobRecord, args: &JobArgs) -> CliResult<()> {
    let now = now();
    let summary = JobSummary::of(job, now);
    let limit = if args.tasks {
        args.limit
    } else {
        FAILURES_SHOWN.min(args.limit)
    };
    let failures = query::job_failures(store.tasks.as_ref(), job, limit).await?;
    let tasks = if args.tasks {
        Some(query::job_tasks(store.tasks.as_ref(), job, args.limit, now).await?)
    } else {
        None
    };
    if args.output.json() {
        json_line(&JobDetail {
            summary: &summary,
            failures: &failures,
            tasks: tasks.as_deref(),
        })?;
        return Ok(());
    }
    print_job(job, &summary);
    print_failures(job, &failures);
    if let Some(tasks) = tasks {
        say!("tasks ({} shown):", tasks.len());
        for task in &tasks {
            say!(
                "  {}  {:<9}  attempts {}{}",
                task.task_id,
                task.status,
                task.attempts,
                task.last_error
                    .as_deref()
                    .map(|e| format!("  {}", first_line(e)))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

/// On a terminal, clears it for the next picture of `--watch`; elsewhere, a separating line (none
/// between JSON pictures: each line is whole JSON).
fn clear_screen(output: Output) {
    if output.json() {
        return;
    }
    let now = Utc::now().to_rfc3339();
    if std::io::stdout().is_terminal() {
        say!("\x1b[2J\x1b[H{now}");
    } else {
        say!("--- {now}");
    }
}

async fn unknown_job(store: &Backend, job_id: &str) -> CliError {
    let recent: Vec<String> = match store.jobs.list_job_counters(5).await {
        Ok(jobs) => jobs.into_iter().map(|j| j.job_id).collect(),
        Err(_) => Vec::new(),
    };
    let hint = if recent.is_empty() {
        "it has no jobs".to_owned()
    } else {
        format!(
            "its newest jobs: {} (`sosw jobs` lists them)",
            recent.join(", ")
        )
    };
    CliError::new(format!("no job `{job_id}` in {}; {hint}", store.name))
}

fn print_job(job: &JobRecord, summary: &JobSummary) {
    let total = job
        .total
        .map_or_else(|| "unknown (still chunking)".to_owned(), |t| t.to_string());
    say!("job        {}", job.job_id);
    say!("labourer   {}", job.labourer_id);
    say!("status     {}", job_status_name(job.status));
    say!(
        "tasks      {total} (enqueued {}, closed {})",
        job.enqueued,
        summary.closed
    );
    say!("progress   {}", progress(summary));
    say!(
        "completed  {}\ndead       {}\nfailures   {}",
        job.counts.completed,
        job.counts.dead,
        job.counts.failed
    );
    if job.status == JobStatus::Cancelled || job.counts.cancelled > 0 {
        say!("cancelled  {}", job.counts.cancelled);
    }
    say!("created    {}", time(Some(job.created_at)));
    say!("started    {}", time(job.started_at));
    say!("finished   {}", time(job.finished_at));
    say!("requesters {}", job.requesters.join(", "));
}

/// The failed tasks: id, attempts, last error and the tail of the worker's output.
fn print_failures(job: &JobRecord, failures: &[TaskView]) {
    if failures.is_empty() {
        return;
    }
    let dead = failures
        .iter()
        .filter(|t| t.status == TaskStatus::Dead)
        .count();
    say!(
        "failed tasks ({} shown, {dead} of {} dead{}):",
        failures.len(),
        job.counts.dead,
        if job.counts.dead > 0 {
            format!(
                "; `sosw redrive {}` runs the dead ones again",
                job.labourer_id
            )
        } else {
            String::new()
        }
    );
    for task in failures {
        say!(
            "  {}  {}  attempts {}  {}",
            task.task_id,
            task.status,
            task.attempts,
            task.last_error
                .as_deref()
                .map_or("no error recorded", first_line)
        );
        if let Some(output) = &task.output_tail {
            for line in output.lines() {
                say!("    | {line}");
            }
        }
    }
}

fn time(secs: Option<i64>) -> String {
    secs.and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
}

/// The ids of the configured labourers.
pub(super) fn labourer_ids(config: &OrchestratorConfig) -> Vec<String> {
    config
        .task_config
        .labourers_resolved()
        .into_iter()
        .map(|l| l.id)
        .collect()
}

/// `sosw tasks <labourer>`.
pub async fn tasks(global: &Global, args: TasksArgs) -> CliResult {
    let config = orchestrator_config(global).await?;
    let labourers = labourer_ids(&config);
    if !labourers.contains(&args.labourer) {
        return Err(CliError::new(format!(
            "`{}` is not a configured labourer; the labourers are: {}",
            args.labourer,
            labourers.join(", ")
        )));
    }
    let store = backend(global, &config.task_config, false).await?;
    let tasks = query::list_tasks(
        store.tasks.as_ref(),
        &args.labourer,
        args.status,
        args.limit,
        now(),
    )
    .await?;
    if args.output.json() {
        for task in &tasks {
            if !json_line(task)? {
                break;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if tasks.is_empty() {
        say!(
            "no {} tasks of {} in {}",
            args.status,
            args.labourer,
            store.name
        );
        return Ok(ExitCode::SUCCESS);
    }
    say!(
        "{:<40}  {:<9}  {:>8}  {:>6}  last error / payload",
        "task",
        "status",
        "attempts",
        "failed"
    );
    for task in &tasks {
        let note = task.last_error.as_deref().map_or_else(
            || task.payload_preview.clone(),
            |e| first_line(e).to_owned(),
        );
        let shown = say!(
            "{:<40}  {:<9}  {:>8}  {:>6}  {}",
            task.task_id,
            task.status,
            task.attempts,
            task.failed_attempts,
            note
        );
        if !shown {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One labourer's row of `sosw queue` (schema `kind: "labourer"`).
#[derive(Debug, Serialize)]
pub struct QueueRow {
    /// Always `"labourer"`.
    pub kind: &'static str,
    /// The labourer.
    pub labourer_id: String,
    /// Its counts.
    #[serde(flatten)]
    pub counts: LabourerCounts,
    /// The ecology status (0..4), if known.
    pub eco_status: Option<u8>,
    /// The status's name, or why it is unknown.
    pub eco: String,
    /// Whether the labourer is paused (`sosw pause`).
    pub paused: bool,
}

/// Every labourer's counts and eco status.
pub async fn queue_rows(global: &Global) -> CliResult<(Vec<QueueRow>, Backend)> {
    let config = orchestrator_config(global).await?;
    let store = backend(global, &config.task_config, false).await?;
    let ecology = ecology_manager(global, &config).await;
    let rows = labourer_rows(&store, &config, &ecology).await?;
    Ok((rows, store))
}

/// What reads the labourers' eco status: CloudWatch with `--aws`, else the fixed local metrics.
pub(super) async fn ecology_manager(
    global: &Global,
    config: &OrchestratorConfig,
) -> EcologyManager {
    let metrics: Arc<dyn MetricsSource> = if global.aws {
        let sdk = sosw::lambda::aws::sdk_config().await;
        Arc::new(sosw::aws::cloudwatch::CloudWatchMetrics::from_sdk_config(
            &sdk,
        ))
    } else {
        Arc::new(FixedMetrics::new())
    };
    EcologyManager::new(
        metrics,
        config
            .task_config
            .ecology_config
            .default_metric_values
            .clone(),
        Arc::new(sosw::clock::SystemClock),
    )
}

/// The row of every configured labourer: its counts and eco status, as `sosw queue` and the
/// dashboard show them.
pub(super) async fn labourer_rows(
    store: &Backend,
    config: &OrchestratorConfig,
    ecology: &EcologyManager,
) -> CliResult<Vec<QueueRow>> {
    let mut cache = HealthCache::new();
    let now = now();
    let paused = sosw::essentials::cancel::paused_labourers(store.control.as_ref()).await?;
    let mut rows = Vec::new();
    for labourer in config.task_config.labourers_resolved() {
        let counts =
            query::labourer_counts(store.tasks.as_ref(), &labourer, now, store.count_caps).await?;
        let (eco_status, eco) = match ecology.labourer_status(&labourer, &mut cache).await {
            Ok(status) => (
                Some(status),
                STATUS_NAMES
                    .get(usize::from(status))
                    .unwrap_or(&"?")
                    .to_string(),
            ),
            Err(err) => (None, format!("unknown ({err})")),
        };
        rows.push(QueueRow {
            kind: "labourer",
            labourer_id: labourer.id.clone(),
            counts,
            eco_status,
            eco,
            paused: paused.iter().any(|p| p.labourer_id == labourer.id),
        });
    }
    Ok(rows)
}

/// `sosw queue`.
pub async fn queue(global: &Global, args: QueueArgs) -> CliResult {
    loop {
        let (rows, _) = queue_rows(global).await?;
        if args.watch.is_some() {
            clear_screen(args.output);
        }
        if args.output.json() {
            for row in &rows {
                json_line(row)?;
            }
        } else {
            if rows.is_empty() {
                say!("no labourers are configured: add them under `task_config.labourers`");
            }
            print_queue(&rows);
        }
        match args.watch {
            // A reader that went away (`| head`) ends a watch.
            Some(_) if !output::stdout_open() => return Ok(ExitCode::SUCCESS),
            Some(every) => tokio::time::sleep(Duration::from_secs(every.max(1))).await,
            None => return Ok(ExitCode::SUCCESS),
        }
    }
}

/// A count as shown: `100000+` when it stopped at its cap ([`sosw::query::CountCaps`]).
pub(super) fn at_least(count: u64, capped: bool) -> String {
    if capped {
        format!("{count}+")
    } else {
        count.to_string()
    }
}

fn print_queue(rows: &[QueueRow]) {
    let width = rows
        .iter()
        .map(|r| r.labourer_id.len())
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
        let c = &row.counts;
        let mut eco = match row.eco_status {
            Some(status) => format!("{status} {}", row.eco),
            None => row.eco.clone(),
        };
        if row.paused {
            eco.push_str("  PAUSED (`sosw resume` to resume)");
        }
        say!(
            "{:<width$}  {:>7}  {:>7}  {:>7}  {:>9}  {:>5}  {:>5}  {eco}",
            row.labourer_id,
            at_least(c.queued, c.capped.queued),
            c.running,
            at_least(c.expired, c.capped.expired),
            at_least(c.completed, c.capped.completed),
            c.retry,
            at_least(c.dead, c.capped.dead)
        );
    }
}
