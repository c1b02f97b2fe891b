//! The tables, created if missing, and the schema version that guards against opening a file written by
//! an incompatible build.
//!
//! Version 1 had the three task tables; version 2 adds `jobs`; version 3 adds the `cancelled` counter
//! of a job and `paused_labourers` (`sosw cancel`, `sosw pause`); version 4 adds the fairness key column
//! of `tasks`, its index and `fairness_paths` (per-key fairness); version 5 moves the job as submitted
//! out of `jobs` into `job_bodies`. Opening a file of an older version migrates it in place (each step
//! adds tables or columns, or moves a column's values to a new table), inside the same transaction
//! that checks the version, so two processes opening an old file at once migrate it once. A file of a newer version is
//! refused: this build cannot know what the newer one changed.

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::{STORE, sql_error};
use sosw_core::error::{Error, Result};

/// The schema this build reads and writes.
pub(super) const VERSION: i64 = 5;

/// Version 1: sosw 0.7's tables and indexes, under the names of the DynamoDB ones they mirror (minus
/// `sosw_`). Created on every open (`IF NOT EXISTS`), so a new file starts at version 1 and migrates.
const V1_TABLES: &str = "
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

/// Version 2: job records. Counters and the fields updates compare are columns, so every change is one
/// atomic `UPDATE`; `requesters` (a JSON array of strings) and `job` (the job as submitted) are JSON text.
const V2_JOBS: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT NOT NULL PRIMARY KEY,
    labourer_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    total INTEGER,
    enqueued INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    dead INTEGER NOT NULL DEFAULT 0,
    requesters TEXT NOT NULL DEFAULT '[]',
    job TEXT NOT NULL DEFAULT 'null'
);
CREATE INDEX IF NOT EXISTS jobs_created_at ON jobs (created_at);
";

/// Version 3: a job's `cancelled` counter (`sosw cancel`) and the labourers `sosw pause` paused, one row
/// each.
const V3_CANCEL_AND_PAUSE: &str = "
ALTER TABLE jobs ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0;
CREATE TABLE IF NOT EXISTS paused_labourers (
    labourer_id TEXT NOT NULL PRIMARY KEY,
    paused_at INTEGER NOT NULL
);
";

/// Version 4: per-key fairness (docs/ecology.md). Each live task's fairness key as a column, filled
/// from its payload with the path its labourer configures (`NULL` until then: rows are written without
/// it and keyed on the first per-key read), the path each labourer's keys were computed with (a changed
/// path recomputes them), and the queue per key: open tasks by labourer, key, then greenfield.
const V4_FAIRNESS: &str = "
ALTER TABLE tasks ADD COLUMN fairness_key TEXT;
CREATE TABLE IF NOT EXISTS fairness_paths (
    labourer_id TEXT NOT NULL PRIMARY KEY,
    path TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tasks_open_by_key ON tasks (labourer_id, fairness_key, greenfield, task_id)
    WHERE completed_at IS NULL;
";

/// Version 5: the job as submitted in a table of its own. SQLite rewrites a whole row on every
/// `UPDATE`, so with the body in `jobs` each counter update (one per task that closes) read and
/// compared the whole body, which can list 20,000 sections (about 180 KB): a cost per task that grew
/// with the job. A body is written once, with its job, and never changed.
const V5_JOB_BODIES: &str = "
CREATE TABLE IF NOT EXISTS job_bodies (
    job_id TEXT NOT NULL PRIMARY KEY,
    job TEXT NOT NULL
);
INSERT OR IGNORE INTO job_bodies (job_id, job) SELECT job_id, job FROM jobs WHERE job <> 'null';
ALTER TABLE jobs DROP COLUMN job;
";

/// The indexes of `tasks`, (re)built on every open: the queries only ever ask for open tasks (queue,
/// running, expired: `completed_at IS NULL`) or for completed ones waiting to be archived, each in
/// greenfield then task id order, so each has a partial index in exactly that order. A query reads the
/// rows it returns and no others, however long the queue: the store work per task does not grow with
/// it. They replace version 1's `tasks_greenfield` (`labourer_id, greenfield` over every row), whose
/// order-by needed a sort of every queued task per read; a file that has it loses it on open (an
/// older build opening the file again recreates it, which is harmless). Adding indexes needs no new
/// schema version: every build reads the tables the same way.
const TASK_INDEXES: &str = "
DROP INDEX IF EXISTS tasks_greenfield;
CREATE INDEX IF NOT EXISTS tasks_open ON tasks (labourer_id, greenfield, task_id)
    WHERE completed_at IS NULL;
CREATE INDEX IF NOT EXISTS tasks_completed ON tasks (labourer_id, greenfield, task_id)
    WHERE completed_at IS NOT NULL;
";

/// The migrations after version 1: `(version it leads to, DDL)`, in order.
const MIGRATIONS: &[(i64, &str)] = &[
    (2, V2_JOBS),
    (3, V3_CANCEL_AND_PAUSE),
    (4, V4_FAIRNESS),
    (5, V5_JOB_BODIES),
];

/// Creates the tables if missing, migrates an older file and checks the schema version. Safe to run on
/// every open, from several processes at once: it runs in one `IMMEDIATE` transaction.
pub(super) fn ensure(conn: &mut Connection) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_error("create schema"))?;
    tx.execute_batch(V1_TABLES)
        .map_err(sql_error("create schema"))?;
    let found: Option<i64> = tx
        .query_row("SELECT MAX(version) FROM schema_version", [], |row| {
            row.get(0)
        })
        .map_err(sql_error("create schema"))?;
    // No version row: a new file, whose tables V1_TABLES just created.
    let from = found.unwrap_or(1);
    if !(1..=VERSION).contains(&from) {
        return Err(unreadable_version(from));
    }
    migrate(&tx, from).map_err(sql_error("migrate schema"))?;
    tx.execute_batch(TASK_INDEXES)
        .map_err(sql_error("create indexes"))?;
    tx.execute_batch(super::ecology::ECOLOGY_TABLE)
        .map_err(sql_error("create schema"))?;
    set_version(&tx, found).map_err(sql_error("create schema"))?;
    tx.commit().map_err(sql_error("create schema"))
}

/// Applies every migration past version `from`.
fn migrate(tx: &Transaction<'_>, from: i64) -> rusqlite::Result<()> {
    for (to, ddl) in MIGRATIONS.iter().filter(|(to, _)| *to > from) {
        tracing::info!(from, to, "migrating the SQLite schema");
        tx.execute_batch(ddl)?;
    }
    Ok(())
}

/// Records [`VERSION`] as the one version row.
fn set_version(tx: &Transaction<'_>, found: Option<i64>) -> rusqlite::Result<()> {
    match found {
        None => tx.execute(
            "INSERT INTO schema_version (version) VALUES (?1)",
            [VERSION],
        )?,
        Some(VERSION) => 0,
        Some(_) => tx.execute("UPDATE schema_version SET version = ?1", [VERSION])?,
    };
    Ok(())
}

fn unreadable_version(found: i64) -> Error {
    let advice = if found > VERSION {
        "it was written by a newer sosw: open it with that version or newer"
    } else {
        "no sosw writes that version: the file is not a sosw database or was edited by hand"
    };
    Error::store(
        STORE,
        "open",
        false,
        format!(
            "the database has schema version {found}; this build of sosw reads versions 1 to \
             {VERSION} ({advice})"
        ),
    )
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    /// A connection holding exactly what a version-1 build wrote: the three task tables, one task, and
    /// version 1.
    fn version_1_database() -> Connection {
        let conn = Connection::open_in_memory().expect("opens");
        conn.execute_batch(V1_TABLES).expect("creates v1 tables");
        conn.execute_batch(
            "INSERT INTO schema_version (version) VALUES (1);
             INSERT INTO tasks VALUES ('t1', 'lab', 2000, NULL, '{}');",
        )
        .expect("writes v1 rows");
        conn
    }

    fn version(conn: &Connection) -> Vec<i64> {
        let mut stmt = conn
            .prepare("SELECT version FROM schema_version")
            .expect("prepares");
        stmt.query_map([], |r| r.get(0))
            .expect("queries")
            .collect::<rusqlite::Result<_>>()
            .expect("reads versions")
    }

    fn has_table(conn: &Connection, name: &str) -> bool {
        conn.query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )
        .expect("reads the catalogue")
            == 1
    }

    #[test]
    fn a_new_database_gets_the_current_version_and_every_table() {
        let mut conn = Connection::open_in_memory().expect("opens");
        ensure(&mut conn).expect("creates the schema");
        assert_eq!(version(&conn), vec![VERSION]);
        for table in [
            "tasks",
            "closed_tasks",
            "retry_tasks",
            "jobs",
            "paused_labourers",
            "fairness_paths",
            "job_bodies",
        ] {
            assert!(has_table(&conn, table), "table `{table}` exists");
        }
    }

    #[test]
    fn a_version_1_database_is_migrated_keeping_its_rows() {
        let mut conn = version_1_database();
        assert!(!has_table(&conn, "jobs"), "setup: v1 has no jobs table");

        ensure(&mut conn).expect("migrates");
        assert!(has_table(&conn, "jobs"), "the migration adds `jobs`");
        assert_eq!(
            version(&conn),
            vec![VERSION],
            "one row, now the new version"
        );
        let tasks: i64 = conn
            .query_row("SELECT COUNT(*) FROM tasks", [], |r| r.get(0))
            .expect("counts");
        assert_eq!(tasks, 1, "the v1 task is kept");

        ensure(&mut conn).expect("opens the migrated database again");
        assert_eq!(
            version(&conn),
            vec![VERSION],
            "a second open changes nothing"
        );
    }

    #[test]
    fn a_version_4_job_keeps_its_body_in_job_bodies() {
        let mut conn = version_1_database();
        for (_, ddl) in MIGRATIONS.iter().filter(|(to, _)| *to <= 4) {
            conn.execute_batch(ddl).expect("migrates to v4");
        }
        conn.execute_batch(
            r#"UPDATE schema_version SET version = 4;
               INSERT INTO jobs (job_id, labourer_id, status, created_at, completed, job)
               VALUES ('j1', 'lab', 'running', 1700000000, 3, '{"sections":["a"]}'),
                      ('j2', 'lab', 'running', 1700000001, 0, 'null');"#,
        )
        .expect("writes v4 rows");

        ensure(&mut conn).expect("migrates");
        assert_eq!(version(&conn), vec![VERSION]);
        let bodies: Vec<(String, String)> = conn
            .prepare("SELECT job_id, job FROM job_bodies ORDER BY job_id")
            .expect("prepares")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("queries")
            .collect::<rusqlite::Result<_>>()
            .expect("reads bodies");
        assert_eq!(
            bodies,
            vec![("j1".to_owned(), r#"{"sections":["a"]}"#.to_owned())],
            "the body moved; a null body needs no row"
        );
        let completed: i64 = conn
            .query_row("SELECT completed FROM jobs WHERE job_id = 'j1'", [], |r| {
                r.get(0)
            })
            .expect("reads the record");
        assert_eq!(completed, 3, "the record is kept");
    }

    #[test]
    fn newer_and_nonsense_versions_are_refused_with_advice() {
        for (found, advice) in [(VERSION + 1, "newer sosw"), (0, "not a sosw database")] {
            let mut conn = version_1_database();
            conn.execute("UPDATE schema_version SET version = ?1", [found])
                .expect("sets the version");
            let err = ensure(&mut conn).expect_err("refused");
            let msg = err.to_string();
            assert!(
                msg.contains(&format!("schema version {found}")) && msg.contains(advice),
                "{msg}"
            );
            assert!(!has_table(&conn, "jobs"), "a refused file is not migrated");
        }
    }
}
