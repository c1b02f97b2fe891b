//! Shared by the `scheduler_*` tests: both stores, a wrapper that crashes at the N-th call or moves the
//! clock past the deadline, and the check that a job's tasks are exactly what they should be.
#![allow(dead_code, reason = "each test crate uses part of the helpers")]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use serde_json::{Value, json};
use sosw::Error;
use sosw::aws::dynamodb::lean::{
    LeanOptions, LeanTaskStore, create_lean_tables_without_stream, delete_lean_tables,
};
use sosw::aws::dynamodb::{DynamoTaskStore, create_tables, delete_tables};
use sosw::blob::BlobStore;
use sosw::clock::ManualClock;
use sosw::config::{SchedulerConfig, parse_config};
use sosw::embedded::SqliteTaskStore;
use sosw::essentials::scheduler::job_task_ids;
use sosw::store::{
    CreateJobOutcome, EnqueueMode, EnqueueReport, JobCounts, JobRecord, JobStatus, JobStore,
    TableNames, TaskQueue,
};
use sosw::task::Task;
use sosw_integration_tests::{dynamodb_client, unique_prefix};

/// 2026-11-18 11:06:40 UTC: the clock of every scheduler test.
pub const T0: i64 = 1_795_000_000;

/// A time after every queued greenfield the tests write: every task reads as queued.
pub const QUEUE_NOW: i64 = T0 + 1_000_000_000;

/// The task queue and the job records, as one object.
pub trait SchedulerStore: TaskQueue + JobStore {}
impl<T: TaskQueue + JobStore> SchedulerStore for T {}

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// SQLite in memory.
    Sqlite,
    /// DynamoDB Local, fresh tables in sosw 0.7's layout.
    Dynamo,
    /// DynamoDB Local, a fresh lean table (4 shards) and its job table.
    Lean,
}

/// A fresh store: SQLite in memory, or DynamoDB Local tables under a prefix of their own (deleted by
/// [`Store::cleanup`]).
pub struct Store {
    pub store: Arc<dyn SchedulerStore>,
    tables: Option<(aws_sdk_dynamodb::Client, Tables)>,
}

/// The DynamoDB Local tables a [`Store`] deletes when it is done.
enum Tables {
    Sosw07(TableNames),
    Lean(LeanOptions),
}

impl Store {
    /// A fresh store of `kind`, or `None` when DynamoDB Local is not configured (the test is skipped).
    pub async fn open(kind: Kind) -> Option<Store> {
        match kind {
            Kind::Sqlite => Some(Store {
                store: Arc::new(SqliteTaskStore::in_memory().expect("SQLite in memory")),
                tables: None,
            }),
            Kind::Dynamo => {
                let client = dynamodb_client().await?;
                let tables = TableNames::with_prefix(&unique_prefix());
                create_tables(&client, &tables)
                    .await
                    .expect("DynamoDB Local creates the tables");
                Some(Store {
                    store: Arc::new(DynamoTaskStore::new(client.clone(), tables.clone())),
                    tables: Some((client, Tables::Sosw07(tables))),
                })
            }
            Kind::Lean => {
                let client = dynamodb_client().await?;
                let options = LeanOptions::with_prefix(&unique_prefix());
                create_lean_tables_without_stream(&client, &options)
                    .await
                    .expect("DynamoDB Local creates the lean tables");
                let store = LeanTaskStore::new(client.clone(), options.clone())
                    .expect("valid lean options");
                Some(Store {
                    store: Arc::new(store),
                    tables: Some((client, Tables::Lean(options))),
                })
            }
        }
    }

    /// Deletes DynamoDB tables (nothing for SQLite).
    pub async fn cleanup(self) {
        match self.tables {
            None => {}
            Some((client, Tables::Sosw07(tables))) => delete_tables(&client, &tables)
                .await
                .expect("DynamoDB Local deletes the tables"),
            Some((client, Tables::Lean(options))) => delete_lean_tables(&client, &options)
                .await
                .expect("DynamoDB Local deletes the lean tables"),
        }
    }

    /// Every queued task of `labourer`, by task id.
    pub async fn tasks(&self, labourer: &str) -> BTreeMap<String, Task> {
        self.store
            .next_queued(labourer, QUEUE_NOW, 10_000_000)
            .await
            .expect("the queue reads")
            .into_iter()
            .map(|t| (t.task_id.as_str().to_owned(), t))
            .collect()
    }

    /// The record of `job_id`.
    pub async fn record(&self, job_id: &str) -> JobRecord {
        self.store
            .get_job(job_id)
            .await
            .expect("the job reads")
            .expect("the job is recorded")
    }
}

/// A scheduler config with `labourers`, the retail schema, and `extra` merged over it.
pub fn config(labourers: &[&str], extra: Value) -> SchedulerConfig {
    let labourers: serde_json::Map<String, Value> = labourers
        .iter()
        .map(|l| ((*l).to_owned(), json!({})))
        .collect();
    let mut document = json!({
        "task_config": {"labourers": labourers},
        "job_schema": {"chunkable_attrs": [["section", {}], ["store", {}], ["product", {}]]},
    });
    sosw::config::deep_merge(&mut document, extra);
    parse_config("sosw_scheduler_config", document).expect("a valid test config")
}

/// A job of `n` isolated sections for `labourer`: `n` tasks.
pub fn sections_job(labourer: &str, n: usize) -> Value {
    let sections: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    json!({"lambda_name": labourer, "isolate_sections": true, "sections": sections})
}

/// Asserts that `labourer`'s queue holds exactly the tasks `0..total` of `job_id`, each with the
/// payload `expected` gives for its index, and nothing else.
pub async fn assert_exact_task_set(
    store: &Store,
    labourer: &str,
    job_id: &str,
    total: u64,
    expected: impl Fn(u64) -> Value,
) {
    let tasks = store.tasks(labourer).await;
    let ids: Vec<String> = job_task_ids(job_id, total)
        .map(|id| id.as_str().to_owned())
        .collect();
    let found: Vec<&String> = tasks.keys().collect();
    assert_eq!(found.len(), ids.len(), "{labourer}: task count");
    assert!(
        ids.iter().all(|id| tasks.contains_key(id)),
        "{labourer}: every task of the job is there"
    );
    for (index, id) in ids.iter().enumerate() {
        let task = &tasks[id];
        assert_eq!(task.job_id.as_deref(), Some(job_id));
        assert_eq!(task.labourer_id, labourer);
        assert_eq!(task.payload, expected(index as u64), "{id}: payload");
    }
}

/// What the wrapper does at its trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The process dies at call `n` (1-based, counting every store and blob call): that call and every
    /// later one fail, until [`Faulty::heal`].
    CrashAt(usize),
    /// As `CrashAt`, but if call `n` is an enqueue, the first half of its tasks are written first: a
    /// crash in the middle of a batch.
    CrashMidEnqueueAt(usize),
    /// After enqueue number `n` succeeds, the clock jumps past any deadline.
    DeadlineAfterEnqueue(usize),
}

#[derive(Debug, Default)]
struct State {
    calls: usize,
    enqueues: usize,
    crashed: bool,
    trigger: Option<Trigger>,
    log: Vec<&'static str>,
}

/// A store and a blob store sharing one call counter, failing or moving the clock as told.
pub struct Faulty {
    inner: Arc<dyn SchedulerStore>,
    blobs: Option<Arc<dyn BlobStore>>,
    clock: Arc<ManualClock>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Faulty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faulty").finish_non_exhaustive()
    }
}

impl Faulty {
    pub fn new(
        inner: Arc<dyn SchedulerStore>,
        blobs: Option<Arc<dyn BlobStore>>,
        clock: Arc<ManualClock>,
    ) -> Self {
        Faulty {
            inner,
            blobs,
            clock,
            state: Mutex::new(State::default()),
        }
    }

    /// Arms `trigger`, counting calls from now.
    pub fn arm(&self, trigger: Trigger) {
        let mut state = self.state();
        *state = State {
            trigger: Some(trigger),
            ..State::default()
        };
    }

    /// Brings the "process" back: no trigger, nothing fails.
    pub fn heal(&self) {
        *self.state() = State::default();
    }

    /// The calls made since arming or healing, by name.
    pub fn log(&self) -> Vec<&'static str> {
        self.state().log.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a call; `Err` when it must fail, `Ok(true)` when it is a mid-enqueue crash.
    fn enter(&self, name: &'static str) -> sosw::Result<bool> {
        let mut state = self.state();
        state.calls += 1;
        state.log.push(name);
        let n = state.calls;
        match state.trigger {
            _ if state.crashed => Err(crash(name)),
            Some(Trigger::CrashAt(at)) if at == n => {
                state.crashed = true;
                Err(crash(name))
            }
            Some(Trigger::CrashMidEnqueueAt(at)) if at == n => {
                state.crashed = true;
                if name == "enqueue" {
                    Ok(true)
                } else {
                    Err(crash(name))
                }
            }
            _ => Ok(false),
        }
    }

    fn blobs(&self) -> sosw::Result<&Arc<dyn BlobStore>> {
        self.blobs
            .as_ref()
            .ok_or_else(|| Error::invalid("test", "no blob store"))
    }
}

fn crash(name: &str) -> Error {
    Error::store("test", "injected crash", true, format!("crashed at {name}"))
}

#[async_trait]
impl TaskQueue for Faulty {
    async fn enqueue(&self, tasks: &[Task], mode: EnqueueMode) -> sosw::Result<EnqueueReport> {
        if self.enter("enqueue")? {
            self.inner.enqueue(&tasks[..tasks.len() / 2], mode).await?;
            return Err(crash("enqueue (half written)"));
        }
        let report = self.inner.enqueue(tasks, mode).await?;
        let mut state = self.state();
        state.enqueues += 1;
        if state.trigger == Some(Trigger::DeadlineAfterEnqueue(state.enqueues)) {
            self.clock.advance_secs(100_000);
        }
        Ok(report)
    }
    async fn next_queued(&self, labourer: &str, now: i64, limit: usize) -> sosw::Result<Vec<Task>> {
        self.enter("next_queued")?;
        self.inner.next_queued(labourer, now, limit).await
    }
    async fn queue_length(&self, labourer: &str, now: i64) -> sosw::Result<u64> {
        self.enter("queue_length")?;
        self.inner.queue_length(labourer, now).await
    }
    async fn oldest_queued_greenfield(
        &self,
        labourer: &str,
        now: i64,
    ) -> sosw::Result<Option<i64>> {
        self.enter("oldest_queued_greenfield")?;
        self.inner.oldest_queued_greenfield(labourer, now).await
    }
    async fn newest_queued_greenfield(
        &self,
        labourer: &str,
        now: i64,
    ) -> sosw::Result<Option<i64>> {
        self.enter("newest_queued_greenfield")?;
        self.inner.newest_queued_greenfield(labourer, now).await
    }
}

#[async_trait]
impl JobStore for Faulty {
    async fn create_job(&self, record: &JobRecord) -> sosw::Result<CreateJobOutcome> {
        self.enter("create_job")?;
        self.inner.create_job(record).await
    }
    async fn get_job(&self, job_id: &str) -> sosw::Result<Option<JobRecord>> {
        self.enter("get_job")?;
        self.inner.get_job(job_id).await
    }
    async fn add_requester(
        &self,
        job_id: &str,
        requester: &str,
    ) -> sosw::Result<Option<JobRecord>> {
        self.enter("add_requester")?;
        self.inner.add_requester(job_id, requester).await
    }
    async fn record_progress(
        &self,
        job_id: &str,
        enqueued: u64,
        total: Option<u64>,
        now: i64,
    ) -> sosw::Result<()> {
        self.enter("record_progress")?;
        self.inner
            .record_progress(job_id, enqueued, total, now)
            .await
    }
    async fn add_outcomes(
        &self,
        job_id: &str,
        delta: JobCounts,
    ) -> sosw::Result<Option<JobRecord>> {
        self.enter("add_outcomes")?;
        self.inner.add_outcomes(job_id, delta).await
    }
    async fn finish_job(&self, job_id: &str, status: JobStatus, now: i64) -> sosw::Result<bool> {
        self.enter("finish_job")?;
        self.inner.finish_job(job_id, status, now).await
    }
    async fn list_jobs(&self, limit: usize) -> sosw::Result<Vec<JobRecord>> {
        self.enter("list_jobs")?;
        self.inner.list_jobs(limit).await
    }
}

#[async_trait]
impl BlobStore for Faulty {
    async fn put(&self, key: &str, body: Vec<u8>) -> sosw::Result<()> {
        self.enter("blob put")?;
        self.blobs()?.put(key, body).await
    }
    async fn get(&self, key: &str) -> sosw::Result<Option<Vec<u8>>> {
        self.enter("blob get")?;
        self.blobs()?.get(key).await
    }
    async fn copy(&self, from: &str, to: &str) -> sosw::Result<bool> {
        self.enter("blob copy")?;
        self.blobs()?.copy(from, to).await
    }
    async fn delete(&self, key: &str) -> sosw::Result<()> {
        self.enter("blob delete")?;
        self.blobs()?.delete(key).await
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{name}-{}", unique_prefix()));
        std::fs::create_dir_all(&path).expect("a temporary directory");
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
