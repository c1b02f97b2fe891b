//! What a store tells the orchestrator about a labourer's work per fairness key
//! ([`TaskQueue::queue_by_key`](super::TaskQueue::queue_by_key)).

use std::collections::BTreeMap;

use crate::ecology::fair::{FairnessKey, KeyLoad};
use crate::error::Error;
use crate::task::Task;

/// One key's open work.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyedWork {
    /// Its tasks running now (invoked, not expired, not completed).
    pub running: u64,
    /// The head of its queue: up to the number asked for, lowest greenfield first.
    pub queued: Vec<Task>,
}

/// A labourer's open work by key: every key with running or queued tasks.
pub type KeyedQueue = BTreeMap<String, KeyedWork>;

/// The loads [`fair_starts`](crate::ecology::fair::fair_starts) divides the slots by.
pub fn key_loads(queue: &KeyedQueue) -> BTreeMap<String, KeyLoad> {
    queue
        .iter()
        .map(|(k, w)| {
            (
                k.clone(),
                KeyLoad {
                    running: w.running,
                    queued: w.queued.len() as u64,
                },
            )
        })
        .collect()
}

/// The error of a store without a per-key queue: the setting is refused, never ignored.
pub fn fairness_unsupported(store: &str, labourer_id: &str, key: &FairnessKey) -> Error {
    Error::invalid(
        "fairness",
        format!(
            "labourer `{labourer_id}` sets `fairness` (key `{key}`), which needs a store with a \
             per-key queue index; {store} has none, so the labourer gets no invocations. Remove \
             `fairness` from its config, or run it on the SQLite store or the lean DynamoDB layout \
             (docs/ecology.md, \"Per-key fairness\")"
        ),
    )
}
