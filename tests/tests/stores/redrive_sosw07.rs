//! Redrive of dead tasks that Python sosw 0.7.47 archived, on DynamoDB Local (issue 20, item 3).
//!
//! sosw 0.7 stored a closed row's payload as the Python repr of the dict (bug B9). The closed items here
//! are the ones Python sosw 0.7.47's own conversions wrote (`scripts/sosw07_closed_rows.py`, fixture in
//! `crates/sosw-core/src/task/testdata/`), put into the closed table as they are. Redrive must put each
//! back into `sosw_tasks` with its payload as JSON text of the object it was, and refuse (naming it) a
//! payload no worker could read.
//!
//! Skipped without `SOSW_DYNAMODB_ENDPOINT` (failing instead when `SOSW_REQUIRE_EMULATORS=1`).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};
use sosw::aws::dynamodb::{DynamoTaskStore, create_tables, delete_tables};
use sosw::essentials::redrive::{RedriveTarget, redrive};
use sosw::store::{TableNames, TaskLookup};
use sosw::task::TaskId;
use sosw_integration_tests::{dynamodb_client, unique_prefix};

const NOW: i64 = 1_700_010_000;
const SOSW07_CLOSED_ROWS: &str =
    include_str!("../../../crates/sosw-core/src/task/testdata/sosw-0.7.47-closed-rows.json");

fn id(s: &str) -> TaskId {
    TaskId::new(s).expect("valid id")
}

/// A DynamoDB JSON item (as boto3 writes it: `S`, `N`, `BOOL`, `NULL`) as the SDK's attribute values.
fn item(json_item: &Value) -> HashMap<String, AttributeValue> {
    json_item
        .as_object()
        .expect("an item is an object")
        .iter()
        .map(|(name, typed)| {
            let (kind, value) = typed
                .as_object()
                .and_then(|o| o.iter().next())
                .expect("one type per attribute");
            let value = match (kind.as_str(), value) {
                ("S", Value::String(s)) => AttributeValue::S(s.clone()),
                ("N", Value::String(n)) => AttributeValue::N(n.clone()),
                ("BOOL", Value::Bool(b)) => AttributeValue::Bool(*b),
                ("NULL", _) => AttributeValue::Null(true),
                other => panic!("the fixture holds only scalar attributes, found {other:?}"),
            };
            (name.clone(), value)
        })
        .collect()
}

#[tokio::test]
async fn dead_tasks_sosw_07_archived_are_redriven_as_objects_and_unreadable_ones_refused() {
    let Some(client) = dynamodb_client().await else {
        return;
    };
    let tables = TableNames::with_prefix(&unique_prefix());
    create_tables(&client, &tables)
        .await
        .expect("tables created");
    let store = DynamoTaskStore::new(client.clone(), tables.clone());

    let rows: Vec<Value> = serde_json::from_str(SOSW07_CLOSED_ROWS).expect("fixture");
    let mut expected = Vec::new();
    for row in &rows {
        let closed = item(&row["closed_item"]);
        let task_id = row["closed_item"]["task_id"]["S"]
            .as_str()
            .expect("task id")
            .to_owned();
        let original: Value =
            serde_json::from_str(row["payload_json"].as_str().expect("JSON text")).expect("JSON");
        client
            .put_item()
            .table_name(&tables.closed)
            .set_item(Some(closed))
            .send()
            .await
            .expect("closed row written");
        expected.push((task_id, original));
    }
    // A dead row whose payload is no literal: it must stay where it is.
    let mut hostile = item(&rows[0]["closed_item"]);
    hostile.insert("task_id".into(), AttributeValue::S("hostile".into()));
    hostile.insert(
        "payload".into(),
        AttributeValue::S("{'a': __import__('os').getcwd()}".into()),
    );
    client
        .put_item()
        .table_name(&tables.closed)
        .set_item(Some(hostile))
        .send()
        .await
        .expect("hostile row written");

    let err = redrive(&store, None, &RedriveTarget::Task(id("hostile")), NOW, 100)
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("`hostile`"), "{err}");

    let report = redrive(&store, None, &RedriveTarget::Labourer("w".into()), NOW, 100)
        .await
        .expect("redrive");
    assert_eq!(report.redriven.len(), expected.len(), "{report:?}");
    assert_eq!(report.refused.len(), 1, "{report:?}");
    assert_eq!(report.refused[0].0, id("hostile"));

    for (task_id, original) in &expected {
        // The raw item: the payload is JSON text of the object, as sosw 0.7's create_task stored it.
        let raw = client
            .get_item()
            .table_name(&tables.tasks)
            .key("task_id", AttributeValue::S(task_id.clone()))
            .consistent_read(true)
            .send()
            .await
            .expect("get")
            .item
            .expect("the task is live again");
        let text = raw
            .get("payload")
            .and_then(|v| v.as_s().ok())
            .expect("payload is S");
        let stored: Value = serde_json::from_str(text).expect("the live payload is JSON");
        assert_eq!(
            serde_json::to_string(&stored).expect("JSON"),
            serde_json::to_string(original).expect("JSON"),
            "{task_id}: key order and values as sosw 0.7 created them"
        );
        let live = store
            .get_task(&id(task_id))
            .await
            .expect("get")
            .expect("live");
        let worker = live.worker_payload();
        assert_eq!(worker["task_id"], json!(task_id));
        assert!(worker.get("payload").is_none(), "{worker}");
    }
    assert!(
        store
            .get_closed_task(&id("hostile"))
            .await
            .expect("get")
            .is_some()
    );
    assert!(store.get_task(&id("hostile")).await.expect("get").is_none());
    delete_tables(&client, &tables)
        .await
        .expect("tables deleted");
}
