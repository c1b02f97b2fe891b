//! [`TaskArchive`] and [`TaskRetries`]: the scavenger's listings and moves.

use async_trait::async_trait;
use serde_json::Value;

use super::DynamoTaskStore;
use super::codec::{items_to_tasks, n, s, task_to_item};
use super::expr::Placeholders;
use super::moves::{Side, live_key, retry_key, task_id_exists, unchanged};
use super::query::{self, QuerySpec};
use crate::error::Result;
use crate::store::{
    CLOSED_STATUS_ATTRIBUTE, ClosedStatus, MoveOutcome, TaskArchive, TaskRetries, fresh_from_dead,
};
use crate::task::{Markers, Task};

const COMPLETED: &str = "labourer_id = :lab AND greenfield >= :now";
const EXPIRED: &str = "labourer_id = :lab AND greenfield BETWEEN :start AND :expired";
const CLOSED_BY_STATUS: &str = "labourer_id_task_status = :status";
const DUE: &str = "labourer_id = :lab AND desired_launch_time <= :now";
const RETRY_PARTITION: &str = "labourer_id = :lab";

impl DynamoTaskStore {
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

    async fn archive(
        &self,
        task: &Task,
        status: ClosedStatus,
        closed_at: i64,
    ) -> Result<MoveOutcome> {
        let t = self.tables();
        let mut closed = task.clone();
        closed.closed_at = Some(closed_at);
        closed.desired_launch_time = None;
        closed.extra.insert(
            "labourer_id_task_status".to_owned(),
            Value::from(status.index_key(&task.labourer_id)),
        );
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
