//! Per-key fairness: the queue of each fairness key, from the `tasks_open_by_key` index.
//!
//! A row's `fairness_key` column is filled from its payload with the path its labourer configures, on
//! the first per-key read after the row was written (enqueue, return from retry and redrive write it
//! `NULL`): each task's payload is read once, not once per round. `fairness_paths` remembers the path
//! the keys were computed with; a read with another path recomputes them all.

use rusqlite::{Connection, OptionalExtension, params};

use super::rows::{self, TASKS};
use super::{Failure, count, sql_limit};
use sosw_core::ecology::fair::FairnessKey;
use sosw_core::store::{KeyedQueue, KeyedWork};
use sosw_core::task::Markers;

/// Rows keyed per statement batch.
const KEYING_BATCH: i64 = 1_000;

/// The open work of `labourer_id` by key; see `TaskQueue::queue_by_key`.
pub(super) fn queue_by_key(
    conn: &mut Connection,
    labourer_id: &str,
    key: &FairnessKey,
    markers: &Markers,
    per_key: usize,
) -> Result<KeyedQueue, Failure> {
    key_rows(conn, labourer_id, key)?;
    let mut queue = KeyedQueue::new();
    let mut after: Option<String> = None;
    // One index seek per key: the keys of open rows, in order.
    while let Some(k) = next_key(conn, labourer_id, after.as_deref())? {
        let running: i64 = conn
            .prepare_cached(
                "SELECT COUNT(*) FROM tasks WHERE labourer_id = ?1 AND fairness_key = ?2 \
                 AND completed_at IS NULL AND greenfield > ?3",
            )?
            .query_row(params![labourer_id, k, markers.expired], |row| row.get(0))?;
        let queued = rows::select_many(
            conn,
            TASKS,
            "SELECT task_id, item FROM tasks WHERE labourer_id = ?1 AND fairness_key = ?2 \
             AND completed_at IS NULL AND greenfield < ?3 ORDER BY greenfield, task_id LIMIT ?4",
            params![labourer_id, k, markers.start, sql_limit(per_key)],
        )?;
        if running > 0 || !queued.is_empty() {
            queue.insert(
                k.clone(),
                KeyedWork {
                    running: count(running),
                    queued,
                },
            );
        }
        after = Some(k);
    }
    Ok(queue)
}

/// The first key of an open row of `labourer_id` after `after` (the first key at all for `None`).
fn next_key(
    conn: &Connection,
    labourer_id: &str,
    after: Option<&str>,
) -> Result<Option<String>, Failure> {
    let key = match after {
        None => conn
            .prepare_cached(
                "SELECT fairness_key FROM tasks WHERE labourer_id = ?1 AND completed_at IS NULL \
                 AND fairness_key IS NOT NULL ORDER BY fairness_key LIMIT 1",
            )?
            .query_row([labourer_id], |row| row.get(0))
            .optional()?,
        Some(after) => conn
            .prepare_cached(
                "SELECT fairness_key FROM tasks WHERE labourer_id = ?1 AND completed_at IS NULL \
                 AND fairness_key > ?2 ORDER BY fairness_key LIMIT 1",
            )?
            .query_row([labourer_id, after], |row| row.get(0))
            .optional()?,
    };
    Ok(key)
}

/// Fills `fairness_key` of every open row of `labourer_id` that has none, with `key`'s path; first
/// clears every key of the labourer if they were computed with another path.
fn key_rows(conn: &mut Connection, labourer_id: &str, key: &FairnessKey) -> Result<(), Failure> {
    let path: Option<String> = conn
        .prepare_cached("SELECT path FROM fairness_paths WHERE labourer_id = ?1")?
        .query_row([labourer_id], |row| row.get(0))
        .optional()?;
    if path.as_deref() != Some(key.as_str()) {
        let tx = super::begin_write(conn)?;
        tx.execute(
            "UPDATE tasks SET fairness_key = NULL WHERE labourer_id = ?1 \
             AND fairness_key IS NOT NULL",
            [labourer_id],
        )?;
        tx.execute(
            "INSERT INTO fairness_paths (labourer_id, path) VALUES (?1, ?2) \
             ON CONFLICT (labourer_id) DO UPDATE SET path = excluded.path",
            [labourer_id, key.as_str()],
        )?;
        tx.commit()?;
    }
    loop {
        let tx = super::begin_write(conn)?;
        let unkeyed: Vec<(String, String)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT task_id, item FROM tasks WHERE labourer_id = ?1 AND completed_at IS NULL \
                 AND fairness_key IS NULL LIMIT ?2",
            )?;
            stmt.query_map(params![labourer_id, KEYING_BATCH], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?
            .collect::<rusqlite::Result<_>>()?
        };
        for (task_id, item) in &unkeyed {
            let task = rows::decode(TASKS, task_id, item)?;
            tx.prepare_cached("UPDATE tasks SET fairness_key = ?2 WHERE task_id = ?1")?
                .execute([task_id.as_str(), key.key_of(&task.payload).as_str()])?;
        }
        tx.commit()?;
        if (unkeyed.len() as i64) < KEYING_BATCH {
            return Ok(());
        }
    }
}
