//! [`TaskQueue`]: batched enqueue and the greenfield-index queries of the queue.

use std::collections::HashSet;

use async_trait::async_trait;

use super::DynamoTaskStore;
use super::codec::{items_to_tasks, n, s, task_to_item};
use super::query::{self, QuerySpec};
use sosw_core::ecology::fair::FairnessKey;
use sosw_core::error::{Error, Result};
use sosw_core::store::{EnqueueMode, EnqueueReport, KeyedQueue, TaskQueue, fairness_unsupported};
use sosw_core::task::{Markers, Task};

/// Queued: below `now` on the greenfield index and not completed.
const QUEUED: &str = "labourer_id = :lab AND greenfield < :now";
const NOT_COMPLETED: &str = "attribute_not_exists(completed_at)";

impl DynamoTaskStore {
    /// The queued tasks of `labourer_id` at `now`, lowest greenfield first (or highest if `newest`).
    fn queued_spec(&self, operation: &'static str, labourer_id: &str, now: i64) -> QuerySpec<'_> {
        let t = self.tables();
        QuerySpec::new(
            operation,
            &t.tasks,
            Some(&t.tasks_greenfield_index),
            QUEUED,
            vec![(":lab", s(labourer_id)), (":now", n(now))],
        )
        .filter(NOT_COMPLETED)
    }

    async fn queue_end(&self, labourer_id: &str, now: i64, newest: bool) -> Result<Option<i64>> {
        let mut spec = self.queued_spec("queue head", labourer_id, now);
        if newest {
            spec = spec.descending();
        }
        let items = query::collect(self.client(), &spec, 1).await?;
        let tasks = items_to_tasks(items, &self.tables().tasks)?;
        Ok(tasks.first().map(|t| t.greenfield))
    }
}

/// Every task valid, no id twice (one batch cannot hold the same key twice).
pub(crate) fn validate_all(tasks: &[Task]) -> Result<()> {
    let mut seen = HashSet::with_capacity(tasks.len());
    for task in tasks {
        task.validate()?;
        if !seen.insert(task.task_id.as_str()) {
            return Err(Error::invalid(
                "tasks",
                format!(
                    "task id `{}` appears more than once in one enqueue",
                    task.task_id
                ),
            ));
        }
    }
    Ok(())
}

#[async_trait]
impl TaskQueue for DynamoTaskStore {
    async fn enqueue(&self, tasks: &[Task], mode: EnqueueMode) -> Result<EnqueueReport> {
        validate_all(tasks)?;
        let table = &self.tables().tasks;
        // Encode everything before the first write, so an unencodable task writes nothing.
        let encoded = tasks
            .iter()
            .map(|t| task_to_item(t, table))
            .collect::<Result<Vec<_>>>()?;
        let existing = match mode {
            EnqueueMode::Fresh => HashSet::new(),
            EnqueueMode::SkipExisting => {
                self.existing_ids(&tasks.iter().collect::<Vec<_>>()).await?
            }
        };
        let new_items: Vec<_> = tasks
            .iter()
            .zip(encoded)
            .filter(|(t, _)| !existing.contains(t.task_id.as_str()))
            .map(|(_, item)| item)
            .collect();
        let written = new_items.len();
        let write_requests = self.batch_put(table, new_items).await?;
        Ok(EnqueueReport {
            written,
            skipped_existing: tasks.len() - written,
            write_requests,
        })
    }

    async fn next_queued(&self, labourer_id: &str, now: i64, limit: usize) -> Result<Vec<Task>> {
        let spec = self.queued_spec("next queued", labourer_id, now);
        let items = query::collect(self.client(), &spec, limit).await?;
        items_to_tasks(items, &self.tables().tasks)
    }

    async fn queue_length(&self, labourer_id: &str, now: i64) -> Result<u64> {
        let spec = self.queued_spec("queue length", labourer_id, now);
        query::count(self.client(), &spec).await
    }

    async fn queue_length_up_to(&self, labourer_id: &str, now: i64, cap: u64) -> Result<u64> {
        let spec = self.queued_spec("queue length", labourer_id, now);
        query::count_up_to(self.client(), &spec, cap).await
    }

    async fn oldest_queued_greenfield(&self, labourer_id: &str, now: i64) -> Result<Option<i64>> {
        self.queue_end(labourer_id, now, false).await
    }

    async fn newest_queued_greenfield(&self, labourer_id: &str, now: i64) -> Result<Option<i64>> {
        self.queue_end(labourer_id, now, true).await
    }

    /// Refused: sosw 0.7's tables have no index by fairness key (their schema is sosw 0.7's; the lean
    /// layout files a keyed labourer's queue per key), and a window of the queue head would be fair only
    /// within the window (docs/ecology.md, "Per-key fairness").
    async fn queue_by_key(
        &self,
        labourer_id: &str,
        key: &FairnessKey,
        _markers: &Markers,
        _per_key: usize,
    ) -> Result<KeyedQueue> {
        Err(fairness_unsupported(
            "the DynamoDB store with sosw 0.7's tables",
            labourer_id,
            key,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_id_twice_in_one_enqueue_is_rejected_by_name() {
        let tasks = [
            Task::new("a", "w", json!({}), 2000, 0.0),
            Task::new("a", "w", json!({}), 3000, 0.0),
        ];
        let msg = validate_all(&tasks).expect_err("duplicate").to_string();
        assert!(
            msg.contains("`a`") && msg.contains("more than once"),
            "{msg}"
        );
    }
}
