//! What the worker, worker assistant and scavenger tests share: a SQLite harness with a manual clock,
//! a recording notifier, and raw HTTP to the moto server's control API.
#![allow(
    dead_code,
    reason = "each test file uses a different part of the support"
)]

pub mod jobs;
pub mod moto;

/// Turns each listed `async fn case(backend: Backend)` of the calling test file into two tests, one
/// per store: `sqlite::case` and `dynamodb::case` (skipped without DynamoDB Local, see
/// [`sosw_integration_tests::emulator_endpoint`]).
#[allow(unused_macros, reason = "not every test file runs on both stores")]
macro_rules! on_every_store {
    ($($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(crate::worker_support::Backend::Sqlite).await;
                }
            )+
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(crate::worker_support::Backend::DynamoDb).await;
                }
            )+
        }
    };
}
#[allow(unused_imports, reason = "not every test file runs on both stores")]
pub(crate) use on_every_store;

use std::sync::Arc;

use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use sosw::aws::dynamodb::{DynamoTaskStore, create_tables};
use sosw::clock::{Clock, ManualClock};
use sosw::config::{ScavengerConfig, WorkerAssistantConfig, parse_config};
use sosw::embedded::SqliteTaskStore;
use sosw::essentials::closer::Closer;
use sosw::essentials::scavenger::Scavenger;
use sosw::essentials::worker_assistant::WorkerAssistant;
use sosw::notify::{MemoryNotifier, Notifier};
use sosw::store::{ClaimOutcome, EnqueueMode, JobStore, TableNames, TaskStore};
use sosw::task::{Jitter, Task, TaskId};
use sosw::worker::{StoreReporter, Worker, WorkerRunner};

/// The "now" every test starts at.
pub const NOW: i64 = 1_700_000_000;

/// The dead-task topic the configs name.
pub const DEAD_TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:sosw_dead_tasks";

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An in-memory SQLite store.
    Sqlite,
    /// DynamoDB Local, on tables of the test's own.
    DynamoDb,
}

/// One labourer on a store, a manual clock and a recording notifier.
pub struct Harness {
    /// The task store.
    pub store: Arc<dyn TaskStore>,
    /// The same store's job records.
    pub job_store: Arc<dyn JobStore>,
    pub clock: Arc<ManualClock>,
    pub notes: Arc<MemoryNotifier>,
    pub notifier: Arc<dyn Notifier>,
    pub jobs: Option<Arc<dyn JobStore>>,
    pub labourer: String,
    /// `task_config.labourers.<labourer>`.
    pub settings: Value,
    /// Extra keys of the worker assistant's config (`archive_completed`, ...).
    pub assistant_extra: Value,
    pub retry_tasks_limit: u32,
    /// The essentials' `sns_config.recipient`.
    pub dead_topic: String,
}

impl Harness {
    /// A harness on an in-memory SQLite store whose labourer has `settings` (duration, cooldown,
    /// max_attempts, retry, ...).
    pub fn new(settings: Value) -> Self {
        let store = Arc::new(SqliteTaskStore::in_memory().expect("in-memory SQLite store"));
        Self::with_store(store.clone(), store, settings)
    }

    /// A harness on `backend`, or `None` when the test is to be skipped (no DynamoDB Local).
    pub async fn on(backend: Backend, settings: Value) -> Option<Self> {
        match backend {
            Backend::Sqlite => Some(Self::new(settings)),
            Backend::DynamoDb => {
                let client = sosw_integration_tests::dynamodb_client().await?;
                let tables = TableNames::with_prefix(&sosw_integration_tests::unique_prefix());
                create_tables(&client, &tables)
                    .await
                    .expect("tables created on DynamoDB Local");
                let store = Arc::new(DynamoTaskStore::new(client, tables));
                Some(Self::with_store(store.clone(), store, settings))
            }
        }
    }

    fn with_store(
        store: Arc<dyn TaskStore>,
        job_store: Arc<dyn JobStore>,
        settings: Value,
    ) -> Self {
        let notes = Arc::new(MemoryNotifier::default());
        Harness {
            store,
            job_store,
            clock: Arc::new(ManualClock::at_secs(NOW)),
            notifier: notes.clone(),
            notes,
            jobs: None,
            labourer: "w1".to_string(),
            settings,
            assistant_extra: json!({}),
            retry_tasks_limit: 20,
            dead_topic: DEAD_TOPIC.to_string(),
        }
    }

    /// Sends notifications to `notifier` instead of the recording one.
    pub fn with_notifier(mut self, notifier: Arc<dyn Notifier>) -> Self {
        self.notifier = notifier;
        self
    }

    /// Keeps job counters in the store's job records.
    pub fn with_jobs(mut self) -> Self {
        self.jobs = Some(self.job_store.clone());
        self
    }

    fn task_config(&self) -> Value {
        json!({"labourers": {self.labourer.clone(): self.settings.clone()}})
    }

    pub fn assistant_config(&self) -> WorkerAssistantConfig {
        let mut doc = json!({
            "task_config": self.task_config(),
            "sns_config": {"recipient": self.dead_topic, "subject": "``sosw`` Info"}
        });
        if let (Some(doc), Some(extra)) = (doc.as_object_mut(), self.assistant_extra.as_object()) {
            doc.extend(extra.clone());
        }
        parse_config("sosw_worker_assistant_config", doc).expect("assistant config")
    }

    pub fn scavenger_config(&self) -> ScavengerConfig {
        parse_config(
            "sosw_scavenger_config",
            json!({
                "task_config": self.task_config(),
                "retry_tasks_limit": self.retry_tasks_limit,
                "sns_config": {"recipient": self.dead_topic, "subject": "``sosw`` Dead Task"}
            }),
        )
        .expect("scavenger config")
    }

    /// A worker assistant over the harness, retry jitter seeded with `seed`.
    pub fn assistant(&self, seed: u64) -> WorkerAssistant {
        WorkerAssistant::new(self.assistant_config(), self.closer(seed))
    }

    /// The closer the harness's essentials share: its store, notifier, clock and jobs, retry jitter
    /// seeded with `seed`.
    fn closer(&self, seed: u64) -> Closer {
        let closer = Closer::new(self.store.clone(), self.notifier.clone())
            .with_clock(self.clock.clone())
            .with_jitter(Jitter::seeded(seed));
        match &self.jobs {
            Some(jobs) => closer.with_jobs(jobs.clone()),
            None => closer,
        }
    }

    /// A scavenger over the harness, retry jitter seeded with `seed`.
    pub fn scavenger(&self, seed: u64) -> Scavenger {
        Scavenger::new(self.scavenger_config(), self.closer(seed))
    }

    /// `worker` reporting in-process through a worker assistant over the harness.
    pub fn runner<W: Worker>(&self, worker: W, seed: u64) -> WorkerRunner<W> {
        let reporter = StoreReporter::new(Arc::new(self.assistant(seed)));
        WorkerRunner::new(worker, Arc::new(reporter))
    }

    /// `count` queued tasks of the labourer with payload `{"words": [...], "n": i}`, ids `<prefix>-<i>`.
    pub async fn enqueue(&self, prefix: &str, count: u64, job_id: Option<&str>) -> Vec<Task> {
        let tasks: Vec<Task> = (0..count)
            .map(|n| {
                let mut t = Task::new(
                    TaskId::for_chunk(prefix, n).as_str(),
                    self.labourer.as_str(),
                    json!({"words": ["sosw", "rust"], "n": n}),
                    2000 + 1000 * n as i64,
                    NOW as f64,
                );
                t.job_id = job_id.map(str::to_string);
                t
            })
            .collect();
        self.store
            .enqueue(&tasks, EnqueueMode::Fresh)
            .await
            .expect("enqueued");
        tasks
    }

    /// Claims `task_id` now, as the orchestrator does; returns the pre-claim task (the worker payload's
    /// source).
    pub async fn claim(&self, task_id: &TaskId) -> Task {
        match self
            .store
            .claim(task_id, self.clock.now_secs())
            .await
            .expect("claim")
        {
            ClaimOutcome::Claimed(task) => task,
            other => panic!("expected to claim {task_id}, got {other:?}"),
        }
    }
}

/// A Lambda event with `payload` and the default context, as the runtime would deliver it.
pub fn event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

/// A fixture file under `tests/fixtures/`.
pub fn fixture(path: &str) -> Value {
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(path);
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("fixture {}: {e}", file.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fixture {}: {e}", file.display()))
}
