//! The tables, created if missing, and the schema version that guards against opening a file written by
//! an incompatible build.

use rusqlite::{Connection, TransactionBehavior};

use super::{STORE, sql_error};
use crate::error::{Error, Result};

/// The schema this build reads and writes.
pub(super) const VERSION: i64 = 1;

/// sosw 0.7's tables and indexes, under the names of the DynamoDB ones they mirror (minus `sosw_`).
const TABLES: &str = "
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT NOT NULL PRIMARY KEY,
    labourer_id TEXT NOT NULL,
    greenfield INTEGER NOT NULL,
    completed_at INTEGER,
    item TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_greenfield ON tasks (labourer_id, greenfield);
CREATE TABLE IF NOT EXISTS closed_tasks (
    task_id TEXT NOT NULL PRIMARY KEY,
    labourer_id_task_status TEXT NOT NULL,
    closed_at INTEGER NOT NULL,
    item TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS labourer_task_status_with_time
    ON closed_tasks (labourer_id_task_status, closed_at);
CREATE TABLE IF NOT EXISTS retry_tasks (
    labourer_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    desired_launch_time INTEGER NOT NULL,
    item TEXT NOT NULL,
    PRIMARY KEY (labourer_id, task_id)
);
CREATE INDEX IF NOT EXISTS labourer_id_greenfield ON retry_tasks (labourer_id, desired_launch_time);
";

/// Creates the tables if missing and checks the schema version. Safe to run on every open, from several
/// processes at once: it runs in one `IMMEDIATE` transaction.
pub(super) fn ensure(conn: &mut Connection) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_error("create schema"))?;
    tx.execute_batch(TABLES)
        .map_err(sql_error("create schema"))?;
    let found: Option<i64> = tx
        .query_row("SELECT MAX(version) FROM schema_version", [], |row| {
            row.get(0)
        })
        .map_err(sql_error("create schema"))?;
    match found {
        None => {
            tx.execute(
                "INSERT INTO schema_version (version) VALUES (?1)",
                [VERSION],
            )
            .map_err(sql_error("create schema"))?;
        }
        Some(VERSION) => {}
        Some(other) => {
            return Err(Error::store(
                STORE,
                "open",
                false,
                format!(
                    "the database has schema version {other}; this build of sosw reads version \
                     {VERSION} only"
                ),
            ));
        }
    }
    tx.commit().map_err(sql_error("create schema"))
}
