//! The conformance suite on SQLite (in memory and on a file), and what only SQLite has: files, schema,
//! locks and rows written by hand.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::json;

use super::SqliteTaskStore;
use sosw_core::error::Error;
use sosw_core::store::{EnqueueMode, TaskClaims, TaskLookup, TaskQueue};
use sosw_core::task::{Task, TaskId};
use sosw_testkit::Guarded;

/// A database file in the temp dir, unique to this call, removed (with its WAL files) on drop.
struct TempDb(PathBuf);

impl TempDb {
    fn new(what: &str) -> Self {
        let name = format!(
            "sosw-{what}-{}-{}.sqlite",
            std::process::id(),
            TaskId::generate()
        );
        TempDb(std::env::temp_dir().join(name))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            // Best effort: a file that is not there is fine.
            let _ = std::fs::remove_file(path);
        }
    }
}

mod conformance_in_memory {
    use super::*;

    sosw_testkit::task_store_conformance!(async {
        Some(Arc::new(
            SqliteTaskStore::in_memory().expect("an in-memory store opens"),
        ))
    });
}

mod cancel_and_pause_conformance {
    use super::*;

    sosw_testkit::cancel_conformance!(async {
        Some(Arc::new(
            SqliteTaskStore::in_memory().expect("an in-memory store opens"),
        ))
    });
    sosw_testkit::labourer_control_conformance!(async {
        Some(Arc::new(
            SqliteTaskStore::in_memory().expect("an in-memory store opens"),
        ))
    });
}

mod conformance_on_a_file {
    use super::*;

    sosw_testkit::task_store_conformance!(async {
        let db = TempDb::new("conformance");
        let store = SqliteTaskStore::open(db.path()).expect("a file store opens");
        Some(Arc::new(Guarded::new(store, db)))
    });
}

fn task(id: &str, greenfield: i64) -> Task {
    Task::new(id, "lab", json!({"id": id}), greenfield, 1_700_000_000.5)
}

#[tokio::test]
async fn reopening_a_file_keeps_its_tasks() {
    let db = TempDb::new("reopen");
    let t = task("kept", 2000);
    {
        let store = SqliteTaskStore::open(db.path()).expect("opens");
        store
            .enqueue(std::slice::from_ref(&t), EnqueueMode::Fresh)
            .await
            .expect("enqueues");
    }
    let store = SqliteTaskStore::open(db.path()).expect("reopens");
    let got = store.get_task(&t.task_id).await.expect("reads");
    assert_eq!(got, Some(t), "the task written before reopening");
    assert_eq!(store.path(), Some(db.path()));
}

#[test]
fn schema_creation_is_idempotent() {
    let db = TempDb::new("schema");
    let first = SqliteTaskStore::open(db.path()).expect("creates the schema");
    let second = SqliteTaskStore::open(db.path()).expect("opens next to a live connection");
    drop(second);
    let third = SqliteTaskStore::open(db.path()).expect("opens again");
    for store in [&first, &third] {
        let conn = store.lock("test").expect("lock");
        let versions: i64 = conn
            .query_row("SELECT COUNT(*) FROM schema_version", [], |r| r.get(0))
            .expect("counts");
        assert_eq!(
            versions, 1,
            "one schema_version row however often the file is opened"
        );
    }
}

/// Two `sosw local run`s started together on a state file that does not exist yet: each open switches
/// the new file to WAL, which takes its write lock; the others must wait for it, not fail "locked".
#[test]
fn many_connections_opening_one_new_file_at_once_all_succeed() {
    for round in 0..40 {
        let db = TempDb::new(&format!("racing-open-{round}"));
        let barrier = Arc::new(std::sync::Barrier::new(8));
        let opens: Vec<_> = (0..8)
            .map(|_| {
                let (path, barrier) = (db.path().to_path_buf(), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    let store = SqliteTaskStore::open(&path)?;
                    // Write at once, as a run does, while the others are still opening.
                    store.run("test write", |conn| {
                        conn.execute("CREATE TABLE IF NOT EXISTS t (x)", [])?;
                        conn.execute("INSERT INTO t VALUES (1)", [])?;
                        Ok(())
                    })
                })
            })
            .collect();
        for open in opens {
            let outcome = open.join().expect("the opening thread does not panic");
            assert!(outcome.is_ok(), "round {round}: {outcome:?}");
        }
    }
}

#[test]
fn a_file_of_another_schema_version_is_refused() {
    let db = TempDb::new("version");
    {
        let store = SqliteTaskStore::open(db.path()).expect("opens");
        let conn = store.lock("test").expect("lock");
        conn.execute("UPDATE schema_version SET version = 99", [])
            .expect("updates");
    }
    let err = SqliteTaskStore::open(db.path()).expect_err("version 99 is refused");
    assert!(err.to_string().contains("schema version 99"), "{err}");
}

#[test]
fn a_file_store_runs_in_wal_mode() {
    let db = TempDb::new("wal");
    let store = SqliteTaskStore::open(db.path()).expect("opens");
    let conn = store.lock("test").expect("lock");
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("reads the mode");
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn corrupt_item_json_is_a_decode_error_naming_table_and_task() {
    let store = SqliteTaskStore::in_memory().expect("opens");
    let t = task("broken-1", 2000);
    store
        .enqueue(std::slice::from_ref(&t), EnqueueMode::Fresh)
        .await
        .expect("enqueues");
    store
        .lock("test")
        .expect("lock")
        .execute(
            "UPDATE tasks SET item = '{\"task_id\": 5' WHERE task_id = 'broken-1'",
            [],
        )
        .expect("corrupts");

    let err = store.get_task(&t.task_id).await.expect_err("a corrupt row");
    let Error::Decode { table, message, .. } = &err else {
        panic!("a corrupt row is a Decode error, got {err:?}");
    };
    assert_eq!(table, "tasks");
    assert!(message.contains("broken-1"), "names the task: {message}");
    let err = store
        .next_queued("lab", 1_700_000_000, 10)
        .await
        .expect_err("a listing with a corrupt row");
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
}

#[tokio::test]
async fn a_row_of_the_wrong_shape_names_the_attribute() {
    let store = SqliteTaskStore::in_memory().expect("opens");
    store
        .lock("test")
        .expect("lock")
        .execute(
            "INSERT INTO closed_tasks VALUES ('odd', 'lab_1', 5, \
             '{\"task_id\": \"odd\", \"labourer_id\": \"lab\", \"greenfield\": \"soon\"}')",
            [],
        )
        .expect("inserts");
    let id = TaskId::new("odd").expect("valid id");
    let err = store
        .get_closed_task(&id)
        .await
        .expect_err("a bad greenfield");
    let msg = err.to_string();
    assert!(
        msg.contains("closed_tasks") && msg.contains("`odd`") && msg.contains("greenfield"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_write_lock_held_elsewhere_is_a_retryable_error() {
    let db = TempDb::new("busy");
    let waiter = SqliteTaskStore::open(db.path()).expect("opens");
    let t = task("contended", 2000);
    waiter
        .enqueue(std::slice::from_ref(&t), EnqueueMode::Fresh)
        .await
        .expect("enqueues");
    waiter
        .lock("test")
        .expect("lock")
        .busy_timeout(std::time::Duration::from_millis(10))
        .expect("sets the timeout");
    let holder = rusqlite::Connection::open(db.path()).expect("a second connection opens");

    holder
        .execute_batch("BEGIN IMMEDIATE")
        .expect("takes the write lock");
    let err = waiter
        .claim(&t.task_id, 1_700_000_000)
        .await
        .expect_err("the write lock is taken");
    assert!(err.is_retryable(), "a busy database is retryable: {err}");
    assert!(
        err.to_string().contains("claim"),
        "names the operation: {err}"
    );
    holder.execute_batch("ROLLBACK").expect("releases the lock");
}

#[tokio::test]
async fn a_poisoned_connection_lock_is_an_error_not_a_panic() {
    let store = Arc::new(SqliteTaskStore::in_memory().expect("opens"));
    let poisoner = Arc::clone(&store);
    let panicked = std::thread::spawn(move || {
        let _conn = poisoner.lock("test").expect("lock");
        panic!("poison the lock on purpose");
    })
    .join();
    assert!(
        panicked.is_err(),
        "setup: the thread panicked holding the lock"
    );

    let err = store
        .get_task(&TaskId::new("any").expect("valid id"))
        .await
        .expect_err("a poisoned lock");
    assert!(err.to_string().contains("poisoned"), "{err}");
    assert!(!err.is_retryable(), "retrying cannot help: {err}");
}

#[tokio::test]
async fn complete_and_close_leaves_what_complete_then_archive_leaves() {
    use sosw_core::store::{
        ClosedStatus, MoveOutcome, ReportOutcome, TaskArchive, TaskReport, TaskReports,
    };

    let now = 1_700_000_100;
    let mut report = TaskReport::default();
    report.stats.insert("rows".into(), json!(3));
    report.result.insert("file".into(), json!("out.csv"));
    let mut closed = Vec::new();
    for one_move in [false, true] {
        let (store, id) = one_claimed_task(now - 10).await;
        let recorded = if one_move {
            let (recorded, moved) = store
                .complete_and_close(&id, &report, now)
                .await
                .expect("completes");
            assert_eq!(moved, Some(MoveOutcome::Moved));
            recorded
        } else {
            let recorded = store.complete(&id, &report, now).await.expect("completes");
            let ReportOutcome::Recorded(task) = &recorded else {
                panic!("{recorded:?}");
            };
            let moved = store
                .archive(task, ClosedStatus::Completed, now)
                .await
                .expect("archives");
            assert_eq!(moved, MoveOutcome::Moved);
            recorded
        };
        assert!(
            matches!(&recorded, ReportOutcome::Recorded(t) if t.completed_at == Some(now)),
            "{recorded:?}"
        );
        assert_eq!(store.get_task(&id).await.expect("reads"), None);
        closed.push(store.get_closed_task(&id).await.expect("reads"));
        // A second report finds nothing live to complete.
        let again = store
            .complete_and_close(&id, &report, now + 1)
            .await
            .expect("reports again");
        assert_eq!(again, (ReportOutcome::NotFound, None));
    }
    assert!(closed[0].is_some(), "archived");
    assert_eq!(closed[0], closed[1], "the same closed row either way");
}

#[tokio::test]
async fn complete_and_close_of_a_completed_task_writes_nothing() {
    use sosw_core::store::{ReportOutcome, TaskReport, TaskReports};

    let (store, id) = one_claimed_task(1_700_000_000).await;
    let report = TaskReport::default();
    store
        .complete(&id, &report, 1_700_000_005)
        .await
        .expect("completes");
    let live = store.get_task(&id).await.expect("reads");
    let outcome = store
        .complete_and_close(&id, &report, 1_700_000_009)
        .await
        .expect("reports again");
    assert_eq!(outcome, (ReportOutcome::AlreadyCompleted, None));
    assert_eq!(store.get_task(&id).await.expect("reads"), live);
    assert_eq!(store.get_closed_task(&id).await.expect("reads"), None);
}

/// A store holding task `t1`, claimed at `at`.
async fn one_claimed_task(at: i64) -> (SqliteTaskStore, TaskId) {
    let store = SqliteTaskStore::in_memory().expect("opens");
    let id = TaskId::new("t1").expect("an id");
    store
        .enqueue(&[task("t1", 1000)], EnqueueMode::Fresh)
        .await
        .expect("enqueues");
    store.claim(&id, at).await.expect("claims");
    (store, id)
}

#[tokio::test]
async fn a_labourers_counts_say_which_stopped_at_the_cap() {
    use sosw_core::query::{COUNT_CAP, CappedCounts, CountCaps, labourer_counts};
    use sosw_core::store::ClosedStatus;
    use sosw_core::task::Labourer;

    let store = SqliteTaskStore::in_memory().expect("opens");
    // `n` closed rows of `lab` with `status`, written by SQL (100,000 through the API would take
    // minutes in a debug build).
    let close = |status: ClosedStatus, n: usize| {
        store
            .lock("test")
            .expect("lock")
            .execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?2)
                 INSERT INTO closed_tasks
                 SELECT ?1 || '-' || i, ?1, 1000 + i, json_object(
                     'task_id', ?1 || '-' || i, 'labourer_id', 'lab', 'greenfield', 1000,
                     'attempts', 1, 'created_at', 1, 'closed_at', 1000 + i, 'completed_at', 1000,
                     'labourer_id_task_status', ?1, 'payload', '{}')
                 FROM n",
                rusqlite::params![status.index_key("lab"), i64::try_from(n).expect("fits")],
            )
            .expect("inserts")
    };
    close(ClosedStatus::Completed, COUNT_CAP + 1);
    close(ClosedStatus::Dead, COUNT_CAP);
    let counts = labourer_counts(&store, &Labourer::new("lab"), 2_000_000, CountCaps::LOCAL)
        .await
        .expect("counts");
    assert_eq!(
        (counts.completed, counts.dead, counts.expired),
        (COUNT_CAP as u64, COUNT_CAP as u64, 0)
    );
    assert_eq!(
        counts.capped,
        CappedCounts {
            completed: true,
            ..CappedCounts::default()
        },
        "one more completed than the cap stops there; exactly the cap of dead is whole"
    );
    let json = serde_json::to_value(counts).expect("serialises");
    assert_eq!(
        json["capped"],
        json!({"queued": false, "expired": false, "completed": true, "dead": false})
    );
    // With AWS's caps the same store counts up to 1,000 of each, queued tasks too.
    let queued: Vec<Task> = (0..1_001)
        .map(|i| task(&format!("q-{i}"), 1_000 + i))
        .collect();
    store
        .enqueue(&queued, EnqueueMode::Fresh)
        .await
        .expect("enqueues");
    let aws = labourer_counts(&store, &Labourer::new("lab"), 2_000_000, CountCaps::aws())
        .await
        .expect("counts");
    assert_eq!((aws.queued, aws.completed, aws.dead), (1_000, 1_000, 1_000));
    assert_eq!(
        aws.capped,
        CappedCounts {
            queued: true,
            expired: false,
            completed: true,
            dead: true
        }
    );
    let whole = serde_json::to_value(sosw_core::query::LabourerCounts::default()).expect("ok");
    assert!(
        whole.get("capped").is_none(),
        "left out when every count is whole: {whole}"
    );
}
