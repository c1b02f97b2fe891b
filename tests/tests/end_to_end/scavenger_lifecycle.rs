//! The scavenger on the SQLite store: expired tasks to retry with either policy (delays checked with a
//! manual clock and seeded jitter), dead after `max_attempts` with one batched alert, due retries back
//! ahead of the queue within `retry_tasks_limit`, and the handler as Lambda calls it.

use crate::worker_support;

use serde_json::{Value, json};
use sosw::essentials::scavenger::LabourerReport;
use sosw::notify::SEPARATOR;
use sosw::processor::ProcessorService;
use sosw::task::{Jitter, RetryPolicy};
use worker_support::{Backend, DEAD_TOPIC, Harness, NOW, event, on_every_store};

/// duration 60 + cooldown 30: a task expires 90 s after its invocation. Timeout (max_duration) 45 s.
fn settings(retry: Value, max_attempts: u32) -> Value {
    json!({
        "duration": 60, "cooldown": 30, "max_duration": 45,
        "max_attempts": max_attempts, "retry": retry
    })
}

const WINDOW: i64 = 90;

async fn linear_retries_wait_the_worker_timeout_times_the_attempts(backend: Backend) {
    let Some(h) = Harness::on(backend, settings(json!({"policy": "linear"}), 3)).await else {
        return;
    };
    let task = &h.enqueue("lin", 1, None).await[0];
    h.claim(&task.task_id).await;
    h.clock.advance_secs(WINDOW);
    let report = h.scavenger(0).run().await;
    assert_eq!(report.labourers["w1"].scheduled_for_retry, 1);
    let first = h
        .store
        .get_retry_task("w1", &task.task_id)
        .await
        .expect("lookup")
        .expect("waiting for retry");
    assert_eq!(first.desired_launch_time, Some(NOW + WINDOW + 45));

    h.clock.advance_secs(45);
    assert_eq!(h.scavenger(0).run().await.labourers["w1"].requeued, 1);
    h.claim(&task.task_id).await;
    let second_claim = NOW + WINDOW + 45;
    h.clock.advance_secs(WINDOW);
    h.scavenger(0).run().await;
    let second = h
        .store
        .get_retry_task("w1", &task.task_id)
        .await
        .expect("lookup")
        .expect("waiting again");
    assert_eq!(second.attempts, 2);
    assert_eq!(
        second.desired_launch_time,
        Some(second_claim + WINDOW + 45 * 2)
    );
}

async fn exponential_retries_draw_full_jitter_from_the_seeded_generator(backend: Backend) {
    let retry = json!({"policy": "exponential", "base_secs": 20, "cap_secs": 1000});
    let Some(h) = Harness::on(backend, settings(retry, 3)).await else {
        return;
    };
    let tasks = h.enqueue("exp", 3, None).await;
    // One second apart, so that expiry order (by greenfield) is the order of `tasks`.
    for t in &tasks {
        h.claim(&t.task_id).await;
        h.clock.advance_secs(1);
    }
    h.clock.advance_secs(WINDOW);
    let run_at = NOW + 3 + WINDOW;
    let report = h.scavenger(1234).run().await;
    assert_eq!(report.labourers["w1"].scheduled_for_retry, 3);

    let policy = RetryPolicy::Exponential {
        base_secs: 20,
        cap_secs: 1000,
    };
    let mut jitter = Jitter::seeded(1234);
    for t in &tasks {
        let expected = run_at + policy.delay_secs(1, 45, &mut jitter) as i64;
        let retry = h
            .store
            .get_retry_task("w1", &t.task_id)
            .await
            .expect("lookup")
            .expect("waiting for retry");
        assert_eq!(retry.desired_launch_time, Some(expected), "{}", t.task_id);
        assert!((run_at..=run_at + 20).contains(&expected));
    }
}

async fn after_max_attempts_expired_tasks_are_dead_with_one_batched_alert(backend: Backend) {
    let Some(h) = Harness::on(backend, settings(json!({"policy": "linear"}), 1)).await else {
        return;
    };
    let tasks = h.enqueue("dead", 2, None).await;
    // One second apart, so that expiry order (by greenfield) is the order of `tasks`.
    h.claim(&tasks[0].task_id).await;
    h.clock.advance_secs(1);
    h.claim(&tasks[1].task_id).await;
    h.clock.advance_secs(WINDOW - 2);
    assert_eq!(
        h.scavenger(0).run().await.labourers["w1"],
        LabourerReport::default(),
        "still running one second before the first expires"
    );
    h.clock.advance_secs(2);
    let report = h.scavenger(0).run().await;
    assert_eq!(report.labourers["w1"].dead, 2);
    for t in &tasks {
        let closed = h
            .store
            .get_closed_task(&t.task_id)
            .await
            .expect("lookup")
            .expect("archived dead");
        assert_eq!(closed.extra["labourer_id_task_status"], json!("w1_0"));
        assert_eq!(closed.closed_at, Some(NOW + 1 + WINDOW));
        assert_eq!(closed.completed_at, None);
    }
    let sent = h.notes.sent();
    assert_eq!(sent.len(), 1, "one message per run, not per task");
    assert_eq!(sent[0].recipient, DEAD_TOPIC);
    assert_eq!(sent[0].subject, "``sosw`` Dead Task");
    assert_eq!(
        sent[0].message,
        format!(
            "Closing dead task: {} {SEPARATOR}Closing dead task: {} ",
            tasks[0].task_id, tasks[1].task_id
        )
    );
    assert!(h.scavenger(0).run().await.labourers["w1"] == LabourerReport::default());
    assert_eq!(h.notes.sent().len(), 1, "nothing is closed twice");
}

async fn due_retries_return_ahead_of_the_queue_within_the_limit(backend: Backend) {
    let Some(mut h) = Harness::on(backend, settings(json!({"policy": "linear"}), 3)).await else {
        return;
    };
    h.retry_tasks_limit = 2;
    let tasks = h.enqueue("req", 5, None).await;
    for t in &tasks[..3] {
        h.claim(&t.task_id).await;
    }
    h.clock.advance_secs(WINDOW);
    h.scavenger(0).run().await;
    assert_eq!(h.store.retry_length("w1").await.expect("count"), 3);

    h.clock.advance_secs(44);
    assert_eq!(
        h.scavenger(0).run().await.labourers["w1"].requeued,
        0,
        "not due yet"
    );
    h.clock.advance_secs(1);
    assert_eq!(
        h.scavenger(0).run().await.labourers["w1"].requeued,
        2,
        "the limit"
    );
    assert_eq!(
        h.scavenger(0).run().await.labourers["w1"].requeued,
        1,
        "the rest"
    );

    let now = NOW + WINDOW + 45;
    let head = h.store.next_queued("w1", now, 10).await.expect("queue");
    let order: Vec<_> = head.iter().map(|t| t.task_id.clone()).collect();
    assert_eq!(order.len(), 5, "nothing lost");
    assert_eq!(
        &order[3..],
        &[tasks[3].task_id.clone(), tasks[4].task_id.clone()],
        "retries run before the tasks that never ran"
    );
}

async fn the_scavenger_handler_runs_from_a_scheduled_event(backend: Backend) {
    let Some(h) = Harness::on(backend, settings(json!({"policy": "linear"}), 3)).await else {
        return;
    };
    let task = &h.enqueue("handler", 1, None).await[0];
    h.claim(&task.task_id).await;
    h.clock.advance_secs(WINDOW);
    let service = ProcessorService::new(h.scavenger(0), "sosw_scavenger");
    let scheduled = json!({
        "version": "0", "id": "e", "detail-type": "Scheduled Event", "source": "aws.events",
        "time": "2023-11-14T22:13:20Z", "resources": ["arn:aws:events:us-east-1:1:rule/sosw"],
        "detail": {}
    });
    let out = service.handle(event(scheduled)).await.expect("runs");
    assert_eq!(out["labourers"]["w1"]["scheduled_for_retry"], 1);
    assert_eq!(out["now"], NOW + WINDOW);
    assert_eq!(
        service
            .lifetime_stats()
            .get("total_scheduled_for_retry_later_tasks"),
        1
    );
    assert!(
        h.store
            .get_task(&task.task_id)
            .await
            .expect("lookup")
            .is_none()
    );
}

on_every_store!(
    linear_retries_wait_the_worker_timeout_times_the_attempts,
    exponential_retries_draw_full_jitter_from_the_seeded_generator,
    after_max_attempts_expired_tasks_are_dead_with_one_batched_alert,
    due_retries_return_ahead_of_the_queue_within_the_limit,
    the_scavenger_handler_runs_from_a_scheduled_event,
);
