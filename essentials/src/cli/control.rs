//! The steering commands: `cancel <job>`, `pause <labourer>`, `resume <labourer>`, over
//! [`sosw::essentials::cancel`] (the same functions the dashboard calls).
//!
//! A no-op (cancelling a cancelled or finished job, pausing a paused labourer, resuming one that is
//! not paused) says so and exits 0: the state asked for is the state there is. An unknown job or
//! labourer is an error (exit 1) naming it.

use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::Args;
use serde_json::json;
use sosw::config::{WorkerAssistantConfig, load_essential_config};
use sosw::essentials::cancel::{self, CancelOutcome, CancelReport};
use sosw::notify::{LogNotifier, NotificationQueue, Notifier};
use sosw::query::job_status_name;

use super::inspect::{Output, json_line, labourer_ids};
use super::ops::orchestrator_config;
use super::stores::{backend, config_source};
use super::{CliError, CliResult, Global};

/// `sosw cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The job's id (`sosw jobs` lists them).
    pub job_id: String,
    /// `--output text|json`.
    #[command(flatten)]
    pub output: Output,
}

/// `sosw pause` and `sosw resume`.
#[derive(Debug, Args)]
pub struct LabourerArgs {
    /// The labourer's id (`sosw queue` lists them).
    pub labourer: String,
}

/// Where a cancelled job's messages go: SNS on AWS (non-ARN requesters to the worker assistant's
/// `sns_config.recipient`, as when a job finishes there), else the log (`--log info` shows them).
/// Returns the notifier and the recipient, for a [`NotificationQueue`] per cancel.
pub(crate) async fn notifier(global: &Global) -> CliResult<(Arc<dyn Notifier>, Option<String>)> {
    if !global.aws {
        return Ok((Arc::new(LogNotifier), None));
    }
    let source = config_source(global).await?;
    let config: WorkerAssistantConfig = load_essential_config(
        source.as_ref(),
        sosw::lambda::settings::WORKER_ASSISTANT_FUNCTION,
        json!({}),
        None,
    )
    .await?;
    let sdk = sosw::lambda::aws::sdk_config().await;
    Ok((
        Arc::new(sosw::aws::sns::SnsNotifier::new(&sdk)),
        config.sns_config.recipient,
    ))
}

/// What a cancel did, in one sentence (the command's first line, the dashboard's message).
pub(crate) fn describe(report: &CancelReport, store_name: &str) -> String {
    let id = &report.job_id;
    match report.outcome {
        CancelOutcome::Cancelled => format!(
            "cancelled job {id}: {} queued and {} waiting task(s) closed as cancelled, {} running \
             task(s) left to finish ({store_name})",
            report.cancelled_queued, report.cancelled_retry, report.running,
        ),
        CancelOutcome::AlreadyCancelled if report.cancelled() > 0 => format!(
            "job {id} was already cancelled; closed {} task(s) written since as cancelled",
            report.cancelled()
        ),
        CancelOutcome::AlreadyCancelled => {
            format!("job {id} was already cancelled: nothing to do")
        }
        CancelOutcome::AlreadyFinished => format!(
            "job {id} already finished ({}): nothing to cancel",
            job_status_name(report.status)
        ),
    }
}

/// `sosw cancel <job>`.
pub async fn cancel(global: &Global, args: CancelArgs) -> CliResult {
    let config = orchestrator_config(global).await?;
    let store = backend(global, &config.task_config, false).await?;
    let (notifier, recipient) = notifier(global).await?;
    let mut queue = NotificationQueue::new(notifier, recipient);
    let now = Utc::now().timestamp();
    let report = cancel::cancel_job(
        store.tasks.as_ref(),
        store.jobs.as_ref(),
        &mut queue,
        &args.job_id,
        now,
    )
    .await
    .map_err(|err| CliError::new(format!("{err} (in {})", store.name)))?;
    let sent = queue.commit().await;
    if args.output.json() {
        json_line(&report)?;
    } else {
        let id = &report.job_id;
        say!("{}", describe(&report, &store.name));
        if report.outcome == CancelOutcome::Cancelled && !report.notified.is_empty() {
            say!("notified  {}", report.notified.join(", "));
        }
        if report.outcome != CancelOutcome::AlreadyFinished && report.still_scheduling {
            tell!(
                "warning: job {id} is still being scheduled; run `sosw cancel {id}` again once its \
                 scheduler has stopped, to close the tasks it writes after this"
            );
        }
    }
    if let Err(err) = sent {
        return Err(CliError::new(format!(
            "job {} is cancelled, but its requesters' messages could not all be sent: {err}",
            report.job_id
        )));
    }
    Ok(ExitCode::SUCCESS)
}

fn time(secs: i64) -> String {
    DateTime::<Utc>::from_timestamp(secs, 0).map_or_else(
        || secs.to_string(),
        |t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    )
}

/// `sosw pause <labourer>`.
pub async fn pause(global: &Global, args: LabourerArgs) -> CliResult {
    let config = orchestrator_config(global).await?;
    let store = backend(global, &config.task_config, true).await?;
    let labourers = labourer_ids(&config);
    let id = &args.labourer;
    if !labourers.contains(id) {
        return Err(CliError::new(format!(
            "`{id}` is not a configured labourer (configured: {}); `sosw queue` lists them",
            if labourers.is_empty() {
                "none".to_owned()
            } else {
                labourers.join(", ")
            }
        )));
    }
    let now = Utc::now().timestamp();
    if cancel::pause_labourer(store.control.as_ref(), id, now).await? {
        say!(
            "paused labourer {id} ({}): orchestrators invoke none of its tasks from their next round \
             on; `sosw resume {id}` undoes it",
            store.name
        );
    } else {
        let since = cancel::paused_labourers(store.control.as_ref())
            .await?
            .into_iter()
            .find(|p| &p.labourer_id == id)
            .map_or_else(String::new, |p| format!(" since {}", time(p.paused_at)));
        say!("labourer {id} was already paused{since}: nothing to do");
    }
    Ok(ExitCode::SUCCESS)
}

/// `sosw resume <labourer>`.
pub async fn resume(global: &Global, args: LabourerArgs) -> CliResult {
    let config = orchestrator_config(global).await?;
    let store = backend(global, &config.task_config, true).await?;
    let id = &args.labourer;
    if cancel::resume_labourer(store.control.as_ref(), id).await? {
        say!(
            "resumed labourer {id} ({}): orchestrators invoke its tasks again from their next round on",
            store.name
        );
        return Ok(ExitCode::SUCCESS);
    }
    let labourers = labourer_ids(&config);
    if !labourers.contains(id) {
        return Err(CliError::new(format!(
            "`{id}` is not a configured labourer (configured: {}) and is not paused; `sosw queue` \
             lists them",
            if labourers.is_empty() {
                "none".to_owned()
            } else {
                labourers.join(", ")
            }
        )));
    }
    say!("labourer {id} was not paused: nothing to do");
    Ok(ExitCode::SUCCESS)
}
