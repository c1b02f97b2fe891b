//! `enqueue` in both modes.

use std::sync::Arc;

use serde_json::json;

use super::support::{NOW, Scope, claim, complete, live, put, to_retry};
use sosw_core::error::Error;
use sosw_core::store::{ClosedStatus, EnqueueMode, TaskStore};

/// `enqueue` validates every task before writing any: one invalid task is an [`Error::Invalid`] naming
/// it, and none of the batch is written, in either mode.
pub async fn enqueue_validates_every_task_before_writing_any<S: TaskStore + 'static>(
    store: Arc<S>,
) {
    let s = Scope::new("validate");
    let good = s.task(1, 2000);
    let mut array_payload = s.task(2, 3000);
    array_payload.payload = json!([1, 2]);
    let mut no_labourer = s.task(3, 4000);
    no_labourer.labourer_id = String::new();

    for bad in [array_payload, no_labourer] {
        for mode in [EnqueueMode::Fresh, EnqueueMode::SkipExisting] {
            let err = store
                .enqueue(&[good.clone(), bad.clone()], mode)
                .await
                .expect_err("a batch with an invalid task is rejected");
            assert!(
                matches!(err, Error::Invalid { .. }),
                "an invalid task is Error::Invalid, got {err:?}"
            );
            assert!(
                err.to_string().contains(bad.task_id.as_str()),
                "the error names the invalid task: {err}"
            );
            let written = store
                .get_task(&good.task_id)
                .await
                .expect("get_task succeeds");
            assert_eq!(
                written, None,
                "no task of a rejected batch ({mode:?}) is written"
            );
        }
    }
}

/// [`EnqueueMode::Fresh`] writes every task of a batch larger than one DynamoDB batch (25), reports them,
/// and overwrites an id that exists.
pub async fn enqueue_fresh_writes_every_task_of_a_large_batch<S: TaskStore + 'static>(
    store: Arc<S>,
) {
    let s = Scope::new("fresh");
    let tasks = s.queued(60);
    let report = store
        .enqueue(&tasks, EnqueueMode::Fresh)
        .await
        .expect("enqueue succeeds");
    assert_eq!(
        (report.written, report.skipped_existing),
        (60, 0),
        "{report:?}"
    );
    assert!(
        report.write_requests >= 1,
        "writes take requests: {report:?}"
    );
    let length = store
        .queue_length(&s.labourer, NOW)
        .await
        .expect("queue_length succeeds");
    assert_eq!(length, 60, "all 60 tasks are queued");
    for (cap, counted) in [(25, 25), (60, 60), (1_000, 60)] {
        assert_eq!(
            store
                .queue_length_up_to(&s.labourer, NOW, cap)
                .await
                .expect("queue_length_up_to succeeds"),
            counted,
            "counted up to {cap}"
        );
    }
    for task in &tasks {
        assert_eq!(&live(&*store, &task.task_id).await, task, "stored as given");
    }

    let mut changed = tasks[0].clone();
    changed.payload = json!({"changed": true});
    changed.greenfield = 99_000;
    put(&*store, std::slice::from_ref(&changed)).await;
    assert_eq!(
        live(&*store, &changed.task_id).await,
        changed,
        "Fresh overwrites a task with the same id"
    );
}

/// [`EnqueueMode::SkipExisting`] skips ids that exist live, waiting for retry or closed (and counts
/// them), writes the rest, and never resets a claimed task.
pub async fn enqueue_skip_existing_skips_ids_that_exist_anywhere<S: TaskStore + 'static>(
    store: Arc<S>,
) {
    let s = Scope::new("skip");
    put(&*store, &s.queued(4)).await;
    let (queued, claimed, retried, closed) = (s.id(0), s.id(1), s.id(2), s.id(3));
    claim(&*store, &claimed, NOW).await;
    claim(&*store, &retried, NOW - 5000).await;
    to_retry(&*store, &retried, NOW + 600).await;
    claim(&*store, &closed, NOW - 100).await;
    complete(&*store, &closed, NOW - 50).await;
    super::support::archive(&*store, &closed, ClosedStatus::Completed, NOW).await;
    let queued_before = live(&*store, &queued).await;
    let claimed_before = live(&*store, &claimed).await;

    let resubmitted: Vec<_> = (0..5)
        .map(|n| {
            let mut task = s.task(n, 9000 + n as i64);
            task.payload = json!({"resubmitted": true});
            task
        })
        .collect();
    let report = store
        .enqueue(&resubmitted, EnqueueMode::SkipExisting)
        .await
        .expect("enqueue succeeds");
    assert_eq!(
        (report.written, report.skipped_existing),
        (1, 4),
        "live, claimed, retried and closed ids are skipped; the new one is written: {report:?}"
    );
    assert_eq!(
        live(&*store, &queued).await,
        queued_before,
        "a queued task is kept"
    );
    assert_eq!(
        live(&*store, &claimed).await,
        claimed_before,
        "a claimed task is not reset"
    );
    let lookups = (
        store.get_task(&retried).await.expect("get_task succeeds"),
        store.get_task(&closed).await.expect("get_task succeeds"),
    );
    assert_eq!(
        lookups,
        (None, None),
        "retried and closed ids get no live row"
    );
    let elsewhere = (
        store
            .get_retry_task(&s.labourer, &retried)
            .await
            .expect("get_retry_task succeeds"),
        store
            .get_closed_task(&closed)
            .await
            .expect("get_closed_task succeeds"),
    );
    assert!(
        elsewhere.0.is_some() && elsewhere.1.is_some(),
        "retried and closed tasks stay where they were: {elsewhere:?}"
    );
    assert_eq!(
        live(&*store, &s.id(4)).await,
        resubmitted[4],
        "the new task is written"
    );
}
