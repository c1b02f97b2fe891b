//! The SQLite [`TaskStore`](sosw_core::store::TaskStore): sosw 0.7's three task tables in one database.
//!
//! Each table keeps the columns its queries filter or sort on (the DynamoDB keys and index keys) next to
//! `item`, the whole [`Task`](sosw_core::task::Task) as JSON. Every write goes through [`rows`], which derives
//! the columns from the task, so the two never disagree.
//!
//! One connection sits behind a mutex: operations take microseconds, and the lock is never held across
//! an `.await`. Several processes may share a file; conditional updates and `IMMEDIATE` transactions keep
//! them from stepping on each other, and a lock they cannot get in time is a retryable error.
//!
//! **Group commit.** Each write operation runs in a savepoint of its own (atomic on its own, rolled back
//! on its own when it fails). While other callers of this process are already waiting for the
//! connection, the transaction around those savepoints stays open for them, and the last of them
//! commits it (or the [`MAX_GROUP`]th operation): under load, many operations share one commit, which is
//! most of what SQLite spends on a small write (the pages of the tables and indexes written to the WAL
//! once per commit, not once per operation). When no one is waiting, an operation commits before it
//! returns, as it would without grouping, so the lock is never held while this process does other work.
//! A process killed while a group is open loses that group as a whole: the file is then exactly as it
//! was after an earlier operation (commits are in operation order), so every task is where that earlier
//! operation left it — never lost, at worst claimed again and run again after its expiry, as after any
//! crash of the process.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, Savepoint};

use sosw_core::error::{Error, Result};

mod archive;
mod claims;
mod control;
mod ecology;
mod fair;
mod jobs;
mod queue;
#[cfg(test)]
mod redrive_sosw07_tests;
mod rows;
mod schema;

pub use queue::LabourerCounts;
#[cfg(test)]
mod tests;

/// The store name used in errors.
const STORE: &str = "SQLite";

/// How long an operation waits for another process's write lock before failing (retryably).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection: every fixed statement the store runs, with room to spare.
const STATEMENT_CACHE: usize = 64;

/// The page cache of a file's connection, in KiB, as SQLite's `cache_size` takes it (negative).
const PAGE_CACHE_KIB: i64 = -16_384;

/// Most operations one commit covers (see the module docs): bounds how much a crash can roll back.
const MAX_GROUP: usize = 256;

/// A [`TaskStore`](sosw_core::store::TaskStore) over SQLite: tables `tasks`, `closed_tasks` and
/// `retry_tasks` mirroring sosw 0.7's `sosw_tasks`, `sosw_closed_tasks` and `sosw_retry_tasks`.
pub struct SqliteTaskStore {
    conn: Mutex<Connection>,
    /// Callers of this process waiting for `conn`: while there are some, a write group stays open.
    waiting: AtomicUsize,
    /// Operations in the open write group (changed under the `conn` lock only).
    grouped: AtomicUsize,
    /// The database file, `None` in memory. For messages.
    path: Option<PathBuf>,
}

impl fmt::Debug for SqliteTaskStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "SqliteTaskStore({})", path.display()),
            None => f.write_str("SqliteTaskStore(:memory:)"),
        }
    }
}

impl SqliteTaskStore {
    /// Opens (or creates) the database file at `path` in WAL mode with `synchronous=NORMAL` and a busy
    /// timeout, and creates the tables if they are missing.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let conn = Connection::open(path).map_err(sql_error("open"))?;
        configure_file(&conn, path).map_err(sql_error("open"))?;
        Self::with_connection(conn, Some(path.to_path_buf()))
    }

    /// A private in-memory database, gone when the store is dropped: for tests and one-shot local runs.
    pub fn in_memory() -> Result<Self> {
        let conn = Connection::open_in_memory().map_err(sql_error("open"))?;
        Self::with_connection(conn, None)
    }

    fn with_connection(mut conn: Connection, path: Option<PathBuf>) -> Result<Self> {
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_error("open"))?;
        // Every operation runs a handful of fixed statements: parsing them once per connection
        // instead of once per call is most of a small operation's CPU time.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        schema::ensure(&mut conn)?;
        Ok(SqliteTaskStore {
            conn: Mutex::new(conn),
            waiting: AtomicUsize::new(0),
            grouped: AtomicUsize::new(0),
            path,
        })
    }

    /// The database file, or `None` for an in-memory store.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Runs `f` on the connection. SQLite errors are mapped to [`Error::Store`] naming `operation`.
    fn run<T>(
        &self,
        operation: &'static str,
        f: impl FnOnce(&mut Connection) -> Result<T, Failure>,
    ) -> Result<T> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let locked = self.lock(operation);
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        let mut conn = locked?;
        let result = f(&mut conn).map_err(|failure| failure.into_error(operation));
        let settled = self
            .settle(&mut conn)
            .map_err(|failure| failure.into_error(operation));
        // A failed commit loses this operation's write too: its error is the one to report.
        settled.and(result)
    }

    /// Ends an operation: commits the open write group unless other callers are waiting to join it
    /// (see the module docs).
    fn settle(&self, conn: &mut Connection) -> Result<(), Failure> {
        if conn.is_autocommit() {
            self.grouped.store(0, Ordering::SeqCst);
            return Ok(());
        }
        let grouped = self.grouped.fetch_add(1, Ordering::SeqCst) + 1;
        if self.waiting.load(Ordering::SeqCst) > 0 && grouped < MAX_GROUP {
            return Ok(());
        }
        self.grouped.store(0, Ordering::SeqCst);
        if let Err(err) = conn.execute_batch("COMMIT") {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            return Err(err.into());
        }
        Ok(())
    }

    fn lock(&self, operation: &'static str) -> Result<MutexGuard<'_, Connection>> {
        // A panic while the lock was held may have left a transaction half done; SQLite rolls back
        // an unfinished transaction, but refusing further work is the honest answer.
        self.conn.lock().map_err(|_| {
            Error::store(
                STORE,
                operation,
                false,
                "the connection lock is poisoned: an earlier operation panicked; reopen the store",
            )
        })
    }
}

impl Drop for SqliteTaskStore {
    fn drop(&mut self) {
        // Every operation settles before it returns, so no group should be open; commit one anyway.
        if let Ok(conn) = self.conn.get_mut()
            && !conn.is_autocommit()
            && let Err(err) = conn.execute_batch("COMMIT")
        {
            tracing::error!(error = %err, "SQLite: the last write group could not be committed");
        }
    }
}

/// Starts a write operation: its savepoint inside the open write group, or inside a new `IMMEDIATE`
/// transaction (the write lock taken at once, so a reader never has to upgrade and fail). Commit the
/// savepoint to keep the operation; dropping it rolls back this operation alone.
fn begin_write(conn: &mut Connection) -> rusqlite::Result<Savepoint<'_>> {
    if conn.is_autocommit() {
        conn.execute_batch("BEGIN IMMEDIATE")?;
    }
    conn.savepoint()
}

fn configure_file(conn: &Connection, path: &Path) -> rusqlite::Result<()> {
    let mode = switch_to_wal(conn)?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Still correct, only slower and with less concurrency for readers.
        tracing::warn!(path = %path.display(), mode, "SQLite refused WAL mode");
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // SQLite's default page cache (2 MB) holds the hot index pages of a small queue only; past that
    // every operation reads pages back from the file. Negative: a size in KiB.
    conn.pragma_update(None, "cache_size", PAGE_CACHE_KIB)
}

/// Puts the file in WAL mode and returns the mode it ends in. A file already in WAL mode (every file
/// after its first open) needs no write. Switching takes the file's write lock while holding a read
/// lock, and SQLite answers that promotion with an immediate "database is locked" instead of calling the
/// busy handler (it could deadlock), so several processes opening one new file together retry here,
/// within the same budget as the busy timeout.
fn switch_to_wal(conn: &Connection) -> rusqlite::Result<String> {
    let current: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
    if current.eq_ignore_ascii_case("wal") {
        return Ok(current);
    }
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)) {
            Err(e)
                if e.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            outcome => return outcome,
        }
    }
}

/// What goes wrong inside an operation: SQLite itself, or something sosw decided (a row that does not
/// decode). Lets the operation bodies use `?` on both.
#[derive(Debug)]
enum Failure {
    Sql(rusqlite::Error),
    Sosw(Error),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Sql(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Sosw(e)
    }
}

impl Failure {
    fn into_error(self, operation: &'static str) -> Error {
        match self {
            Failure::Sql(e) => sql_error(operation)(e),
            Failure::Sosw(e) => e,
        }
    }
}

/// Maps a SQLite error to [`Error::Store`]; a lock held too long by another connection is retryable.
fn sql_error(operation: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    move |e| {
        let retryable = matches!(
            e.sqlite_error_code(),
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        );
        Error::store(STORE, operation, retryable, e)
    }
}

/// A `usize` limit as SQLite's `LIMIT` (which is signed).
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A SQLite `COUNT(*)` as the store API's `u64` (a count is never negative).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
