//! `sosw migrate-layout`: a deployment's waiting tasks moved from sosw 0.7's tables to the lean table
//! (docs/layout-lean.md, "Migration from the 0.7 layout").
//!
//! Per queued 0.7 row (not invoked, not completed), oldest greenfield first: the lean queued item is
//! put (on the condition that none is there), then the 0.7 row is deleted on the condition that its
//! greenfield is unchanged and it is not completed. If that delete is refused (a 0.7 orchestrator
//! claimed the row in between), the lean item just written is deleted on the condition that it is still
//! the unclaimed queued item, and the task stays on the 0.7 side. Retry rows move the same way to the
//! lean layout's waiting items, their condition being an unchanged `desired_launch_time`. Invoked and
//! completed 0.7 rows are left to finish where they are.
//!
//! A stop between the two writes leaves the task in both layouts, unclaimed in both; the next run finds
//! the lean item already there (one read of its exact keys) and finishes the move by deleting the 0.7
//! row. So a run is resumable and a second run moves nothing more.

use std::collections::HashSet;

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;

use super::super::DynamoTaskStore;
use super::super::codec::{Item, item_to_task, n, s};
use super::super::errors::sdk_error;
use super::{LeanTaskStore, Written};
use sosw_core::error::Result;
use sosw_core::task::Task;

/// What a migration did (or, on a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Queued 0.7 rows found (not invoked, not completed).
    pub queued_found: u64,
    /// Retry rows found.
    pub retries_found: u64,
    /// Queued tasks moved to the lean table (on a dry run: 0).
    pub queued_moved: u64,
    /// Retry rows moved to the lean table (on a dry run: 0).
    pub retries_moved: u64,
    /// Tasks a previous run had written to the lean table already: their 0.7 row is deleted now.
    pub finished_earlier_moves: u64,
    /// Tasks a 0.7 essential changed during the move (claimed, requeued): left on the 0.7 side, the
    /// lean item taken back.
    pub left_changed: u64,
    /// Invoked or completed 0.7 rows: left to finish on the 0.7 side.
    pub left_running: u64,
}

/// One step of progress: after every `every` tasks and at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationProgress {
    /// Tasks handled so far (moved or left), queued rows and retry rows together.
    pub done: u64,
    /// Tasks to handle (queued rows and retry rows found).
    pub total: u64,
}

/// The two sides of a migration.
#[derive(Debug, Clone)]
pub struct Migration {
    from: DynamoTaskStore,
    to: LeanTaskStore,
}

/// Which 0.7 table a row came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Queued,
    Retry,
}

/// What moving one row did.
enum Moved {
    Yes,
    FinishedEarlier,
    LeftChanged,
}

impl Migration {
    /// From sosw 0.7's tables of `from` to the lean table of `to`. Makes no request.
    pub fn new(from: DynamoTaskStore, to: LeanTaskStore) -> Self {
        Migration { from, to }
    }

    /// An error naming the first table of the migration that does not exist (the 0.7 task and retry
    /// tables, the lean table), with what to do.
    pub async fn check_tables(&self) -> Result<()> {
        let tables = self.from.tables();
        for (table, what) in [
            (tables.tasks.as_str(), "sosw 0.7's task table"),
            (tables.retry.as_str(), "sosw 0.7's retry table"),
            (self.to.table(), "the lean table"),
        ] {
            let result = self
                .to
                .client()
                .describe_table()
                .table_name(table)
                .send()
                .await;
            match result {
                Ok(_) => {}
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    return Err(sosw_core::Error::invalid(
                        "migrate layout",
                        format!(
                            "{what} `{table}` does not exist: deploy the tables stack with \
                             Layout=lean (or check `table_prefix` and SOSW_LEAN_TABLE)"
                        ),
                    ));
                }
                Err(e) => return Err(sdk_error("migrate layout: describe table", table, e)),
            }
        }
        Ok(())
    }

    /// Moves every queued and retry 0.7 row waiting at `now` (queued rows oldest greenfield first),
    /// calling `progress` every `every` tasks and at the end. A dry run reads and counts only.
    pub async fn run(
        &self,
        now: i64,
        dry_run: bool,
        every: u64,
        mut progress: impl FnMut(MigrationProgress),
    ) -> Result<MigrationReport> {
        self.check_tables().await?;
        let mut report = MigrationReport::default();
        let mut queued = Vec::new();
        for task in self.scan(Kind::Queued).await? {
            if task.completed_at.is_none() && task.greenfield < now {
                queued.push(task);
            } else {
                report.left_running += 1;
            }
        }
        queued.sort_by_key(|t| t.greenfield);
        let retries = self.scan(Kind::Retry).await?;
        report.queued_found = queued.len() as u64;
        report.retries_found = retries.len() as u64;
        let total = report.queued_found + report.retries_found;
        if dry_run {
            progress(MigrationProgress { done: 0, total });
            return Ok(report);
        }
        let labourers: HashSet<&str> = queued
            .iter()
            .chain(&retries)
            .map(|t| t.labourer_id.as_str())
            .collect();
        self.to
            .register(&labourers.into_iter().collect::<Vec<_>>())
            .await?;
        let every = every.max(1);
        let mut done = 0;
        for (kind, task) in queued
            .iter()
            .map(|t| (Kind::Queued, t))
            .chain(retries.iter().map(|t| (Kind::Retry, t)))
        {
            match self.move_one(kind, task).await? {
                Moved::Yes if kind == Kind::Queued => report.queued_moved += 1,
                Moved::Yes => report.retries_moved += 1,
                Moved::FinishedEarlier => report.finished_earlier_moves += 1,
                Moved::LeftChanged => report.left_changed += 1,
            }
            done += 1;
            if done % every == 0 && done < total {
                progress(MigrationProgress { done, total });
            }
        }
        progress(MigrationProgress { done, total });
        Ok(report)
    }

    /// Every row of the 0.7 task table (`Queued`) or retry table (`Retry`), consistently read.
    async fn scan(&self, kind: Kind) -> Result<Vec<Task>> {
        let table = match kind {
            Kind::Queued => self.from.tables().tasks.clone(),
            Kind::Retry => self.from.tables().retry.clone(),
        };
        let mut tasks = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .from
                .client()
                .scan()
                .table_name(&table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("migrate layout: scan", &table, e))?;
            for item in out.items.unwrap_or_default() {
                tasks.push(item_to_task(item, &table)?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(tasks),
            }
        }
    }

    /// The lean key a 0.7 row of `kind` moves to (a queued row under its fairness key's partition if
    /// its labourer is keyed).
    async fn lean_key(&self, kind: Kind, task: &Task) -> Result<Item> {
        Ok(match kind {
            Kind::Queued => self.to.queue_key_for(task).await?,
            Kind::Retry => LeanTaskStore::retry_key(&task.labourer_id, task.task_id.as_str()),
        })
    }

    /// Whether any lean item of `task` other than `except` exists (a claim, a waiting or closed item,
    /// or a queued item under another greenfield): the task has moved on in the lean layout.
    async fn moved_on(&self, task: &Task, except: &Item) -> Result<bool> {
        let id = task.task_id.as_str();
        let mut keys = vec![
            self.to.claim_key(id),
            self.to.closed_key(&task.labourer_id, id),
            LeanTaskStore::retry_key(&task.labourer_id, id),
        ];
        keys.retain(|k| k != except);
        Ok(!self
            .to
            .get_many("migrate layout: find moved task", keys)
            .await?
            .is_empty())
    }

    async fn move_one(&self, kind: Kind, task: &Task) -> Result<Moved> {
        let key = self.lean_key(kind, task).await?;
        let already = self
            .to
            .get("migrate layout: find moved task", key.clone())
            .await?;
        let earlier = match already {
            Some(found) if found.rev == 0 => true,
            Some(_) => return self.finish_moved_on(kind, task).await,
            None if self.moved_on(task, &key).await? => {
                return self.finish_moved_on(kind, task).await;
            }
            None => {
                let item = self.to.item(task, &key, 0)?;
                if self.to.put_newer("migrate layout: put", item).await? == Written::ConditionFailed
                {
                    // Written by a concurrent run of the tool: finish it as an earlier move.
                    true
                } else {
                    false
                }
            }
        };
        if self.delete_sosw07(kind, task).await? == Written::Yes {
            return Ok(if earlier {
                Moved::FinishedEarlier
            } else {
                Moved::Yes
            });
        }
        // A 0.7 essential changed the row: the task stays there, the lean item is taken back if it is
        // still the unclaimed item written here.
        self.to
            .delete_if("migrate layout: take back", key, 0, None)
            .await?;
        Ok(Moved::LeftChanged)
    }

    /// The task has moved on in the lean layout (claimed or closed there after an earlier run): its 0.7
    /// row is the stale half of that move, deleted if it is still as read.
    async fn finish_moved_on(&self, kind: Kind, task: &Task) -> Result<Moved> {
        match self.delete_sosw07(kind, task).await? {
            Written::Yes => Ok(Moved::FinishedEarlier),
            Written::ConditionFailed => Ok(Moved::LeftChanged),
        }
    }

    /// Deletes the 0.7 row of `task` on the condition that it is as read: for a queued row the same
    /// greenfield and no completion, for a retry row the same `desired_launch_time`.
    async fn delete_sosw07(&self, kind: Kind, task: &Task) -> Result<Written> {
        let tables = self.from.tables();
        let id = s(task.task_id.as_str());
        let request = self.from.client().delete_item();
        let (table, request) = match kind {
            Kind::Queued => (
                tables.tasks.as_str(),
                request
                    .table_name(&tables.tasks)
                    .key("task_id", id)
                    .condition_expression("#gf = :gf AND attribute_not_exists(#done)")
                    .expression_attribute_names("#gf", "greenfield")
                    .expression_attribute_names("#done", "completed_at")
                    .expression_attribute_values(":gf", n(task.greenfield)),
            ),
            Kind::Retry => {
                let request = request
                    .table_name(&tables.retry)
                    .key("labourer_id", s(&task.labourer_id))
                    .key("task_id", id)
                    .expression_attribute_names("#dlt", "desired_launch_time");
                let request = match task.desired_launch_time {
                    Some(due) => request
                        .condition_expression("#dlt = :dlt")
                        .expression_attribute_values(":dlt", n(due)),
                    None => request.condition_expression(
                        "attribute_exists(task_id) AND attribute_not_exists(#dlt)",
                    ),
                };
                (tables.retry.as_str(), request)
            }
        };
        match request.send().await {
            Ok(_) => Ok(Written::Yes),
            Err(e)
                if e.as_service_error()
                    .is_some_and(DeleteItemError::is_conditional_check_failed_exception) =>
            {
                Ok(Written::ConditionFailed)
            }
            Err(e) => Err(sdk_error("migrate layout: delete 0.7 row", table, e)),
        }
    }
}
