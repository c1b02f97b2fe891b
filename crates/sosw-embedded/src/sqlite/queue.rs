//! Queue and lookup operations: enqueue, the queue by greenfield, reads by id.

use async_trait::async_trait;
use rusqlite::{Connection, params};

use super::rows::{self, CLOSED, TASKS};
use super::{Failure, SqliteTaskStore, count, sql_limit};
use sosw_core::ecology::fair::FairnessKey;
use sosw_core::error::Result;
use sosw_core::store::{EnqueueMode, EnqueueReport, KeyedQueue, TaskLookup, TaskQueue};
use sosw_core::task::{Markers, Task, TaskId};

/// Queued: below `now` and not completed (a completion reported while queued takes a task out).
const QUEUED: &str = "labourer_id = ?1 AND greenfield < ?2 AND completed_at IS NULL";

#[async_trait]
impl TaskQueue for SqliteTaskStore {
    /// Writes the whole batch in one transaction: one write request.
    async fn enqueue(&self, tasks: &[Task], mode: EnqueueMode) -> Result<EnqueueReport> {
        for task in tasks {
            task.validate()?;
        }
        if tasks.is_empty() {
            return Ok(EnqueueReport::default());
        }
        self.run("enqueue", |conn| write_batch(conn, tasks, mode))
    }

    async fn next_queued(&self, labourer_id: &str, now: i64, limit: usize) -> Result<Vec<Task>> {
        let sql = format!(
            "SELECT task_id, item FROM tasks WHERE {QUEUED} ORDER BY greenfield, task_id LIMIT ?3"
        );
        self.run("next queued", |conn| {
            rows::select_many(
                conn,
                TASKS,
                &sql,
                params![labourer_id, now, sql_limit(limit)],
            )
        })
    }

    async fn queue_length(&self, labourer_id: &str, now: i64) -> Result<u64> {
        let sql = format!("SELECT COUNT(*) FROM tasks WHERE {QUEUED}");
        self.run("queue length", |conn| {
            let n: i64 = conn
                .prepare_cached(&sql)?
                .query_row(params![labourer_id, now], |row| row.get(0))?;
            Ok(count(n))
        })
    }

    async fn oldest_queued_greenfield(&self, labourer_id: &str, now: i64) -> Result<Option<i64>> {
        let sql = format!("SELECT MIN(greenfield) FROM tasks WHERE {QUEUED}");
        self.run("oldest queued greenfield", |conn| {
            queue_end(conn, &sql, labourer_id, now)
        })
    }

    /// From the per-key index: one seek per key, its running count and its queue head; rows written
    /// since the last read are keyed first (their payload read once).
    async fn queue_by_key(
        &self,
        labourer_id: &str,
        key: &FairnessKey,
        markers: &Markers,
        per_key: usize,
    ) -> Result<KeyedQueue> {
        self.run("queue by key", |conn| {
            super::fair::queue_by_key(conn, labourer_id, key, markers, per_key)
        })
    }

    async fn newest_queued_greenfield(&self, labourer_id: &str, now: i64) -> Result<Option<i64>> {
        let sql = format!("SELECT MAX(greenfield) FROM tasks WHERE {QUEUED}");
        self.run("newest queued greenfield", |conn| {
            queue_end(conn, &sql, labourer_id, now)
        })
    }
}

fn write_batch(
    conn: &mut Connection,
    tasks: &[Task],
    mode: EnqueueMode,
) -> Result<EnqueueReport, Failure> {
    let tx = super::begin_write(conn)?;
    let mut report = EnqueueReport::default();
    for task in tasks {
        if mode == EnqueueMode::SkipExisting && rows::exists_anywhere(&tx, task)? {
            report.skipped_existing += 1;
        } else {
            rows::put_live(&tx, task)?;
            report.written += 1;
        }
    }
    tx.commit()?;
    report.write_requests = 1;
    Ok(report)
}

fn queue_end(
    conn: &Connection,
    sql: &str,
    labourer_id: &str,
    now: i64,
) -> Result<Option<i64>, Failure> {
    // MIN/MAX over no rows is one NULL row.
    let end = conn
        .prepare_cached(sql)?
        .query_row(params![labourer_id, now], |row| row.get(0))?;
    Ok(end)
}

#[async_trait]
impl TaskLookup for SqliteTaskStore {
    async fn get_task(&self, task_id: &TaskId) -> Result<Option<Task>> {
        self.run("get task", |conn| rows::get_live(conn, task_id.as_str()))
    }

    async fn get_closed_task(&self, task_id: &TaskId) -> Result<Option<Task>> {
        self.run("get closed task", |conn| {
            rows::select_one(
                conn,
                CLOSED,
                "SELECT task_id, item FROM closed_tasks WHERE task_id = ?1",
                [task_id.as_str()],
            )
        })
    }

    async fn get_retry_task(&self, labourer_id: &str, task_id: &TaskId) -> Result<Option<Task>> {
        self.run("get retry task", |conn| {
            rows::get_retry(conn, labourer_id, task_id.as_str())
        })
    }
}

/// Where one labourer's tasks are at one instant: see [`SqliteTaskStore::labourer_counts`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabourerCounts {
    /// Queued (greenfield below now, not completed).
    pub queued: u64,
    /// Invoked and neither expired nor completed.
    pub running: u64,
    /// Waiting in the retry table.
    pub retry: u64,
}

impl SqliteTaskStore {
    /// The queued, running and retry-waiting tasks of `labourer_id` at `now` with `markers`, read in
    /// one transaction: one snapshot, so a task claimed or retried meanwhile is counted in one place,
    /// never in two (three separate reads could count a task queued and then running). Counting the
    /// queue reads its index entries: the cost grows with the queue, so progress displays should
    /// read it less often as it grows.
    pub fn labourer_counts(
        &self,
        labourer_id: &str,
        now: i64,
        markers: &Markers,
    ) -> Result<LabourerCounts> {
        let queued_sql = format!("SELECT COUNT(*) FROM tasks WHERE {QUEUED}");
        self.run("labourer counts", |conn| {
            let tx = conn.savepoint()?;
            let queued: i64 = tx
                .prepare_cached(&queued_sql)?
                .query_row(params![labourer_id, now], |row| row.get(0))?;
            let running: i64 = tx
                .prepare_cached(super::claims::RUNNING_COUNT)?
                .query_row(params![labourer_id, markers.expired], |row| row.get(0))?;
            let retry: i64 = tx
                .prepare_cached("SELECT COUNT(*) FROM retry_tasks WHERE labourer_id = ?1")?
                .query_row([labourer_id], |row| row.get(0))?;
            tx.commit()?;
            Ok(LabourerCounts {
                queued: count(queued),
                running: count(running),
                retry: count(retry),
            })
        })
    }
}
