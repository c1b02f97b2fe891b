//! Redrive on the SQLite store of dead rows whose payload is sosw 0.7.47's Python repr (issue 20, item 3).
//!
//! SQLite never holds a row Python wrote, but a row imported from sosw 0.7's closed table would look like
//! these: the payloads are the ones Python sosw 0.7.47's own conversions stored
//! (`scripts/sosw07_closed_rows.py`).

use serde_json::{Value, json};

use super::SqliteTaskStore;
use super::rows::{self, CLOSED};
use sosw_core::essentials::redrive::{RedriveTarget, redrive};
use sosw_core::store::{
    ClaimOutcome, ClosedStatus, EnqueueMode, MoveOutcome, TaskArchive, TaskClaims, TaskLookup,
    TaskQueue,
};
use sosw_core::task::{Task, TaskId};

const NOW: i64 = 1_800_000_000;
const SOSW07_CLOSED_ROWS: &str =
    include_str!("../../../sosw-core/src/task/testdata/sosw-0.7.47-closed-rows.json");

fn id(s: &str) -> TaskId {
    TaskId::new(s).expect("id")
}

/// Enqueues, claims and archives dead one task per payload text, then overwrites each closed row's
/// payload with that text, as sosw 0.7 stored it.
async fn store_with_dead_rows(payloads: &[(String, String)]) -> SqliteTaskStore {
    let store = SqliteTaskStore::in_memory().expect("store");
    let tasks: Vec<Task> = payloads
        .iter()
        .enumerate()
        .map(|(i, (task_id, _))| Task::new(task_id.clone(), "w", json!({}), 1000 + i as i64, 0.0))
        .collect();
    store
        .enqueue(&tasks, EnqueueMode::Fresh)
        .await
        .expect("enqueue");
    for (task_id, text) in payloads {
        let claimed = store.claim(&id(task_id), NOW - 9000).await.expect("claim");
        assert!(matches!(claimed, ClaimOutcome::Claimed(_)), "setup claim");
        let row = store
            .get_task(&id(task_id))
            .await
            .expect("get")
            .expect("live");
        let moved = store
            .archive(&row, ClosedStatus::Dead, NOW - 10)
            .await
            .expect("archive");
        assert_eq!(moved, MoveOutcome::Moved, "setup archive");
        let (task_id, text) = (task_id.clone(), text.clone());
        store
            .run("rewrite payload", move |conn| {
                let mut row = rows::select_one(
                    conn,
                    CLOSED,
                    "SELECT task_id, item FROM closed_tasks WHERE task_id = ?1",
                    [task_id.as_str()],
                )?
                .expect("closed row");
                row.payload = Value::String(text);
                rows::put_closed(conn, &row, &ClosedStatus::Dead.index_key("w"), NOW - 10)
            })
            .expect("rewritten");
    }
    store
}

fn fixture() -> Vec<(String, String, Value)> {
    let rows: Vec<Value> = serde_json::from_str(SOSW07_CLOSED_ROWS).expect("fixture");
    rows.iter()
        .map(|row| {
            let item = &row["closed_item"];
            (
                item["task_id"]["S"].as_str().expect("id").to_owned(),
                item["payload"]["S"].as_str().expect("payload").to_owned(),
                serde_json::from_str(row["payload_json"].as_str().expect("json")).expect("JSON"),
            )
        })
        .collect()
}

#[tokio::test]
async fn dead_rows_sosw_07_archived_are_redriven_with_their_payload_as_the_object_it_was() {
    let cases = fixture();
    let mut payloads: Vec<(String, String)> = cases
        .iter()
        .map(|(t, p, _)| (t.clone(), p.clone()))
        .collect();
    payloads.push(("hostile".into(), "{'a': __import__('os').getcwd()}".into()));
    let store = store_with_dead_rows(&payloads).await;

    let err = redrive(&store, None, &RedriveTarget::Task(id("hostile")), NOW, 100)
        .await
        .expect_err("an unreadable payload is refused");
    assert!(err.to_string().contains("`hostile`"), "{err}");

    let report = redrive(&store, None, &RedriveTarget::Labourer("w".into()), NOW, 100)
        .await
        .expect("redrive");
    assert_eq!(report.redriven.len(), cases.len(), "{report:?}");
    assert_eq!(report.refused.len(), 1, "{report:?}");
    assert_eq!(report.refused[0].0, id("hostile"));
    assert!(report.refused[0].1.contains("`hostile`"), "{report:?}");
    assert!(
        store
            .get_closed_task(&id("hostile"))
            .await
            .expect("get")
            .is_some(),
        "the refused row stays in the closed table"
    );
    assert!(store.get_task(&id("hostile")).await.expect("get").is_none());

    for (task_id, stored, original) in cases {
        let live = store
            .get_task(&id(&task_id))
            .await
            .expect("get")
            .expect("live again");
        assert_eq!(
            serde_json::to_string(&live.payload).expect("JSON"),
            serde_json::to_string(&original).expect("JSON"),
            "{task_id}: {stored}"
        );
        let worker = live.worker_payload();
        assert_eq!(worker["task_id"], json!(task_id));
        assert!(
            worker.get("payload").is_none(),
            "the worker gets the object's keys: {worker}"
        );
    }
}

#[tokio::test]
async fn the_store_itself_never_requeues_an_unreadable_payload() {
    let store = store_with_dead_rows(&[("bad".into(), "{'a': 1".into())]).await;
    let closed = store
        .get_closed_task(&id("bad"))
        .await
        .expect("get")
        .expect("closed");
    let err = store.redrive(&closed, 500).await.expect_err("refused");
    assert!(err.to_string().contains("`bad`"), "{err}");
    assert!(store.get_task(&id("bad")).await.expect("get").is_none());
    assert!(
        store
            .get_closed_task(&id("bad"))
            .await
            .expect("get")
            .is_some()
    );
}
