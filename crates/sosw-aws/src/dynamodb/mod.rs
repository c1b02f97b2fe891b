//! DynamoDB adapters with sosw 0.7's table schema.
//!
//! [`DynamoTaskStore`] implements every capability of [`sosw_core::store::TaskStore`] over sosw 0.7's
//! `sosw_tasks`, `sosw_closed_tasks` and `sosw_retry_tasks` tables, reading and writing the same rows as
//! Python sosw 0.7, with the request shapes that carry its guarantees:
//!
//! * **claim**: one `UpdateItem` `SET greenfield = :g, attempts = if_not_exists(attempts, :zero) + :one`
//!   on the condition that the task exists, `greenfield < :now` and it has no `completed_at`; a failed
//!   condition is [`sosw_core::store::ClaimOutcome::AlreadyClaimed`];
//! * **queue reads**: queries of the `(labourer_id, greenfield)` index, every one paginated to the end;
//! * **enqueue**: `BatchWriteItem` in batches of 25, unprocessed items resent with backoff
//!   ([`BatchRetry`]);
//! * **reports**: conditional updates that never create a row for a task that is gone (sosw 0.7 bug B10);
//! * **archive and retry moves**: one `TransactWriteItems` each, conditional on the source row being
//!   unchanged (sosw 0.7 bug B8); closed rows keep their payload as JSON text (bug B9).
//!
//! It also implements [`sosw_core::store::JobStore`] over a fourth table, `sosw_jobs` (hash key `job_id`),
//! new in this implementation: counters by `ADD`, the finish by a condition on the status (see the
//! `jobs` module for the item and every request).
//!
//! And [`sosw_core::store::EcologyState`] over a fifth, `sosw_ecology` (hash key `labourer_id`): the
//! rate log and controller state every orchestrator shares, written by compare-and-set on a version
//! (see the `ecology` module).
//!
//! [`create_tables`] and [`delete_tables`] manage the five tables for tests and local tooling.

mod batch;
mod claims;
mod codec;
mod ecology;
pub(crate) mod errors;
pub(crate) mod expr;
mod jobs;
pub mod lean;
mod moves;
mod query;
mod queue;
mod reports;
mod scavenge;
mod schema;
mod store;

#[cfg(test)]
mod request_shapes;

pub use schema::{create_tables, delete_tables};
pub use store::{BatchRetry, DynamoTaskStore};

/// Decodes a raw item of `table` into a task, exactly as every read of [`DynamoTaskStore`] does: for
/// tools holding raw items (a scan, an export) and for the hostile-input tests. An item that is not a
/// task is an [`Error::Decode`](sosw_core::Error::Decode) naming the table, the task id where known and the
/// offending attribute.
pub fn decode_task(
    item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
    table: &str,
) -> sosw_core::Result<sosw_core::task::Task> {
    codec::item_to_task(item, table)
}
