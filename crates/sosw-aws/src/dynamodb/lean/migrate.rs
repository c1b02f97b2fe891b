//! `sosw migrate-layout`: a deployment's waiting tasks moved from sosw 0.7's tables to the lean table
//! (docs/layout-lean.md, "Migration from the 0.7 layout").
//!
//! The 0.7 tables are read a page at a time (the next page read while this one's tasks move, up to
//! [`MigrationSettings::concurrency`] at once), so memory holds two pages whatever the queue's size.
//! Per queued 0.7 row (not invoked, not completed), a page's oldest greenfield first: the lean queued item is
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

use futures::StreamExt;

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;

use super::super::DynamoTaskStore;
use super::super::codec::{Item, item_to_task, n, s};
use super::super::errors::sdk_error;
use super::{Found, LeanTaskStore, Written};
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
    /// Tasks to handle found so far (queued rows and retry rows): all of them once `scanned`.
    pub found: u64,
    /// Whether both 0.7 tables have been read to the end (`found` is then the total).
    pub scanned: bool,
}

/// How a migration runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationSettings {
    /// Report progress after every `every` tasks (and at the end).
    pub every: u64,
    /// Tasks moved at once (each move is two to four requests, one after the other).
    pub concurrency: usize,
}

impl Default for MigrationSettings {
    fn default() -> Self {
        MigrationSettings {
            every: 500,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// Tasks moved at once by default: about 16 times one task's pace, well under what one key of the
/// lean table (a queue shard) or of sosw 0.7's index (a labourer) takes a second.
pub const DEFAULT_CONCURRENCY: usize = 16;

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

    /// Moves every queued and retry 0.7 row waiting at `now`, as the scan reads them: the task table
    /// first, then the retry table, a page at a time (a page's queued rows oldest greenfield first),
    /// with up to `settings.concurrency` tasks moving at once while the next page is read, and calls
    /// `progress` every `settings.every` tasks and at the end. Memory holds two pages, not the
    /// tables. A dry run reads and counts only.
    pub async fn run(
        &self,
        now: i64,
        dry_run: bool,
        settings: MigrationSettings,
        mut progress: impl FnMut(MigrationProgress),
    ) -> Result<MigrationReport> {
        self.check_tables().await?;
        let mut report = MigrationReport::default();
        let every = settings.every.max(1);
        let concurrency = settings.concurrency.max(1);
        let mut done = 0;
        let mut found = 0;
        for kind in [Kind::Queued, Kind::Retry] {
            let mut page = self.scan_page(kind, None).await?;
            loop {
                let (rows, next) = page;
                let mut waiting = Vec::with_capacity(rows.len());
                for task in rows {
                    if kind == Kind::Retry || (task.completed_at.is_none() && task.greenfield < now)
                    {
                        waiting.push(task);
                    } else {
                        report.left_running += 1;
                    }
                }
                waiting.sort_by_key(|t| t.greenfield);
                match kind {
                    Kind::Queued => report.queued_found += waiting.len() as u64,
                    Kind::Retry => report.retries_found += waiting.len() as u64,
                }
                found += waiting.len() as u64;
                let scanned = next.is_none() && kind == Kind::Retry;
                let read_next = async {
                    match next {
                        Some(start) => Some(self.scan_page(kind, Some(start)).await),
                        None => None,
                    }
                };
                let moves = async {
                    if dry_run || waiting.is_empty() {
                        return Ok(());
                    }
                    let labourers: HashSet<&str> =
                        waiting.iter().map(|t| t.labourer_id.as_str()).collect();
                    self.to
                        .register(&labourers.into_iter().collect::<Vec<_>>())
                        .await?;
                    let mut moving = futures::stream::iter(&waiting)
                        .map(|task| self.move_one(kind, task))
                        .buffer_unordered(concurrency);
                    while let Some(moved) = moving.next().await {
                        match moved? {
                            Moved::Yes if kind == Kind::Queued => report.queued_moved += 1,
                            Moved::Yes => report.retries_moved += 1,
                            Moved::FinishedEarlier => report.finished_earlier_moves += 1,
                            Moved::LeftChanged => report.left_changed += 1,
                        }
                        done += 1;
                        if done % every == 0 {
                            progress(MigrationProgress {
                                done,
                                found,
                                scanned,
                            });
                        }
                    }
                    Ok::<(), sosw_core::Error>(())
                };
                let (moved, next_page) = futures::join!(moves, read_next);
                moved?;
                match next_page {
                    Some(next_page) => page = next_page?,
                    None => break,
                }
            }
        }
        if done == 0 || done % every != 0 {
            progress(MigrationProgress {
                done,
                found,
                scanned: true,
            });
        }
        Ok(report)
    }

    /// One page of the 0.7 task table (`Queued`) or retry table (`Retry`), consistently read from
    /// `start`, and where the next page starts (`None` after the last).
    async fn scan_page(
        &self,
        kind: Kind,
        start: Option<Item>,
    ) -> Result<(Vec<Task>, Option<Item>)> {
        let table = match kind {
            Kind::Queued => &self.from.tables().tasks,
            Kind::Retry => &self.from.tables().retry,
        };
        let out = self
            .from
            .client()
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| sdk_error("migrate layout: scan", table, e))?;
        let tasks = out
            .items
            .unwrap_or_default()
            .into_iter()
            .map(|item| item_to_task(item, table))
            .collect::<Result<Vec<_>>>()?;
        Ok((tasks, out.last_evaluated_key.filter(|k| !k.is_empty())))
    }

    /// The lean key a 0.7 row of `kind` moves to (a queued row under its fairness key's partition if
    /// its labourer is keyed).
    async fn lean_key(&self, kind: Kind, task: &Task) -> Result<Item> {
        Ok(match kind {
            Kind::Queued => self.to.queue_key_for(task).await?,
            Kind::Retry => LeanTaskStore::retry_key(&task.labourer_id, task.task_id.as_str()),
        })
    }

    /// What the lean table holds of `task`, read in one consistent `BatchGetItem`: the item at `key`
    /// (where the move puts it) and whether any other item of the task exists (a claim, a waiting
    /// or closed item): then the task has moved on in the lean layout.
    async fn lean_side(&self, task: &Task, key: &Item) -> Result<(Option<Found>, bool)> {
        let id = task.task_id.as_str();
        let mut keys = vec![key.clone()];
        for other in [
            self.to.claim_key(id),
            self.to.closed_key(&task.labourer_id, id),
            LeanTaskStore::retry_key(&task.labourer_id, id),
        ] {
            // A retry row's key is its waiting item's: asked for once.
            if &other != key {
                keys.push(other);
            }
        }
        let (at_key, others): (Vec<Found>, Vec<Found>) = self
            .to
            .get_many("migrate layout: find moved task", keys)
            .await?
            .into_iter()
            .partition(|found| &found.key == key);
        Ok((at_key.into_iter().next(), !others.is_empty()))
    }

    async fn move_one(&self, kind: Kind, task: &Task) -> Result<Moved> {
        let key = self.lean_key(kind, task).await?;
        let earlier = match self.lean_side(task, &key).await? {
            (Some(found), _) if found.rev == 0 => true,
            (Some(_), _) | (None, true) => return self.finish_moved_on(kind, task).await,
            (None, false) => {
                let item = self.to.item(task, &key, 0)?;
                // Refused when a concurrent run of the tool wrote it: finished as an earlier move.
                self.to.put_newer("migrate layout: put", item).await? == Written::ConditionFailed
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
