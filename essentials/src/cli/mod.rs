//! The `sosw` command line.
//!
//! * `sosw local run <job.json>`: every essential on this machine over the embedded SQLite store
//!   until the job is finished ([`sosw::local`]).
//! * Operations, against the state file or AWS (`--aws`): `plan`, `submit`, `job`, `queue`,
//!   `redrive`, `cancel`, `pause`, `resume`, `config check`, and `dashboard`, a web page of them.
//!
//! Every global flag has an environment twin (`SOSW_...`). Exit status: 0 success, 1 error, 2 bad
//! usage, 3 a job finished with dead tasks, 130 a local run stopped by Ctrl-C. No command panics on a
//! closed stdout (`sosw plan job.json | head -1`): its output stops quietly.

/// `println!` that never panics: once stdout is closed (`sosw plan job.json | head -1`), output is
/// dropped quietly; evaluates to whether the line was written.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::output::line(format_args!($($arg)*))
    };
}

/// `eprintln!` that never panics: a closed stderr drops the line.
macro_rules! tell {
    ($($arg:tt)*) => {
        $crate::cli::output::diagnostic(format_args!($($arg)*))
    };
}

mod control;
mod dashboard;
mod defaults;
mod inspect;
mod local;
mod migrate;
mod ops;
mod output;
mod stores;

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

pub use defaults::{builtin_config_source, worker_registry};

/// Exit status of a job that finished with dead tasks.
pub const EXIT_DEAD_TASKS: u8 = 3;

/// Exit status of a local run stopped by Ctrl-C (128 + SIGINT, as a shell reports it).
pub const EXIT_INTERRUPTED: u8 = 130;

/// sosw: the Serverless Orchestrator of Serverless Workers, on this machine or on AWS.
///
/// Start with `sosw local run examples/jobs/hashtags.json`: it schedules the tutorial job and runs it
/// to the end over the state file, with no AWS account.
#[derive(Debug, Parser)]
#[command(name = "sosw", version)]
pub struct Cli {
    /// Settings every subcommand shares.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Settings every subcommand shares, each with an environment twin.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// The state file of local mode: the embedded SQLite store, created if missing.
    #[arg(
        long,
        global = true,
        env = "SOSW_STATE",
        default_value = "sosw-local.sqlite",
        value_name = "FILE"
    )]
    pub state: PathBuf,
    /// A directory of config documents (`sosw_essential_config.json`, `sosw_local_config.json`, ...).
    /// Default: the built-in local configs, a copy of examples/configs/local (with --aws: the
    /// DynamoDB config table, see SOSW_CONFIG_TABLE and SOSW_CONFIG_ENV).
    #[arg(long, global = true, env = "SOSW_CONFIG_DIR", value_name = "DIR")]
    pub config: Option<PathBuf>,
    /// Work against AWS (the DynamoDB tables, the scheduler Lambda) instead of the state file. Region,
    /// credentials and endpoints come from the usual AWS variables.
    #[arg(long, global = true, env = "SOSW_AWS")]
    pub aws: bool,
    /// The scheduler function `submit --aws` invokes.
    #[arg(
        long,
        global = true,
        env = "SOSW_SCHEDULER_FUNCTION",
        default_value = "sosw_scheduler",
        value_name = "NAME"
    )]
    pub scheduler_function: String,
    /// Progress as plain lines even on a terminal.
    #[arg(long, global = true, env = "SOSW_PLAIN")]
    pub plain: bool,
    /// Diagnostics on stderr: `off`, `error`, `warn` (adds every worker failure), `info`, `debug`, or a
    /// filter like `sosw=debug`.
    #[arg(
        long,
        global = true,
        env = "SOSW_LOG",
        default_value = "error",
        value_name = "FILTER"
    )]
    pub log: String,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run sosw on this machine, over the state file.
    #[command(subcommand)]
    Local(LocalCommand),
    /// Print the tasks a job would become, one JSON object per line. Writes nothing.
    Plan(PlanArgs),
    /// Submit a job: schedule it into the state file, or with --aws invoke the scheduler Lambda.
    Submit(JobFileArgs),
    /// List the jobs, newest first: id, labourers, status, progress, dead tasks and age.
    Jobs(inspect::JobsArgs),
    /// Show the status and progress of one job, with its failed and dead tasks.
    Job(JobArgs),
    /// List the tasks of a labourer in one status.
    Tasks(inspect::TasksArgs),
    /// Show, per labourer: queued, running, expired, completed, retry, dead and eco status.
    Queue(inspect::QueueArgs),
    /// Send dead tasks back to the queue: every dead task of a labourer, or one task by id. Their jobs
    /// reopen and finish again when the tasks close.
    Redrive(RedriveArgs),
    /// Cancel a job: its queued and waiting-for-retry tasks close as cancelled, running ones may
    /// finish, the job ends `cancelled` and its requesters are notified. A no-op on a cancelled or
    /// finished job.
    Cancel(control::CancelArgs),
    /// Pause a labourer: every orchestrator invokes none of its tasks from its next round on, until
    /// `sosw resume`.
    Pause(control::LabourerArgs),
    /// Resume a paused labourer.
    Resume(control::LabourerArgs),
    /// Move a deployment's waiting tasks (queued, waiting for retry) from sosw 0.7's tables to the
    /// lean table, many at once, while the essentials run (with --aws). Invoked tasks finish where
    /// they are. Resumable: run it again to finish or re-check. See docs/deploy.md, "Migrating to the
    /// lean layout".
    MigrateLayout(migrate::MigrateLayoutArgs),
    /// Work with config documents.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Serve a web page of the queues and jobs, with buttons to redrive, pause, resume and cancel
    /// (loopback only unless --token; see docs/guide.md, "The dashboard").
    Dashboard(dashboard::DashboardArgs),
    /// Print a shell completion script, e.g. `sosw completions bash > ~/.local/share/bash-completion/completions/sosw`.
    Completions(inspect::CompletionsArgs),
}

/// `sosw redrive`.
#[derive(Debug, Args)]
pub struct RedriveArgs {
    /// A labourer id (every dead task of it) or a task id (that task), e.g.
    /// sosw_tutorial_flaky_hashtags; with --job, a job id (every dead task of that job). `sosw queue`
    /// shows the dead count per labourer, `sosw job <id>` a job's.
    pub target: String,
    /// The target is a job id: redrive the dead tasks of that job only, and reopen it.
    #[arg(long)]
    pub job: bool,
    /// At most this many tasks in one run (with --stagger: in one round).
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pub limit: usize,
    /// For a large backlog: redrive in rounds of --limit tasks, this long apart (`30s`, `2m`,
    /// `500ms`), until every task that was dead at the start is back in the queue.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub stagger: Option<std::time::Duration>,
}

/// `sosw local ...`.
#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Schedule a job, then run the orchestrator, the workers, the worker assistant and the scavenger
    /// until it is finished; print a summary.
    Run(RunArgs),
    /// List the workers compiled into this program (for `sosw_local_config.workers`).
    Workers,
}

/// `sosw local run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job file (sosw 0.7's scheduler event), e.g. examples/jobs/hashtags.json. Optional with
    /// --resume.
    pub job: Option<PathBuf>,
    /// Continue the unfinished jobs of the state file (after a crash, a kill or Ctrl-C).
    #[arg(long)]
    pub resume: bool,
    /// Delete the state file first and start over.
    #[arg(long, conflicts_with = "resume")]
    pub fresh: bool,
    /// Give up after this many seconds; the state is kept for --resume.
    #[arg(long, env = "SOSW_TIMEOUT", value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Append one JSON line per worker invocation (`{"task_id", "attempt"}`) to this file: the
    /// delivery log the queue checker reads (docs/reliability.md).
    #[arg(long, env = "SOSW_DELIVERY_LOG", value_name = "FILE")]
    pub delivery_log: Option<PathBuf>,
}

/// `sosw plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The job file.
    pub job: PathBuf,
    /// The day to chunk for (periods such as `last_2_days` count back from it). Default: today (UTC).
    #[arg(long, value_name = "YYYY-MM-DD")]
    pub today: Option<NaiveDate>,
}

/// A subcommand taking a job file.
#[derive(Debug, Args)]
pub struct JobFileArgs {
    /// The job file.
    pub job: PathBuf,
}

/// `sosw job`.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// The job's id (printed by `submit`, `plan` and `local run`).
    pub job_id: String,
    /// List every task of the job (in chunk order), not only the failed ones.
    #[arg(long)]
    pub tasks: bool,
    /// At most this many tasks listed.
    #[arg(long, default_value_t = 1_000, value_name = "N")]
    pub limit: usize,
    /// Show it again every SECS seconds (default 2) until the job is finished.
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "2")]
    pub watch: Option<u64>,
    /// `--output text|json`.
    #[command(flatten)]
    pub output: inspect::Output,
}

/// `sosw config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check every config document of a directory as the essentials and local mode read them.
    Check {
        /// The directory, e.g. examples/configs/local.
        dir: PathBuf,
    },
}

/// A failure of the command line: a message that says what to do next.
#[derive(Debug)]
pub struct CliError(String);

impl CliError {
    /// An error with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        CliError(message.into())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

impl From<sosw::Error> for CliError {
    fn from(err: sosw::Error) -> Self {
        // The causes too: `dispatch failure` alone does not say the endpoint refused or the
        // region is missing.
        CliError(err.with_causes())
    }
}

/// The result of a subcommand.
pub type CliResult<T = ExitCode> = std::result::Result<T, CliError>;

/// Parses the arguments, runs the subcommand and returns the exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.global.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(sosw::local::runtime_worker_threads())
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tell!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => {
            tell!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one parsed command line.
pub async fn run(cli: Cli) -> CliResult {
    let global = cli.global;
    match cli.command {
        Command::Local(LocalCommand::Run(args)) => local::run(&global, args).await,
        Command::Local(LocalCommand::Workers) => local::workers(),
        Command::Plan(args) => ops::plan(&global, args).await,
        Command::Submit(args) => ops::submit(&global, args).await,
        Command::Jobs(args) => inspect::jobs(&global, args).await,
        Command::Job(args) => inspect::job(&global, args).await,
        Command::Tasks(args) => inspect::tasks(&global, args).await,
        Command::Queue(args) => inspect::queue(&global, args).await,
        Command::Completions(args) => inspect::completions(&args),
        Command::Redrive(args) => ops::redrive(&global, args).await,
        Command::Cancel(args) => control::cancel(&global, args).await,
        Command::Pause(args) => control::pause(&global, args).await,
        Command::Resume(args) => control::resume(&global, args).await,
        Command::Dashboard(args) => dashboard::dashboard(&global, args).await,
        Command::MigrateLayout(args) => migrate::migrate_layout(&global, args).await,
        Command::Config(ConfigCommand::Check { dir }) => ops::config_check(&dir).await,
    }
}

/// Human-readable logs on stderr, filtered by `--log`.
fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
