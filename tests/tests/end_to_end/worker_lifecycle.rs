//! A task's life through a Rust worker and the worker assistant, on the SQLite store: completion,
//! failures (retryable, not retryable, last attempt), retries back to the queue, and reports that come
//! twice or too late. Handlers are called as Lambda would call them.

use crate::worker_support;

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use sosw::Result;
use sosw::essentials::worker_assistant::{AssistantOutcome, AssistantRequest};
use sosw::processor::{ProcessorService, Stats};
use sosw::task::{Jitter, RetryPolicy};
use sosw::worker::HandleEvent;
use sosw::worker::{Reporter, WorkError, WorkerContext, WorkerRunner, worker_fn};
use worker_support::{Backend, DEAD_TOPIC, Harness, NOW, event, on_every_store};

#[derive(Deserialize)]
struct Words {
    words: Vec<String>,
}

/// Counts the words of its payload; records the count as a stat and returns it as the result.
async fn count_words(payload: Words, ctx: WorkerContext) -> Result<Value, WorkError> {
    ctx.add("words", payload.words.len() as u64);
    Ok(json!({"count": payload.words.len()}))
}

/// Always fails, retryably or not.
fn failing(
    retryable: bool,
) -> impl Fn(Words, WorkerContext) -> std::future::Ready<Result<Value, WorkError>> {
    move |_payload, ctx| {
        ctx.inc("attempted");
        std::future::ready(Err(if retryable {
            WorkError::retryable("upstream throttled")
        } else {
            WorkError::non_retryable("the payload names a file that does not exist")
        }))
    }
}

fn labourer(max_attempts: u32) -> Value {
    json!({
        "duration": 60, "cooldown": 30, "max_attempts": max_attempts,
        "retry": {"policy": "exponential", "base_secs": 10, "cap_secs": 100}
    })
}

async fn a_completed_task_is_archived_at_once_with_its_stats_and_result(backend: Backend) {
    let Some(h) = Harness::on(backend, labourer(3)).await else {
        return;
    };
    let task = &h.enqueue("done", 1, None).await[0];
    let claimed = h.claim(&task.task_id).await;
    h.clock.advance_secs(5);
    let runner = h.runner(worker_fn(count_words), 1);
    let out = runner
        .handle(event(claimed.worker_payload()))
        .await
        .expect("the worker succeeds");
    assert_eq!(out, json!({"count": 2}));

    assert!(
        h.store
            .get_task(&task.task_id)
            .await
            .expect("lookup")
            .is_none()
    );
    let closed = h
        .store
        .get_closed_task(&task.task_id)
        .await
        .expect("lookup")
        .expect("archived");
    assert_eq!(closed.extra["labourer_id_task_status"], json!("w1_1"));
    assert_eq!(closed.completed_at, Some(NOW + 5));
    assert_eq!(closed.closed_at, Some(NOW + 5));
    assert_eq!(closed.extra["stat_words"], json!(2));
    assert_eq!(closed.extra["result_count"], json!(2));
    assert_eq!(closed.attempts, 1);
    assert_eq!(closed.payload, task.payload, "the payload survives as JSON");
    assert_eq!(runner.lifetime_stats().get("total_tasks_succeeded"), 1);
}

async fn with_archive_completed_off_the_scavenger_archives_the_completed_task(backend: Backend) {
    let Some(mut h) = Harness::on(backend, labourer(3)).await else {
        return;
    };
    h.assistant_extra = json!({"archive_completed": false});
    let task = &h.enqueue("later", 1, None).await[0];
    let claimed = h.claim(&task.task_id).await;
    h.runner(worker_fn(count_words), 1)
        .handle(event(claimed.worker_payload()))
        .await
        .expect("the worker succeeds");
    let live = h
        .store
        .get_task(&task.task_id)
        .await
        .expect("lookup")
        .expect("still live until the scavenger runs");
    assert_eq!(live.completed_at, Some(NOW));

    h.clock.advance_secs(60);
    let report = h.scavenger(1).run().await;
    assert_eq!(report.labourers["w1"].archived, 1);
    let closed = h
        .store
        .get_closed_task(&task.task_id)
        .await
        .expect("lookup")
        .expect("archived");
    assert_eq!(closed.extra["labourer_id_task_status"], json!("w1_1"));
    assert_eq!(closed.closed_at, Some(NOW + 60));
}

async fn a_retryable_failure_goes_to_retry_at_once_with_the_seeded_exponential_delay(
    backend: Backend,
) {
    let Some(h) = Harness::on(backend, labourer(3)).await else {
        return;
    };
    let task = &h.enqueue("flaky", 1, None).await[0];
    let claimed = h.claim(&task.task_id).await;
    let err = h
        .runner(worker_fn(failing(true)), 42)
        .handle(event(claimed.worker_payload()))
        .await
        .expect_err("the work failed");
    assert!(
        err.is_retryable() && err.message().contains("upstream throttled"),
        "{err}"
    );

    let retry = h
        .store
        .get_retry_task("w1", &task.task_id)
        .await
        .expect("lookup")
        .expect("in the retry table");
    let policy = RetryPolicy::Exponential {
        base_secs: 10,
        cap_secs: 100,
    };
    let expected_delay = policy.delay_secs(1, 60, &mut Jitter::seeded(42)) as i64;
    assert_eq!(retry.desired_launch_time, Some(NOW + expected_delay));
    assert!(
        (0..=10).contains(&expected_delay),
        "first window is base_secs"
    );
    assert_eq!(retry.failed_attempts, Some(1));
    assert_eq!(retry.extra["result_error"], json!("upstream throttled"));
    assert_eq!(retry.extra["stat_attempted"], json!(1));
    assert!(
        h.store
            .get_task(&task.task_id)
            .await
            .expect("lookup")
            .is_none()
    );
}

async fn a_retried_task_comes_back_ahead_of_the_queue_head_and_completes(backend: Backend) {
    let Some(h) = Harness::on(backend, labourer(3)).await else {
        return;
    };
    let tasks = h.enqueue("again", 3, None).await;
    let first = h.claim(&tasks[0].task_id).await;
    h.runner(worker_fn(failing(true)), 3)
        .handle(event(first.worker_payload()))
        .await
        .expect_err("fails once");

    h.clock.advance_secs(11); // past any first-attempt delay (at most base_secs = 10)
    let report = h.scavenger(3).run().await;
    assert_eq!(report.labourers["w1"].requeued, 1);
    let back = h
        .store
        .get_task(&tasks[0].task_id)
        .await
        .expect("lookup")
        .expect("back in the queue");
    assert_eq!(
        back.greenfield,
        tasks[1].greenfield - 1,
        "just ahead of the head"
    );
    assert_eq!(back.attempts, 1, "attempts survive the retry");

    let second = h.claim(&tasks[0].task_id).await;
    assert_eq!(second.worker_payload()["attempts"], json!(1));
    h.runner(worker_fn(count_words), 3)
        .handle(event(second.worker_payload()))
        .await
        .expect("succeeds the second time");
    let closed = h
        .store
        .get_closed_task(&tasks[0].task_id)
        .await
        .expect("lookup")
        .expect("archived");
    assert_eq!(closed.attempts, 2);
    assert_eq!(closed.extra["labourer_id_task_status"], json!("w1_1"));
}

async fn a_retryable_failure_on_the_last_attempt_is_dead_with_an_alert(backend: Backend) {
    let Some(h) = Harness::on(backend, labourer(1)).await else {
        return;
    };
    let task = &h.enqueue("last", 1, None).await[0];
    let claimed = h.claim(&task.task_id).await;
    h.runner(worker_fn(failing(true)), 1)
        .handle(event(claimed.worker_payload()))
        .await
        .expect_err("fails");
    let closed = h
        .store
        .get_closed_task(&task.task_id)
        .await
        .expect("lookup")
        .expect("dead letters are archived");
    assert_eq!(closed.extra["labourer_id_task_status"], json!("w1_0"));
    assert_eq!(closed.extra["result_error"], json!("upstream throttled"));
    let sent = h.notes.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].recipient, DEAD_TOPIC);
    assert_eq!(sent[0].subject, "``sosw`` Dead Task");
    assert_eq!(
        sent[0].message,
        format!("Closing dead task: {} ", task.task_id)
    );
}

async fn a_non_retryable_failure_is_dead_at_once_with_its_reason(backend: Backend) {
    let Some(h) = Harness::on(backend, labourer(3)).await else {
        return;
    };
    let task = &h.enqueue("hopeless", 1, None).await[0];
    let claimed = h.claim(&task.task_id).await;
    let err = h
        .runner(worker_fn(failing(false)), 1)
        .handle(event(claimed.worker_payload()))
        .await
        .expect_err("fails");
    assert!(!err.is_retryable(), "{err}");
    let closed = h
        .store
        .get_closed_task(&task.task_id)
        .await
        .expect("lookup")
        .expect("dead at the first attempt");
    assert_eq!(closed.attempts, 1);
    assert_eq!(closed.extra["labourer_id_task_status"], json!("w1_0"));
    assert_eq!(
        closed.extra["result_error"],
        json!("the payload names a file that does not exist")
    );
    assert_eq!(h.store.retry_length("w1").await.expect("count"), 0);
    assert_eq!(h.notes.sent().len(), 1);
}

async fn a_payload_that_does_not_fit_the_worker_is_a_non_retryable_death(backend: Backend) {
    let Some(h) = Harness::on(backend, labourer(3)).await else {
        return;
    };
    let task = &h.enqueue("misfit", 1, None).await[0];
    let claimed = h.claim(&task.task_id).await;
    let mut payload = claimed.worker_payload();
    payload["words"] = json!("not a list");
    let err = h
        .runner(worker_fn(count_words), 1)
        .handle(event(payload))
        .await
        .expect_err("does not fit");
    assert!(
        !err.is_retryable() && err.message().contains("does not fit"),
        "{err}"
    );
    let closed = h
        .store
        .get_closed_task(&task.task_id)
        .await
        .expect("lookup")
        .expect("dead");
    assert_eq!(closed.extra["labourer_id_task_status"], json!("w1_0"));
}

async fn duplicate_and_late_reports_change_nothing(backend: Backend) {
    let Some(h) = Harness::on(backend, labourer(3)).await else {
        return;
    };
    let service = ProcessorService::new(h.assistant(1), "sosw_worker_assistant");
    let tasks = h.enqueue("dup", 2, None).await;
    let id = &tasks[0].task_id;
    h.claim(id).await;
    let completed = AssistantRequest::completed(id.clone()).to_event();
    let first = service
        .handle(event(completed.clone()))
        .await
        .expect("first");
    assert_eq!(first["outcome"], "completed");
    let closed_before = h.store.get_closed_task(id).await.expect("lookup");

    h.clock.advance_secs(30);
    for late in [
        completed.clone(),
        AssistantRequest::failed(id.clone(), true).to_event(),
        AssistantRequest::failed(id.clone(), false).to_event(),
    ] {
        let reply = service.handle(event(late)).await.expect("late report");
        assert_eq!(reply["outcome"], "not_found", "{reply}");
    }
    assert_eq!(
        h.store.get_closed_task(id).await.expect("lookup"),
        closed_before
    );
    assert!(
        h.store.get_task(id).await.expect("lookup").is_none(),
        "no orphan row (B10)"
    );

    // With archiving off, a second completion of a completed task is a duplicate.
    let Some(mut h2) = Harness::on(backend, labourer(3)).await else {
        return;
    };
    h2.assistant_extra = json!({"archive_completed": false});
    let t = &h2.enqueue("dup2", 1, None).await[0];
    h2.claim(&t.task_id).await;
    let a = h2.assistant(1);
    let req = AssistantRequest::completed(t.task_id.clone());
    a.handle(&req, &mut Stats::new()).await.expect("first");
    let live_before = h2.store.get_task(&t.task_id).await.expect("lookup");
    h2.clock.advance_secs(10);
    let mut stats = Stats::new();
    let reply = a.handle(&req, &mut stats).await.expect("second");
    assert_eq!(reply.outcome, AssistantOutcome::Duplicate);
    assert_eq!(stats.get("duplicate_reports"), 1);
    assert_eq!(
        h2.store.get_task(&t.task_id).await.expect("lookup"),
        live_before
    );
    assert!(h.notes.sent().is_empty() && h2.notes.sent().is_empty());
}

async fn a_completion_for_a_task_waiting_for_retry_changes_nothing(backend: Backend) {
    let Some(h) = Harness::on(backend, labourer(3)).await else {
        return;
    };
    let task = &h.enqueue("waiting", 1, None).await[0];
    h.claim(&task.task_id).await;
    let a = h.assistant(5);
    let failed = a
        .handle(
            &AssistantRequest::failed(task.task_id.clone(), true),
            &mut Stats::new(),
        )
        .await
        .expect("failure");
    assert!(matches!(
        failed.outcome,
        AssistantOutcome::RetryScheduled { .. }
    ));
    let retry_before = h
        .store
        .get_retry_task("w1", &task.task_id)
        .await
        .expect("lookup");
    let reply = a
        .handle(
            &AssistantRequest::completed(task.task_id.clone()),
            &mut Stats::new(),
        )
        .await
        .expect("late completion");
    assert_eq!(reply.outcome, AssistantOutcome::NotFound);
    assert_eq!(
        h.store
            .get_retry_task("w1", &task.task_id)
            .await
            .expect("lookup"),
        retry_before
    );
    assert!(
        h.store
            .get_task(&task.task_id)
            .await
            .expect("lookup")
            .is_none()
    );
}

async fn a_failure_report_about_an_older_invocation_is_recorded_but_moves_nothing(
    backend: Backend,
) {
    let Some(h) = Harness::on(backend, labourer(3)).await else {
        return;
    };
    let task = &h.enqueue("stale", 1, None).await[0];
    h.claim(&task.task_id).await; // attempt 1 (its report is lost)
    h.clock.advance_secs(100); // expired: window is 90 s
    h.scavenger(1).run().await;
    h.clock.advance_secs(200);
    h.scavenger(1).run().await; // back in the queue
    h.claim(&task.task_id).await; // attempt 2 running
    let mut late = AssistantRequest::failed(task.task_id.clone(), false);
    late.attempt = Some(1);
    let reply = h
        .assistant(1)
        .handle(&late, &mut Stats::new())
        .await
        .expect("late");
    assert_eq!(reply.outcome, AssistantOutcome::FailureRecorded);
    let live = h
        .store
        .get_task(&task.task_id)
        .await
        .expect("lookup")
        .expect("still running its second attempt");
    assert_eq!(live.attempts, 2);
    assert_eq!(live.failed_attempts, Some(1));
    assert!(
        h.store
            .get_closed_task(&task.task_id)
            .await
            .expect("lookup")
            .is_none()
    );
}

async fn possibly_duplicate_is_set_when_the_store_shows_the_task_closed(backend: Backend) {
    let Some(h) = Harness::on(backend, labourer(3)).await else {
        return;
    };
    let task = &h.enqueue("again", 1, None).await[0];
    let claimed = h.claim(&task.task_id).await;
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let runner = h.runner(
        worker_fn(move |_p: Value, ctx: WorkerContext| {
            log.lock()
                .expect("lock")
                .push((ctx.possibly_duplicate(), ctx.attempt()));
            async { Ok::<_, WorkError>(Value::Null) }
        }),
        1,
    );
    runner
        .handle(event(claimed.worker_payload()))
        .await
        .expect("first delivery");
    let closed = h
        .store
        .get_closed_task(&task.task_id)
        .await
        .expect("lookup");
    runner
        .handle(event(claimed.worker_payload()))
        .await
        .expect("second delivery");
    assert_eq!(*seen.lock().expect("lock"), vec![(false, 1), (true, 1)]);
    assert_eq!(
        h.store
            .get_closed_task(&task.task_id)
            .await
            .expect("lookup"),
        closed
    );
}

/// A reporter whose deliveries always fail.
struct Unreachable;

#[async_trait]
impl Reporter for Unreachable {
    async fn report(&self, _request: &AssistantRequest) -> Result<()> {
        Err(sosw::Error::service(
            "Lambda",
            "Invoke",
            true,
            "connection refused",
        ))
    }
}

async fn a_report_that_cannot_be_delivered_fails_the_invocation_and_keeps_the_task(
    backend: Backend,
) {
    let Some(h) = Harness::on(backend, labourer(3)).await else {
        return;
    };
    let task = &h.enqueue("lost", 1, None).await[0];
    let claimed = h.claim(&task.task_id).await;
    let runner = WorkerRunner::new(worker_fn(count_words), Arc::new(Unreachable));
    let err = runner
        .handle(event(claimed.worker_payload()))
        .await
        .expect_err("the report is not swallowed (B23)");
    assert!(err.is_retryable());
    assert!(err.message().contains("connection refused"), "{err}");
    assert_eq!(runner.lifetime_stats().get("total_reports_failed"), 1);
    let live = h
        .store
        .get_task(&task.task_id)
        .await
        .expect("lookup")
        .expect("the task is still there: it expires and retries");
    assert_eq!(live.completed_at, None);
}

#[tokio::test]
async fn an_invocation_outside_sosw_runs_without_a_report() {
    let runner = WorkerRunner::new(worker_fn(count_words), Arc::new(Unreachable));
    let out = runner
        .handle(event(json!({"words": ["a", "b", "c"]})))
        .await
        .expect("no task_id: nothing to report");
    assert_eq!(out, json!({"count": 3}));
}

#[tokio::test]
async fn a_payload_stored_in_the_blob_store_reaches_the_worker_resolved() {
    let dir = std::env::temp_dir().join(format!("sosw-payload-ref-{}", std::process::id()));
    let blobs = Arc::new(sosw::blob::DirBlobStore::new(&dir).expect("a blob directory"));
    let pointer =
        sosw::blob::store_payload(blobs.as_ref(), "big/1.json", &json!({"words": ["a", "b"]}))
            .await
            .expect("stored");
    let runner = WorkerRunner::new(worker_fn(count_words), Arc::new(Unreachable)).with_blobs(blobs);
    let out = runner
        .handle(event(pointer))
        .await
        .expect("resolved and run");
    assert_eq!(out, json!({"count": 2}));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_payload_pointer_without_a_blob_store_is_a_clear_non_retryable_error() {
    let runner = WorkerRunner::new(worker_fn(count_words), Arc::new(Unreachable));
    let err = runner
        .handle(event(sosw::blob::payload_ref("big/2.json")))
        .await
        .expect_err("cannot be resolved");
    assert!(!err.is_retryable(), "{err}");
    assert!(
        err.message().contains("payload_bucket") && err.message().contains("big/2.json"),
        "{err}"
    );
}

#[tokio::test]
async fn malformed_task_fields_are_non_retryable_errors() {
    let runner = WorkerRunner::new(worker_fn(count_words), Arc::new(Unreachable));
    for bad in [json!("text"), json!({"task_id": 12, "words": []})] {
        let err = runner.handle(event(bad)).await.expect_err("malformed");
        assert!(!err.is_retryable(), "{err}");
    }
}

on_every_store!(
    a_completed_task_is_archived_at_once_with_its_stats_and_result,
    with_archive_completed_off_the_scavenger_archives_the_completed_task,
    a_retryable_failure_goes_to_retry_at_once_with_the_seeded_exponential_delay,
    a_retried_task_comes_back_ahead_of_the_queue_head_and_completes,
    a_retryable_failure_on_the_last_attempt_is_dead_with_an_alert,
    a_non_retryable_failure_is_dead_at_once_with_its_reason,
    a_payload_that_does_not_fit_the_worker_is_a_non_retryable_death,
    duplicate_and_late_reports_change_nothing,
    a_completion_for_a_task_waiting_for_retry_changes_nothing,
    a_failure_report_about_an_older_invocation_is_recorded_but_moves_nothing,
    possibly_duplicate_is_set_when_the_store_shows_the_task_closed,
    a_report_that_cannot_be_delivered_fails_the_invocation_and_keeps_the_task,
);

#[tokio::test]
async fn a_failure_for_a_labourer_the_assistant_does_not_know_still_retries_the_task() {
    let h = Harness::new(labourer(3));
    let mut task = sosw::task::Task::new("stray-1", "unlisted", json!({}), 2000, NOW as f64);
    task.attempts = 0;
    h.store
        .enqueue(&[task], sosw::store::EnqueueMode::Fresh)
        .await
        .expect("enqueued");
    let id = sosw::task::TaskId::new("stray-1").expect("id");
    h.claim(&id).await;
    let reply = h
        .assistant(9)
        .handle(
            &AssistantRequest::failed(id.clone(), true),
            &mut Stats::new(),
        )
        .await
        .expect("handled with default retry settings");
    let AssistantOutcome::RetryScheduled {
        desired_launch_time,
    } = reply.outcome
    else {
        panic!("expected a retry, got {reply:?}");
    };
    let default_window = RetryPolicy::default().max_delay_secs(1, 900) as i64;
    assert!((NOW..=NOW + default_window).contains(&desired_launch_time));
    assert!(
        h.store
            .get_retry_task("unlisted", &id)
            .await
            .expect("lookup")
            .is_some(),
        "the task is kept, not dropped"
    );
}
