//! Job counters follow each task that closes, the job's record ends finished with the right counts,
//! and every requester hears about it exactly once, whoever closes the last task (the worker assistant
//! or the scavenger) and however reports race.

use crate::worker_support;

use std::sync::Arc;

use serde_json::{Value, json};
use sosw::essentials::worker_assistant::AssistantRequest;
use sosw::notify::Notification;
use sosw::notify::jobs::JOB_FINISHED_SUBJECT;
use sosw::processor::Stats;
use sosw::store::{JobCounts, JobStatus, JobStore};
use sosw::worker::HandleEvent;
use sosw::worker::{WorkError, WorkerContext, worker_fn};
use worker_support::jobs::running_job;
use worker_support::{Backend, DEAD_TOPIC, Harness, NOW, event, on_every_store};

const TEAM_A: &str = "arn:aws:sns:us-east-1:123456789012:team-a";
const TEAM_B: &str = "arn:aws:sns:us-east-1:123456789012:team-b";

fn settings() -> Value {
    json!({"duration": 60, "cooldown": 30, "max_attempts": 2, "retry": {"policy": "linear"}})
}

/// A harness on `backend` keeping job counters in the store's own job records, with job `job_id`
/// running; `None` to skip.
async fn harness_with_job(
    backend: Backend,
    job_id: &str,
    total: u64,
    requesters: &[&str],
) -> Option<(Harness, Arc<dyn JobStore>)> {
    let h = Harness::on(backend, settings()).await?.with_jobs();
    let jobs = h.job_store.clone();
    jobs.create_job(&running_job(job_id, "w1", total, requesters))
        .await
        .expect("job created");
    Some((h, jobs))
}

fn job_messages(sent: &[Notification]) -> Vec<&Notification> {
    sent.iter()
        .filter(|n| n.subject == JOB_FINISHED_SUBJECT)
        .collect()
}

async fn ok(_p: Value, _ctx: WorkerContext) -> Result<Value, WorkError> {
    Ok(Value::Null)
}

async fn a_job_ends_finished_and_each_of_two_requesters_hears_once(backend: Backend) {
    let Some((h, jobs)) = harness_with_job(backend, "job-1", 3, &[TEAM_A, TEAM_B]).await else {
        return;
    };
    let tasks = h.enqueue("job-1", 3, Some("job-1")).await;
    let runner = h.runner(worker_fn(ok), 1);
    let mut payloads = Vec::new();
    for (i, t) in tasks.iter().enumerate() {
        h.clock.advance_secs(1);
        let claimed = h.claim(&t.task_id).await;
        payloads.push(claimed.worker_payload());
        runner
            .handle(event(claimed.worker_payload()))
            .await
            .expect("done");
        let record = jobs.get_job("job-1").await.expect("get").expect("job");
        assert_eq!(
            record.counts.completed,
            i as u64 + 1,
            "counted as each task closes"
        );
    }
    // Every task reported again: duplicates count nothing and notify no one.
    for p in payloads {
        runner.handle(event(p)).await.expect("duplicate delivery");
    }
    let record = jobs.get_job("job-1").await.expect("get").expect("job");
    assert_eq!(record.status, JobStatus::Finished);
    assert_eq!(
        record.counts,
        JobCounts {
            completed: 3,
            failed: 0,
            dead: 0,
            cancelled: 0,
        }
    );
    assert_eq!(record.finished_at, Some(NOW + 3));

    let sent = h.notes.sent();
    let messages = job_messages(&sent);
    assert_eq!(messages.len(), 2, "{messages:?}");
    for requester in [TEAM_A, TEAM_B] {
        let to_requester: Vec<_> = messages
            .iter()
            .filter(|n| n.recipient == requester)
            .collect();
        assert_eq!(to_requester.len(), 1, "{requester} hears exactly once");
        let body: Value = serde_json::from_str(&to_requester[0].message).expect("JSON body");
        assert_eq!(body["job_id"], "job-1");
        assert_eq!(body["status"], "finished");
        assert_eq!(body["completed"], 3);
        assert_eq!(to_requester[0].attributes["requester"], requester);
    }
}

async fn a_job_with_a_dead_task_finishes_with_failures_and_counts_every_outcome(backend: Backend) {
    let Some((h, jobs)) = harness_with_job(backend, "job-2", 2, &[TEAM_A, "alice"]).await else {
        return;
    };
    let tasks = h.enqueue("job-2", 2, Some("job-2")).await;
    let a = h.assistant(1);
    h.claim(&tasks[0].task_id).await;
    a.handle(
        &AssistantRequest::completed(tasks[0].task_id.clone()),
        &mut Stats::new(),
    )
    .await
    .expect("completed");
    h.claim(&tasks[1].task_id).await;
    a.handle(
        &AssistantRequest::failed(tasks[1].task_id.clone(), true),
        &mut Stats::new(),
    )
    .await
    .expect("failed once");
    // Back from retry (linear: 60 s, the duration) and failing for good on its second and last attempt.
    h.clock.advance_secs(900);
    h.scavenger(1).run().await;
    h.claim(&tasks[1].task_id).await;
    let reply = a
        .handle(
            &AssistantRequest::failed(tasks[1].task_id.clone(), true),
            &mut Stats::new(),
        )
        .await
        .expect("failed twice");
    assert!(reply.job_finished);

    let record = jobs.get_job("job-2").await.expect("get").expect("job");
    assert_eq!(record.status, JobStatus::FinishedWithFailures);
    assert_eq!(
        record.counts,
        JobCounts {
            completed: 1,
            failed: 2,
            dead: 1,
            cancelled: 0,
        }
    );
    let sent = h.notes.sent();
    let messages = job_messages(&sent);
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].recipient, TEAM_A);
    assert_eq!(
        messages[1].recipient, DEAD_TOPIC,
        "a plain requester goes to the default topic"
    );
    assert_eq!(messages[1].attributes["requester"], "alice");
}

async fn the_scavenger_finishes_a_job_whose_last_task_expires_for_good(backend: Backend) {
    let Some((h, jobs)) = harness_with_job(backend, "job-3", 1, &[TEAM_B]).await else {
        return;
    };
    let task = &h.enqueue("job-3", 1, Some("job-3")).await[0];
    for _ in 0..2 {
        h.claim(&task.task_id).await;
        h.clock.advance_secs(90); // expired
        h.scavenger(1).run().await; // retry after the first, dead after the second
        h.clock.advance_secs(900); // past the linear delay (60 s x attempts)
        h.scavenger(1).run().await; // back in the queue after the first
    }
    let record = jobs.get_job("job-3").await.expect("get").expect("job");
    assert_eq!(record.status, JobStatus::FinishedWithFailures);
    assert_eq!(
        record.counts,
        JobCounts {
            completed: 0,
            failed: 0,
            dead: 1,
            cancelled: 0,
        }
    );
    let sent = h.notes.sent();
    assert_eq!(job_messages(&sent).len(), 1);
    assert_eq!(
        sent.iter()
            .filter(|n| n.message.contains("Closing dead task"))
            .count(),
        1
    );
}

async fn racing_last_reports_finish_the_job_once(backend: Backend) {
    let Some((h, jobs)) = harness_with_job(backend, "job-4", 2, &[TEAM_A, TEAM_B]).await else {
        return;
    };
    let tasks = h.enqueue("job-4", 2, Some("job-4")).await;
    for t in &tasks {
        h.claim(&t.task_id).await;
    }
    let (a1, a2) = (h.assistant(1), h.assistant(2));
    let (q1, q2) = (
        AssistantRequest::completed(tasks[0].task_id.clone()),
        AssistantRequest::completed(tasks[1].task_id.clone()),
    );
    let (mut s1, mut s2) = (Stats::new(), Stats::new());
    let (r1, r2) = tokio::join!(a1.handle(&q1, &mut s1), a2.handle(&q2, &mut s2));
    let finished = [r1.expect("first"), r2.expect("second")]
        .iter()
        .filter(|r| r.job_finished)
        .count();
    assert_eq!(finished, 1, "exactly one report finishes the job");
    let record = jobs.get_job("job-4").await.expect("get").expect("job");
    assert_eq!(record.status, JobStatus::Finished);
    assert_eq!(job_messages(&h.notes.sent()).len(), 2, "one per requester");
}

async fn tasks_without_a_job_record_close_normally(backend: Backend) {
    let Some((h, jobs)) = harness_with_job(backend, "job-5", 1, &[TEAM_A]).await else {
        return;
    };
    let task = &h.enqueue("no-job", 1, Some("job-unknown")).await[0];
    let claimed = h.claim(&task.task_id).await;
    h.runner(worker_fn(ok), 1)
        .handle(event(claimed.worker_payload()))
        .await
        .expect("done");
    let record = jobs.get_job("job-5").await.expect("get").expect("job");
    assert_eq!(record.counts, JobCounts::default());
    assert!(h.notes.sent().is_empty());
}

on_every_store!(
    a_job_ends_finished_and_each_of_two_requesters_hears_once,
    a_job_with_a_dead_task_finishes_with_failures_and_counts_every_outcome,
    the_scavenger_finishes_a_job_whose_last_task_expires_for_good,
    racing_last_reports_finish_the_job_once,
    tasks_without_a_job_record_close_normally,
);
