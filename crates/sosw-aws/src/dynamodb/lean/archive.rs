//! [`TaskArchive`] and [`TaskRetries`] on the lean layout: every move writes its destination first
//! (`lrev + 1`, refused if a later item is there) and deletes its source second, on the condition that
//! the source is unchanged since it was read; a refused delete takes the destination back.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use super::super::codec::{Item, n, s};
use super::super::query::{self, QuerySpec};
use super::super::scavenge::closed_row;
use super::claims::FINISH_AFTER_SECS;
use super::{EXPIRES, Found, LeanTaskStore, MOVED_AT, Read, Written};
use sosw_core::error::Result;
use sosw_core::store::{
    CLOSED_STATUS_ATTRIBUTE, Closable, ClosedStatus, MoveOutcome, TaskArchive, TaskCancel,
    TaskRetries, cancelled_row, fresh_from_dead, restore_dead_payload,
};
use sosw_core::store::{ReportOutcome, TaskReport};
use sosw_core::task::{Markers, Task, TaskId, receipt};

type Condition = (String, Vec<(&'static str, AttributeValue)>);

/// The source condition of a live item: the greenfield and completion mark it was read with. A
/// queued item holds its greenfield only in its key, which the write names: it has no `greenfield`
/// attribute to compare.
fn unchanged(task: &Task) -> Condition {
    let mut values = vec![(":gf", n(task.greenfield))];
    let completion = match task.completed_at {
        Some(at) => {
            values.push((":done", n(at)));
            "#done = :done"
        }
        None => "attribute_not_exists(#done)",
    };
    (
        format!("(#gf = :gf OR attribute_not_exists(#gf)) AND {completion}"),
        values,
    )
}

fn same_state(found: &Task, task: &Task) -> bool {
    found.greenfield == task.greenfield && found.completed_at == task.completed_at
}

impl LeanTaskStore {
    /// The live item `task` was read from, if it is still there unchanged: its claim item, or its
    /// queued item at its greenfield.
    async fn live_source(&self, operation: &'static str, task: &Task) -> Result<Option<Found>> {
        if let Some(rev) = self.recall_claim(task.task_id.as_str()) {
            // This process has just written a report on the claim item: no read (the delete's
            // condition checks the counter, greenfield and completion).
            return Ok(Some(Found {
                task: task.clone(),
                rev,
                key: self.claim_key(task.task_id.as_str()),
                moved_at: None,
                pack_len: None,
            }));
        }
        let claim = self
            .get(operation, self.claim_key(task.task_id.as_str()))
            .await?;
        if let Some(f) = claim.filter(|f| same_state(&f.task, task)) {
            return Ok(Some(f));
        }
        self.find_queued(operation, task).await
    }

    /// Moves `source` to `dest` (written as `task` plus `extra` attributes), deleting the source on
    /// `condition`.
    async fn move_to(
        &self,
        operation: &'static str,
        source: Found,
        task: &Task,
        dest: Item,
        extra: Vec<(&str, AttributeValue)>,
        condition: Option<Condition>,
    ) -> Result<MoveOutcome> {
        let mut item = self.item(task, &dest, source.rev + 1)?;
        for (k, v) in extra {
            item.insert(k.to_owned(), v);
        }
        self.move_or_finish(operation, source, item, dest, condition, |_| false)
            .await
    }

    /// Moves `source` to `item` (under key `dest`): the destination written first (refused if a
    /// later item is there), the source deleted second on `condition`, the destination taken back if
    /// that delete is refused. An item already at `dest` with this very move's counter for which
    /// `finishable` holds is the first half of this move, written by a mover that stopped before its
    /// delete: the move is finished (the source deleted on `condition`) instead of refused for ever.
    async fn move_or_finish(
        &self,
        operation: &'static str,
        source: Found,
        item: Item,
        dest: Item,
        condition: Option<Condition>,
        finishable: impl Fn(&Found) -> bool,
    ) -> Result<MoveOutcome> {
        match self.put_newer_seeing(operation, item).await? {
            None => {}
            Some(Some(there)) if there.rev == source.rev + 1 && finishable(&there) => {
                return self.finish_move(operation, source, condition).await;
            }
            Some(_) => return Ok(MoveOutcome::Conflict),
        }
        if self
            .delete_if(operation, source.key, source.rev, condition)
            .await?
            == Written::ConditionFailed
        {
            self.delete_if(operation, dest, source.rev + 1, None)
                .await?;
            return Ok(MoveOutcome::Conflict);
        }
        Ok(MoveOutcome::Moved)
    }

    /// Moves `source` to the closed item of `closed` (a row already closed: `closed_at` set), with
    /// its TTL.
    ///
    /// A closed item of this very move already there (the counter this move would give it), closed
    /// at least [`FINISH_AFTER_SECS`] before `closed`, is the first half of a move whose mover stopped
    /// before deleting the source (a delete throttled past the SDK's retries, a killed process): this
    /// call finishes it, deleting the source on the same condition, instead of refusing for ever. A
    /// younger one may be a mover still at work, which deletes the source itself.
    async fn move_to_closed(
        &self,
        operation: &'static str,
        source: Found,
        closed: &Task,
        condition: Option<Condition>,
    ) -> Result<MoveOutcome> {
        let dest = self.closed_key(&closed.labourer_id, closed.task_id.as_str());
        let closed_at = closed.closed_at.unwrap_or_default();
        let expires = closed_expiry(
            closed_at,
            chrono::Utc::now().timestamp(),
            self.options().closed_ttl_secs,
        );
        let mut item = self.item(closed, &dest, source.rev + 1)?;
        item.insert(EXPIRES.to_owned(), n(expires));
        let finishable = |there: &Found| {
            there.task.task_id == closed.task_id
                && there
                    .task
                    .closed_at
                    .is_some_and(|at| at.saturating_add(FINISH_AFTER_SECS) <= closed_at)
        };
        self.move_or_finish(operation, source, item, dest, condition, finishable)
            .await
    }
}

impl LeanTaskStore {
    /// A completion that closes the task in the same move (`LeanOptions::close_on_completion`): the
    /// claim read (eventually consistent), the closed item written with the report and `completed_at`,
    /// the claim deleted on the condition that it is the one read (move counter, greenfield, no
    /// completion, the same failed attempts: a failure report in between refuses it). Anything else
    /// (no claim read, a completed one, a refused move, which takes its closed item back) falls back
    /// to the completion mark alone, and the caller archives as after `complete`.
    pub(crate) async fn complete_closing(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<(ReportOutcome, Option<MoveOutcome>)> {
        const OPERATION: &str = "complete and close";
        // The claim as the worker's event describes it (its receipt, sent back with the report), or
        // as read. The delete's condition below proves either still current.
        let claim = match report
            .invocation
            .as_ref()
            .and_then(|event| receipt::redeem(event, task_id))
        {
            Some((task, rev)) => Some(Found {
                key: self.claim_key(task_id.as_str()),
                task,
                rev,
                moved_at: None,
                pack_len: None,
            }),
            None => {
                self.get_read(OPERATION, self.claim_key(task_id.as_str()), false)
                    .await?
            }
        };
        if let Some(claim) = claim.filter(|c| c.task.completed_at.is_none()) {
            let mut done = claim.task.clone();
            report.apply_to(&mut done);
            done.completed_at = Some(now);
            let closed = closed_row(&done, ClosedStatus::Completed, now);
            let (mut condition, mut values) = unchanged(&claim.task);
            match claim.task.failed_attempts {
                Some(fa) => {
                    condition.push_str(" AND #fa = :fa");
                    values.push((":fa", n(i64::from(fa))));
                }
                None => condition.push_str(" AND attribute_not_exists(#fa)"),
            }
            let moved = self
                .move_to_closed(OPERATION, claim, &closed, Some((condition, values)))
                .await?;
            if moved == MoveOutcome::Moved {
                return Ok((ReportOutcome::Recorded(done), Some(MoveOutcome::Moved)));
            }
        }
        Ok((self.complete_only(task_id, report, now).await?, None))
    }
}

/// When DynamoDB's TTL may delete a closed item: `ttl` seconds after the later of the task's
/// `closed_at` and the time of the write (`now`). Counting from the write too keeps an item whose
/// `closed_at` is far behind the table's clock (a caller's skewed or simulated clock, a task closed
/// long after the fact by the scavenger) for the whole `ttl`, instead of handing it to the TTL sweeper
/// at once: a deleted closed item is a task found nowhere.
fn closed_expiry(closed_at: i64, now: i64, ttl: i64) -> i64 {
    closed_at.max(now).saturating_add(ttl)
}

/// The completed claims of `labourer` among `claims`, oldest greenfield first, at most `limit`.
fn completed_of(claims: &[Found], labourer: &str, limit: usize) -> Vec<Task> {
    let mut found: Vec<&Found> = claims
        .iter()
        .filter(|f| f.task.labourer_id == labourer && f.task.completed_at.is_some())
        .collect();
    found.sort_by_key(|f| f.task.greenfield);
    found
        .into_iter()
        .take(limit)
        .map(|f| f.task.clone())
        .collect()
}

impl LeanTaskStore {
    /// The expired tasks of `labourer` at `markers`: its claims among `claims` and its queued items
    /// (put back by a clock ahead) with a greenfield from `start` to `expired`, not completed, oldest
    /// greenfield first, at most `limit`.
    ///
    /// The queued part reads the labourer's registry as a round does (eventually consistent, reused
    /// for two seconds): the expired list is a sweep the scavenger repeats every run, so a key or a
    /// mark written a moment before is only listed a run later, and nothing is lost.
    async fn expired_with_queued(
        &self,
        claims: &[Found],
        labourer: &str,
        markers: &Markers,
        limit: usize,
    ) -> Result<Vec<Task>> {
        let pks = self.round_queue_pks_from(labourer, markers.start).await?;
        let mut found = self
            .range_of(
                "list expired",
                pks,
                markers.start,
                markers.expired,
                limit,
                false,
            )
            .await?;
        found.extend(
            claims
                .iter()
                .filter(|f| {
                    f.task.labourer_id == labourer
                        && (markers.start..=markers.expired).contains(&f.task.greenfield)
                        && f.task.completed_at.is_none()
                })
                .cloned(),
        );
        found.sort_by_key(|f| f.task.greenfield);
        Ok(found.into_iter().take(limit).map(|f| f.task).collect())
    }
}

#[async_trait]
impl TaskArchive for LeanTaskStore {
    async fn list_completed(
        &self,
        labourer_id: &str,
        _now: i64,
        limit: usize,
    ) -> Result<Vec<Task>> {
        let claims = self
            .claimed(
                "list completed",
                labourer_id,
                "labourer_id = :lab AND attribute_exists(completed_at)",
                vec![],
            )
            .await?;
        Ok(completed_of(&claims, labourer_id, limit))
    }

    async fn list_expired(
        &self,
        labourer_id: &str,
        markers: &Markers,
        limit: usize,
    ) -> Result<Vec<Task>> {
        if markers.expired < markers.start {
            return Ok(Vec::new());
        }
        let claims = self
            .claimed(
                "list expired",
                labourer_id,
                "labourer_id = :lab AND greenfield BETWEEN :start AND :expired AND attribute_not_exists(completed_at)",
                vec![
                    (":start", n(markers.start)),
                    (":expired", n(markers.expired)),
                ],
            )
            .await?;
        self.expired_with_queued(&claims, labourer_id, markers, limit)
            .await
    }

    /// Claims of every labourer share the claim shards: one read of them serves the scavenger's
    /// completed and expired lists of every labourer.
    fn lists_closable_together(&self) -> bool {
        true
    }

    async fn list_closable_many(
        &self,
        labourers: &[(String, Markers)],
        limit: usize,
    ) -> Result<HashMap<String, Closable>> {
        let claims = self
            .claims_passing(
                "list closable",
                "attribute_exists(completed_at) OR greenfield <= :latest",
                vec![(
                    ":latest",
                    n(labourers
                        .iter()
                        .map(|(_, m)| m.expired)
                        .max()
                        .unwrap_or(i64::MIN)),
                )],
            )
            .await?;
        let mut lists = HashMap::with_capacity(labourers.len());
        for (labourer_id, markers) in labourers {
            let expired = if markers.expired < markers.start {
                Vec::new()
            } else {
                self.expired_with_queued(&claims, labourer_id, markers, limit)
                    .await?
            };
            let closable = Closable {
                completed: completed_of(&claims, labourer_id, limit),
                expired,
            };
            lists.insert(labourer_id.clone(), closable);
        }
        Ok(lists)
    }

    async fn archive(
        &self,
        task: &Task,
        status: ClosedStatus,
        closed_at: i64,
    ) -> Result<MoveOutcome> {
        let Some(source) = self.live_source("archive", task).await? else {
            return Ok(MoveOutcome::Conflict);
        };
        let closed = closed_row(task, status, closed_at);
        self.move_to_closed("archive", source, &closed, Some(unchanged(task)))
            .await
    }

    async fn closed_sample(
        &self,
        labourer_id: &str,
        status: ClosedStatus,
        limit: usize,
    ) -> Result<Vec<Task>> {
        // Closed items stay where they were written: under every count the table had. They are
        // kept 30 days: a busy labourer's are read a page at a time, keeping the newest.
        let widest = self
            .shard_counts_ever(labourer_id)
            .await?
            .into_iter()
            .max()
            .unwrap_or(self.shards());
        let reads = (0..widest)
            .map(|shard| Read {
                operation: "closed sample",
                pk: Self::closed_pk(labourer_id, shard),
                range: None,
                filter: Some("labourer_id_task_status = :st"),
                values: vec![(":st", s(status.index_key(labourer_id)))],
                limit: usize::MAX,
                descending: false,
                consistent: false,
            })
            .collect();
        let newest = self
            .best_of(reads, limit, |f| std::cmp::Reverse(f.task.closed_at))
            .await?;
        Ok(newest.into_iter().map(|f| f.task).collect())
    }

    async fn redrive(&self, task: &Task, greenfield: i64) -> Result<MoveOutcome> {
        let mut queued = task.clone();
        restore_dead_payload(&mut queued)?;
        fresh_from_dead(&mut queued, greenfield);
        let dead = ClosedStatus::Dead.index_key(&task.labourer_id);
        let key = self.closed_key(&task.labourer_id, task.task_id.as_str());
        let Some(source) = self.get("redrive", key).await? else {
            return Ok(MoveOutcome::Conflict);
        };
        if source.task.extra.get(CLOSED_STATUS_ATTRIBUTE) != Some(&Value::from(dead.clone())) {
            return Ok(MoveOutcome::Conflict);
        }
        if self
            .find_live(&task.task_id, Some(&task.labourer_id))
            .await?
            .is_some()
        {
            return Ok(MoveOutcome::Conflict);
        }
        let dest = self.queue_key_for(&queued).await?;
        let condition = ("#st = :st".to_owned(), vec![(":st", s(dead))]);
        self.move_to("redrive", source, &queued, dest, vec![], Some(condition))
            .await
    }
}

/// The operation name of a return from waiting to the queue.
const RETURN: &str = "return to queue";

/// Whether a waiting item was written at least [`FINISH_AFTER_SECS`] before `now` (or by a build
/// that did not say when): a mover still at work deletes its source within seconds.
fn settled(waiting: &Found, now: i64) -> bool {
    waiting
        .moved_at
        .is_none_or(|at| at.saturating_add(FINISH_AFTER_SECS) <= now)
}

impl LeanTaskStore {
    /// Deletes the source of a move whose destination is already written (by a mover that stopped
    /// before its delete), on `condition`.
    async fn finish_move(
        &self,
        operation: &'static str,
        source: Found,
        condition: Option<Condition>,
    ) -> Result<MoveOutcome> {
        Ok(
            match self
                .delete_if(operation, source.key, source.rev, condition)
                .await?
            {
                Written::Yes => MoveOutcome::Moved,
                Written::ConditionFailed => MoveOutcome::Conflict,
            },
        )
    }

    /// Whether `waiting` may go back to the queue, after settling what a stopped move left beside
    /// it. Every move writes its destination first, so a mover that stops halfway leaves the task in
    /// two places, the later one with the higher move counter:
    ///
    /// * a live or closed item of the task *later* than `waiting` (the queued item of a return whose
    ///   mover stopped before deleting `waiting`, since claimed; its closed item; a cancel's closed
    ///   item) makes `waiting` stale: it is deleted, and nothing is returned. Returning it would run
    ///   the task a second time. A queued item exactly one move later is that return's destination,
    ///   whose mover may still be at work: `waiting` is left to it (and deleted once the task moves
    ///   on);
    /// * the live item `waiting` was moved from (one move earlier, the same greenfield and
    ///   completion), left by a move to retry whose mover stopped at least a minute ago, is deleted,
    ///   and the return goes on;
    /// * any other live item (a task enqueued again under the same id while it waited) keeps the
    ///   task where it is: no return, `waiting` kept, as on sosw 0.7's tables.
    async fn clear_to_return(&self, waiting: &Found) -> Result<bool> {
        let task = &waiting.task;
        // Its claim by key, its queued items by reading its queue shard (a task enqueued again
        // while it waited can be at any greenfield): that read costs the shard's size in read units.
        let live = self
            .find_live(&task.task_id, Some(&task.labourer_id))
            .await?;
        let found_live = live.is_some();
        let stale = match live {
            Some(live)
                if live.rev + 1 == waiting.rev
                    && same_state(&live.task, task)
                    && settled(waiting, self.now_secs()) =>
            {
                return Ok(self.finish_move(RETURN, live, None).await? == MoveOutcome::Moved);
            }
            Some(live) => live.rev > waiting.rev + 1,
            // A closed item from before the waiting item was written (the id enqueued again after
            // it closed) is another life of the id, whatever its counter.
            None => self
                .find_closed(&task.task_id)
                .await?
                .is_some_and(|closed| {
                    closed.rev > waiting.rev
                        && waiting
                            .moved_at
                            .is_none_or(|at| closed.task.closed_at.is_some_and(|c| c >= at))
                }),
        };
        if stale {
            self.delete_if(RETURN, waiting.key.clone(), waiting.rev, None)
                .await?;
            return Ok(false);
        }
        // A live item not later than the waiting item keeps the task where it is.
        Ok(!found_live)
    }
}

#[async_trait]
impl TaskRetries for LeanTaskStore {
    async fn move_to_retry(&self, task: &Task, desired_launch_time: i64) -> Result<MoveOutcome> {
        const OPERATION: &str = "move to retry";
        let Some(source) = self.live_source(OPERATION, task).await? else {
            return Ok(MoveOutcome::Conflict);
        };
        let mut waiting = task.clone();
        waiting.desired_launch_time = Some(desired_launch_time);
        waiting.closed_at = None;
        let dest = Self::retry_key(&task.labourer_id, task.task_id.as_str());
        let mut item = self.item(&waiting, &dest, source.rev + 1)?;
        let now = self.now_secs();
        item.insert(MOVED_AT.to_owned(), n(now));
        // A waiting item of this very move whose mover stopped at least a minute ago is finished
        // rather than refused for ever (its source, a claim, would be listed as expired at every
        // scavenger run, and the waiting item never returned while the claim is there).
        let finishable = |there: &Found| {
            there.task.task_id == task.task_id
                && same_state(&there.task, task)
                && settled(there, now)
        };
        self.move_or_finish(
            OPERATION,
            source,
            item,
            dest,
            Some(unchanged(task)),
            finishable,
        )
        .await
    }

    async fn due_retries(&self, labourer_id: &str, now: i64, limit: usize) -> Result<Vec<Task>> {
        let read = Read {
            operation: "due retries",
            pk: Self::retry_pk(labourer_id),
            range: None,
            filter: Some("desired_launch_time <= :now"),
            values: vec![(":now", n(now))],
            limit: usize::MAX,
            descending: false,
            // Eventually consistent (half the units): a task put to wait a moment before is
            // due a run later, and the move back to the queue reads its item again.
            consistent: false,
        };
        // The earliest due first; after an outage a labourer can have a million waiting, so the
        // partition is read a page at a time, keeping the earliest `limit`.
        let due = self
            .best_of(vec![read], limit, |f| f.task.desired_launch_time)
            .await?;
        Ok(due.into_iter().map(|f| f.task).collect())
    }

    async fn return_to_queue(&self, task: &Task, greenfield: i64) -> Result<MoveOutcome> {
        let key = Self::retry_key(&task.labourer_id, task.task_id.as_str());
        let Some(source) = self.get(RETURN, key).await? else {
            return Ok(MoveOutcome::Conflict);
        };
        if !self.clear_to_return(&source).await? {
            return Ok(MoveOutcome::Conflict);
        }
        let mut queued = task.clone();
        queued.greenfield = greenfield;
        queued.desired_launch_time = None;
        queued.closed_at = None;
        let dest = self.queue_key_for(&queued).await?;
        self.move_to(RETURN, source, &queued, dest, vec![], None)
            .await
    }

    async fn retry_length(&self, labourer_id: &str) -> Result<u64> {
        // Counted by DynamoDB, not read into memory.
        let spec = QuerySpec::new(
            "retry length",
            self.table(),
            None,
            "pk = :pk",
            vec![(":pk", s(Self::retry_pk(labourer_id)))],
        )
        .consistent();
        query::count(self.client(), &spec).await
    }
}

/// Queued tasks close through [`TaskArchive::archive`] (the trait's default); a waiting one moves from
/// its retry item to a closed item in the same ordered, conditional way as every other move.
#[async_trait]
impl TaskCancel for LeanTaskStore {
    async fn cancel_retry(&self, task: &Task, closed_at: i64) -> Result<MoveOutcome> {
        let key = Self::retry_key(&task.labourer_id, task.task_id.as_str());
        let Some(source) = self.get("cancel", key).await? else {
            return Ok(MoveOutcome::Conflict);
        };
        let closed = cancelled_row(task, closed_at);
        self.move_to_closed("cancel", source, &closed, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::closed_expiry;

    #[test]
    fn a_closed_item_is_kept_for_the_ttl_from_the_later_of_its_close_and_its_write() {
        let day = 24 * 3600;
        assert_eq!(closed_expiry(1_000, 1_000, day), 1_000 + day, "closed now");
        assert_eq!(
            closed_expiry(1_700_000_000, 1_800_000_000, day),
            1_800_000_000 + day,
            "closed_at far in the past: counted from the write"
        );
        assert_eq!(
            closed_expiry(1_900_000_000, 1_800_000_000, day),
            1_900_000_000 + day,
            "closed_at ahead of the writer's clock: counted from closed_at"
        );
        assert_eq!(closed_expiry(0, i64::MAX - 1, day), i64::MAX, "saturates");
    }
}
