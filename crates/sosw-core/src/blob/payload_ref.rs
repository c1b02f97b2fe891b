//! Task payloads too large for a task row: stored in the [`BlobStore`], pointed to from the task.
//!
//! A task whose payload was stored carries, as its whole payload, the pointer
//!
//! ```json
//! {"sosw_payload_ref": "sosw/scheduler/payloads/<task id>.json"}
//! ```
//!
//! and the object at that key is the payload as compact JSON. A worker receives the pointer with the
//! usual `task_id`, `labourer_id`, `created_at`, `greenfield` and `attempts` merged in (see
//! [`crate::task::Task::worker_payload`]); [`resolve_payload`] turns that back into the payload the
//! worker would have received had the payload been stored inline. The worker side reads the same bucket
//! the scheduler wrote (`queue_bucket`).

use serde_json::{Map, Value};

use super::{BlobStore, key_segment};
use crate::error::{Error, Result};
use crate::task::{TaskId, json_kind};

/// The pointer's key in a task payload.
pub const PAYLOAD_REF_KEY: &str = "sosw_payload_ref";

/// Where the payload of `task_id` is stored: `<prefix>/payloads/<task id as a key segment>.json`.
pub fn payload_key(prefix: &str, task_id: &TaskId) -> String {
    let prefix = prefix.trim_matches('/');
    let file = format!("{}.json", key_segment(task_id.as_str()));
    if prefix.is_empty() {
        format!("payloads/{file}")
    } else {
        format!("{prefix}/payloads/{file}")
    }
}

/// The pointer to a payload stored at `key`.
pub fn payload_ref(key: &str) -> Value {
    let mut pointer = Map::new();
    pointer.insert(PAYLOAD_REF_KEY.into(), Value::String(key.to_owned()));
    Value::Object(pointer)
}

/// The key a payload points to, if it is a pointer.
pub fn payload_ref_key(payload: &Value) -> Option<&str> {
    payload.get(PAYLOAD_REF_KEY).and_then(Value::as_str)
}

/// Stores `payload` at `key` and returns the pointer to put in the task instead.
pub async fn store_payload(blobs: &dyn BlobStore, key: &str, payload: &Value) -> Result<Value> {
    let body = serde_json::to_vec(payload)
        .map_err(|e| Error::invalid("task payload", format!("cannot encode it: {e}")))?;
    blobs.put(key, body).await?;
    Ok(payload_ref(key))
}

/// The payload a worker should see for `received`: `received` itself unless it is a pointer; for a
/// pointer, the stored payload with every other key of `received` (`task_id`, `greenfield`, ...)
/// merged over it. A pointer to a missing or non-object payload is an error naming the key.
pub async fn resolve_payload(blobs: &dyn BlobStore, received: Value) -> Result<Value> {
    let Some(key) = payload_ref_key(&received).map(str::to_owned) else {
        return Ok(received);
    };
    let body = blobs.get(&key).await?.ok_or_else(|| {
        Error::invalid(
            "task payload",
            format!("it points to `{key}`, which does not exist in the blob store"),
        )
    })?;
    let stored: Value = serde_json::from_slice(&body).map_err(|e| {
        Error::invalid(
            "task payload",
            format!("the payload stored at `{key}` is not JSON: {e}"),
        )
    })?;
    let Value::Object(mut payload) = stored else {
        return Err(Error::invalid(
            "task payload",
            format!(
                "the payload stored at `{key}` is {}, not an object",
                json_kind(&stored)
            ),
        ));
    };
    if let Value::Object(extra) = received {
        payload.extend(extra.into_iter().filter(|(k, _)| k != PAYLOAD_REF_KEY));
    }
    Ok(Value::Object(payload))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::blob::DirBlobStore;

    fn store() -> Result<(DirBlobStore, std::path::PathBuf)> {
        let root =
            std::env::temp_dir().join(format!("sosw-payload-{}", uuid::Uuid::new_v4().simple()));
        Ok((DirBlobStore::new(&root)?, root))
    }

    #[test]
    fn payload_keys_live_under_the_prefix_and_are_valid() {
        let id = TaskId::for_chunk("job 1/x", 3);
        let key = payload_key("sosw/scheduler/", &id);
        assert!(key.starts_with("sosw/scheduler/payloads/"), "{key}");
        assert!(crate::blob::check_key(&key).is_ok(), "{key}");
        assert_eq!(
            payload_key("", &TaskId::for_chunk("j", 1)),
            "payloads/j-0000001.json"
        );
    }

    #[tokio::test]
    async fn a_stored_payload_resolves_with_the_row_fields_merged_in() -> Result<()> {
        let (blobs, root) = store()?;
        let payload = json!({"big": "x".repeat(1000), "n": 1});
        let pointer = store_payload(&blobs, "p/t1.json", &payload).await?;
        assert_eq!(pointer, json!({"sosw_payload_ref": "p/t1.json"}));
        let mut received = pointer.clone();
        if let Some(fields) = received.as_object_mut() {
            fields.insert("task_id".into(), json!("t1"));
            fields.insert("attempts".into(), json!(1));
        }
        let resolved = resolve_payload(&blobs, received).await?;
        assert_eq!(
            resolved,
            json!({"big": "x".repeat(1000), "n": 1, "task_id": "t1", "attempts": 1})
        );
        let inline = json!({"a": 1});
        assert_eq!(resolve_payload(&blobs, inline.clone()).await?, inline);
        std::fs::remove_dir_all(root).ok();
        Ok(())
    }

    #[tokio::test]
    async fn a_dangling_or_bad_pointer_is_an_error_naming_the_key() -> Result<()> {
        let (blobs, root) = store()?;
        let err = resolve_payload(&blobs, payload_ref("p/gone.json")).await;
        assert!(err.is_err_and(|e| e.to_string().contains("p/gone.json")));
        blobs.put("p/list.json", b"[1]".to_vec()).await?;
        let err = resolve_payload(&blobs, payload_ref("p/list.json")).await;
        assert!(err.is_err_and(|e| e.to_string().contains("an array")));
        blobs.put("p/text.json", b"not json".to_vec()).await?;
        assert!(
            resolve_payload(&blobs, payload_ref("p/text.json"))
                .await
                .is_err()
        );
        std::fs::remove_dir_all(root).ok();
        Ok(())
    }
}
