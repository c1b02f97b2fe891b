//! `sosw cancel` and `sosw pause` in the state file: cancelling a waiting task ([`TaskCancel`]) and the
//! `paused_labourers` table ([`LabourerControl`]).

use async_trait::async_trait;
use rusqlite::params;

use super::rows;
use super::{Failure, SqliteTaskStore};
use sosw_core::error::Result;
use sosw_core::store::{
    ClosedStatus, LabourerControl, MoveOutcome, PausedLabourer, TaskCancel, cancelled_row,
};
use sosw_core::task::Task;

#[async_trait]
impl TaskCancel for SqliteTaskStore {
    async fn cancel_retry(&self, task: &Task, closed_at: i64) -> Result<MoveOutcome> {
        self.run("cancel retry", |conn| {
            let tx = super::begin_write(conn)?;
            let (labourer_id, task_id) = (task.labourer_id.as_str(), task.task_id.as_str());
            // The stored row moves (not the caller's copy), so nothing written after the read is lost.
            let Some(row) = rows::get_retry(&tx, labourer_id, task_id)? else {
                return Ok(MoveOutcome::Conflict);
            };
            tx.prepare("DELETE FROM retry_tasks WHERE labourer_id = ?1 AND task_id = ?2")?
                .execute([labourer_id, task_id])?;
            let closed = cancelled_row(&row, closed_at);
            let key = ClosedStatus::Cancelled.index_key(&row.labourer_id);
            rows::put_closed(&tx, &closed, &key, closed_at)?;
            tx.commit()?;
            Ok(MoveOutcome::Moved)
        })
    }
}

#[async_trait]
impl LabourerControl for SqliteTaskStore {
    async fn pause_labourer(&self, labourer_id: &str, now: i64) -> Result<bool> {
        self.run("pause labourer", |conn| {
            let inserted = conn
                .prepare(
                    "INSERT INTO paused_labourers (labourer_id, paused_at) VALUES (?1, ?2)
                     ON CONFLICT (labourer_id) DO NOTHING",
                )?
                .execute(params![labourer_id, now])?;
            Ok(inserted == 1)
        })
    }

    async fn resume_labourer(&self, labourer_id: &str) -> Result<bool> {
        self.run("resume labourer", |conn| {
            let deleted = conn
                .prepare("DELETE FROM paused_labourers WHERE labourer_id = ?1")?
                .execute([labourer_id])?;
            Ok(deleted == 1)
        })
    }

    async fn paused_labourers(&self) -> Result<Vec<PausedLabourer>> {
        self.run("paused labourers", |conn| {
            let mut stmt = conn.prepare(
                "SELECT labourer_id, paused_at FROM paused_labourers ORDER BY labourer_id",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok(PausedLabourer {
                    labourer_id: row.get(0)?,
                    paused_at: row.get(1)?,
                })
            })?;
            let mut paused = Vec::new();
            for row in rows {
                paused.push(row.map_err(Failure::from)?);
            }
            Ok(paused)
        })
    }
}
