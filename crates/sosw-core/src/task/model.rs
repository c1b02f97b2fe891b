//! The task row: what sosw 0.7 stores in `sosw_tasks`, `sosw_retry_tasks` and `sosw_closed_tasks`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::error::{Error, Result};

/// Longest task id accepted, in bytes. DynamoDB allows 2048 for a partition key; sosw uses 32.
pub const MAX_TASK_ID_LEN: usize = 1024;

/// A task's identifier: the hash key of every task table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TaskId(String);

impl TaskId {
    /// A validated task id: non-empty, at most [`MAX_TASK_ID_LEN`] bytes, no control characters.
    pub fn new(id: impl Into<String>) -> Result<Self> {
        let id = id.into();
        if id.is_empty() {
            return Err(Error::invalid("task id", "it is empty"));
        }
        if id.len() > MAX_TASK_ID_LEN {
            return Err(Error::invalid(
                "task id",
                format!(
                    "it is {} bytes long; the limit is {MAX_TASK_ID_LEN}",
                    id.len()
                ),
            ));
        }
        if id.chars().any(char::is_control) {
            return Err(Error::invalid(
                "task id",
                format!("{id:?} contains a control character"),
            ));
        }
        Ok(TaskId(id))
    }

    /// A fresh random id in sosw 0.7's shape (32 lowercase hex digits).
    pub fn generate() -> Self {
        TaskId(uuid::Uuid::new_v4().simple().to_string())
    }

    /// The id of chunk `index` of job `job_id`: stable, so resubmitting or resuming a job rewrites the same
    /// ids instead of creating new tasks.
    pub fn for_chunk(job_id: &str, index: u64) -> Self {
        TaskId(format!("{job_id}-{index:07}"))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TaskId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for TaskId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TaskId::new(s).map_err(serde::de::Error::custom)
    }
}

/// One task: one invocation of a labourer with a payload.
///
/// Field names are sosw 0.7's attribute names. `payload` is a JSON object in memory and a JSON string in
/// every table (sosw 0.7 wrote the closed table's payload as a Python repr, bug B9; such rows are read
/// back with the raw text kept as a string). Attributes this type does not model (`stat_*`, `result_*`,
/// `labourer_id_task_status`, anything a user added) are kept in `extra` and written back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    /// The hash key.
    pub task_id: TaskId,
    /// The labourer (worker Lambda name) that runs this task.
    pub labourer_id: String,
    /// Creation time in fractional Unix seconds (sosw 0.7 writes `str(time.time())`).
    #[serde(default, deserialize_with = "lenient::f64")]
    pub created_at: f64,
    /// The state encoding, see [`crate::task::greenfield`].
    #[serde(deserialize_with = "lenient::i64")]
    pub greenfield: i64,
    /// How many times the task has been invoked.
    #[serde(default, deserialize_with = "lenient::u32")]
    pub attempts: u32,
    /// The worker's payload.
    #[serde(default = "empty_object", with = "payload_json")]
    pub payload: Value,
    /// When the worker reported completion (Unix seconds).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub completed_at: Option<i64>,
    /// How many failures the worker reported.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_u32"
    )]
    pub failed_attempts: Option<u32>,
    /// When the task was archived (closed table only).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub closed_at: Option<i64>,
    /// When a task waiting for retry should go back to the queue (retry table only).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::opt_i64"
    )]
    pub desired_launch_time: Option<i64>,
    /// The job this task was chunked from (absent on tasks created by sosw 0.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Every other attribute of the row, kept as is.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

impl Task {
    /// A queued task with no attempts.
    pub fn new(
        task_id: impl Into<String>,
        labourer_id: impl Into<String>,
        payload: Value,
        greenfield: i64,
        created_at: f64,
    ) -> Self {
        Task {
            task_id: TaskId(task_id.into()),
            labourer_id: labourer_id.into(),
            created_at,
            greenfield,
            attempts: 0,
            payload,
            completed_at: None,
            failed_attempts: None,
            closed_at: None,
            desired_launch_time: None,
            job_id: None,
            extra: BTreeMap::new(),
        }
    }

    /// Checks what every store relies on: a valid id, a labourer, and an object payload.
    pub fn validate(&self) -> Result<()> {
        TaskId::new(self.task_id.0.clone())?;
        if self.labourer_id.is_empty() {
            return Err(Error::invalid(
                "task",
                format!("task `{}` has an empty labourer_id", self.task_id),
            ));
        }
        if !self.payload.is_object() {
            return Err(Error::invalid(
                "task payload",
                format!(
                    "task `{}`: the payload must be a JSON object, got {}",
                    self.task_id,
                    json_kind(&self.payload)
                ),
            ));
        }
        Ok(())
    }

    /// The payload a worker receives, in sosw 0.7's contract: the payload's keys with `task_id`,
    /// `labourer_id`, `created_at`, `greenfield` and `attempts` of this (pre-invocation) row merged in.
    pub fn worker_payload(&self) -> Value {
        let mut out = match &self.payload {
            Value::Object(map) => map.clone(),
            other => {
                let mut m = serde_json::Map::new();
                m.insert("payload".into(), other.clone());
                m
            }
        };
        out.insert("task_id".into(), Value::from(self.task_id.as_str()));
        out.insert("labourer_id".into(), Value::from(self.labourer_id.as_str()));
        out.insert("created_at".into(), Value::from(self.created_at));
        out.insert("greenfield".into(), Value::from(self.greenfield));
        out.insert("attempts".into(), Value::from(self.attempts));
        Value::Object(out)
    }
}

/// A short name of a JSON value's kind, for error messages.
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The payload is a JSON object in memory and a JSON string in storage.
mod payload_json {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Value, s: S) -> std::result::Result<S::Ok, S::Error> {
        let text = serde_json::to_string(v).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Value, D::Error> {
        let raw = Value::deserialize(d)?;
        Ok(match raw {
            // JSON text (the normal case). Text that is not JSON (sosw 0.7's Python repr in closed rows)
            // is kept as a string rather than rejected.
            Value::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
            // A map stored natively (M) is accepted too.
            other => other,
        })
    }
}

/// Number decoding that accepts what sosw 0.7 and DynamoDB actually store: integers, floats (truncated
/// toward zero where an integer is wanted) and numeric strings.
mod lenient {
    use serde::de::{self, Deserializer, Visitor};
    use std::fmt;

    struct Num;

    impl<'de> Visitor<'de> for Num {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            v.trim()
                .parse::<f64>()
                .map_err(|_| E::custom(format!("expected a number, got {v:?}")))
        }
    }

    struct Int;

    impl<'de> Visitor<'de> for Int {
        type Value = i64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer")
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
            i64::try_from(v).map_err(|_| E::custom(format!("{v} is out of range")))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
            if v.is_finite() && v.abs() < 9.2e18 {
                Ok(v.trunc() as i64)
            } else {
                Err(E::custom(format!("{v} is not a usable integer")))
            }
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
            let t = v.trim();
            if let Ok(i) = t.parse::<i64>() {
                return Ok(i);
            }
            match t.parse::<f64>() {
                Ok(f) => self.visit_f64(f),
                Err(_) => Err(E::custom(format!("expected an integer, got {v:?}"))),
            }
        }
    }

    struct OptInt;

    impl<'de> Visitor<'de> for OptInt {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            i64(d).map(Some)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            Int.visit_i64(v).map(Some)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Int.visit_u64(v).map(Some)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            Int.visit_f64(v).map(Some)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Int.visit_str(v).map(Some)
        }
    }

    pub fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        d.deserialize_any(Num)
    }

    pub fn i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        d.deserialize_any(Int)
    }

    pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let v = i64(d)?;
        u32::try_from(v).map_err(|_| de::Error::custom(format!("{v} is not a count")))
    }

    pub fn opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        d.deserialize_any(OptInt)
    }

    pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
        match opt_i64(d)? {
            None => Ok(None),
            Some(v) => u32::try_from(v)
                .map(Some)
                .map_err(|_| de::Error::custom(format!("{v} is not a count"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn task_ids_are_validated() {
        assert!(TaskId::new("").is_err());
        assert!(TaskId::new("a\nb").is_err());
        assert!(TaskId::new("x".repeat(MAX_TASK_ID_LEN + 1)).is_err());
        assert_eq!(
            TaskId::new("abc").map(|t| t.to_string()).ok(),
            Some("abc".into())
        );
        assert_eq!(TaskId::generate().as_str().len(), 32);
        assert_eq!(TaskId::for_chunk("job1", 42).as_str(), "job1-0000042");
    }

    #[test]
    fn a_sosw_07_row_decodes_with_unknown_attributes_kept() {
        let row = json!({
            "task_id": "abc", "labourer_id": "w", "created_at": "1700000000.25",
            "greenfield": 1731557660, "attempts": "1", "payload": "{\"a\": 1}",
            "completed_at": 1700000300.0, "stat_rows": 5, "result_ok": "yes"
        });
        let t: Task = serde_json::from_value(row).expect("decodes");
        assert_eq!(t.created_at, 1_700_000_000.25);
        assert_eq!(t.attempts, 1);
        assert_eq!(t.payload, json!({"a": 1}));
        assert_eq!(t.completed_at, Some(1_700_000_300));
        assert_eq!(t.extra.get("stat_rows"), Some(&json!(5)));
        let back = serde_json::to_value(&t).expect("encodes");
        assert_eq!(
            back["payload"],
            json!("{\"a\":1}"),
            "payload is stored as a JSON string"
        );
        assert_eq!(back["result_ok"], json!("yes"));
        assert!(back.get("closed_at").is_none());
    }

    #[test]
    fn a_python_repr_payload_is_kept_as_text_not_rejected() {
        let row =
            json!({"task_id": "a", "labourer_id": "w", "greenfield": 1, "payload": "{'a': 1}"});
        let t: Task = serde_json::from_value(row).expect("decodes");
        assert_eq!(t.payload, json!("{'a': 1}"));
    }

    #[test]
    fn bad_rows_are_errors_naming_the_problem() {
        let row = json!({"task_id": "", "labourer_id": "w", "greenfield": 1});
        let err = serde_json::from_value::<Task>(row).expect_err("empty id");
        assert!(err.to_string().contains("empty"), "{err}");
        let row = json!({"task_id": "a", "labourer_id": "w", "greenfield": "soon"});
        let err = serde_json::from_value::<Task>(row).expect_err("bad greenfield");
        assert!(err.to_string().contains("soon"), "{err}");
    }

    #[test]
    fn worker_payload_is_the_sosw_07_contract() {
        let mut t = Task::new("t1", "w", json!({"x": [1, 2]}), 2000, 1.5);
        t.attempts = 1;
        let p = t.worker_payload();
        assert_eq!(
            p,
            json!({"x": [1, 2], "task_id": "t1", "labourer_id": "w", "created_at": 1.5,
                   "greenfield": 2000, "attempts": 1})
        );
    }

    #[test]
    fn validate_rejects_non_object_payloads() {
        let t = Task::new("t1", "w", json!([1]), 2000, 0.0);
        let err = t.validate().expect_err("array payload");
        assert!(err.to_string().contains("an array"), "{err}");
        let t = Task::new("t1", "", json!({}), 2000, 0.0);
        assert!(t.validate().is_err());
    }
}
