//! What Python sosw 0.7 sends, read from the JSON fixtures in `tests/fixtures/sosw07` and fed in
//! unchanged: an orchestrator's worker payload reaches a Rust worker, and a Python worker's reports
//! reach the Rust worker assistant.

use crate::worker_support;

use serde::Deserialize;
use serde_json::{Value, json};
use sosw::processor::ProcessorService;
use sosw::store::EnqueueMode;
use sosw::task::{Task, TaskId};
use sosw::worker::HandleEvent;
use sosw::worker::{WorkError, WorkerContext, worker_fn};
use worker_support::{Backend, Harness, NOW, event, fixture, on_every_store};

const LABOURER: &str = "sosw_tutorial_pull_tweeter_hashtags";

/// The fixture's task, queued as a sosw 0.7 scheduler would have created it, and claimed.
async fn harness_with_fixture_task(backend: Backend) -> Option<(Harness, TaskId)> {
    let mut h = Harness::on(
        backend,
        json!({"max_attempts": 3, "retry": {"policy": "linear"}}),
    )
    .await?;
    h.labourer = LABOURER.to_string();
    let payload = fixture("sosw07/worker_payload.json");
    let id = TaskId::new(payload["task_id"].as_str().expect("fixture task_id")).expect("valid id");
    let task = Task::new(
        id.as_str(),
        LABOURER,
        json!({"topic": "sosw", "words": ["sosw", "serverless"], "period": "last_2_days"}),
        2000,
        1_700_000_000.123456,
    );
    h.store
        .enqueue(&[task], EnqueueMode::Fresh)
        .await
        .expect("enqueued");
    h.claim(&id).await;
    Some((h, id))
}

#[derive(Debug, Deserialize)]
struct Hashtags {
    topic: String,
    words: Vec<String>,
    period: String,
}

async fn a_sosw_07_worker_payload_reaches_a_rust_worker_unchanged(backend: Backend) {
    let Some((h, id)) = harness_with_fixture_task(backend).await else {
        return;
    };
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let record = seen.clone();
    let runner = h.runner(
        worker_fn(move |p: Hashtags, ctx: WorkerContext| {
            let summary = json!({
                "topic": p.topic, "words": p.words.len(), "period": p.period,
                "task_id": ctx.task_id().map(|t| t.to_string()),
                "labourer": ctx.labourer_id(), "attempt": ctx.attempt(),
                "created_at": ctx.task().map(|t| t.created_at),
                "greenfield": ctx.task().map(|t| t.greenfield),
            });
            *record.lock().expect("lock") = Some(summary);
            async { Ok::<_, WorkError>(json!({"words_counted": 2})) }
        }),
        1,
    );
    runner
        .handle(event(fixture("sosw07/worker_payload.json")))
        .await
        .expect("the payload fits");
    let seen = seen.lock().expect("lock").clone().expect("the worker ran");
    assert_eq!(
        seen,
        json!({"topic": "sosw", "words": 2, "period": "last_2_days",
               "task_id": id.as_str(), "labourer": LABOURER, "attempt": 1,
               "created_at": 1_700_000_000.123456, "greenfield": 2000})
    );
    let closed = h
        .store
        .get_closed_task(&id)
        .await
        .expect("lookup")
        .expect("reported and archived");
    assert_eq!(closed.extra["result_words_counted"], json!(2));
}

async fn a_sosw_07_completion_call_is_accepted_unchanged(backend: Backend) {
    let Some((h, id)) = harness_with_fixture_task(backend).await else {
        return;
    };
    let service = ProcessorService::new(h.assistant(1), "sosw_worker_assistant");
    let reply = service
        .handle(event(fixture(
            "sosw07/assistant_mark_task_as_completed.json",
        )))
        .await
        .expect("accepted");
    assert_eq!(reply["outcome"], "completed");
    assert_eq!(reply["task_id"], id.as_str());
    let closed = h
        .store
        .get_closed_task(&id)
        .await
        .expect("lookup")
        .expect("archived");
    assert_eq!(closed.completed_at, Some(NOW));
    for (key, value) in [
        ("stat_processor_calls", json!(1)),
        ("stat_total_processor_calls", json!(4)),
        ("stat_tweets_pulled", json!(120)),
        ("result_words_counted", json!(2)),
        ("result_status", json!("ok")),
    ] {
        assert_eq!(closed.extra.get(key), Some(&value), "{key}");
    }
}

async fn a_sosw_07_failure_call_is_recorded_and_retried(backend: Backend) {
    let Some((h, id)) = harness_with_fixture_task(backend).await else {
        return;
    };
    let service = ProcessorService::new(h.assistant(1), "sosw_worker_assistant");
    let reply = service
        .handle(event(fixture("sosw07/assistant_mark_task_as_failed.json")))
        .await
        .expect("accepted");
    assert_eq!(reply["outcome"], "retry_scheduled", "{reply}");
    let retry = h
        .store
        .get_retry_task(LABOURER, &id)
        .await
        .expect("lookup")
        .expect("waiting for retry");
    assert_eq!(retry.failed_attempts, Some(1));
    assert_eq!(retry.extra["result_error"], json!("Twitter API throttled"));
    assert_eq!(
        retry.desired_launch_time,
        Some(NOW + 900),
        "linear: 900 s timeout x 1"
    );
}

async fn the_plural_actions_with_json_string_stats_are_accepted_unchanged(backend: Backend) {
    let Some((h, id)) = harness_with_fixture_task(backend).await else {
        return;
    };
    let service = ProcessorService::new(h.assistant(1), "sosw_worker_assistant");
    let reply = service
        .handle(event(fixture(
            "sosw07/assistant_actions_with_json_strings.json",
        )))
        .await
        .expect("accepted");
    assert_eq!(reply["outcome"], "completed");
    let closed = h
        .store
        .get_closed_task(&id)
        .await
        .expect("lookup")
        .expect("archived");
    assert_eq!(closed.extra["stat_processor_calls"], json!(1));
    assert_eq!(closed.extra["result_words_counted"], json!(2));
}

async fn a_malformed_call_is_a_clear_non_retryable_error(backend: Backend) {
    let Some((h, id)) = harness_with_fixture_task(backend).await else {
        return;
    };
    let service = ProcessorService::new(h.assistant(1), "sosw_worker_assistant");
    let mut call: Value = fixture("sosw07/assistant_mark_task_as_completed.json");
    call["stats"] = json!([1, 2]);
    let err = service.handle(event(call)).await.expect_err("malformed");
    assert!(!err.is_retryable());
    assert!(err.message().contains("`stats` must be an object"), "{err}");
    let diagnostic = sosw::processor::diagnostic(err);
    assert_eq!(diagnostic.error_type, "NonRetryable");
    let live = h
        .store
        .get_task(&id)
        .await
        .expect("lookup")
        .expect("untouched");
    assert_eq!(live.completed_at, None);
}

on_every_store!(
    a_sosw_07_worker_payload_reaches_a_rust_worker_unchanged,
    a_sosw_07_completion_call_is_accepted_unchanged,
    a_sosw_07_failure_call_is_recorded_and_retried,
    the_plural_actions_with_json_string_stats_are_accepted_unchanged,
    a_malformed_call_is_a_clear_non_retryable_error,
);
