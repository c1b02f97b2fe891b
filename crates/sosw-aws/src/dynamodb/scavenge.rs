//! [`TaskArchive`] and [`TaskRetries`]: the scavenger's listings and moves; [`TaskCancel`].

use async_trait::async_trait;
use serde_json::Value;

use super::DynamoTaskStore;
use super::codec::{items_to_tasks, n, s, task_to_item};
use super::expr::Placeholders;
use super::moves::{Side, live_key, retry_key, task_id_exists, unchanged};
use super::query::{self, QuerySpec};
use sosw_core::error::Result;
use sosw_core::store::{
    CLOSED_STATUS_ATTRIBUTE, ClosedStatus, MoveOutcome, TaskArchive, TaskCancel, TaskRetries,
    cancelled_row, fresh_from_dead, restore_dead_payload,
};
use sosw_core::task::{Markers, Task};

const COMPLETED: &str = "labourer_id = :lab AND greenfield >= :now";
const EXPIRED: &str = "labourer_id = :lab AND greenfield BETWEEN :start AND :expired";
const CLOSED_BY_STATUS: &str = "labourer_id_task_status = :status";
const DUE: &str = "labourer_id = :lab AND desired_launch_time <= :now";
const RETRY_PARTITION: &str = "labourer_id = :lab";

impl DynamoTaskStore {
    /// Archives completed live row `task` as `closed` in two plain writes, half the write units of a
    /// transaction (DynamoDB charges a transactional write twice):
    ///
    /// 1. put the closed row on the condition that there is none (a repeat, or the second half of an
    ///    archive that stopped after its put, finds it there and writes nothing);
    /// 2. delete the live row on the condition that it is unchanged.
    ///
    /// The task is never in neither table. Between the two writes it is in both, completed in both;
    /// nothing runs a completed task, and the next archive (the scavenger archives completed live rows)
    /// finishes the move. A refused delete is a conflict: another archiver finished the move (a
    /// completed row changes in no other way). The closed row is never taken back, because another
    /// archiver may have finished the move on the strength of this call's put (taking it back lost
    /// the task in the conformance case of concurrent archivers).
    async fn close_completed(&self, task: &Task, closed: &Task) -> Result<MoveOutcome> {
        let t = self.tables();
        // Refused: closed already (a repeat, or an archive that stopped after its put). Either way
        // the move is finished below.
        self.put_if(
            "archive",
            &t.closed,
            task_to_item(closed, &t.closed)?,
            task_id_exists(false),
        )
        .await?;
        let moved = self
            .delete_if("archive", &t.tasks, live_key(task), unchanged(task))
            .await?;
        Ok(if moved {
            MoveOutcome::Moved
        } else {
            MoveOutcome::Conflict
        })
    }

    fn greenfield_query(
        &self,
        operation: &'static str,
        key_condition: &'static str,
        values: Vec<(&'static str, aws_sdk_dynamodb::types::AttributeValue)>,
    ) -> QuerySpec<'_> {
        let t = self.tables();
        QuerySpec::new(
            operation,
            &t.tasks,
            Some(&t.tasks_greenfield_index),
            key_condition,
            values,
        )
    }
}

/// `task` as its closed row: `closed_at`, no retry time, and the status index key.
pub(crate) fn closed_row(task: &Task, status: ClosedStatus, closed_at: i64) -> Task {
    let mut closed = task.clone();
    closed.closed_at = Some(closed_at);
    closed.desired_launch_time = None;
    closed.extra.insert(
        CLOSED_STATUS_ATTRIBUTE.to_owned(),
        Value::from(status.index_key(&task.labourer_id)),
    );
    closed
}

#[async_trait]
impl TaskArchive for DynamoTaskStore {
    async fn list_completed(&self, labourer_id: &str, now: i64, limit: usize) -> Result<Vec<Task>> {
        let spec = self
            .greenfield_query(
                "list completed",
                COMPLETED,
                vec![(":lab", s(labourer_id)), (":now", n(now))],
            )
            .filter("attribute_exists(completed_at)");
        let items = query::collect(self.client(), &spec, limit).await?;
        items_to_tasks(items, &self.tables().tasks)
    }

    async fn list_expired(
        &self,
        labourer_id: &str,
        markers: &Markers,
        limit: usize,
    ) -> Result<Vec<Task>> {
        if markers.expired < markers.start {
            // An empty window; DynamoDB rejects BETWEEN with bounds in the wrong order.
            return Ok(Vec::new());
        }
        let spec = self
            .greenfield_query(
                "list expired",
                EXPIRED,
                vec![
                    (":lab", s(labourer_id)),
                    (":start", n(markers.start)),
                    (":expired", n(markers.expired)),
                ],
            )
            .filter("attribute_not_exists(completed_at)");
        let items = query::collect(self.client(), &spec, limit).await?;
        items_to_tasks(items, &self.tables().tasks)
    }

    /// A completed row is final (no claim, report or expiry changes it), so it moves without a
    /// transaction: a conditional put of the closed row, then a conditional delete of the live one.
    /// Any other row moves in one transaction that requires it unchanged since it was read.
    async fn archive(
        &self,
        task: &Task,
        status: ClosedStatus,
        closed_at: i64,
    ) -> Result<MoveOutcome> {
        let t = self.tables();
        let closed = closed_row(task, status, closed_at);
        if status == ClosedStatus::Completed && task.completed_at.is_some() {
            return self.close_completed(task, &closed).await;
        }
        let to = Side {
            table: &t.closed,
            condition: None,
        };
        let from = Side {
            table: &t.tasks,
            condition: Some(unchanged(task)),
        };
        self.transact_move(
            "archive",
            task_to_item(&closed, &t.closed)?,
            to,
            live_key(task),
            from,
        )
        .await
    }

    async fn closed_sample(
        &self,
        labourer_id: &str,
        status: ClosedStatus,
        limit: usize,
    ) -> Result<Vec<Task>> {
        let t = self.tables();
        let spec = QuerySpec::new(
            "closed sample",
            &t.closed,
            Some(&t.closed_status_index),
            CLOSED_BY_STATUS,
            vec![(":status", s(status.index_key(labourer_id)))],
        )
        .descending();
        let mut items = query::collect(self.client(), &spec, limit).await?;
        // The index does not project labourer_id; it is the one asked for.
        for item in &mut items {
            item.entry("labourer_id".to_owned())
                .or_insert_with(|| s(labourer_id));
        }
        items_to_tasks(items, &t.closed)
    }

    async fn redrive(&self, task: &Task, greenfield: i64) -> Result<MoveOutcome> {
        let t = self.tables();
        let mut queued = task.clone();
        restore_dead_payload(&mut queued)?;
        fresh_from_dead(&mut queued, greenfield);
        let to = Side {
            table: &t.tasks,
            condition: Some(task_id_exists(false)),
        };
        let mut p = Placeholders::default();
        let is_dead = p.assign(
            CLOSED_STATUS_ATTRIBUTE,
            s(ClosedStatus::Dead.index_key(&task.labourer_id)),
        );
        let from = Side {
            table: &t.closed,
            condition: Some((is_dead, p)),
        };
        self.transact_move(
            "redrive",
            task_to_item(&queued, &t.tasks)?,
            to,
            live_key(task),
            from,
        )
        .await
    }
}

#[async_trait]
impl TaskRetries for DynamoTaskStore {
    async fn move_to_retry(&self, task: &Task, desired_launch_time: i64) -> Result<MoveOutcome> {
        let t = self.tables();
        let mut waiting = task.clone();
        waiting.desired_launch_time = Some(desired_launch_time);
        waiting.closed_at = None;
        let to = Side {
            table: &t.retry,
            condition: None,
        };
        let from = Side {
            table: &t.tasks,
            condition: Some(unchanged(task)),
        };
        self.transact_move(
            "move to retry",
            task_to_item(&waiting, &t.retry)?,
            to,
            live_key(task),
            from,
        )
        .await
    }

    async fn due_retries(&self, labourer_id: &str, now: i64, limit: usize) -> Result<Vec<Task>> {
        let t = self.tables();
        // An LSI can be read consistently, unlike the greenfield GSI.
        let spec = QuerySpec::new(
            "due retries",
            &t.retry,
            Some(&t.retry_launch_index),
            DUE,
            vec![(":lab", s(labourer_id)), (":now", n(now))],
        )
        .consistent();
        let items = query::collect(self.client(), &spec, limit).await?;
        items_to_tasks(items, &t.retry)
    }

    async fn return_to_queue(&self, task: &Task, greenfield: i64) -> Result<MoveOutcome> {
        let t = self.tables();
        let mut queued = task.clone();
        queued.greenfield = greenfield;
        queued.desired_launch_time = None;
        queued.closed_at = None;
        let to = Side {
            table: &t.tasks,
            condition: Some(task_id_exists(false)),
        };
        let from = Side {
            table: &t.retry,
            condition: Some(task_id_exists(true)),
        };
        self.transact_move(
            "return to queue",
            task_to_item(&queued, &t.tasks)?,
            to,
            retry_key(task),
            from,
        )
        .await
    }

    async fn retry_length(&self, labourer_id: &str) -> Result<u64> {
        let t = self.tables();
        let spec = QuerySpec::new(
            "retry length",
            &t.retry,
            None,
            RETRY_PARTITION,
            vec![(":lab", s(labourer_id))],
        )
        .consistent();
        query::count(self.client(), &spec).await
    }
}

/// `sosw cancel`: a queued task closes through [`TaskArchive::archive`] (one transaction requiring the
/// live row unchanged); a waiting one moves from the retry table to the closed table in one
/// transaction requiring the retry row to exist.
#[async_trait]
impl TaskCancel for DynamoTaskStore {
    async fn cancel_retry(&self, task: &Task, closed_at: i64) -> Result<MoveOutcome> {
        let t = self.tables();
        let closed = cancelled_row(task, closed_at);
        let to = Side {
            table: &t.closed,
            condition: None,
        };
        let from = Side {
            table: &t.retry,
            condition: Some(task_id_exists(true)),
        };
        self.transact_move(
            "cancel retry",
            task_to_item(&closed, &t.closed)?,
            to,
            retry_key(task),
            from,
        )
        .await
    }
}
