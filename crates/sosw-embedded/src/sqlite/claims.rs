//! The orchestrator's and the worker assistant's operations: claims, running count, reports.
//!
//! Each read-modify-write runs in an `IMMEDIATE` transaction and ends in one conditional `UPDATE`; the
//! condition, not the read, decides the outcome, so two processes sharing the file cannot both win.

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::rows::{self, TASKS};
use super::{Failure, SqliteTaskStore, count};
use sosw_core::error::Result;
use sosw_core::store::{
    CLOSED_STATUS_ATTRIBUTE, ClaimOutcome, ClosedStatus, MoveOutcome, ReportOutcome, TaskClaims,
    TaskReport, TaskReports,
};
use sosw_core::task::{Markers, Task, TaskId, greenfield};

/// The claim's guard (sosw 0.7's `greenfield < :start`), plus: a completed task is never claimed.
const CLAIMABLE: &str = "greenfield < ?6 AND completed_at IS NULL";
/// The row still has the greenfield we read (or the claim gave it) and is not completed.
const UNCHANGED_OPEN: &str = "greenfield = ?6 AND completed_at IS NULL";

/// Running: invoked, not expired (greenfield above the expired marker), not completed.
pub(super) const RUNNING_COUNT: &str = "SELECT COUNT(*) FROM tasks WHERE labourer_id = ?1 \
     AND greenfield > ?2 AND completed_at IS NULL";

#[async_trait]
impl TaskClaims for SqliteTaskStore {
    async fn claim(&self, task_id: &TaskId, now: i64) -> Result<ClaimOutcome> {
        self.run("claim", |conn| claim(conn, task_id.as_str(), now))
    }

    async fn release_claim(&self, claimed: &Task, claimed_at: i64) -> Result<bool> {
        self.run("release claim", |conn| release(conn, claimed, claimed_at))
    }

    async fn count_running(&self, labourer_id: &str, markers: &Markers) -> Result<u64> {
        self.run("count running", |conn| {
            let n: i64 = conn
                .prepare_cached(RUNNING_COUNT)?
                .query_row(params![labourer_id, markers.expired], |row| row.get(0))?;
            Ok(count(n))
        })
    }
}

fn claim(conn: &mut Connection, task_id: &str, now: i64) -> Result<ClaimOutcome, Failure> {
    let tx = super::begin_write(conn)?;
    let Some(before) = rows::get_live(&tx, task_id)? else {
        return Ok(ClaimOutcome::AlreadyClaimed);
    };
    let mut after = before.clone();
    after.greenfield = greenfield::invoked_at(now);
    after.attempts = after.attempts.saturating_add(1);
    if !rows::update_live_if(&tx, &after, CLAIMABLE, now)? {
        return Ok(ClaimOutcome::AlreadyClaimed);
    }
    tx.commit()?;
    Ok(ClaimOutcome::Claimed(before))
}

fn release(conn: &mut Connection, claimed: &Task, claimed_at: i64) -> Result<bool, Failure> {
    let tx = super::begin_write(conn)?;
    let Some(mut row) = rows::get_live(&tx, claimed.task_id.as_str())? else {
        return Ok(false);
    };
    // Only the two fields the claim changed go back; anything else written since stays.
    row.greenfield = claimed.greenfield;
    row.attempts = claimed.attempts;
    let released = rows::update_live_if(
        &tx,
        &row,
        UNCHANGED_OPEN,
        greenfield::invoked_at(claimed_at),
    )?;
    if released {
        tx.commit()?;
    }
    Ok(released)
}

#[async_trait]
impl TaskReports for SqliteTaskStore {
    async fn complete(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<ReportOutcome> {
        self.run("complete", |conn| {
            report_on(conn, task_id.as_str(), |task| complete(task, report, now))
        })
    }

    /// The completion and the archive in one transaction: the completed task goes straight to
    /// `closed_tasks`, as `complete` then `archive` would leave it, without writing the live row
    /// first and reading it back.
    async fn complete_and_close(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<(ReportOutcome, Option<MoveOutcome>)> {
        self.run("complete and close", |conn| {
            complete_and_close(conn, task_id.as_str(), report, now)
        })
    }

    async fn record_failure(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        _now: i64,
    ) -> Result<ReportOutcome> {
        self.run("record failure", |conn| {
            report_on(conn, task_id.as_str(), |task| {
                task.failed_attempts = Some(task.failed_attempts.unwrap_or(0).saturating_add(1));
                report.apply_to(task);
            })
        })
    }
}

/// What a completion report changes on a task.
fn complete(task: &mut Task, report: &TaskReport, now: i64) {
    task.completed_at = Some(now);
    if task.greenfield < now {
        // Back in the queue when the report came: take it out so it does not run again.
        task.greenfield = greenfield::invoked_at(now);
    }
    report.apply_to(task);
}

/// Completes the live, not completed task `task_id` and moves it to the closed table as completed at
/// `now`. The outcomes are `complete`'s; a recorded completion is always moved.
fn complete_and_close(
    conn: &mut Connection,
    task_id: &str,
    report: &TaskReport,
    now: i64,
) -> Result<(ReportOutcome, Option<MoveOutcome>), Failure> {
    let tx = super::begin_write(conn)?;
    let Some(mut task) = rows::get_live(&tx, task_id)? else {
        return Ok((ReportOutcome::NotFound, None));
    };
    if task.completed_at.is_some() {
        return Ok((ReportOutcome::AlreadyCompleted, None));
    }
    let read_greenfield = task.greenfield;
    complete(&mut task, report, now);
    let deleted = tx
        .prepare_cached(
            "DELETE FROM tasks WHERE task_id = ?1 AND greenfield = ?2 AND completed_at IS NULL",
        )?
        .execute(params![task_id, read_greenfield])?;
    if deleted != 1 {
        // As in `report_on`: only a row whose columns contradict its item gets here.
        return Err(rows::out_of_sync(TASKS, task_id).into());
    }
    // The closed row as `archive` writes it from the completed live row.
    let key = ClosedStatus::Completed.index_key(&task.labourer_id);
    let mut closed = task.clone();
    closed.closed_at = Some(now);
    closed.extra.insert(
        CLOSED_STATUS_ATTRIBUTE.into(),
        serde_json::Value::from(key.as_str()),
    );
    rows::put_closed(&tx, &closed, &key, now)?;
    tx.commit()?;
    Ok((ReportOutcome::Recorded(task), Some(MoveOutcome::Moved)))
}

/// Applies `change` to the live, not completed task `task_id`: the common shape of both reports.
fn report_on(
    conn: &mut Connection,
    task_id: &str,
    change: impl FnOnce(&mut Task),
) -> Result<ReportOutcome, Failure> {
    let tx = super::begin_write(conn)?;
    let Some(mut task) = rows::get_live(&tx, task_id)? else {
        return Ok(ReportOutcome::NotFound);
    };
    if task.completed_at.is_some() {
        return Ok(ReportOutcome::AlreadyCompleted);
    }
    let read_greenfield = task.greenfield;
    change(&mut task);
    if !rows::update_live_if(&tx, &task, UNCHANGED_OPEN, read_greenfield)? {
        // Nothing else writes inside this transaction, so only a row whose columns contradict its item
        // (edited by hand) gets here.
        return Err(rows::out_of_sync(TASKS, task_id).into());
    }
    tx.commit()?;
    Ok(ReportOutcome::Recorded(task))
}
