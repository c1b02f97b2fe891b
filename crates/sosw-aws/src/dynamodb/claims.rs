//! [`TaskLookup`] and [`TaskClaims`]: reads by key and the orchestrator's conditional claim.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::ReturnValue;

use super::DynamoTaskStore;
use super::codec::{Item, decode_error, item_to_task, n, s};
use super::errors::sdk_error;
use super::query::{self, QuerySpec};
use sosw_core::error::Result;
use sosw_core::store::{ClaimOutcome, TaskClaims, TaskLookup};
use sosw_core::task::{Markers, Task, TaskId, greenfield};

/// sosw 0.7's `mark_task_invoked`: greenfield to "invoked now", one more attempt.
pub(crate) const CLAIM_UPDATE: &str =
    "SET greenfield = :g, attempts = if_not_exists(attempts, :zero) + :one";

/// The only guard against double invocation: the task exists, is queued (`greenfield < now`) and is
/// not completed.
pub(crate) const CLAIM_CONDITION: &str =
    "attribute_exists(task_id) AND greenfield < :now AND attribute_not_exists(completed_at)";

const RELEASE_UPDATE: &str = "SET greenfield = :g, attempts = :attempts";
const RELEASE_CONDITION: &str =
    "attribute_exists(task_id) AND greenfield = :claimed AND attribute_not_exists(completed_at)";

/// Busy: invoked after the `expired` marker (running, or invoked during this run) and not completed.
const RUNNING: &str = "labourer_id = :lab AND greenfield > :expired";

impl DynamoTaskStore {
    async fn get_item(
        &self,
        operation: &'static str,
        table: &str,
        key: Item,
    ) -> Result<Option<Task>> {
        let out = self
            .client()
            .get_item()
            .table_name(table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(operation, table, e))?;
        out.item.map(|item| item_to_task(item, table)).transpose()
    }
}

fn id_key(task_id: &TaskId) -> Item {
    Item::from([("task_id".to_owned(), s(task_id.as_str()))])
}

/// Whether an update failed on its condition (the outcome, not an error).
pub(crate) fn is_condition_failure<R>(
    err: &aws_sdk_dynamodb::error::SdkError<UpdateItemError, R>,
) -> bool {
    err.as_service_error()
        .is_some_and(UpdateItemError::is_conditional_check_failed_exception)
}

#[async_trait]
impl TaskLookup for DynamoTaskStore {
    async fn get_task(&self, task_id: &TaskId) -> Result<Option<Task>> {
        self.get_item("get task", &self.tables().tasks, id_key(task_id))
            .await
    }

    async fn get_closed_task(&self, task_id: &TaskId) -> Result<Option<Task>> {
        self.get_item("get closed task", &self.tables().closed, id_key(task_id))
            .await
    }

    async fn get_retry_task(&self, labourer_id: &str, task_id: &TaskId) -> Result<Option<Task>> {
        let mut key = id_key(task_id);
        key.insert("labourer_id".to_owned(), s(labourer_id));
        self.get_item("get retry task", &self.tables().retry, key)
            .await
    }
}

#[async_trait]
impl TaskClaims for DynamoTaskStore {
    async fn claim(&self, task_id: &TaskId, now: i64) -> Result<ClaimOutcome> {
        let table = &self.tables().tasks;
        let result = self
            .client()
            .update_item()
            .table_name(table)
            .set_key(Some(id_key(task_id)))
            .update_expression(CLAIM_UPDATE)
            .condition_expression(CLAIM_CONDITION)
            .expression_attribute_values(":g", n(greenfield::invoked_at(now)))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let old = out.attributes.ok_or_else(|| {
                    decode_error(table, Some(task_id.as_str()), "the claim returned no row")
                })?;
                Ok(ClaimOutcome::Claimed(item_to_task(old, table)?))
            }
            Err(e) if is_condition_failure(&e) => Ok(ClaimOutcome::AlreadyClaimed),
            Err(e) => Err(sdk_error("claim", table, e)),
        }
    }

    async fn release_claim(&self, claimed: &Task, claimed_at: i64) -> Result<bool> {
        let table = &self.tables().tasks;
        let result = self
            .client()
            .update_item()
            .table_name(table)
            .set_key(Some(id_key(&claimed.task_id)))
            .update_expression(RELEASE_UPDATE)
            .condition_expression(RELEASE_CONDITION)
            .expression_attribute_values(":g", n(claimed.greenfield))
            .expression_attribute_values(":attempts", n(i64::from(claimed.attempts)))
            .expression_attribute_values(":claimed", n(greenfield::invoked_at(claimed_at)))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(sdk_error("release claim", table, e)),
        }
    }

    async fn count_running(&self, labourer_id: &str, markers: &Markers) -> Result<u64> {
        let t = self.tables();
        let spec = QuerySpec::new(
            "count running",
            &t.tasks,
            Some(&t.tasks_greenfield_index),
            RUNNING,
            vec![(":lab", s(labourer_id)), (":expired", n(markers.expired))],
        )
        .filter("attribute_not_exists(completed_at)");
        query::count(self.client(), &spec).await
    }
}
