//! The worker assistant's reports: completion and failure.

use std::sync::Arc;

use serde_json::json;

use super::support::{NOW, Scope, claim, complete, live, put, report, to_retry};
use sosw_core::store::{ClaimOutcome, ClosedStatus, ReportOutcome, TaskReport, TaskStore};
use sosw_core::task::greenfield::invoked_at;

/// `complete` sets `completed_at = now` and the report's `stat_*` / `result_*` attributes, leaves the
/// rest of the row alone, and returns the row as it is now.
pub async fn complete_records_completion_and_report<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("complete");
    let task = s.task(1, 2000);
    put(&*store, std::slice::from_ref(&task)).await;
    claim(&*store, &task.task_id, NOW).await;

    let rep = report(json!({"rows": 7, "ratio": 0.5}), json!({"ok": "yes"}));
    let outcome = store
        .complete(&task.task_id, &rep, NOW + 60)
        .await
        .expect("complete succeeds");
    let mut expected = task.clone();
    expected.greenfield = invoked_at(NOW);
    expected.attempts = 1;
    expected.completed_at = Some(NOW + 60);
    for (key, value) in [
        ("stat_rows", json!(7)),
        ("stat_ratio", json!(0.5)),
        ("result_ok", json!("yes")),
    ] {
        expected.extra.insert(key.into(), value);
    }
    assert_eq!(
        outcome,
        ReportOutcome::Recorded(expected.clone()),
        "Recorded holds the completed row"
    );
    assert_eq!(
        live(&*store, &task.task_id).await,
        expected,
        "the stored row"
    );
}

/// A second completion (duplicate delivery) is `AlreadyCompleted` and changes nothing, whatever its
/// report; so is a failure report for a completed task.
pub async fn complete_twice_is_already_completed_and_changes_nothing<S: TaskStore + 'static>(
    store: Arc<S>,
) {
    let s = Scope::new("twice");
    let id = s.id(1);
    put(&*store, &[s.task(1, 2000)]).await;
    claim(&*store, &id, NOW).await;
    complete(&*store, &id, NOW + 60).await;
    let before = live(&*store, &id).await;

    let late = report(json!({"rows": 99}), json!({"second": true}));
    let again = store
        .complete(&id, &late, NOW + 120)
        .await
        .expect("complete succeeds");
    assert_eq!(
        again,
        ReportOutcome::AlreadyCompleted,
        "a duplicate completion"
    );
    assert_eq!(
        live(&*store, &id).await,
        before,
        "a duplicate completion changes nothing"
    );

    let failed = store
        .record_failure(&id, &late, NOW + 130)
        .await
        .expect("record_failure succeeds");
    assert_eq!(
        failed,
        ReportOutcome::AlreadyCompleted,
        "a failure after completion"
    );
    assert_eq!(
        live(&*store, &id).await,
        before,
        "a late failure changes nothing"
    );
}

/// Completing a task that is not live (never existed, archived, or waiting for retry) is `NotFound`,
/// writes nothing and creates no orphan row (sosw 0.7 created one, bug B10).
pub async fn complete_of_a_task_that_is_not_live_is_not_found<S: TaskStore + 'static>(
    store: Arc<S>,
) {
    let s = Scope::new("notfound");
    let (missing, archived, retried) = (s.id(0), s.id(1), s.id(2));
    put(&*store, &[s.task(1, 2000), s.task(2, 3000)]).await;
    claim(&*store, &archived, NOW - 100).await;
    complete(&*store, &archived, NOW - 50).await;
    super::support::archive(&*store, &archived, ClosedStatus::Completed, NOW).await;
    claim(&*store, &retried, NOW - 5000).await;
    to_retry(&*store, &retried, NOW + 600).await;
    let closed_before = store
        .get_closed_task(&archived)
        .await
        .expect("get_closed_task succeeds");
    let retry_before = store
        .get_retry_task(&s.labourer, &retried)
        .await
        .expect("get_retry_task succeeds");

    let rep = report(json!({"rows": 1}), json!({}));
    for id in [&missing, &archived, &retried] {
        let outcome = store
            .complete(id, &rep, NOW + 10)
            .await
            .expect("complete succeeds");
        assert_eq!(outcome, ReportOutcome::NotFound, "completion of `{id}`");
        let row = store.get_task(id).await.expect("get_task succeeds");
        assert_eq!(row, None, "completion of `{id}` creates no live row");
    }
    let closed_after = store
        .get_closed_task(&archived)
        .await
        .expect("get_closed_task succeeds");
    assert_eq!(closed_after, closed_before, "the closed row is untouched");
    let retry_after = store
        .get_retry_task(&s.labourer, &retried)
        .await
        .expect("get_retry_task succeeds");
    assert_eq!(retry_after, retry_before, "the retry row is untouched");
}

/// Completing a task that is queued (a late report for a task that was retried) takes it out of the
/// queue: `greenfield = now + Δ`, so it is neither returned by `next_queued` nor claimable.
pub async fn complete_takes_a_queued_task_out_of_the_queue<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("dequeue");
    put(&*store, &[s.task(1, 2000), s.task(2, 3000)]).await;

    let row = complete(&*store, &s.id(1), NOW).await;
    assert_eq!(
        (row.greenfield, row.completed_at),
        (invoked_at(NOW), Some(NOW)),
        "a completed queued task is moved out of the queue"
    );
    let queued = store
        .next_queued(&s.labourer, NOW + 1, 10)
        .await
        .expect("next_queued succeeds");
    assert_eq!(queued, [s.task(2, 3000)], "only the other task is queued");
    let outcome = store
        .claim(&s.id(1), NOW + 1)
        .await
        .expect("claim succeeds");
    assert_eq!(
        outcome,
        ClaimOutcome::AlreadyClaimed,
        "a completed task cannot be claimed"
    );
}

/// `record_failure` increments `failed_attempts` (1, then 2) and adds the report's attributes, leaving
/// the greenfield and completion alone; `NotFound` for a task that is not live.
pub async fn record_failure_counts_failures<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("failure");
    let id = s.id(1);
    put(&*store, &[s.task(1, 2000)]).await;
    claim(&*store, &id, NOW).await;

    for (n, at) in [(1, NOW + 10), (2, NOW + 20)] {
        let rep = report(json!({}), json!({"error": format!("boom {n}")}));
        let outcome = store
            .record_failure(&id, &rep, at)
            .await
            .expect("record_failure succeeds");
        let ReportOutcome::Recorded(row) = outcome else {
            panic!("failure {n} of a live task is recorded, got {outcome:?}");
        };
        assert_eq!(
            row.failed_attempts,
            Some(n),
            "failed_attempts after failure {n}"
        );
        assert_eq!(
            row.extra.get("result_error"),
            Some(&json!(format!("boom {n}")))
        );
        assert_eq!(
            (row.greenfield, row.completed_at, row.attempts),
            (invoked_at(NOW), None, 1),
            "a failure report leaves the claim alone"
        );
        assert_eq!(
            live(&*store, &id).await,
            row,
            "Recorded holds the stored row"
        );
    }

    let missing = s.id(2);
    let outcome = store
        .record_failure(&missing, &TaskReport::default(), NOW)
        .await
        .expect("record_failure succeeds");
    assert_eq!(
        outcome,
        ReportOutcome::NotFound,
        "failure of a missing task"
    );
    let row = store.get_task(&missing).await.expect("get_task succeeds");
    assert_eq!(row, None, "a failure report creates no row");
}
