//! What the dashboard's buttons do, in one place: each function takes the store and the target and
//! returns the sentence the page shows, or an error.
//!
//! Redrive runs sosw's redrive ([`sosw::essentials::redrive`]) as `sosw redrive` does; cancel, pause
//! and resume run [`sosw::essentials::cancel`]'s functions as `sosw cancel`, `sosw pause` and
//! `sosw resume` do.

use std::sync::Arc;

use chrono::Utc;
use sosw::essentials::cancel;
use sosw::essentials::redrive::{RedriveReport, RedriveTarget, redrive};
use sosw::notify::{NotificationQueue, Notifier};

use super::super::CliResult;
use super::super::control::describe;
use super::super::stores::Backend;

/// Most dead tasks one press of a redrive button sends back (as `sosw redrive`'s default --limit).
const REDRIVE_LIMIT: usize = 10_000;

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
    redrive_and_say(store, &target, &format!("labourer {labourer_id}")).await
}

/// Every dead task of the job `job_id` back to the queue, the job reopened.
pub(crate) async fn redrive_job(store: &Backend, job_id: &str) -> CliResult<String> {
    let target = RedriveTarget::Job(job_id.to_owned());
    redrive_and_say(store, &target, &format!("job {job_id}")).await
}

/// Up to [`REDRIVE_LIMIT`] dead tasks of `target` back to the queue; the sentence for it.
async fn redrive_and_say(store: &Backend, target: &RedriveTarget, of: &str) -> CliResult<String> {
    let report = redrive(
        store.tasks.as_ref(),
        Some(store.jobs.as_ref()),
        target,
        Utc::now().timestamp(),
        REDRIVE_LIMIT,
    )
    .await?;
    Ok(redriven(&report, of))
}

/// Cancels the job `job_id` as `sosw cancel` does: its queued and waiting tasks close as cancelled,
/// its requesters are told through `notifier`.
pub(crate) async fn cancel_job(
    store: &Backend,
    notifier: &(Arc<dyn Notifier>, Option<String>),
    job_id: &str,
) -> CliResult<String> {
    let mut queue = NotificationQueue::new(Arc::clone(&notifier.0), notifier.1.clone());
    let report = cancel::cancel_job(
        store.tasks.as_ref(),
        store.jobs.as_ref(),
        &mut queue,
        job_id,
        Utc::now().timestamp(),
    )
    .await?;
    let mut text = describe(&report, &store.name);
    if let Err(err) = queue.commit().await {
        text.push_str(&format!(
            "; warning: its requesters' messages could not all be sent: {err}"
        ));
    }
    Ok(text)
}

/// Pauses `labourer_id` as `sosw pause` does: orchestrators invoke none of its tasks until it is
/// resumed.
pub(crate) async fn pause_labourer(store: &Backend, labourer_id: &str) -> CliResult<String> {
    Ok(
        if cancel::pause_labourer(store.control.as_ref(), labourer_id, Utc::now().timestamp())
            .await?
        {
            format!(
                "paused labourer {labourer_id}: orchestrators invoke none of its tasks from their next round on"
            )
        } else {
            format!("labourer {labourer_id} was already paused: nothing to do")
        },
    )
}

/// Resumes a paused `labourer_id` as `sosw resume` does.
pub(crate) async fn resume_labourer(store: &Backend, labourer_id: &str) -> CliResult<String> {
    Ok(
        if cancel::resume_labourer(store.control.as_ref(), labourer_id).await? {
            format!(
                "resumed labourer {labourer_id}: orchestrators invoke its tasks again from their next round on"
            )
        } else {
            format!("labourer {labourer_id} was not paused: nothing to do")
        },
    )
}
