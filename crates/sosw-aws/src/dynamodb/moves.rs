//! Moves between tables as one `TransactWriteItems` each (sosw 0.7 used a Put and a Delete, bug B8):
//! a Put into the destination and a conditional Delete from the source, so a row is never in both tables
//! or in neither, and a row that changed since it was read is left alone.

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem};

use super::DynamoTaskStore;
use super::codec::{Item, n, s};
use super::errors::{build_error, is_retryable_cancellation, sdk_error, store_error, written};
use super::expr::Placeholders;
use sosw_core::error::Result;
use sosw_core::store::MoveOutcome;
use sosw_core::task::Task;

/// One side of a move.
pub(crate) struct Side<'a> {
    pub table: &'a str,
    /// The condition and its placeholders, if any.
    pub condition: Option<(String, Placeholders)>,
}

impl DynamoTaskStore {
    /// Puts `item` into `table` if `condition` holds: `false` when it does not.
    pub(crate) async fn put_if(
        &self,
        operation: &'static str,
        table: &str,
        item: Item,
        (condition, p): (String, Placeholders),
    ) -> Result<bool> {
        let result = self
            .client()
            .put_item()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(p.names_opt())
            .set_expression_attribute_values(p.values_opt())
            .send()
            .await;
        written(
            operation,
            table,
            result,
            PutItemError::is_conditional_check_failed_exception,
        )
    }

    /// Deletes `key` from `table` if `condition` holds: `false` when it does not.
    pub(crate) async fn delete_if(
        &self,
        operation: &'static str,
        table: &str,
        key: Item,
        (condition, p): (String, Placeholders),
    ) -> Result<bool> {
        let result = self
            .client()
            .delete_item()
            .table_name(table)
            .set_key(Some(key))
            .condition_expression(condition)
            .set_expression_attribute_names(p.names_opt())
            .set_expression_attribute_values(p.values_opt())
            .send()
            .await;
        written(
            operation,
            table,
            result,
            DeleteItemError::is_conditional_check_failed_exception,
        )
    }

    /// Puts `item` into `to` and deletes `key` from `from`, atomically. A failed condition on either side
    /// is a [`MoveOutcome::Conflict`].
    pub(crate) async fn transact_move(
        &self,
        operation: &'static str,
        item: Item,
        to: Side<'_>,
        key: Item,
        from: Side<'_>,
    ) -> Result<MoveOutcome> {
        let put = put_item(operation, item, to)?;
        let delete = delete_item(operation, key, &from)?;
        self.transact(
            operation,
            from.table,
            vec![
                TransactWriteItem::builder().put(put).build(),
                TransactWriteItem::builder().delete(delete).build(),
            ],
        )
        .await
    }

    /// Writes `items` in one `TransactWriteItems`: [`MoveOutcome::Moved`] when all were written,
    /// [`MoveOutcome::Conflict`] when a condition failed (then none was). `table` names the table in
    /// errors.
    pub(crate) async fn transact(
        &self,
        operation: &'static str,
        table: &str,
        items: Vec<TransactWriteItem>,
    ) -> Result<MoveOutcome> {
        let result = self
            .client()
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(MoveOutcome::Moved),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    let codes: Vec<String> = c
                        .cancellation_reasons()
                        .iter()
                        .filter_map(|r| r.code().map(str::to_owned))
                        .collect();
                    cancelled(operation, table, &codes, e.into_service_error())
                }
                _ => Err(sdk_error(operation, table, e)),
            },
        }
    }
}

/// A cancelled move: a failed condition is a conflict, a contended or throttled one retryable.
fn cancelled(
    operation: &'static str,
    table: &str,
    codes: &[String],
    err: TransactWriteItemsError,
) -> Result<MoveOutcome> {
    if codes.iter().any(|c| c == "ConditionalCheckFailed") {
        return Ok(MoveOutcome::Conflict);
    }
    let retryable = codes.iter().any(|c| is_retryable_cancellation(c));
    Err(store_error(operation, table, retryable, err))
}

pub(crate) fn put_item(operation: &'static str, item: Item, to: Side<'_>) -> Result<Put> {
    let mut put = Put::builder().table_name(to.table).set_item(Some(item));
    if let Some((condition, p)) = to.condition {
        put = put
            .condition_expression(condition)
            .set_expression_attribute_names(p.names_opt())
            .set_expression_attribute_values(p.values_opt());
    }
    put.build().map_err(|e| build_error(operation, to.table, e))
}

pub(crate) fn delete_item(operation: &'static str, key: Item, from: &Side<'_>) -> Result<Delete> {
    let mut delete = Delete::builder().table_name(from.table).set_key(Some(key));
    if let Some((condition, p)) = &from.condition {
        delete = delete
            .condition_expression(condition.clone())
            .set_expression_attribute_names(p.names_opt())
            .set_expression_attribute_values(p.values_opt());
    }
    delete
        .build()
        .map_err(|e| build_error(operation, from.table, e))
}

/// The live row still is as `task` was read: same greenfield, same completion mark.
pub(crate) fn unchanged(task: &Task) -> (String, Placeholders) {
    let mut p = Placeholders::default();
    let same_greenfield = p.assign("greenfield", n(task.greenfield));
    let completed = p.name("completed_at");
    let same_completion = match task.completed_at {
        Some(at) => format!("{completed} = {}", p.value(n(at))),
        None => format!("attribute_not_exists({completed})"),
    };
    (format!("{same_greenfield} AND {same_completion}"), p)
}

/// `attribute_exists(task_id)` or `attribute_not_exists(task_id)`.
pub(crate) fn task_id_exists(exists: bool) -> (String, Placeholders) {
    let mut p = Placeholders::default();
    let id = p.name("task_id");
    let f = if exists {
        "attribute_exists"
    } else {
        "attribute_not_exists"
    };
    (format!("{f}({id})"), p)
}

/// The key of a live or closed row.
pub(crate) fn live_key(task: &Task) -> Item {
    Item::from([("task_id".to_owned(), s(task.task_id.as_str()))])
}

/// The key of a retry row.
pub(crate) fn retry_key(task: &Task) -> Item {
    Item::from([
        ("labourer_id".to_owned(), s(task.labourer_id.as_str())),
        ("task_id".to_owned(), s(task.task_id.as_str())),
    ])
}
