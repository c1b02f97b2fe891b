//! The scavenger's moves between tables (archive, retry, back to the queue) and their listings.
//!
//! A move is one transaction: a conditional delete from the source table and a write to the target.
//! What moves is the stored row (the caller's copy only names it and says which version it saw), so an
//! attribute written after the caller's read is not lost.

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::rows::{self, CLOSED, RETRY, TASKS};
use super::{Failure, SqliteTaskStore, count, sql_limit};
use sosw_core::error::Result;
use sosw_core::store::{
    CLOSED_STATUS_ATTRIBUTE, ClosedStatus, MoveOutcome, TaskArchive, TaskRetries, fresh_from_dead,
    restore_dead_payload,
};
use sosw_core::task::{Markers, Task};

#[async_trait]
impl TaskArchive for SqliteTaskStore {
    async fn list_completed(
        &self,
        labourer_id: &str,
        _now: i64,
        limit: usize,
    ) -> Result<Vec<Task>> {
        self.run("list completed", |conn| {
            rows::select_many(
                conn,
                TASKS,
                "SELECT task_id, item FROM tasks WHERE labourer_id = ?1 AND completed_at IS NOT NULL
                 ORDER BY greenfield, task_id LIMIT ?2",
                params![labourer_id, sql_limit(limit)],
            )
        })
    }

    async fn list_expired(
        &self,
        labourer_id: &str,
        markers: &Markers,
        limit: usize,
    ) -> Result<Vec<Task>> {
        self.run("list expired", |conn| {
            rows::select_many(
                conn,
                TASKS,
                "SELECT task_id, item FROM tasks WHERE labourer_id = ?1
                 AND greenfield BETWEEN ?2 AND ?3 AND completed_at IS NULL
                 ORDER BY greenfield, task_id LIMIT ?4",
                params![
                    labourer_id,
                    markers.start,
                    markers.expired,
                    sql_limit(limit)
                ],
            )
        })
    }

    async fn archive(
        &self,
        task: &Task,
        status: ClosedStatus,
        closed_at: i64,
    ) -> Result<MoveOutcome> {
        self.run("archive", |conn| {
            move_live(conn, task, |tx, mut row| {
                let key = status.index_key(&row.labourer_id);
                row.closed_at = Some(closed_at);
                row.extra.insert(
                    CLOSED_STATUS_ATTRIBUTE.into(),
                    serde_json::Value::from(key.as_str()),
                );
                rows::put_closed(tx, &row, &key, closed_at)
            })
        })
    }

    async fn closed_sample(
        &self,
        labourer_id: &str,
        status: ClosedStatus,
        limit: usize,
    ) -> Result<Vec<Task>> {
        self.run("closed sample", |conn| {
            rows::select_many(
                conn,
                CLOSED,
                "SELECT task_id, item FROM closed_tasks WHERE labourer_id_task_status = ?1
                 ORDER BY closed_at DESC, task_id LIMIT ?2",
                params![status.index_key(labourer_id), sql_limit(limit)],
            )
        })
    }

    async fn count_closed(
        &self,
        labourer_id: &str,
        status: ClosedStatus,
        limit: usize,
    ) -> Result<u64> {
        // The status index's entries, not the rows: no task is read or parsed.
        self.run("count closed", |conn| {
            let n: i64 = conn
                .prepare_cached(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM closed_tasks
                     WHERE labourer_id_task_status = ?1 LIMIT ?2)",
                )?
                .query_row(
                    params![status.index_key(labourer_id), sql_limit(limit)],
                    |row| row.get(0),
                )?;
            Ok(count(n))
        })
    }

    async fn redrive(&self, task: &Task, greenfield: i64) -> Result<MoveOutcome> {
        self.run("redrive", |conn| redrive(conn, task, greenfield))
    }
}

#[async_trait]
impl TaskRetries for SqliteTaskStore {
    async fn move_to_retry(&self, task: &Task, desired_launch_time: i64) -> Result<MoveOutcome> {
        self.run("move to retry", |conn| {
            move_live(conn, task, |tx, mut row| {
                row.desired_launch_time = Some(desired_launch_time);
                rows::put_retry(tx, &row, desired_launch_time)
            })
        })
    }

    async fn due_retries(&self, labourer_id: &str, now: i64, limit: usize) -> Result<Vec<Task>> {
        self.run("due retries", |conn| {
            rows::select_many(
                conn,
                RETRY,
                "SELECT task_id, item FROM retry_tasks WHERE labourer_id = ?1
                 AND desired_launch_time <= ?2 ORDER BY desired_launch_time, task_id LIMIT ?3",
                params![labourer_id, now, sql_limit(limit)],
            )
        })
    }

    async fn return_to_queue(&self, task: &Task, greenfield: i64) -> Result<MoveOutcome> {
        self.run("return to queue", |conn| {
            return_to_queue(conn, task, greenfield)
        })
    }

    async fn retry_length(&self, labourer_id: &str) -> Result<u64> {
        self.run("retry length", |conn| {
            let n: i64 = conn
                .prepare_cached("SELECT COUNT(*) FROM retry_tasks WHERE labourer_id = ?1")?
                .query_row([labourer_id], |row| row.get(0))?;
            Ok(count(n))
        })
    }
}

/// Deletes the live row of `task` if it still has the greenfield and completion mark of `task`, and hands
/// the stored row to `write` in the same transaction.
fn move_live(
    conn: &mut Connection,
    task: &Task,
    write: impl FnOnce(&Connection, Task) -> Result<(), Failure>,
) -> Result<MoveOutcome, Failure> {
    let tx = super::begin_write(conn)?;
    let Some(row) = rows::get_live(&tx, task.task_id.as_str())? else {
        return Ok(MoveOutcome::Conflict);
    };
    let deleted = tx
        .prepare_cached(
            "DELETE FROM tasks WHERE task_id = ?1 AND greenfield = ?2 AND completed_at IS ?3",
        )?
        .execute(params![
            task.task_id.as_str(),
            task.greenfield,
            task.completed_at
        ])?;
    if deleted != 1 {
        return Ok(MoveOutcome::Conflict);
    }
    write(&tx, row)?;
    tx.commit()?;
    Ok(MoveOutcome::Moved)
}

/// Moves the dead closed row of `task` back to the live table as a fresh task.
fn redrive(conn: &mut Connection, task: &Task, greenfield: i64) -> Result<MoveOutcome, Failure> {
    let tx = super::begin_write(conn)?;
    let task_id = task.task_id.as_str();
    let Some(mut row) = rows::select_one(
        &tx,
        CLOSED,
        "SELECT task_id, item FROM closed_tasks WHERE task_id = ?1",
        [task_id],
    )?
    else {
        return Ok(MoveOutcome::Conflict);
    };
    if rows::row_exists(&tx, "SELECT 1 FROM tasks WHERE task_id = ?1", [task_id])? {
        return Ok(MoveOutcome::Conflict);
    }
    let dead_key = ClosedStatus::Dead.index_key(&row.labourer_id);
    let deleted = tx
        .prepare_cached(
            "DELETE FROM closed_tasks WHERE task_id = ?1 AND labourer_id_task_status = ?2",
        )?
        .execute(params![task_id, dead_key])?;
    if deleted != 1 {
        return Ok(MoveOutcome::Conflict);
    }
    restore_dead_payload(&mut row)?;
    fresh_from_dead(&mut row, greenfield);
    rows::put_live(&tx, &row)?;
    tx.commit()?;
    Ok(MoveOutcome::Moved)
}

fn return_to_queue(
    conn: &mut Connection,
    task: &Task,
    greenfield: i64,
) -> Result<MoveOutcome, Failure> {
    let tx = super::begin_write(conn)?;
    let (labourer_id, task_id) = (task.labourer_id.as_str(), task.task_id.as_str());
    let Some(mut row) = rows::get_retry(&tx, labourer_id, task_id)? else {
        return Ok(MoveOutcome::Conflict);
    };
    if rows::row_exists(&tx, "SELECT 1 FROM tasks WHERE task_id = ?1", [task_id])? {
        return Ok(MoveOutcome::Conflict);
    }
    tx.prepare_cached("DELETE FROM retry_tasks WHERE labourer_id = ?1 AND task_id = ?2")?
        .execute([labourer_id, task_id])?;
    row.greenfield = greenfield;
    row.desired_launch_time = None;
    rows::put_live(&tx, &row)?;
    tx.commit()?;
    Ok(MoveOutcome::Moved)
}
