//! Job records in the `jobs` table: one row per job, counters and compared fields as integer columns.
//!
//! Every change is a single `UPDATE` whose new values SQLite computes from the row's current ones
//! (`completed = completed + ?`, `enqueued = MAX(enqueued, ?)`), so concurrent callers, in this process
//! or another sharing the file, never lose an increment. `RETURNING` hands back the row as this very
//! statement left it.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::Value;

use super::{Failure, SqliteTaskStore, sql_limit};
use sosw_core::error::{Error, Result};
use sosw_core::store::{CreateJobOutcome, JobCounts, JobRecord, JobStatus, JobStore};

/// The table, for messages.
const JOBS: &str = "jobs";

/// The columns of `jobs` every read selects, then the job as submitted from `job_bodies`, in the order
/// [`RawJob::from_row`] reads them. The body has a table of its own (schema version 5): it can be large
/// (a list of 20,000 sections) and SQLite rewrites a whole row on every `UPDATE`, so in `jobs` it would
/// be read and compared by each counter update, one per task that closes.
const COLUMNS: &str = "job_id, labourer_id, status, created_at, started_at, finished_at, total, \
                       enqueued, completed, failed, dead, requesters, cancelled, \
                       COALESCE((SELECT b.job FROM job_bodies b WHERE b.job_id = jobs.job_id), 'null')";

/// [`COLUMNS`] with `null` for the job as submitted: what the counter updates return. The body is
/// parsed on every read, and a counter update comes with every task that closes: the trait lets
/// updates leave it out so their cost does not grow with the job.
const COUNTER_COLUMNS: &str = "job_id, labourer_id, status, created_at, started_at, finished_at, \
                               total, enqueued, completed, failed, dead, requesters, cancelled, \
                               'null'";

/// The columns an insert into `jobs` writes (the body goes to `job_bodies`).
const INSERT_COLUMNS: &str = "job_id, labourer_id, status, created_at, started_at, finished_at, \
                              total, enqueued, completed, failed, dead, requesters, cancelled";

#[async_trait]
impl JobStore for SqliteTaskStore {
    async fn create_job(&self, record: &JobRecord) -> Result<CreateJobOutcome> {
        let row = NewRow::of(record)?;
        self.run("create job", |conn| {
            if insert_new(conn, &row)? {
                return Ok(CreateJobOutcome::Created);
            }
            // Rows are never deleted, so the one that blocked the insert is still there.
            let existing = select_job(conn, &record.job_id)?.ok_or_else(|| {
                Error::store(
                    super::STORE,
                    "create job",
                    true,
                    format!(
                        "job `{}` blocked the insert, then was deleted",
                        record.job_id
                    ),
                )
            })?;
            Ok(CreateJobOutcome::Exists(Box::new(existing)))
        })
    }

    async fn get_job(&self, job_id: &str) -> Result<Option<JobRecord>> {
        self.run("get job", |conn| select_job(conn, job_id))
    }

    async fn get_job_counters(&self, job_id: &str) -> Result<Option<JobRecord>> {
        let sql = format!("SELECT {COUNTER_COLUMNS} FROM jobs WHERE job_id = ?1");
        self.run("get job counters", |conn| returning(conn, &sql, [job_id]))
    }

    async fn add_requester(&self, job_id: &str, requester: &str) -> Result<Option<JobRecord>> {
        // The condition makes the append a no-op for a requester already listed; the order of the
        // array is the order of first submission.
        let sql = format!(
            "UPDATE jobs SET requesters = json_insert(requesters, '$[#]', ?2)
             WHERE job_id = ?1
               AND NOT EXISTS (SELECT 1 FROM json_each(jobs.requesters) WHERE value = ?2)
             RETURNING {COLUMNS}"
        );
        self.run("add requester", |conn| {
            match returning(conn, &sql, params![job_id, requester])? {
                Some(changed) => Ok(Some(changed)),
                None => select_job(conn, job_id),
            }
        })
    }

    async fn record_progress(
        &self,
        job_id: &str,
        enqueued: u64,
        total: Option<u64>,
        now: i64,
    ) -> Result<()> {
        let enqueued = column_int("enqueued", enqueued)?;
        let total = total.map(|t| column_int("total", t)).transpose()?;
        // SQLite evaluates every right-hand side on the row as it was, so `status` in the CASEs is the
        // old status: started_at is set exactly when a requested job starts running.
        self.run("record progress", |conn| {
            conn.prepare_cached(
                "UPDATE jobs SET
                     enqueued = MAX(enqueued, ?2),
                     total = COALESCE(?3, total),
                     started_at = CASE WHEN status = 'requested'
                                       THEN COALESCE(started_at, ?4) ELSE started_at END,
                     status = CASE WHEN status = 'requested' THEN 'running' ELSE status END
                 WHERE job_id = ?1",
            )?
            .execute(params![job_id, enqueued, total, now])?;
            Ok(())
        })
    }

    async fn add_outcomes(&self, job_id: &str, delta: JobCounts) -> Result<Option<JobRecord>> {
        let completed = column_int("completed delta", delta.completed)?;
        let failed = column_int("failed delta", delta.failed)?;
        let dead = column_int("dead delta", delta.dead)?;
        let cancelled = column_int("cancelled delta", delta.cancelled)?;
        let sql = format!(
            "UPDATE jobs SET completed = completed + ?2, failed = failed + ?3, dead = dead + ?4,
             cancelled = cancelled + ?5
             WHERE job_id = ?1 RETURNING {COUNTER_COLUMNS}"
        );
        self.run("add outcomes", |conn| {
            returning(
                conn,
                &sql,
                params![job_id, completed, failed, dead, cancelled],
            )
        })
    }

    async fn reopen_job(&self, job_id: &str, redriven: u64) -> Result<Option<JobRecord>> {
        let redriven = column_int("redriven", redriven)?;
        let sql = format!(
            "UPDATE jobs SET dead = dead - ?2, status = 'running', finished_at = NULL
             WHERE job_id = ?1 AND dead >= ?2 RETURNING {COLUMNS}"
        );
        self.run("reopen job", |conn| {
            match returning(conn, &sql, params![job_id, redriven])? {
                Some(reopened) => Ok(Some(reopened)),
                None => match select_job(conn, job_id)? {
                    None => Ok(None),
                    Some(job) => Err(too_few_dead(&job, redriven).into()),
                },
            }
        })
    }

    async fn finish_job(&self, job_id: &str, status: JobStatus, now: i64) -> Result<bool> {
        require_final(status)?;
        // The status condition decides the race: only the first UPDATE finds the job unfinished.
        self.run("finish job", |conn| {
            let changed = conn
                .prepare_cached(
                    "UPDATE jobs SET status = ?2, finished_at = ?3
                     WHERE job_id = ?1 AND status IN ('requested', 'running')",
                )?
                .execute(params![job_id, status_text(status), now])?;
            Ok(changed == 1)
        })
    }

    async fn list_jobs(&self, limit: usize) -> Result<Vec<JobRecord>> {
        self.run("list jobs", |conn| newest_jobs(conn, COLUMNS, limit))
    }

    async fn list_job_counters(&self, limit: usize) -> Result<Vec<JobRecord>> {
        self.run("list job counters", |conn| {
            newest_jobs(conn, COUNTER_COLUMNS, limit)
        })
    }
}

/// Up to `limit` jobs as `columns` select them, newest first.
fn newest_jobs(conn: &Connection, columns: &str, limit: usize) -> Result<Vec<JobRecord>, Failure> {
    let sql = format!("SELECT {columns} FROM jobs ORDER BY created_at DESC, job_id DESC LIMIT ?1");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([sql_limit(limit)], RawJob::from_row)?;
    let mut jobs = Vec::new();
    for row in rows {
        jobs.push(row?.decode()?);
    }
    Ok(jobs)
}

/// The error for a redrive of more dead tasks than the job counts.
fn too_few_dead(job: &JobRecord, redriven: impl std::fmt::Display) -> Error {
    Error::invalid(
        "job redrive",
        format!(
            "job `{}` counts {} dead task(s), fewer than the {redriven} redriven",
            job.job_id, job.counts.dead
        ),
    )
}

/// `status` must be one a job ends in.
fn require_final(status: JobStatus) -> Result<()> {
    if status.is_finished() {
        return Ok(());
    }
    Err(Error::invalid(
        "job status",
        format!(
            "a job can only be finished as `finished`, `finished_with_failures` or `cancelled`, \
             not `{}`",
            status_text(status)
        ),
    ))
}

/// The status as stored: its serde name, as in the DynamoDB table and the JSON record.
fn status_text(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Requested => "requested",
        JobStatus::Running => "running",
        JobStatus::Finished => "finished",
        JobStatus::FinishedWithFailures => "finished_with_failures",
        JobStatus::Cancelled => "cancelled",
    }
}

fn parse_status(text: &str) -> Option<JobStatus> {
    [
        JobStatus::Requested,
        JobStatus::Running,
        JobStatus::Finished,
        JobStatus::FinishedWithFailures,
        JobStatus::Cancelled,
    ]
    .into_iter()
    .find(|s| status_text(*s) == text)
}

/// A counter as SQLite's signed integer; values past `i64::MAX` cannot be stored.
fn column_int(what: &'static str, value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| {
        Error::invalid(
            "job record",
            format!(
                "`{what}` is {value}, more than the SQLite store can hold ({})",
                i64::MAX
            ),
        )
    })
}

/// A record validated and encoded for its `INSERT`.
struct NewRow<'a> {
    record: &'a JobRecord,
    total: Option<i64>,
    counts: [i64; 5],
    requesters: String,
    job: String,
}

impl<'a> NewRow<'a> {
    fn of(record: &'a JobRecord) -> Result<Self> {
        if record.job_id.is_empty() {
            return Err(Error::invalid("job id", "the job id is empty"));
        }
        Ok(NewRow {
            record,
            total: record.total.map(|t| column_int("total", t)).transpose()?,
            counts: [
                column_int("enqueued", record.enqueued)?,
                column_int("completed", record.counts.completed)?,
                column_int("failed", record.counts.failed)?,
                column_int("dead", record.counts.dead)?,
                column_int("cancelled", record.counts.cancelled)?,
            ],
            requesters: encode_json(record, "requesters", &record.requesters)?,
            job: encode_json(record, "job", &record.job)?,
        })
    }
}

/// `value`, the `what` of `record`, as JSON text for its column.
fn encode_json(record: &JobRecord, what: &str, value: &impl Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| {
        Error::invalid(
            "job record",
            format!(
                "the {what} of job `{}` cannot be encoded as JSON: {e}",
                record.job_id
            ),
        )
    })
}

/// Inserts `row` (its record in `jobs`, its body in `job_bodies`) unless its job id exists. Returns
/// whether it did.
fn insert_new(conn: &Connection, row: &NewRow<'_>) -> Result<bool, Failure> {
    let r = row.record;
    let [enqueued, completed, failed, dead, cancelled] = row.counts;
    let inserted = conn
        .prepare_cached(&format!(
            "INSERT INTO jobs ({INSERT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, \
             ?11, ?12, ?13) ON CONFLICT (job_id) DO NOTHING"
        ))?
        .execute(params![
            r.job_id,
            r.labourer_id,
            status_text(r.status),
            r.created_at,
            r.started_at,
            r.finished_at,
            row.total,
            enqueued,
            completed,
            failed,
            dead,
            row.requesters,
            cancelled,
        ])?;
    if inserted == 1 {
        // `REPLACE`: a body left by a job whose record is gone (never written by sosw) gives way.
        conn.prepare_cached("INSERT OR REPLACE INTO job_bodies (job_id, job) VALUES (?1, ?2)")?
            .execute(params![r.job_id, row.job])?;
    }
    Ok(inserted == 1)
}

fn select_job(conn: &Connection, job_id: &str) -> Result<Option<JobRecord>, Failure> {
    returning(
        conn,
        &format!("SELECT {COLUMNS} FROM jobs WHERE job_id = ?1"),
        [job_id],
    )
}

/// The one job row `sql` yields (a `SELECT`, or an `UPDATE ... RETURNING`), if any.
fn returning(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Option<JobRecord>, Failure> {
    let raw = conn
        .prepare_cached(sql)?
        .query_row(params, RawJob::from_row)
        .optional()?;
    match raw {
        Some(raw) => Ok(Some(raw.decode()?)),
        None => Ok(None),
    }
}

/// A row as SQLite holds it, before the checks that turn it into a [`JobRecord`].
struct RawJob {
    job_id: String,
    labourer_id: String,
    status: String,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    total: Option<i64>,
    counts: [i64; 5],
    requesters: String,
    job: String,
}

impl RawJob {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawJob {
            job_id: row.get(0)?,
            labourer_id: row.get(1)?,
            status: row.get(2)?,
            created_at: row.get(3)?,
            started_at: row.get(4)?,
            finished_at: row.get(5)?,
            total: row.get(6)?,
            counts: [
                row.get(7)?,
                row.get(8)?,
                row.get(9)?,
                row.get(10)?,
                row.get(12)?,
            ],
            requesters: row.get(11)?,
            job: row.get(13)?,
        })
    }

    /// The record, or a [`Error::Decode`] naming the job and the column that is wrong.
    fn decode(self) -> Result<JobRecord> {
        let id = self.job_id.as_str();
        let status = parse_status(&self.status).ok_or_else(|| {
            decode_error(
                id,
                format!("`status` is `{}`, not a job status", self.status),
            )
        })?;
        let unsigned = |column: &str, value: i64| {
            u64::try_from(value)
                .map_err(|_| decode_error(id, format!("`{column}` is negative ({value})")))
        };
        let [enqueued, completed, failed, dead, cancelled] = self.counts;
        let requesters: Vec<String> = serde_json::from_str(&self.requesters).map_err(|e| {
            decode_error(
                id,
                format!("`requesters` is not a JSON list of strings: {e}"),
            )
        })?;
        let job: Value = serde_json::from_str(&self.job)
            .map_err(|e| decode_error(id, format!("`job` is not JSON: {e}")))?;
        Ok(JobRecord {
            total: self.total.map(|t| unsigned("total", t)).transpose()?,
            enqueued: unsigned("enqueued", enqueued)?,
            counts: JobCounts {
                completed: unsigned("completed", completed)?,
                failed: unsigned("failed", failed)?,
                dead: unsigned("dead", dead)?,
                cancelled: unsigned("cancelled", cancelled)?,
            },
            status,
            created_at: self.created_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            requesters,
            job,
            labourer_id: self.labourer_id,
            job_id: self.job_id,
        })
    }
}

fn decode_error(job_id: &str, problem: String) -> Error {
    Error::Decode {
        what: "job",
        table: JOBS.to_owned(),
        message: format!("row `{job_id}`: {problem}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    mod conformance {
        use super::*;

        sosw_testkit::job_store_conformance!(async {
            Some(Arc::new(
                SqliteTaskStore::in_memory().expect("an in-memory store opens"),
            ))
        });
    }

    fn record(job_id: &str) -> JobRecord {
        JobRecord {
            job_id: job_id.into(),
            labourer_id: "lab".into(),
            status: JobStatus::Requested,
            total: None,
            enqueued: 0,
            counts: JobCounts::default(),
            created_at: 1_700_000_000,
            started_at: None,
            finished_at: None,
            requesters: vec![],
            job: Value::Null,
        }
    }

    #[test]
    fn status_text_is_the_serde_name() {
        for status in [
            JobStatus::Requested,
            JobStatus::Running,
            JobStatus::Finished,
            JobStatus::FinishedWithFailures,
        ] {
            let serde_name = serde_json::to_value(status).expect("serialises");
            assert_eq!(serde_name, Value::from(status_text(status)));
            assert_eq!(parse_status(status_text(status)), Some(status));
        }
        assert_eq!(parse_status("done"), None);
    }

    #[tokio::test]
    async fn counters_past_i64_are_refused_not_wrapped() {
        let store = SqliteTaskStore::in_memory().expect("opens");
        let mut big = record("big");
        big.enqueued = u64::MAX;
        let err = store.create_job(&big).await.expect_err("too big");
        assert!(err.to_string().contains("`enqueued`"), "{err}");
        assert_eq!(store.get_job("big").await.expect("reads"), None);

        store.create_job(&record("j")).await.expect("creates");
        let delta = JobCounts {
            dead: u64::MAX,
            ..JobCounts::default()
        };
        let err = store.add_outcomes("j", delta).await.expect_err("too big");
        assert!(err.to_string().contains("`dead delta`"), "{err}");
    }

    #[tokio::test]
    async fn a_corrupt_row_is_a_decode_error_naming_job_and_column() {
        let store = SqliteTaskStore::in_memory().expect("opens");
        let corruptions = [
            ("jobs", "status = 'done'", "`status`"),
            ("jobs", "completed = -1", "`completed`"),
            ("jobs", "requesters = '[1'", "`requesters`"),
            ("job_bodies", "job = '{'", "`job`"),
        ];
        for (n, (table, set, column)) in corruptions.into_iter().enumerate() {
            let id = format!("bad-{n}");
            store.create_job(&record(&id)).await.expect("creates");
            store
                .lock("test")
                .expect("lock")
                .execute(
                    &format!("UPDATE {table} SET {set} WHERE job_id = ?1"),
                    [&id],
                )
                .expect("corrupts");
            let err = store.get_job(&id).await.expect_err("a corrupt row");
            let Error::Decode { table, message, .. } = &err else {
                panic!("{set}: a Decode error, got {err:?}");
            };
            assert_eq!(table, "jobs");
            assert!(
                message.contains(&format!("`{id}`")) && message.contains(column),
                "{set}: {message}"
            );
        }
        let err = store.list_jobs(10).await.expect_err("corrupt rows listed");
        assert!(matches!(err, Error::Decode { .. }), "{err:?}");
    }

    #[tokio::test]
    async fn counter_updates_leave_the_body_alone_and_reads_return_it() {
        let store = SqliteTaskStore::in_memory().expect("opens");
        let mut job = record("j");
        let sections: Vec<String> = (0..2_000).map(|i| format!("s{i}")).collect();
        job.job = serde_json::json!({"lambda_name": "lab", "sections": sections});
        store.create_job(&job).await.expect("creates");
        let delta = JobCounts {
            completed: 1,
            ..JobCounts::default()
        };
        let counted = store.add_outcomes("j", delta).await.expect("counts");
        assert_eq!(
            counted.map(|c| (c.counts.completed, c.job)),
            Some((1, Value::Null))
        );
        let read = store.get_job("j").await.expect("reads").expect("exists");
        assert_eq!(read.job, job.job);
        assert_eq!(read.counts.completed, 1);
        // A progress poll reads the counters and leaves the body where it is.
        let polled = store
            .get_job_counters("j")
            .await
            .expect("reads")
            .expect("exists");
        assert_eq!(
            (polled.counts, polled.job),
            (read.counts, Value::Null),
            "the counters without the body"
        );
        assert_eq!(store.get_job_counters("nope").await.expect("reads"), None);
        let listed = store.list_jobs(10).await.expect("lists");
        assert_eq!(listed.first().map(|j| &j.job), Some(&job.job));
        let counters = store.list_job_counters(10).await.expect("lists");
        assert_eq!(
            counters.first().map(|j| (&j.job_id, j.counts, &j.job)),
            Some((&job.job_id, read.counts, &Value::Null)),
            "the listing of counters leaves the body where it is"
        );
        // The body is not in the row every counter update rewrites.
        let conn = store.lock("test").expect("lock");
        let in_jobs: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM pragma_table_info('jobs') WHERE name = 'job'",
                [],
                |r| r.get(0),
            )
            .expect("reads the catalogue");
        assert_eq!(in_jobs, 0);
    }

    #[tokio::test]
    async fn a_requester_added_or_a_job_reopened_returns_the_body() {
        let store = SqliteTaskStore::in_memory().expect("opens");
        let mut job = record("j");
        job.job = serde_json::json!({"lambda_name": "lab"});
        store.create_job(&job).await.expect("creates");
        let added = store.add_requester("j", "me").await.expect("adds");
        assert_eq!(added.map(|j| j.job), Some(job.job.clone()));
        let delta = JobCounts {
            dead: 1,
            ..JobCounts::default()
        };
        store.add_outcomes("j", delta).await.expect("counts");
        let reopened = store.reopen_job("j", 1).await.expect("reopens");
        assert_eq!(reopened.map(|j| j.job), Some(job.job));
    }

    #[tokio::test]
    async fn finishing_with_an_unfinished_status_is_invalid() {
        let store = SqliteTaskStore::in_memory().expect("opens");
        store.create_job(&record("j")).await.expect("creates");
        let err = store
            .finish_job("j", JobStatus::Running, 5)
            .await
            .expect_err("running is not a final status");
        assert!(matches!(err, Error::Invalid { .. }), "{err:?}");
        let job = store.get_job("j").await.expect("reads");
        assert_eq!(job.map(|j| j.status), Some(JobStatus::Requested));
    }
}
