//! What the orchestrator tests share: a clock on tokio's time, queued tasks, configs, and an in-process
//! worker that counts its deliveries and completes its task through the store.

#![allow(dead_code, reason = "each test binary uses part of this module")]

pub mod moto;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sosw::clock::Clock;
use sosw::config::{OrchestratorConfig, parse_config};
use sosw::embedded::SqliteTaskStore;
use sosw::essentials::orchestrator::{ConfigFeed, Orchestrator, OrchestratorSettings};
use sosw::invoke::inprocess::{InProcessInvoker, handler_fn};
use sosw::invoke::{InvokeOutcome, Invoker};
use sosw::store::{EnqueueMode, TaskQueue, TaskReport, TaskReports};
use sosw::task::{Task, TaskId};

/// Unix seconds at which every test starts.
pub const T0: i64 = 1_700_000_000;

/// A clock that follows tokio's time, from [`T0`]: with `start_paused` it moves only as the runtime's
/// timers fire, so a simulated minute takes milliseconds and is the same on every machine.
#[derive(Debug)]
pub struct TokioClock(tokio::time::Instant);

impl TokioClock {
    /// Starts now (at [`T0`]).
    pub fn start() -> Arc<Self> {
        Arc::new(TokioClock(tokio::time::Instant::now()))
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = i64::try_from(self.0.elapsed().as_millis()).unwrap_or(i64::MAX);
        DateTime::from_timestamp_millis(T0 * 1000 + elapsed).unwrap_or_default()
    }
}

/// `count` queued tasks of `labourer` numbered from `from`, greenfields as the scheduler gives them.
pub fn queued(labourer: &str, from: u64, count: u64) -> Vec<Task> {
    (from..from + count)
        .map(|n| {
            let id = TaskId::for_chunk(labourer, n);
            Task::new(
                id.as_str(),
                labourer,
                json!({"n": n}),
                2000 + 1000 * n as i64,
                T0 as f64,
            )
        })
        .collect()
}

/// An in-memory SQLite store holding `count` queued tasks of `labourer`.
pub async fn sqlite_with(labourer: &str, count: u64) -> Arc<SqliteTaskStore> {
    let store = Arc::new(SqliteTaskStore::in_memory().expect("an in-memory store"));
    for chunk in queued(labourer, 0, count).chunks(1000) {
        store
            .enqueue(chunk, EnqueueMode::Fresh)
            .await
            .expect("enqueue");
    }
    store
}

/// An orchestrator config with these labourer settings (`{"w": {...}}`) and optional extra root keys.
pub fn config(labourers: Value, extra: Value) -> ConfigFeed {
    let mut document = json!({"task_config": {"labourers": labourers}});
    if let (Some(root), Value::Object(extra)) = (document.as_object_mut(), extra) {
        root.extend(extra);
    }
    let config: OrchestratorConfig =
        parse_config("sosw_orchestrator_config", document).expect("a valid config");
    ConfigFeed::fixed(config)
}

/// Settings of a continuous test run: no margin, a short poll.
pub fn continuous(poll: Duration) -> OrchestratorSettings {
    OrchestratorSettings {
        margin: Duration::ZERO,
        poll_interval: poll,
        ..OrchestratorSettings::default()
    }
}

/// Counts deliveries per task id.
#[derive(Debug, Default)]
pub struct Deliveries(Mutex<HashMap<String, u32>>);

impl Deliveries {
    /// Counts one delivery of the task in `payload`.
    pub fn count(&self, payload: &Value) {
        let id = payload["task_id"].as_str().unwrap_or_default().to_string();
        *self.0.lock().expect("lock").entry(id).or_default() += 1;
    }

    /// Deliveries per task id.
    pub fn per_task(&self) -> HashMap<String, u32> {
        self.0.lock().expect("lock").clone()
    }

    /// All deliveries.
    pub fn total(&self) -> u64 {
        self.per_task().values().map(|n| u64::from(*n)).sum()
    }
}

/// An in-process invoker whose labourer `labourer` works `work` (tokio time), counts the delivery and
/// completes its task through `store` at `clock`'s time.
pub fn completing_workers<S>(
    labourer: &str,
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    work: Duration,
    deliveries: Arc<Deliveries>,
) -> InProcessInvoker
where
    S: TaskReports + 'static,
{
    InProcessInvoker::new().register(
        labourer,
        handler_fn(move |payload: Value| {
            let (store, clock, deliveries) = (store.clone(), clock.clone(), deliveries.clone());
            async move {
                if !work.is_zero() {
                    tokio::time::sleep(work).await;
                }
                deliveries.count(&payload);
                let Some(id) = payload["task_id"]
                    .as_str()
                    .and_then(|s| TaskId::new(s).ok())
                else {
                    panic!("payload without a task id: {payload}");
                };
                store
                    .complete(&id, &TaskReport::default(), clock.now_secs())
                    .await
                    .expect("complete");
            }
        }),
    )
}

/// Wraps an invoker: rejects the first delivery of the tasks `reject` picks, passes everything else on.
pub struct RejectingFirst {
    /// The invoker that gets the rest.
    pub inner: Arc<dyn Invoker>,
    /// Which tasks to reject once.
    pub reject: fn(&Value) -> bool,
    /// Task ids already rejected once.
    pub rejected: Mutex<HashMap<String, u32>>,
}

#[async_trait::async_trait]
impl Invoker for RejectingFirst {
    async fn invoke(&self, function: &str, payload: &Value) -> sosw::Result<InvokeOutcome> {
        if (self.reject)(payload) {
            let id = payload["task_id"].as_str().unwrap_or_default().to_string();
            let mut rejected = self.rejected.lock().expect("lock");
            let times = rejected.entry(id).or_default();
            if *times == 0 {
                *times += 1;
                return Ok(InvokeOutcome::Rejected(
                    "TooManyRequestsException (test)".into(),
                ));
            }
        }
        self.inner.invoke(function, payload).await
    }
}

/// Builds an orchestrator over `store` with fixed metrics that have no values (every labourer is in
/// full health unless the test sets a `health`).
pub fn orchestrator<S>(
    store: Arc<S>,
    invoker: Arc<dyn Invoker>,
    feed: ConfigFeed,
    clock: Arc<dyn Clock>,
    settings: OrchestratorSettings,
) -> Orchestrator
where
    S: sosw::essentials::orchestrator::OrchestratorStore + 'static,
{
    Orchestrator::new(
        store,
        invoker,
        Arc::new(sosw::ecology::FixedMetrics::new()),
        feed,
        clock,
    )
    .with_settings(settings)
}
