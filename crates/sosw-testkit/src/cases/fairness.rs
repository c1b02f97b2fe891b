//! Per-key fairness: [`TaskQueue::queue_by_key`](sosw_core::store::TaskQueue::queue_by_key), each
//! key's running count and queue head. A store without a per-key queue index (sosw 0.7's DynamoDB tables)
//! must refuse it with an error naming the setting and the labourer, never answer something else.

use std::sync::Arc;

use serde_json::{Value, json};

use super::support::{NOW, Scope, WINDOW, claim, complete, put};
use sosw_core::ecology::fair::{DEFAULT_KEY, FairnessKey};
use sosw_core::error::Error;
use sosw_core::store::{KeyedQueue, TaskStore};
use sosw_core::task::{Markers, Task, TaskId};

fn key(path: &str) -> FairnessKey {
    serde_json::from_value(json!(path)).expect("a valid path")
}

fn task(s: &Scope, n: u64, payload: Value) -> Task {
    let mut t = s.task(n, 2000 + 1000 * n as i64);
    t.payload = payload;
    t
}

/// `(key, running, queued ids)` of every key, in key order.
fn summary(queue: &KeyedQueue) -> Vec<(String, u64, Vec<TaskId>)> {
    queue
        .iter()
        .map(|(k, w)| {
            (
                k.clone(),
                w.running,
                w.queued.iter().map(|t| t.task_id.clone()).collect(),
            )
        })
        .collect()
}

/// Every key with open work, its running count and at most `per_key` queued tasks, lowest greenfield
/// first; a payload without the field is in the default key; completed tasks and other labourers are
/// not seen; tasks written after a read are keyed on the next; another path recomputes every key.
pub async fn queue_by_key_gives_each_keys_running_count_and_queue_head<S: TaskStore + 'static>(
    store: Arc<S>,
) {
    let s = Scope::new("fairkeys");
    let tenant = key("account.tenant");
    let tasks = [
        task(&s, 0, json!({"account": {"tenant": "a"}})),
        task(&s, 1, json!({"account": {"tenant": "a"}})),
        task(&s, 2, json!({"account": {"tenant": "a"}})),
        task(&s, 3, json!({"account": {"tenant": "a"}})),
        task(&s, 4, json!({"account": {"tenant": "b"}, "x": 1})),
        task(&s, 5, json!({"account": {"tenant": "b"}})),
        task(&s, 6, json!({"account": {"tenant": 7}})),
        task(&s, 7, json!({"x": 1})),
    ];
    put(&*store, &tasks).await;
    let mut other = s.task_of(&s.other(), 0, 2000);
    other.payload = json!({"account": {"tenant": "a"}});
    put(&*store, &[other]).await;
    let markers = Markers::new(NOW, WINDOW);
    let first = match store.queue_by_key(&s.labourer, &tenant, &markers, 2).await {
        Ok(queue) => queue,
        Err(e) => {
            let msg = e.to_string();
            assert!(
                matches!(e, Error::Invalid { .. })
                    && msg.contains("fairness")
                    && msg.contains(&s.labourer),
                "a store without a per-key queue refuses naming the setting and labourer: {msg}"
            );
            return;
        }
    };
    assert_eq!(
        summary(&first),
        [
            (DEFAULT_KEY.to_owned(), 0, vec![s.id(7)]),
            ("7".to_owned(), 0, vec![s.id(6)]),
            ("a".to_owned(), 0, vec![s.id(0), s.id(1)]),
            ("b".to_owned(), 0, vec![s.id(4), s.id(5)]),
        ],
        "every key's head, at most 2 each, the missing field in the default key"
    );

    claim(&*store, &s.id(0), NOW - 5).await;
    claim(&*store, &s.id(4), NOW - 5).await;
    complete(&*store, &s.id(4), NOW - 2).await;
    claim(&*store, &s.id(5), NOW - 5).await;
    complete(&*store, &s.id(5), NOW - 2).await;
    put(&*store, &[task(&s, 8, json!({"account": {"tenant": "c"}}))]).await;
    let second = store
        .queue_by_key(&s.labourer, &tenant, &markers, 10)
        .await
        .expect("read again");
    assert_eq!(
        summary(&second),
        [
            (DEFAULT_KEY.to_owned(), 0, vec![s.id(7)]),
            ("7".to_owned(), 0, vec![s.id(6)]),
            ("a".to_owned(), 1, vec![s.id(1), s.id(2), s.id(3)]),
            ("c".to_owned(), 0, vec![s.id(8)]),
        ],
        "a running task counts for its key, a key with only completed tasks is gone, a new task is keyed"
    );

    let by_x = store
        .queue_by_key(&s.labourer, &key("x"), &markers, 10)
        .await
        .expect("read with another path");
    let queued = |q: &KeyedQueue, k: &str| q.get(k).map(|w| w.queued.len());
    assert_eq!(queued(&by_x, "1"), Some(1), "{:?}", summary(&by_x));
    assert_eq!(queued(&by_x, DEFAULT_KEY), Some(5), "{:?}", summary(&by_x));
    assert_eq!(
        by_x[DEFAULT_KEY].running, 1,
        "the running task of key `a` has no `x`"
    );
}
