//! From the chunker's rows to task payloads, as sosw 0.7's `create_task` built them.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::job::TaskPayload;

/// Row keys that are task columns the scheduler sets itself. sosw 0.7's strict `create_task` rejected
/// them too (a supplied value had to equal the generated one).
const RESERVED: [&str; 4] = ["task_id", "greenfield", "attempts", "created_at"];

/// The payload of the task for `row`, as sosw 0.7's `construct_payload_for_task`: a `payload` object is
/// the base (a string holding a JSON object is parsed, any other `payload` is kept under `payload`),
/// and every other key of the row except `labourer_id` (a task column) is merged in at the top level.
pub(crate) fn task_payload(row: &TaskPayload) -> Value {
    let mut payload = match row.get("payload") {
        None => Map::new(),
        Some(Value::Object(base)) => base.clone(),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(base)) => base,
            _ => wrapped(Value::String(text.clone())),
        },
        Some(other) => wrapped(other.clone()),
    };
    for (key, value) in row {
        if key != "payload" && key != "labourer_id" {
            payload.insert(key.clone(), value.clone());
        }
    }
    Value::Object(payload)
}

fn wrapped(value: Value) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("payload".into(), value);
    map
}

/// The size of `payload` as stored: compact JSON bytes.
pub(crate) fn payload_size(payload: &Value) -> usize {
    serde_json::to_vec(payload).map_or(usize::MAX, |bytes| bytes.len())
}

/// Checks every row before anything is written: no reserved key, and, when `max_payload_bytes` is
/// given (no blob store to hold bigger ones), no payload above it.
pub(crate) fn check_rows(rows: &[TaskPayload], max_payload_bytes: Option<usize>) -> Result<()> {
    for (index, row) in rows.iter().enumerate() {
        check_row(index as u64, row, max_payload_bytes)?;
    }
    Ok(())
}

/// [`check_rows`] of the row of task `index`.
pub(crate) fn check_row(
    index: u64,
    row: &TaskPayload,
    max_payload_bytes: Option<usize>,
) -> Result<()> {
    if let Some(key) = RESERVED.iter().find(|k| row.contains_key(**k)) {
        return Err(Error::invalid_job(
            *key,
            format!("task {index} would carry `{key}`, which the scheduler sets itself; rename it"),
        ));
    }
    if let Some(limit) = max_payload_bytes {
        let size = payload_size(&task_payload(row));
        if size > limit {
            return Err(Error::invalid_job(
                ".",
                format!(
                    "the payload of task {index} is {size} bytes, above max_task_payload_bytes \
                     ({limit}); set `queue_bucket` so large payloads are stored there"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn row(value: Value) -> TaskPayload {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn payloads_are_built_as_sosw_07_built_them() {
        let cases = [
            (json!({"labourer_id": "w", "a": 1}), json!({"a": 1})),
            (
                json!({"labourer_id": "w", "payload": {"p": 1}, "a": 2}),
                json!({"p": 1, "a": 2}),
            ),
            (
                json!({"labourer_id": "w", "payload": "{\"p\": 1}"}),
                json!({"p": 1}),
            ),
            (
                json!({"labourer_id": "w", "payload": "plain text"}),
                json!({"payload": "plain text"}),
            ),
            (
                json!({"labourer_id": "w", "payload": [1]}),
                json!({"payload": [1]}),
            ),
            (
                json!({"labourer_id": "w", "payload": {"a": 1}, "a": 2}),
                json!({"a": 2}),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(task_payload(&row(input.clone())), expected, "{input}");
        }
    }

    #[test]
    fn reserved_keys_and_oversized_payloads_are_invalid_jobs() {
        let rows = [row(json!({"labourer_id": "w", "greenfield": 5}))];
        match check_rows(&rows, None) {
            Err(Error::InvalidJob { path, .. }) => assert_eq!(path, "greenfield"),
            other => panic!("expected InvalidJob, got {other:?}"),
        }
        let rows = [
            row(json!({"labourer_id": "w", "a": "small"})),
            row(json!({"labourer_id": "w", "a": "x".repeat(100)})),
        ];
        assert!(check_rows(&rows, Some(1000)).is_ok());
        let err = check_rows(&rows, Some(50))
            .expect_err("task 1 is too big")
            .to_string();
        assert!(
            err.contains("task 1") && err.contains("queue_bucket"),
            "{err}"
        );
    }
}
