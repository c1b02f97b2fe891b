//! Whole lives: lookups across tables, a rich task end to end, and listings larger than one page.

use std::sync::Arc;

use serde_json::json;

use super::support::{NOW, Scope, WINDOW, claim, complete, live, put, report, to_retry};
use sosw_core::store::{ClosedStatus, EnqueueMode, MoveOutcome, ReportOutcome, TaskStore};
use sosw_core::task::Markers;
use sosw_core::task::greenfield::invoked_at;

/// `get_task`, `get_closed_task` and `get_retry_task` each find a row only in their own table (and the
/// retry lookup only under the task's labourer).
pub async fn lookups_find_rows_only_where_they_are<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("lookup");
    put(&*store, &s.queued(3)).await;
    let (queued, retried, closed) = (s.id(0), s.id(1), s.id(2));
    claim(&*store, &retried, NOW - 5000).await;
    to_retry(&*store, &retried, NOW + 600).await;
    claim(&*store, &closed, NOW - 100).await;
    complete(&*store, &closed, NOW - 50).await;
    super::support::archive(&*store, &closed, ClosedStatus::Completed, NOW).await;

    for (id, want) in [
        (&queued, [true, false, false]),
        (&retried, [false, false, true]),
        (&closed, [false, true, false]),
    ] {
        let found = [
            store
                .get_task(id)
                .await
                .expect("get_task succeeds")
                .is_some(),
            store
                .get_closed_task(id)
                .await
                .expect("get_closed_task succeeds")
                .is_some(),
            store
                .get_retry_task(&s.labourer, id)
                .await
                .expect("get_retry_task succeeds")
                .is_some(),
        ];
        assert_eq!(found, want, "`{id}` found in [live, closed, retry]");
    }
    let elsewhere = store
        .get_retry_task(&s.other(), &retried)
        .await
        .expect("get_retry_task succeeds");
    assert_eq!(
        elsewhere, None,
        "the retry table is keyed by labourer and task id"
    );
    let missing = store.get_task(&s.id(9)).await.expect("get_task succeeds");
    assert_eq!(missing, None, "an id never written");
}

/// A task with a nested payload, a fractional `created_at`, a job id and extra attributes of every JSON
/// kind survives enqueue, claim, complete and archive: the closed row equals the original except for the
/// fields those operations set.
pub async fn a_rich_task_survives_its_whole_life<S: TaskStore + 'static>(store: Arc<S>) {
    let s = Scope::new("roundtrip");
    let mut task = s.task(1, 2000);
    task.created_at = 1_700_000_000.25;
    task.job_id = Some(format!("{}-job", s.labourer));
    task.payload = json!({
        "period": "last_2_days", "nested": {"list": [1, 2.5, "three", {"deep": [true, null]}]},
        "empty": {}, "unicode": "zażółć ✓"
    });
    for (key, value) in [
        ("stat_x", json!(11)),
        ("note", json!("a string")),
        ("count", json!(42)),
        ("ratio", json!(2.5)),
        ("negative", json!(-7)),
        ("nested", json!({"a": {"b": ["c", 1]}})),
        ("list", json!(["x", 2, false])),
        ("flag", json!(true)),
    ] {
        task.extra.insert(key.into(), value);
    }
    put(&*store, std::slice::from_ref(&task)).await;
    assert_eq!(live(&*store, &task.task_id).await, task, "after enqueue");

    let before = claim(&*store, &task.task_id, NOW).await;
    assert_eq!(before, task, "the claim returns the task as enqueued");
    let rep = report(json!({"rows": 5}), json!({"answer": {"k": [1, 2]}}));
    let outcome = store
        .complete(&task.task_id, &rep, NOW + 60)
        .await
        .expect("complete succeeds");
    let ReportOutcome::Recorded(completed) = outcome else {
        panic!("completion is recorded, got {outcome:?}");
    };
    let archived = store
        .archive(&completed, ClosedStatus::Completed, NOW + 120)
        .await
        .expect("archive succeeds");
    assert_eq!(
        archived,
        MoveOutcome::Moved,
        "archive of the completed task"
    );

    let mut expected = task.clone();
    expected.greenfield = invoked_at(NOW);
    expected.attempts = 1;
    expected.completed_at = Some(NOW + 60);
    expected.closed_at = Some(NOW + 120);
    rep.apply_to(&mut expected);
    expected.extra.insert(
        "labourer_id_task_status".into(),
        json!(format!("{}_1", s.labourer)),
    );
    let closed = store
        .get_closed_task(&task.task_id)
        .await
        .expect("get_closed_task succeeds");
    assert_eq!(
        closed,
        Some(expected),
        "the closed row is the task plus what its life set"
    );
}

/// 300 tasks with ~8 KB payloads (~2.4 MB, more than one 1 MB DynamoDB page) are all seen by
/// `queue_length`, `next_queued`, `count_running`, `list_expired` and `list_completed`.
pub async fn large_queues_are_read_completely<S: TaskStore + 'static>(store: Arc<S>) {
    const TASKS: u64 = 300;
    let s = Scope::new("pages");
    let blob = "x".repeat(8 * 1024);
    let tasks: Vec<_> = s
        .queued(TASKS)
        .into_iter()
        .map(|mut t| {
            t.payload["blob"] = json!(blob);
            t
        })
        .collect();
    let written = store
        .enqueue(&tasks, EnqueueMode::Fresh)
        .await
        .expect("enqueue succeeds")
        .written;
    assert_eq!(written, 300, "every task is written");

    let length = store
        .queue_length(&s.labourer, NOW)
        .await
        .expect("queue_length succeeds");
    assert_eq!(length, 300, "queue_length counts every page");
    let queued = store
        .next_queued(&s.labourer, NOW, 300)
        .await
        .expect("next_queued succeeds");
    assert_eq!(
        queued, tasks,
        "next_queued(300) returns all, in greenfield order, whole"
    );

    for task in &tasks {
        claim(&*store, &task.task_id, NOW).await;
    }
    let markers = Markers::new(NOW, WINDOW);
    let running = store
        .count_running(&s.labourer, &markers)
        .await
        .expect("count_running succeeds");
    assert_eq!(running, 300, "count_running counts every page");
    let later = Markers::new(NOW + WINDOW as i64, WINDOW);
    let expired = store
        .list_expired(&s.labourer, &later, 300)
        .await
        .expect("list_expired succeeds");
    assert_eq!(expired.len(), 300, "list_expired reads every page");

    for task in &tasks {
        complete(&*store, &task.task_id, NOW + 60).await;
    }
    let completed = store
        .list_completed(&s.labourer, NOW + 120, 300)
        .await
        .expect("list_completed succeeds");
    assert_eq!(completed.len(), 300, "list_completed reads every page");
    let running = store
        .count_running(&s.labourer, &markers)
        .await
        .expect("count_running succeeds");
    assert_eq!(running, 0, "completed tasks do not run");
}
