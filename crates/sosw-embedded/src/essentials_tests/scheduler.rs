//! The scheduler over SQLite in memory, a directory blob store and a manual clock.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::TimeDelta;
use serde_json::json;

use crate::SqliteTaskStore;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sosw_core::blob::DirBlobStore;
use sosw_core::blob::{BlobStore, resolve_payload};
use sosw_core::clock::Clock;
use sosw_core::clock::ManualClock;
use sosw_core::config::SchedulerConfig;
use sosw_core::config::parse_config;
use sosw_core::error::{Error, Result};
use sosw_core::essentials::scheduler::spool::{self, SpoolKeys};
use sosw_core::essentials::scheduler::*;
use sosw_core::job::Job;
use sosw_core::store::EnqueueReport;
use sosw_core::store::{
    CreateJobOutcome, EnqueueMode, JobCounts, JobRecord, JobStatus, JobStore, TaskQueue,
};
use sosw_core::task::Task;
use std::sync::Arc;

/// 2026-11-18 11:06:40 UTC.
const T0: i64 = 1_795_000_000;

/// A queue far in the future of every greenfield the tests write, so every task reads as queued.
const QUEUE_NOW: i64 = T0 + 1_000_000_000;

struct Fixture {
    store: Arc<Hooked>,
    clock: Arc<ManualClock>,
    blobs: Arc<DirBlobStore>,
    root: PathBuf,
    continuation: Arc<LocalContinuation>,
}

impl Fixture {
    fn new() -> Self {
        let root =
            std::env::temp_dir().join(format!("sosw-sched-{}", uuid::Uuid::new_v4().simple()));
        let clock = Arc::new(ManualClock::at_secs(T0));
        Fixture {
            store: Arc::new(Hooked::new(clock.clone())),
            blobs: Arc::new(DirBlobStore::new(&root).expect("a temporary directory")),
            root,
            clock,
            continuation: Arc::new(LocalContinuation::new()),
        }
    }

    fn config(&self, extra: Value) -> SchedulerConfig {
        let mut config = json!({
            "task_config": {"labourers": {"w": {}}},
            "job_schema": {"chunkable_attrs": [["section", {}], ["store", {}]]},
            "enqueue_batch_size": 4,
            "spool_min_tasks": 5,
        });
        sosw_core::config::deep_merge(&mut config, extra);
        parse_config("sosw_scheduler_config", config).expect("a valid test config")
    }

    /// A scheduler with the blob store and the continuation.
    fn scheduler(&self, extra: Value) -> Scheduler {
        self.bare(extra)
            .with_blob_store(self.blobs.clone())
            .with_continuation(self.continuation.clone())
    }

    /// A scheduler without blob store or continuation.
    fn bare(&self, extra: Value) -> Scheduler {
        Scheduler::new(self.config(extra), self.store.clone()).with_clock(self.clock.clone())
    }

    fn deadline(&self) -> DateTime<Utc> {
        self.clock.now() + TimeDelta::seconds(900)
    }

    async fn tasks(&self) -> Vec<Task> {
        self.store
            .inner
            .next_queued("w", QUEUE_NOW, 100_000)
            .await
            .expect("queue reads")
    }

    /// The ids of the queued tasks, in queue order.
    async fn queued_ids(&self) -> Vec<String> {
        self.tasks()
            .await
            .iter()
            .map(|t| t.task_id.as_str().to_owned())
            .collect()
    }

    /// A scheduler with the continuation whose run of a 10-task job meets its deadline after the
    /// first batch (4 tasks), the run's report, and the continuation it handed on.
    async fn handed_on_after_one_batch(&self) -> (Scheduler, SchedulerReport, Value) {
        let scheduler = self
            .bare(json!({}))
            .with_continuation(self.continuation.clone());
        self.store.stop_after_enqueues(1);
        let first = scheduler
            .run(&sections_job(10), self.deadline())
            .await
            .expect("first run");
        let payload = self
            .continuation
            .take()
            .expect("a continuation was spawned");
        (scheduler, first, payload)
    }

    async fn record(&self, job_id: &str) -> JobRecord {
        self.store
            .inner
            .get_job(job_id)
            .await
            .expect("job reads")
            .expect("the job is recorded")
    }

    fn files(&self) -> Vec<String> {
        let dir = self.root.join("sosw").join("scheduler");
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().is_file())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A job of `n` sections, isolated: `n` tasks.
fn sections_job(n: usize) -> Value {
    let sections: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    json!({"lambda_name": "w", "isolate_sections": true, "sections": sections})
}

/// SQLite in memory, with the clock moved far ahead after the `stop_after`-th enqueue (a deadline that
/// arrives mid-job) and a count of newest-greenfield reads.
struct Hooked {
    inner: SqliteTaskStore,
    clock: Arc<ManualClock>,
    enqueues: AtomicUsize,
    stop_after: AtomicUsize,
    fail_at: AtomicUsize,
    greenfield_reads: AtomicUsize,
    /// Fails every `add_requester` while set.
    fail_add_requester: std::sync::atomic::AtomicBool,
}

impl Hooked {
    fn new(clock: Arc<ManualClock>) -> Self {
        Hooked {
            inner: SqliteTaskStore::in_memory().expect("SQLite in memory"),
            clock,
            enqueues: AtomicUsize::new(0),
            stop_after: AtomicUsize::new(usize::MAX),
            fail_at: AtomicUsize::new(usize::MAX),
            greenfield_reads: AtomicUsize::new(0),
            fail_add_requester: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn stop_after_enqueues(&self, n: usize) {
        self.enqueues.store(0, Ordering::SeqCst);
        self.stop_after.store(n, Ordering::SeqCst);
    }

    /// Makes the `n`-th enqueue from now fail (retryably) without writing, once.
    fn fail_enqueue_number(&self, n: usize) {
        self.enqueues.store(0, Ordering::SeqCst);
        self.fail_at.store(n, Ordering::SeqCst);
    }
}

#[async_trait]
impl TaskQueue for Hooked {
    async fn enqueue(&self, tasks: &[Task], mode: EnqueueMode) -> Result<EnqueueReport> {
        let number = self.enqueues.fetch_add(1, Ordering::SeqCst) + 1;
        if self
            .fail_at
            .compare_exchange(number, usize::MAX, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return Err(Error::store("test", "enqueue", true, "injected failure"));
        }
        let report = self.inner.enqueue(tasks, mode).await?;
        if number == self.stop_after.load(Ordering::SeqCst) {
            self.clock.advance_secs(10_000);
        }
        Ok(report)
    }
    async fn next_queued(&self, labourer_id: &str, now: i64, limit: usize) -> Result<Vec<Task>> {
        self.inner.next_queued(labourer_id, now, limit).await
    }
    async fn queue_length(&self, labourer_id: &str, now: i64) -> Result<u64> {
        self.inner.queue_length(labourer_id, now).await
    }
    async fn oldest_queued_greenfield(&self, labourer_id: &str, now: i64) -> Result<Option<i64>> {
        self.inner.oldest_queued_greenfield(labourer_id, now).await
    }
    async fn newest_queued_greenfield(&self, labourer_id: &str, now: i64) -> Result<Option<i64>> {
        self.greenfield_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.newest_queued_greenfield(labourer_id, now).await
    }
}

#[async_trait]
impl JobStore for Hooked {
    async fn create_job(&self, record: &JobRecord) -> Result<CreateJobOutcome> {
        self.inner.create_job(record).await
    }
    async fn get_job(&self, job_id: &str) -> Result<Option<JobRecord>> {
        self.inner.get_job(job_id).await
    }
    async fn add_requester(&self, job_id: &str, requester: &str) -> Result<Option<JobRecord>> {
        if self.fail_add_requester.load(Ordering::SeqCst) {
            return Err(Error::store(
                "test",
                "add requester",
                true,
                "injected failure",
            ));
        }
        self.inner.add_requester(job_id, requester).await
    }
    async fn record_progress(
        &self,
        job_id: &str,
        enqueued: u64,
        total: Option<u64>,
        now: i64,
    ) -> Result<()> {
        self.inner
            .record_progress(job_id, enqueued, total, now)
            .await
    }
    async fn add_outcomes(&self, job_id: &str, delta: JobCounts) -> Result<Option<JobRecord>> {
        self.inner.add_outcomes(job_id, delta).await
    }
    async fn finish_job(&self, job_id: &str, status: JobStatus, now: i64) -> Result<bool> {
        self.inner.finish_job(job_id, status, now).await
    }
    async fn list_jobs(&self, limit: usize) -> Result<Vec<JobRecord>> {
        self.inner.list_jobs(limit).await
    }
}

/// Task ids and payloads by chunk index, checking every task belongs to `job_id`.
fn by_index(tasks: &[Task], job_id: &str) -> BTreeMap<String, Value> {
    tasks
        .iter()
        .map(|t| {
            assert_eq!(t.job_id.as_deref(), Some(job_id));
            (t.task_id.as_str().to_owned(), t.payload.clone())
        })
        .collect()
}

fn expected_ids(job_id: &str, total: u64) -> Vec<String> {
    job_task_ids(job_id, total)
        .map(|id| id.as_str().to_owned())
        .collect()
}

#[tokio::test]
async fn a_new_job_is_recorded_and_written_in_batches_with_one_greenfield_read_in_all() {
    let fx = Fixture::new();
    let report = fx
        .bare(json!({}))
        .run(&sections_job(10), fx.deadline())
        .await
        .expect("schedules");
    assert_eq!(report.submission, SubmissionKind::New);
    assert_eq!(report.outcome, JobOutcome::Enqueued);
    assert_eq!(
        (report.total, report.enqueued, report.written),
        (10, 10, 10)
    );
    assert_eq!(
        report.write_requests, 3,
        "SQLite: one request per batch of 4"
    );
    assert_eq!(
        fx.store.greenfield_reads.load(Ordering::SeqCst),
        1,
        "the queue's tail is read once, beside the job's creation, not once per batch"
    );

    let tasks = fx.tasks().await;
    let ids: Vec<String> = tasks
        .iter()
        .map(|t| t.task_id.as_str().to_owned())
        .collect();
    assert_eq!(
        ids,
        expected_ids(&report.job_id, 10),
        "queue order is chunk order"
    );
    let greenfields: Vec<i64> = tasks.iter().map(|t| t.greenfield).collect();
    let sosw_steps: Vec<i64> = (0..10).map(|i| 2000 + 1000 * i).collect();
    assert_eq!(
        greenfields, sosw_steps,
        "sosw 0.7's steps, continued across batches"
    );
    assert_eq!(
        tasks[3].payload,
        json!({"isolate_sections": true, "sections": ["s3"]})
    );
    assert!(
        tasks
            .iter()
            .all(|t| t.attempts == 0 && t.created_at == T0 as f64)
    );

    let record = fx.record(&report.job_id).await;
    assert_eq!((record.total, record.enqueued), (Some(10), 10));
    assert_eq!(record.status, JobStatus::Running);
    assert_eq!(record.requesters, [DEFAULT_REQUESTER]);
    assert_eq!(record.job["labourer_id"], "w");
}

#[tokio::test]
async fn submitting_the_same_job_again_writes_nothing_and_records_the_requester() {
    let fx = Fixture::new();
    let scheduler = fx.bare(json!({}));
    let first = scheduler
        .run(
            &json!({"job": sections_job(6), "requester": "alice"}),
            fx.deadline(),
        )
        .await
        .expect("first submission");
    let before = by_index(&fx.tasks().await, &first.job_id);
    fx.clock.advance_secs(60);
    let again = scheduler
        .run(
            &json!({"job": sections_job(6), "requester": "bob"}),
            fx.deadline(),
        )
        .await
        .expect("second submission");
    assert_eq!(again.job_id, first.job_id);
    assert_eq!(again.submission, SubmissionKind::Resubmitted);
    assert_eq!(again.outcome, JobOutcome::AlreadyEnqueued);
    assert_eq!((again.written, again.write_requests), (0, 0));
    assert_eq!(by_index(&fx.tasks().await, &first.job_id), before);
    assert_eq!(fx.record(&first.job_id).await.requesters, ["alice", "bob"]);
}

/// A fixture holding what a run of the 10-section job leaves when it dies after writing its first
/// `written` tasks but recording progress only to `enqueued`; the job's record as written, and every
/// task of the job as a whole run writes them.
async fn unfinished_job(written: usize, enqueued: u64) -> (Fixture, JobRecord, Vec<Task>) {
    let reference = Fixture::new();
    let full = reference
        .bare(json!({}))
        .run(&sections_job(10), reference.deadline())
        .await
        .expect("reference run");
    let all = reference.tasks().await;
    let fx = Fixture::new();
    fx.store
        .inner
        .enqueue(&all[..written], EnqueueMode::Fresh)
        .await
        .expect("the first tasks");
    let mut record = reference.record(&full.job_id).await;
    record.enqueued = enqueued;
    fx.store
        .inner
        .create_job(&record)
        .await
        .expect("the record");
    (fx, record, all)
}

#[tokio::test]
async fn a_resubmission_whose_requester_cannot_be_recorded_fails_and_can_be_retried() {
    // The requester and the resumed tasks are written at once: a failed requester write is the
    // run's error (the event is retried), and what the resume wrote stays.
    let (fx, record, _) = unfinished_job(4, 4).await;
    let full = &record;
    let requesters_before = record.requesters.clone();

    fx.store.fail_add_requester.store(true, Ordering::SeqCst);
    let event = json!({"job": sections_job(10), "requester": "bob"});
    let scheduler = fx.bare(json!({}));
    let err = scheduler
        .run(&event, fx.deadline())
        .await
        .expect_err("the requester is not recorded");
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(fx.record(&full.job_id).await.requesters, requesters_before);
    assert_eq!(fx.tasks().await.len(), 10, "the resume wrote the rest");

    fx.store.fail_add_requester.store(false, Ordering::SeqCst);
    let again = scheduler
        .run(&event, fx.deadline())
        .await
        .expect("the retried event");
    assert_eq!(again.outcome, JobOutcome::AlreadyEnqueued);
    let record = fx.record(&full.job_id).await;
    assert_eq!(record.requesters.last().map(String::as_str), Some("bob"));
    assert_eq!((record.enqueued, record.total), (10, Some(10)));
}

#[tokio::test]
async fn a_resubmission_of_an_unfinished_job_writes_only_what_is_missing() {
    // The state a run leaves when it dies after writing tasks 0..8 but recording progress only to 4.
    let (fx, full, all) = unfinished_job(8, 4).await;

    let report = fx
        .bare(json!({}))
        .run(&sections_job(10), fx.deadline())
        .await
        .expect("resumes");
    assert_eq!(report.submission, SubmissionKind::Resubmitted);
    assert_eq!(report.outcome, JobOutcome::Enqueued);
    assert_eq!(
        (report.skipped_existing, report.written),
        (4, 2),
        "4..8 exist, 8..10 do not"
    );
    assert_eq!(report.enqueued, 10);
    assert_eq!(
        by_index(&fx.tasks().await, &full.job_id),
        by_index(&all, &full.job_id)
    );
}

#[tokio::test]
async fn a_deadline_without_a_blob_store_hands_on_through_the_record() {
    let fx = Fixture::new();
    let (scheduler, first, payload) = fx.handed_on_after_one_batch().await;
    assert_eq!(
        first.outcome,
        JobOutcome::HandedOff {
            sibling_spawned: true
        }
    );
    assert_eq!(
        (first.enqueued, first.spool.clone()),
        (4, SpoolState::NotUsed)
    );
    assert_eq!(
        payload,
        json!({"sosw_continuation": true, "job_id": first.job_id, "lambda_name": "w"})
    );

    let second = scheduler
        .run(&payload, fx.deadline())
        .await
        .expect("continues");
    assert_eq!(second.submission, SubmissionKind::Continuation);
    assert_eq!(second.outcome, JobOutcome::Enqueued);
    assert_eq!((second.skipped_existing, second.written), (0, 6));
    assert_eq!(fx.queued_ids().await, expected_ids(&first.job_id, 10));
    assert!(fx.continuation.is_empty());
}

#[tokio::test]
async fn a_continued_job_reads_the_queue_tail_again_and_goes_on_after_what_was_queued_meanwhile() {
    // The tail is read once per run: a job handed on mid-way continues after a job queued while
    // it waited, not among its tasks; each run reads the tail once.
    let fx = Fixture::new();
    let (scheduler, first, payload) = fx.handed_on_after_one_batch().await;
    assert_eq!(first.enqueued, 4);
    assert_eq!(fx.store.greenfield_reads.load(Ordering::SeqCst), 1);

    let other = json!({"lambda_name": "w", "isolate_sections": true, "sections": ["x0", "x1"]});
    let meanwhile = scheduler
        .run(&other, fx.deadline())
        .await
        .expect("another job");
    assert_eq!(meanwhile.enqueued, 2);
    let second = scheduler
        .run(&payload, fx.deadline())
        .await
        .expect("continues");
    assert_eq!(second.outcome, JobOutcome::Enqueued);
    assert_eq!(
        fx.store.greenfield_reads.load(Ordering::SeqCst),
        3,
        "one per run"
    );

    let ids = fx.queued_ids().await;
    let mut expected = expected_ids(&first.job_id, 10);
    let rest = expected.split_off(4);
    expected.extend(expected_ids(&meanwhile.job_id, 2));
    expected.extend(rest);
    assert_eq!(
        ids, expected,
        "the first 4, the other job's 2, then the other 6"
    );
    let greenfields: Vec<i64> = fx.tasks().await.iter().map(|t| t.greenfield).collect();
    assert!(
        greenfields.windows(2).all(|w| w[0] < w[1]),
        "one run after the other: no ties, {greenfields:?}"
    );
}

#[tokio::test]
async fn a_large_job_is_spooled_handed_on_and_finished_by_its_continuation() {
    let fx = Fixture::new();
    let scheduler = fx.scheduler(json!({}));
    fx.store.stop_after_enqueues(2);
    let first = scheduler
        .run(&sections_job(10), fx.deadline())
        .await
        .expect("first run");
    let remote = format!("sosw/scheduler/tasks_queue_{}.txt", first.job_id);
    assert_eq!(
        first.outcome,
        JobOutcome::HandedOff {
            sibling_spawned: true
        }
    );
    assert_eq!(
        first.spool,
        SpoolState::HandedOn {
            key: remote.clone()
        }
    );
    assert_eq!(first.enqueued, 8);
    assert_eq!(
        fx.files(),
        [format!("tasks_queue_{}.txt", first.job_id)],
        "locked file released"
    );
    let spooled = fx
        .blobs
        .get(&remote)
        .await
        .expect("reads")
        .expect("uploaded before the spawn");
    let spool = spool::decode(&spooled, &remote, &first.job_id).expect("a valid spool");
    assert_eq!(
        (
            spool.header.next_index,
            spool.header.total,
            spool.rows.len()
        ),
        (8, 10, 2)
    );

    let payload = fx.continuation.take().expect("spawned");
    assert_eq!(payload["file_name"], json!(remote));
    assert_eq!(payload["lambda_name"], "w");
    let second = scheduler
        .run(&payload, fx.deadline())
        .await
        .expect("continues");
    assert_eq!(second.outcome, JobOutcome::Enqueued);
    assert_eq!(second.spool, SpoolState::Released);
    assert_eq!((second.written, second.enqueued), (2, 10));
    assert!(fx.files().is_empty(), "nothing left behind");
    let ids = fx.queued_ids().await;
    assert_eq!(ids, expected_ids(&first.job_id, 10));
}

#[tokio::test]
async fn a_live_lock_holds_others_off_and_an_expired_one_is_taken_over() {
    let fx = Fixture::new();
    let scheduler = fx.scheduler(json!({}));
    let job = sections_job(10);
    let parsed = Job::from_event(&job).expect("valid");
    let keys = SpoolKeys::new("sosw/scheduler", "tasks_queue.txt", parsed.id()).expect("keys");
    // A run that recorded the job, locked the spool until T0 + 900 and died before writing a task.
    let mut record = scheduler
        .new_record(parsed.id(), &parsed, "alice", 10, T0)
        .await
        .expect("a record");
    record.total = Some(10);
    fx.store.inner.create_job(&record).await.expect("recorded");
    let rows = scheduler
        .chunk(&parsed, fx.clock.now().date_naive())
        .expect("chunks");
    let header = SpoolHeader {
        sosw_spool: SPOOL_FORMAT,
        job_id: parsed.id().to_owned(),
        labourer_id: "w".into(),
        next_index: 0,
        total: 10,
        lease_until: T0 + 900,
    };
    spool::lock(fx.blobs.as_ref(), &keys, &header, &rows)
        .await
        .expect("locked");

    let held = scheduler.run(&job, fx.deadline()).await.expect("runs");
    assert_eq!(
        held.outcome,
        JobOutcome::HeldElsewhere {
            lease_until: T0 + 900
        }
    );
    assert_eq!(held.written, 0);
    assert!(fx.tasks().await.is_empty());

    fx.clock.set_secs(T0 + 901);
    let taken = scheduler
        .run(&job, fx.deadline())
        .await
        .expect("takes over");
    assert_eq!(taken.outcome, JobOutcome::Enqueued);
    assert_eq!(taken.written, 10);
    assert!(fx.files().is_empty());
    assert_eq!(
        fx.record(parsed.id()).await.requesters,
        ["alice", DEFAULT_REQUESTER]
    );
}

#[tokio::test]
async fn a_failed_write_hands_the_spool_back_and_a_retry_finishes_the_job() {
    let fx = Fixture::new();
    let scheduler = fx.scheduler(json!({}));
    fx.store.fail_enqueue_number(3);
    let err = scheduler
        .run(&sections_job(10), fx.deadline())
        .await
        .expect_err("the third batch fails");
    assert!(err.is_retryable(), "{err}");
    let job_id = Job::from_event(&sections_job(10))
        .expect("valid")
        .id()
        .to_owned();
    let remote = format!("sosw/scheduler/tasks_queue_{job_id}.txt");
    assert_eq!(
        fx.files(),
        [format!("tasks_queue_{job_id}.txt")],
        "unlocked, rest handed back"
    );
    let bytes = fx
        .blobs
        .get(&remote)
        .await
        .expect("reads")
        .expect("handed back");
    let spool = spool::decode(&bytes, &remote, &job_id).expect("valid");
    assert_eq!((spool.header.next_index, spool.rows.len()), (8, 2));

    let retry = scheduler
        .run(&sections_job(10), fx.deadline())
        .await
        .expect("the retry continues");
    assert_eq!(retry.submission, SubmissionKind::Resubmitted);
    assert_eq!(
        (retry.outcome, retry.written, retry.enqueued),
        (JobOutcome::Enqueued, 2, 10)
    );
    assert!(fx.files().is_empty());
    let ids = fx.queued_ids().await;
    assert_eq!(ids, expected_ids(&job_id, 10));
}

#[tokio::test]
async fn large_payloads_go_to_the_blob_store_and_resolve_back() {
    let fx = Fixture::new();
    let big = "x".repeat(2_000);
    let job =
        json!({"lambda_name": "w", "isolate_sections": true, "sections": ["a", "b"], "blob": big});
    let report = fx
        .scheduler(json!({"max_task_payload_bytes": 1000}))
        .run(&job, fx.deadline())
        .await
        .expect("schedules");
    assert_eq!(report.payloads_stored, 2);
    let tasks = fx.tasks().await;
    let key = sosw_core::blob::payload_ref_key(&tasks[1].payload).expect("a pointer");
    assert_eq!(
        key,
        format!("sosw/scheduler/payloads/{}.json", tasks[1].task_id)
    );
    let resolved = resolve_payload(fx.blobs.as_ref(), tasks[1].worker_payload())
        .await
        .expect("resolves");
    assert_eq!(resolved["blob"], json!(big));
    assert_eq!(resolved["sections"], json!(["b"]));
    assert_eq!(resolved["task_id"], json!(tasks[1].task_id.as_str()));

    let err = fx
        .bare(json!({"max_task_payload_bytes": 1000}))
        .run(
            &json!({"lambda_name": "w", "blob": "y".repeat(2_000)}),
            fx.deadline(),
        )
        .await
        .expect_err("too big without a blob store");
    assert!(matches!(err, Error::InvalidJob { .. }), "{err}");
}

#[tokio::test]
async fn bad_jobs_and_unknown_labourers_leave_no_record() {
    let fx = Fixture::new();
    let scheduler = fx.bare(json!({}));
    let bad = [
        json!({"lambda_name": "w", "sections": {"a": 5}, "isolate_sections": true}),
        json!({"lambda_name": "w", "greenfield": 1}),
        json!({"lambda_name": "w", "period": "fortnight"}),
        json!({"lambda_name": "nobody"}),
        json!({"payload_attr": "no labourer"}),
        json!("not json"),
    ];
    for event in bad {
        let err = scheduler
            .run(&event, fx.deadline())
            .await
            .expect_err("rejected");
        assert!(!err.is_retryable(), "{event}: {err}");
    }
    assert!(
        fx.store
            .inner
            .list_jobs(10)
            .await
            .expect("lists")
            .is_empty()
    );
    assert!(fx.tasks().await.is_empty());
}

#[tokio::test]
async fn a_job_without_tasks_is_finished_at_once() {
    let fx = Fixture::new();
    let job = json!({"lambda_name": "w", "isolate_sections": true, "sections": []});
    let report = fx
        .bare(json!({}))
        .run(&job, fx.deadline())
        .await
        .expect("schedules");
    assert_eq!((report.total, report.outcome), (0, JobOutcome::Enqueued));
    assert_eq!(fx.record(&report.job_id).await.status, JobStatus::Finished);
}

#[tokio::test]
async fn a_continuation_for_an_unknown_job_is_an_invalid_job() {
    let fx = Fixture::new();
    let err = fx
        .scheduler(json!({}))
        .run(&continuation_payload("nope", "w", None), fx.deadline())
        .await
        .expect_err("unknown job");
    assert!(
        matches!(err, Error::InvalidJob { ref path, .. } if path == "job_id"),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn writes_are_paced_to_max_writes_per_second() {
    let fx = Fixture::new();
    let started = tokio::time::Instant::now();
    let report = fx
        .bare(json!({"max_writes_per_second": 2.0}))
        .run(&sections_job(10), fx.deadline())
        .await
        .expect("schedules");
    assert_eq!(report.written, 10);
    // 10 writes at 2 per second: the last batch may end the run without waiting, the rest may not.
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn schema_variants_apply_to_their_jobs_only() {
    let fx = Fixture::new();
    let scheduler = fx.bare(json!({"job_schema_variants": {"flat": {"chunkable_attrs": []}}}));
    let job = json!({"lambda_name": "w", "job_schema_name": "flat", "sections": ["a", "b"], "isolate_sections": true});
    let flat = scheduler.run(&job, fx.deadline()).await.expect("schedules");
    assert_eq!(flat.total, 1, "no chunkable attributes: one task");
    let chunked = scheduler
        .run(&sections_job(2), fx.deadline())
        .await
        .expect("schedules");
    assert_eq!(chunked.total, 2, "the configured schema is untouched (B11)");
}
