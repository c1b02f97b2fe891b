//! `sosw local run` and `sosw local workers`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sosw::essentials::scheduler::{JobOutcome, SchedulerReport};
use sosw::local::{LocalConfigs, LocalRunner, interrupted};
use sosw::notify::LogNotifier;
use sosw::store::JobStore;

use super::defaults::worker_registry;
use super::output::Progress;
use super::stores::{config_base_dir, config_source, open_state};
use super::{CliError, CliResult, EXIT_DEAD_TASKS, EXIT_INTERRUPTED, Global, RunArgs};

/// `sosw local run`.
pub async fn run(global: &Global, args: RunArgs) -> CliResult {
    if global.aws {
        return Err(CliError::new(
            "`sosw local run` works on the state file; drop --aws (or unset SOSW_AWS), or use \
             `sosw submit --aws` to run a job on AWS",
        ));
    }
    if args.job.is_none() && !args.resume {
        return Err(CliError::new(format!(
            "give a job file, e.g. `sosw local run examples/jobs/hashtags.json`, or --resume to \
             continue the unfinished jobs of `{}`",
            global.state.display()
        )));
    }
    if args.job.is_none() && !global.state.exists() {
        return Err(CliError::new(format!(
            "there is no state file `{}` to resume: pass the --state of the interrupted run, or a job \
             file to start one",
            global.state.display()
        )));
    }
    let event = args.job.as_deref().map(read_job).transpose()?;
    let configs = load_configs(global).await?;
    if args.fresh {
        remove_state(&global.state)?;
    }
    let store = Arc::new(open_state(&global.state, true)?);
    let runner = LocalRunner::new(store, configs, &worker_registry(), Arc::new(LogNotifier))
        .map_err(|err| {
            CliError::new(format!(
                "{err}\nfix the document, then check the directory with `sosw config check <dir>`"
            ))
        })?;
    if let Some(log) = &args.delivery_log {
        runner.log_deliveries_to(log)?;
    }
    say!("state: {}", global.state.display());

    let mut job_ids = Vec::new();
    if let Some(event) = event {
        // Dropped once scheduled: a job file can hold a long list, not needed while the tasks run.
        let report = runner.submit(&event).await?;
        let finished = runner
            .store()
            .get_job(&report.job_id)
            .await?
            .is_some_and(|job| job.status.is_finished());
        print_submitted(&report, finished, &global.state);
        job_ids.push(report.job_id);
    }
    for job in runner.unfinished_jobs().await? {
        if job_ids.contains(&job.job_id) {
            continue;
        }
        runner.resume_scheduling(&job).await?;
        say!(
            "continuing job {} of an earlier run: {}/{} tasks closed",
            job.job_id,
            job.counts.completed + job.counts.dead,
            job.total.unwrap_or(job.enqueued)
        );
        job_ids.push(job.job_id);
    }
    if job_ids.is_empty() {
        say!(
            "nothing to resume: every job in `{}` is finished",
            global.state.display()
        );
        return Ok(ExitCode::SUCCESS);
    }

    let progress = Progress::new(global.plain);
    let timeout = args.timeout.map(Duration::from_secs);
    let summary = runner
        .run_until_finished_or(&job_ids, &progress, timeout, interrupted())
        .await;
    progress.finish();
    let summary = summary.map_err(|err| {
        CliError::new(format!(
            "{err}\nthe state is kept in `{}`: continue with `{}`",
            global.state.display(),
            resume_command(global)
        ))
    })?;
    say!("\n{summary}");
    if summary.interrupted {
        tell!(
            "interrupted: {} tasks closed in this run, {} still open; the state is kept in `{}`: \
             continue with `{}`",
            summary.closed_this_run,
            summary.total().open,
            global.state.display(),
            resume_command(global)
        );
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    if summary.all_completed() {
        Ok(ExitCode::SUCCESS)
    } else {
        let state = global.state.display();
        let show = match job_ids.as_slice() {
            [job] => format!("`sosw job {job} --state {state}`"),
            _ => format!(
                "`sosw jobs --status finished-with-failures --state {state}`, then `sosw job <id>`"
            ),
        };
        say!(
            "{} dead tasks: {show} shows them with their errors; `sosw redrive <labourer>` runs them again",
            summary.total().dead
        );
        Ok(ExitCode::from(EXIT_DEAD_TASKS))
    }
}

/// The command that continues this run: `sosw local run --resume` with the same state and configs.
fn resume_command(global: &Global) -> String {
    let mut command = format!("sosw local run --resume --state {}", global.state.display());
    if let Some(dir) = &global.config {
        command.push_str(&format!(" --config {}", dir.display()));
    }
    command
}

fn print_submitted(report: &SchedulerReport, finished: bool, state: &Path) {
    match report.outcome {
        JobOutcome::AlreadyEnqueued if finished => say!(
            "job {} ({} tasks of {}) ran in `{}` already: sosw runs a job once per day. \
             Pass --fresh to start over.",
            report.job_id,
            report.total,
            report.labourer_id,
            state.display()
        ),
        JobOutcome::AlreadyEnqueued => say!(
            "job {} ({} tasks of {}) is in `{}` from an earlier run: continuing it",
            report.job_id,
            report.total,
            report.labourer_id,
            state.display()
        ),
        _ => say!(
            "job {}: {} tasks of {} scheduled",
            report.job_id,
            report.total,
            report.labourer_id
        ),
    };
}

/// The configs of a local run, with a hint on failure.
pub async fn load_configs(global: &Global) -> CliResult<LocalConfigs> {
    let source = config_source(global).await?;
    let mut configs = LocalConfigs::load(source.as_ref()).await.map_err(|err| {
        CliError::new(format!(
            "{err}\nfix the document, then check the directory with `sosw config check <dir>`"
        ))
    })?;
    configs.local.base_dir = config_base_dir(global);
    Ok(configs)
}

/// Reads a job file as JSON.
pub fn read_job(path: &Path) -> CliResult<Value> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        CliError::new(format!(
            "cannot read the job file `{}`: {err}; pass the path of a job JSON file such as \
             examples/jobs/hashtags.json",
            path.display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|err| {
        CliError::new(format!(
            "the job file `{}` is not valid JSON: {err}; a job looks like examples/jobs/hashtags.json",
            path.display()
        ))
    })
}

/// Deletes the state file and SQLite's companions.
fn remove_state(state: &Path) -> CliResult<()> {
    let mut files = vec![state.to_path_buf()];
    for suffix in ["-wal", "-shm"] {
        let mut name = state.as_os_str().to_owned();
        name.push(suffix);
        files.push(PathBuf::from(name));
    }
    for file in files {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(CliError::new(format!(
                    "cannot delete `{}` for --fresh: {err}",
                    file.display()
                )));
            }
        }
    }
    Ok(())
}

/// `sosw local workers`.
pub fn workers() -> CliResult {
    for name in worker_registry().names() {
        say!("{name}");
    }
    Ok(ExitCode::SUCCESS)
}
