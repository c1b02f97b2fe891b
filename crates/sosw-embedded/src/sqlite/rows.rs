//! Rows: the `item` JSON and the indexed columns beside it, always written together.

use rusqlite::{Connection, OptionalExtension, Params, params};

use super::Failure;
use sosw_core::error::{Error, Result};
use sosw_core::task::Task;

/// The live table.
pub(super) const TASKS: &str = "tasks";
/// The closed table.
pub(super) const CLOSED: &str = "closed_tasks";
/// The retry table.
pub(super) const RETRY: &str = "retry_tasks";

/// The task as stored in `item`: its serde form, payload as JSON text like every sosw table.
pub(super) fn encode(task: &Task) -> Result<String> {
    serde_json::to_string(task).map_err(|e| {
        Error::invalid(
            "task",
            format!("task `{}` cannot be encoded as JSON: {e}", task.task_id),
        )
    })
}

/// Decodes the `item` of row `task_id` of `table`, naming both and the offending attribute on failure.
pub(super) fn decode(table: &str, task_id: &str, item: &str) -> Result<Task> {
    let mut de = serde_json::Deserializer::from_str(item);
    let task = serde_path_to_error::deserialize(&mut de)
        .map_err(|e| decode_error(table, task_id, format!("at `{}`: {}", e.path(), e.inner())))?;
    de.end()
        .map_err(|e| decode_error(table, task_id, e.to_string()))?;
    Ok(task)
}

fn decode_error(table: &str, task_id: &str, problem: String) -> Error {
    Error::Decode {
        what: "task",
        table: table.to_owned(),
        message: format!("row `{task_id}`: {problem}"),
    }
}

/// Inserts or replaces `task` in the live table.
pub(super) fn put_live(conn: &Connection, task: &Task) -> Result<(), Failure> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO tasks (task_id, labourer_id, greenfield, completed_at, item)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        task.task_id.as_str(),
        task.labourer_id,
        task.greenfield,
        task.completed_at,
        encode(task)?
    ])?;
    Ok(())
}

/// Rewrites the live row of `task` if it still matches `condition`, SQL over the row's current columns
/// in which `?6` is `bound`. Returns whether it did.
pub(super) fn update_live_if(
    conn: &Connection,
    task: &Task,
    condition: &str,
    bound: i64,
) -> Result<bool, Failure> {
    let sql = format!(
        "UPDATE tasks SET labourer_id = ?2, greenfield = ?3, completed_at = ?4, item = ?5
         WHERE task_id = ?1 AND {condition}"
    );
    let changed = conn.prepare_cached(&sql)?.execute(params![
        task.task_id.as_str(),
        task.labourer_id,
        task.greenfield,
        task.completed_at,
        encode(task)?,
        bound,
    ])?;
    Ok(changed == 1)
}

/// Inserts or replaces `task` in the closed table.
pub(super) fn put_closed(
    conn: &Connection,
    task: &Task,
    status_key: &str,
    closed_at: i64,
) -> Result<(), Failure> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO closed_tasks (task_id, labourer_id_task_status, closed_at, item)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        task.task_id.as_str(),
        status_key,
        closed_at,
        encode(task)?
    ])?;
    Ok(())
}

/// Inserts or replaces `task` in the retry table.
pub(super) fn put_retry(
    conn: &Connection,
    task: &Task,
    desired_launch_time: i64,
) -> Result<(), Failure> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO retry_tasks (labourer_id, task_id, desired_launch_time, item)
         VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        task.labourer_id,
        task.task_id.as_str(),
        desired_launch_time,
        encode(task)?
    ])?;
    Ok(())
}

/// The one task `sql` selects (as `task_id, item`) from `table`, if any.
pub(super) fn select_one(
    conn: &Connection,
    table: &str,
    sql: &str,
    params: impl Params,
) -> Result<Option<Task>, Failure> {
    let row: Option<(String, String)> = conn
        .prepare_cached(sql)?
        .query_row(params, |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    match row {
        Some((id, item)) => Ok(Some(decode(table, &id, &item)?)),
        None => Ok(None),
    }
}

/// Every task `sql` selects (as `task_id, item`) from `table`, in the query's order.
pub(super) fn select_many(
    conn: &Connection,
    table: &str,
    sql: &str,
    params: impl Params,
) -> Result<Vec<Task>, Failure> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    let mut tasks = Vec::new();
    for row in rows {
        let (id, item) = row?;
        tasks.push(decode(table, &id, &item)?);
    }
    Ok(tasks)
}

/// The live task with this id.
pub(super) fn get_live(conn: &Connection, task_id: &str) -> Result<Option<Task>, Failure> {
    select_one(
        conn,
        TASKS,
        "SELECT task_id, item FROM tasks WHERE task_id = ?1",
        [task_id],
    )
}

/// Whether `sql` selects a row.
pub(super) fn row_exists(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<bool, Failure> {
    let found = conn
        .prepare_cached(sql)?
        .query_row(params, |_| Ok(()))
        .optional()?;
    Ok(found.is_some())
}

/// Whether `task`'s id exists anywhere: live, waiting for retry (under its labourer: the retry table's
/// key), or closed.
pub(super) fn exists_anywhere(conn: &Connection, task: &Task) -> Result<bool, Failure> {
    let id = task.task_id.as_str();
    Ok(
        row_exists(conn, "SELECT 1 FROM tasks WHERE task_id = ?1", [id])?
            || row_exists(
                conn,
                "SELECT 1 FROM retry_tasks WHERE labourer_id = ?1 AND task_id = ?2",
                [task.labourer_id.as_str(), id],
            )?
            || row_exists(conn, "SELECT 1 FROM closed_tasks WHERE task_id = ?1", [id])?,
    )
}

/// The task waiting for retry under this key.
pub(super) fn get_retry(
    conn: &Connection,
    labourer_id: &str,
    task_id: &str,
) -> Result<Option<Task>, Failure> {
    select_one(
        conn,
        RETRY,
        "SELECT task_id, item FROM retry_tasks WHERE labourer_id = ?1 AND task_id = ?2",
        [labourer_id, task_id],
    )
}

/// The error for a row whose indexed columns contradict its `item`.
pub(super) fn out_of_sync(table: &str, task_id: &str) -> Error {
    decode_error(
        table,
        task_id,
        "the indexed columns do not match the item".to_owned(),
    )
}
