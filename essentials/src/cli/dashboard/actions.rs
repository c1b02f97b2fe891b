//! What the dashboard's buttons do, in one place: each function takes the store and the target and
//! returns the sentence the page shows, or an error.
//!
//! Redrive runs sosw's redrive ([`sosw::essentials::redrive`]), as `sosw redrive` does. Cancelling a
//! job and pausing or resuming a labourer are not in this build yet: those functions fail with
//! [`NOT_AVAILABLE`], and the page shows that error (the lead wires them to `sosw cancel`, `sosw pause`
//! and `sosw resume`'s core functions).

use chrono::Utc;
use sosw::essentials::redrive::{RedriveReport, RedriveTarget, redrive};
use sosw::query::{self, TaskStatus};
use sosw::task::TaskId;

use super::super::stores::Backend;
use super::super::{CliError, CliResult};

/// What an action not in this build says.
pub(crate) const NOT_AVAILABLE: &str = "not available in this build yet";

/// Most dead tasks one press of a redrive button sends back (as `sosw redrive`'s default --limit).
const REDRIVE_LIMIT: usize = 10_000;

fn not_available(what: &str) -> CliError {
    CliError::new(format!("{what}: {NOT_AVAILABLE}"))
}

/// The sentence for what a redrive did.
fn redriven(report: &RedriveReport, of: &str) -> String {
    let mut text = format!(
        "{} dead task(s) of {of} back in the queue",
        report.redriven.len()
    );
    for (job, n) in &report.jobs_reopened {
        text.push_str(&format!("; job {job} reopened ({n} task(s))"));
    }
    if report.conflicts > 0 {
        text.push_str(&format!(
            "; {} task(s) changed while read (another redrive?)",
            report.conflicts
        ));
    }
    for warning in &report.warnings {
        text.push_str(&format!("; warning: {warning}"));
    }
    for (id, reason) in &report.refused {
        text.push_str(&format!("; refused {id}: {reason}"));
    }
    text
}

/// Every dead task of `labourer_id` back to the queue, their jobs reopened.
pub(crate) async fn redrive_labourer(store: &Backend, labourer_id: &str) -> CliResult<String> {
    let target = RedriveTarget::Labourer(labourer_id.to_owned());
    let report = redrive(
        store.tasks.as_ref(),
        Some(store.jobs.as_ref()),
        &target,
        Utc::now().timestamp(),
        REDRIVE_LIMIT,
    )
    .await?;
    Ok(redriven(&report, &format!("labourer {labourer_id}")))
}

/// Every dead task of the job `job_id` back to the queue, the job reopened.
pub(crate) async fn redrive_job(store: &Backend, job_id: &str) -> CliResult<String> {
    let Some(job) = store.jobs.get_job(job_id).await? else {
        return Err(CliError::new(format!(
            "no job `{job_id}` in {}",
            store.name
        )));
    };
    let dead: Vec<TaskId> = query::job_failures(store.tasks.as_ref(), &job, REDRIVE_LIMIT)
        .await?
        .into_iter()
        .filter(|task| task.status == TaskStatus::Dead)
        .map(|task| TaskId::new(task.task_id))
        .collect::<Result<_, _>>()?;
    let mut total = RedriveReport::default();
    for id in dead {
        let report = redrive(
            store.tasks.as_ref(),
            Some(store.jobs.as_ref()),
            &RedriveTarget::Task(id),
            Utc::now().timestamp(),
            1,
        )
        .await?;
        total.redriven.extend(report.redriven);
        total.conflicts += report.conflicts;
        for (job, n) in report.jobs_reopened {
            *total.jobs_reopened.entry(job).or_default() += n;
        }
        total.warnings.extend(report.warnings);
        total.refused.extend(report.refused);
    }
    Ok(redriven(&total, &format!("job {job_id}")))
}

/// Cancels the job `job_id`: its queued and waiting tasks close as cancelled. Not in this build yet.
pub(crate) async fn cancel_job(_store: &Backend, job_id: &str) -> CliResult<String> {
    Err(not_available(&format!("cancelling job {job_id}")))
}

/// Pauses `labourer_id`: orchestrators invoke none of its tasks until it is resumed. Not in this
/// build yet.
pub(crate) async fn pause_labourer(_store: &Backend, labourer_id: &str) -> CliResult<String> {
    Err(not_available(&format!("pausing {labourer_id}")))
}

/// Resumes a paused `labourer_id`. Not in this build yet.
pub(crate) async fn resume_labourer(_store: &Backend, labourer_id: &str) -> CliResult<String> {
    Err(not_available(&format!("resuming {labourer_id}")))
}

/// Whether `labourer_id` is paused. Not in this build yet: the page shows the error in the paused
/// column.
pub(crate) async fn is_paused(_store: &Backend, _labourer_id: &str) -> CliResult<bool> {
    Err(CliError::new(NOT_AVAILABLE))
}
