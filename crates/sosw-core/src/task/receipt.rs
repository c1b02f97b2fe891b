//! Claim receipts: what a store that closes a completed task in one move needs to know of the task's
//! claim, sent to the worker inside its event and back with the completion, so that the close needs
//! no read of the claim.
//!
//! The lean DynamoDB layout closes a completion by writing the closed item and deleting the claim
//! (docs/layout-lean.md). The closed item holds the whole row, and a worker's report carries only the
//! task id and the worker's results, so without a receipt the worker assistant first reads the claim
//! (half a read unit per task). With one, the orchestrator adds `sosw_claim` to the worker's event:
//! the claimed row without its payload, the store's move counter of the claim, and a digest of the
//! payload. A worker run by [`crate::worker::WorkerRunner`] sends its event back with a completion
//! ([`crate::essentials::worker_assistant::AssistantRequest::invocation`]); [`redeem`] rebuilds the
//! claimed row from the event and the receipt, and accepts it only if the payload rebuilt from the
//! event has the digest the receipt names. The store's conditional delete of the claim (same move
//! counter, greenfield, failed attempts, no completion) then proves that the claim is still the one
//! the receipt describes; when it is not, the store falls back to its read.
//!
//! A worker that does not send its event back (sosw 0.7's Python workers) is served as before, by
//! the read. A receipt is advice, never authority: nothing it says is written unless the claim it
//! describes is still there, unchanged.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Task, TaskId};

/// The key of the claim receipt in a worker's event.
pub const CLAIM_RECEIPT_KEY: &str = "sosw_claim";

/// The task fields sosw merges into a worker's event ([`Task::worker_payload`]).
pub const WORKER_TASK_KEYS: [&str; 5] = [
    "task_id",
    "labourer_id",
    "created_at",
    "greenfield",
    "attempts",
];

/// The version of the receipt's format; a receipt of another version is not redeemed.
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Receipt {
    v: u32,
    /// The store's move counter of the claim.
    rev: i64,
    /// The claimed row, its payload replaced by an empty object.
    task: Task,
    /// [`digest`] of the payload as the claimed row holds it.
    payload: String,
}

/// A digest of a payload as stored (FNV-1a of its JSON text, in hex): enough to tell a payload rebuilt
/// from a worker's event from the stored one, not a guard against a hostile worker (the worker is the
/// deployment's own code).
fn digest(payload: &Value) -> Option<String> {
    let text = serde_json::to_string(payload).ok()?;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    Some(format!("{hash:016x}"))
}

/// The receipt of a claim: `claimed` is the row as the claim wrote it (invoked greenfield, attempts
/// counted), `rev` the store's move counter of the claim item.
pub fn issue(claimed: &Task, rev: i64) -> Option<Value> {
    let mut task = claimed.clone();
    let payload = std::mem::replace(&mut task.payload, Value::Object(Map::new()));
    serde_json::to_value(Receipt {
        v: VERSION,
        rev,
        task,
        payload: digest(&payload)?,
    })
    .ok()
}

/// The claimed row and the move counter a worker's `event` (sent back with the completion of
/// `task_id`) describes, if it carries a receipt of this version for that task and the payload rebuilt
/// from the event (the event without the task fields sosw merged in and without the receipt) is the
/// one the receipt names. `None` otherwise: the store then reads the claim.
pub fn redeem(event: &Value, task_id: &TaskId) -> Option<(Task, i64)> {
    let map = event.as_object()?;
    let receipt: Receipt = serde_json::from_value(map.get(CLAIM_RECEIPT_KEY)?.clone()).ok()?;
    if receipt.v != VERSION || receipt.task.task_id != *task_id {
        return None;
    }
    if map.get("task_id").and_then(Value::as_str) != Some(task_id.as_str()) {
        return None;
    }
    let mut payload = map.clone();
    // `shift_remove` keeps the order of the payload's own keys (objects keep their order here).
    for key in WORKER_TASK_KEYS.iter().chain(&[CLAIM_RECEIPT_KEY]) {
        payload.shift_remove(*key);
    }
    let payload = Value::Object(payload);
    if digest(&payload)? != receipt.payload {
        return None;
    }
    let mut task = receipt.task;
    task.payload = payload;
    Some((task, receipt.rev))
}

/// Whether a worker's event carries a claim receipt (a worker runner sends such an event back with
/// its completion).
pub fn carries_receipt(event: &Value) -> bool {
    event
        .as_object()
        .is_some_and(|m| m.contains_key(CLAIM_RECEIPT_KEY))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claimed(payload: Value) -> Task {
        let mut t = Task::new("t-1", "lab", payload, 5_000, 1_700_000_000.25);
        t.job_id = Some("job-9".into());
        t.failed_attempts = Some(1);
        t.extra.insert("stat_rows".into(), json!(3));
        t
    }

    /// The event the worker gets: the pre-claim row's worker payload with the receipt of the claim.
    fn event_for(before: &Task, rev: i64) -> (Task, Value) {
        let mut after = before.clone();
        after.greenfield = 40_000;
        after.attempts += 1;
        let mut event = before.worker_payload();
        event.as_object_mut().expect("an object").insert(
            CLAIM_RECEIPT_KEY.into(),
            issue(&after, rev).expect("a receipt"),
        );
        (after, event)
    }

    #[test]
    fn a_receipt_sent_back_rebuilds_the_claimed_row_exactly() {
        let before = claimed(json!({"section": "a", "n": [1, 2.5, {"x": null}], "s": "é"}));
        let (after, event) = event_for(&before, 7);
        // The event goes to the worker and back as JSON text.
        let event: Value =
            serde_json::from_str(&serde_json::to_string(&event).expect("json")).expect("parses");
        let (task, rev) = redeem(&event, &before.task_id).expect("redeemed");
        assert_eq!(rev, 7);
        assert_eq!(task, after);
    }

    #[test]
    fn a_payload_sosw_cannot_rebuild_or_a_changed_event_is_refused() {
        // The payload's own `attempts` is hidden by the task field of the same name in the event.
        let before = claimed(json!({"attempts": "mine", "k": 1}));
        let (_, event) = event_for(&before, 3);
        assert!(redeem(&event, &before.task_id).is_none());

        let before = claimed(json!({"k": 1}));
        let (_, event) = event_for(&before, 3);
        let mut changed = event.clone();
        changed["k"] = json!(2);
        assert!(
            redeem(&changed, &before.task_id).is_none(),
            "payload changed"
        );
        let mut extra = event.clone();
        extra["added"] = json!(true);
        assert!(redeem(&extra, &before.task_id).is_none(), "key added");
        let other = TaskId::new("t-2").expect("an id");
        assert!(redeem(&event, &other).is_none(), "another task's report");
        let mut version = event.clone();
        version[CLAIM_RECEIPT_KEY]["v"] = json!(2);
        assert!(
            redeem(&version, &before.task_id).is_none(),
            "another version"
        );
        let mut broken = event.clone();
        broken[CLAIM_RECEIPT_KEY] = json!("not a receipt");
        assert!(redeem(&broken, &before.task_id).is_none(), "malformed");
        assert!(
            redeem(&json!([1]), &before.task_id).is_none(),
            "not an object"
        );
        assert!(
            redeem(&event, &before.task_id).is_some(),
            "the untouched event"
        );
    }

    #[test]
    fn a_payload_stored_as_a_pointer_is_rebuilt_as_the_pointer() {
        let before = claimed(json!({"sosw_payload_ref": "payloads/t-1.json"}));
        let (after, event) = event_for(&before, 2);
        assert!(carries_receipt(&event));
        let (task, _) = redeem(&event, &before.task_id).expect("redeemed");
        assert_eq!(task.payload, after.payload);
    }
}
