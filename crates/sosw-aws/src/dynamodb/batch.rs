//! `BatchWriteItem` and `BatchGetItem` with their leftovers resent under [`super::BatchRetry`].

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::{KeysAndAttributes, PutRequest, WriteRequest};

use super::DynamoTaskStore;
use super::codec::{Item, item_task_id, s};
use super::errors::{build_error, sdk_error, store_error};
use sosw_core::error::Result;
use sosw_core::task::Task;

/// Items per `BatchWriteItem` (the DynamoDB limit).
pub(crate) const WRITE_BATCH: usize = 25;

/// Keys per `BatchGetItem` (the DynamoDB limit).
pub(crate) const GET_BATCH: usize = 100;

/// Tasks per existence check: each is looked up in three tables.
const TASKS_PER_GET: usize = GET_BATCH / 3;

impl DynamoTaskStore {
    /// Writes `items` to `table` in batches of [`WRITE_BATCH`]. Returns the number of requests sent.
    pub(crate) async fn batch_put(&self, table: &str, items: Vec<Item>) -> Result<usize> {
        let mut requests = 0;
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() {
            let batch = items
                .by_ref()
                .take(WRITE_BATCH)
                .map(|item| put_request(table, item))
                .collect::<Result<Vec<_>>>()?;
            requests += self.write_one_batch(table, batch).await?;
        }
        Ok(requests)
    }

    /// Sends one batch, resending its unprocessed items. Returns the number of requests sent.
    async fn write_one_batch(&self, table: &str, batch: Vec<WriteRequest>) -> Result<usize> {
        let policy = *self.batch_retry();
        let mut pending = batch;
        let mut sent = 0;
        loop {
            sent += 1;
            let out = self
                .client()
                .batch_write_item()
                .request_items(table, pending)
                .send()
                .await
                .map_err(|e| sdk_error("enqueue", table, e))?;
            pending = out
                .unprocessed_items
                .and_then(|mut m| m.remove(table))
                .unwrap_or_default();
            if pending.is_empty() {
                return Ok(sent);
            }
            let resends = u32::try_from(sent - 1).unwrap_or(u32::MAX);
            if resends >= policy.max_retries {
                return Err(store_error(
                    "enqueue",
                    table,
                    true,
                    format!(
                        "{} items still unprocessed (throttled) after {} resends",
                        pending.len(),
                        policy.max_retries
                    ),
                ));
            }
            tokio::time::sleep(policy.delay(resends)).await;
        }
    }

    /// The ids of `tasks` that exist in the live, closed or retry table.
    pub(crate) async fn existing_ids(&self, tasks: &[&Task]) -> Result<HashSet<String>> {
        let mut found = HashSet::new();
        for chunk in tasks.chunks(TASKS_PER_GET) {
            let request = self.existence_request(chunk)?;
            found.extend(self.batch_get_ids(request).await?);
        }
        Ok(found)
    }

    /// One `BatchGetItem` request body looking for `tasks` in all three tables, keys only.
    fn existence_request(&self, tasks: &[&Task]) -> Result<HashMap<String, KeysAndAttributes>> {
        let t = self.tables();
        let by_id =
            |task: &&Task| HashMap::from([("task_id".to_owned(), s(task.task_id.as_str()))]);
        let retry_key = |task: &&Task| {
            HashMap::from([
                ("labourer_id".to_owned(), s(task.labourer_id.as_str())),
                ("task_id".to_owned(), s(task.task_id.as_str())),
            ])
        };
        let ids: Vec<Item> = dedup_keys(tasks.iter().map(by_id));
        let retry: Vec<Item> = dedup_keys(tasks.iter().map(retry_key));
        Ok(HashMap::from([
            (t.tasks.clone(), keys_only(&t.tasks, ids.clone())?),
            (t.closed.clone(), keys_only(&t.closed, ids)?),
            (t.retry.clone(), keys_only(&t.retry, retry)?),
        ]))
    }

    /// Runs a `BatchGetItem`, resending unprocessed keys; returns the task ids found.
    async fn batch_get_ids(
        &self,
        request: HashMap<String, KeysAndAttributes>,
    ) -> Result<HashSet<String>> {
        let policy = *self.batch_retry();
        let table = self.tables().tasks.clone();
        let mut pending = request;
        let mut found = HashSet::new();
        for resends in 0.. {
            let out = self
                .client()
                .batch_get_item()
                .set_request_items(Some(pending))
                .send()
                .await
                .map_err(|e| sdk_error("enqueue", &table, e))?;
            for item in out.responses.unwrap_or_default().into_values().flatten() {
                if let Some(id) = item_task_id(&item) {
                    found.insert(id.to_owned());
                }
            }
            pending = out.unprocessed_keys.unwrap_or_default();
            pending.retain(|_, k| !k.keys.is_empty());
            if pending.is_empty() {
                break;
            }
            if resends >= policy.max_retries {
                return Err(store_error(
                    "enqueue",
                    &table,
                    true,
                    format!(
                        "existence check: keys still unprocessed (throttled) after {} resends",
                        policy.max_retries
                    ),
                ));
            }
            tokio::time::sleep(policy.delay(resends)).await;
        }
        Ok(found)
    }
}

fn put_request(table: &str, item: Item) -> Result<WriteRequest> {
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(|e| build_error("enqueue", table, e))?;
    Ok(WriteRequest::builder().put_request(put).build())
}

/// `KeysAndAttributes` reading only the key attributes (cheapest), strongly consistent.
fn keys_only(table: &str, keys: Vec<Item>) -> Result<KeysAndAttributes> {
    KeysAndAttributes::builder()
        .set_keys(Some(keys))
        .projection_expression("task_id")
        .consistent_read(true)
        .build()
        .map_err(|e| build_error("enqueue", table, e))
}

/// Keys in order without repeats (`BatchGetItem` rejects duplicate keys).
fn dedup_keys(keys: impl Iterator<Item = Item>) -> Vec<Item> {
    let mut out: Vec<Item> = Vec::new();
    for key in keys {
        if !out.contains(&key) {
            out.push(key);
        }
    }
    out
}
