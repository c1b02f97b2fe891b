//! Items to tasks and back, through `Task`'s serde form (sosw 0.7's row: payload as JSON text in `S`,
//! numbers in `N`), plus small attribute-value helpers.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use sosw_core::error::{Error, Result};
use sosw_core::task::Task;

/// One DynamoDB item.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// A string attribute.
pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// A number attribute.
pub(crate) fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The size DynamoDB bills for `item`, in bytes: each attribute's name plus its value (strings and
/// binaries by their length, numbers about one byte per two digits plus one, lists and maps 3 bytes
/// plus one per element and their contents).
pub(crate) fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_size(value))
        .sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::N(number) => number.trim_start_matches('-').len().div_ceil(2) + 1,
        AttributeValue::B(bytes) => bytes.as_ref().len(),
        AttributeValue::Ss(texts) => texts.iter().map(String::len).sum(),
        AttributeValue::Ns(numbers) => numbers.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::Bs(blobs) => blobs.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(values) => 3 + values.iter().map(|v| 1 + value_size(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(name, v)| 1 + name.len() + value_size(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

/// The task id of an item, when it has a string one.
pub(crate) fn item_task_id(item: &Item) -> Option<&str> {
    item.get("task_id")
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// Whether an item has a `completed_at` attribute (of any type other than NULL).
pub(crate) fn is_completed(item: &Item) -> bool {
    item.get("completed_at")
        .is_some_and(|v| !matches!(v, AttributeValue::Null(_)))
}

/// Decodes an item of `table` into a task. Errors name the table and the task id where known.
pub(crate) fn item_to_task(item: Item, table: &str) -> Result<Task> {
    let id = item_task_id(&item).map(str::to_owned);
    let de = serde_dynamo::Deserializer::from_attribute_value(AttributeValue::M(item).into());
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let what = if path == "." {
            e.inner().to_string()
        } else {
            format!("attribute `{path}`: {}", e.inner())
        };
        decode_error(table, id.as_deref(), what)
    })
}

/// Decodes many items of `table`.
pub(crate) fn items_to_tasks(items: Vec<Item>, table: &str) -> Result<Vec<Task>> {
    items.into_iter().map(|i| item_to_task(i, table)).collect()
}

/// An [`Error::Decode`] for a task of `table`.
pub(crate) fn decode_error(table: &str, task_id: Option<&str>, what: impl ToString) -> Error {
    let what = what.to_string();
    Error::Decode {
        what: "task",
        table: table.to_owned(),
        message: match task_id {
            Some(id) => format!("task `{id}`: {what}"),
            None => format!("item without a string task_id: {what}"),
        },
    }
}

/// Encodes a task for `table`: sosw 0.7's row shape.
pub(crate) fn task_to_item(task: &Task, table: &str) -> Result<Item> {
    if !task.created_at.is_finite() {
        return Err(Error::invalid(
            "task",
            format!(
                "task `{}`: created_at {} is not a finite number",
                task.task_id, task.created_at
            ),
        ));
    }
    serde_dynamo::to_item(task).map_err(|e| {
        Error::invalid(
            "task",
            format!(
                "task `{}` cannot be written to the {table} table: {e}",
                task.task_id
            ),
        )
    })
}

/// Encodes a JSON value (a worker's stat or result) as an attribute value.
pub(crate) fn json_to_attribute(key: &str, v: &Value) -> Result<AttributeValue> {
    serde_dynamo::to_attribute_value(v).map_err(|e| {
        Error::invalid(
            "task report",
            format!("`{key}` cannot be stored in DynamoDB: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn n_str(v: &str) -> AttributeValue {
        AttributeValue::N(v.into())
    }

    #[test]
    fn item_size_counts_names_and_values_as_dynamodb_bills_them() {
        let item = Item::from([
            ("a".into(), s("xyz")),
            ("n".into(), n_str("-12345")),
            ("l".into(), AttributeValue::L(vec![s("ab")])),
            (
                "m".into(),
                AttributeValue::M(Item::from([("k".into(), AttributeValue::Bool(true))])),
            ),
        ]);
        // a: 1 + 3; n: 1 + (5 digits: 3) + 1; l: 1 + 3 + (1 + 2); m: 1 + 3 + (1 + 1 + 1).
        assert_eq!(item_size(&item), 4 + 5 + 7 + 7);
    }

    /// A row exactly as Python sosw 0.7 writes it (`create_task`, then `mark_task_invoked`, then the
    /// worker assistant).
    fn python_row() -> Item {
        HashMap::from([
            ("task_id".into(), s("4b6d3e2a9f0c11eeb1c80242ac120002")),
            ("labourer_id".into(), s("some_lambda")),
            ("created_at".into(), n_str("1700000000.123456")),
            ("greenfield".into(), n_str("1731557660")),
            ("attempts".into(), n_str("1")),
            ("payload".into(), s(r#"{"a": 1, "nested": {"b": [1, 2]}}"#)),
            ("completed_at".into(), n_str("1700000300")),
            ("stat_rows".into(), n_str("12.5")),
            ("result_status".into(), s("ok")),
        ])
    }

    #[test]
    fn a_python_sosw_07_row_decodes() {
        let task = item_to_task(python_row(), "sosw_tasks").expect("decodes");
        assert_eq!(task.task_id.as_str(), "4b6d3e2a9f0c11eeb1c80242ac120002");
        assert_eq!(task.created_at, 1_700_000_000.123456);
        assert_eq!(task.greenfield, 1_731_557_660);
        assert_eq!(task.attempts, 1);
        assert_eq!(task.payload, json!({"a": 1, "nested": {"b": [1, 2]}}));
        assert_eq!(task.completed_at, Some(1_700_000_300));
        assert_eq!(task.extra.get("stat_rows"), Some(&json!(12.5)));
        assert_eq!(task.extra.get("result_status"), Some(&json!("ok")));
    }

    #[test]
    fn attempts_written_with_a_fraction_still_decode() {
        let mut row = python_row();
        row.insert("attempts".into(), n_str("2.0"));
        row.insert("completed_at".into(), n_str("1700000300.7"));
        let task = item_to_task(row, "sosw_tasks").expect("decodes");
        assert_eq!(task.attempts, 2);
        assert_eq!(task.completed_at, Some(1_700_000_300));
    }

    #[test]
    fn a_task_encodes_as_sosw_07s_row() {
        let task = item_to_task(python_row(), "sosw_tasks").expect("decodes");
        let item = task_to_item(&task, "sosw_tasks").expect("encodes");
        assert_eq!(
            item.get("payload")
                .and_then(|v| v.as_s().ok())
                .map(|p| { serde_json::from_str::<Value>(p).expect("payload is JSON text") }),
            Some(json!({"a": 1, "nested": {"b": [1, 2]}}))
        );
        assert_eq!(item.get("greenfield"), Some(&n_str("1731557660")));
        assert_eq!(item.get("attempts"), Some(&n_str("1")));
        assert_eq!(item.get("created_at"), Some(&n_str("1700000000.123456")));
        assert_eq!(item.get("result_status"), Some(&s("ok")));
        assert!(
            !item.contains_key("closed_at"),
            "absent options are omitted"
        );
    }

    #[test]
    fn decode_errors_name_the_table_and_the_task() {
        let mut row = python_row();
        row.insert("greenfield".into(), s("soon"));
        let err = item_to_task(row, "sosw_tasks").expect_err("bad greenfield");
        let msg = err.to_string();
        assert!(
            msg.contains("sosw_tasks")
                && msg.contains("4b6d3e2a9f0c11eeb1c80242ac120002")
                && msg.contains("`greenfield`")
                && msg.contains("soon"),
            "{msg}"
        );
        let mut row = python_row();
        row.remove("task_id");
        let msg = item_to_task(row, "sosw_closed_tasks")
            .expect_err("no id")
            .to_string();
        assert!(
            msg.contains("sosw_closed_tasks") && msg.contains("task_id"),
            "{msg}"
        );
    }

    #[test]
    fn a_non_finite_created_at_is_rejected_before_writing() {
        let task = Task::new("t1", "w", json!({}), 2000, f64::NAN);
        let msg = task_to_item(&task, "sosw_tasks")
            .expect_err("NaN")
            .to_string();
        assert!(msg.contains("created_at") && msg.contains("t1"), "{msg}");
    }
}
