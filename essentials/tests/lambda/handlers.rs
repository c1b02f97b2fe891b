//! Each essential's Lambda service (one `ProcessorService` for all four) called with a `LambdaEvent`,
//! over the embedded SQLite store and in-process adapters, as `main` would run it on Lambda.

use std::sync::Arc;
use std::time::Duration;

use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use sosw::clock::{Clock, SystemClock};
use sosw::config::{
    OrchestratorConfig, ScavengerConfig, SchedulerConfig, WorkerAssistantConfig, parse_config,
};
use sosw::ecology::FixedMetrics;
use sosw::embedded::SqliteTaskStore;
use sosw::essentials::closer::Closer;
use sosw::essentials::orchestrator::{ConfigFeed, Orchestrator, OrchestratorSettings, RunMode};
use sosw::essentials::scavenger::Scavenger;
use sosw::essentials::scheduler::Scheduler;
use sosw::essentials::worker_assistant::WorkerAssistant;
use sosw::invoke::inprocess::{InProcessInvoker, handler_fn};
use sosw::lambda::metrics::{Metrics, OrchestratorMeter, scheduler_metrics};
use sosw::lambda::settings::{
    ORCHESTRATOR_FUNCTION, SCAVENGER_FUNCTION, SCHEDULER_FUNCTION, WORKER_ASSISTANT_FUNCTION,
};
use sosw::notify::MemoryNotifier;
use sosw::processor::{HandlerError, ProcessorService};
use sosw::store::{EnqueueMode, TaskLookup, TaskQueue, TaskReport, TaskReports};
use sosw::task::{Task, TaskId};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A config whose only labourer is `w`, as essential `document` reads it.
fn config<C: serde::de::DeserializeOwned>(document: &str, extra: Value) -> sosw::Result<C> {
    let mut value =
        json!({"task_config": {"labourers": {"w": {"max_simultaneous_invocations": 5}}}});
    if let (Some(map), Value::Object(extra)) = (value.as_object_mut(), extra) {
        map.extend(extra);
    }
    parse_config(document, value)
}

/// A store with tasks `t0`..`t<count>` of labourer `w`, queued.
async fn store_with_tasks(count: u64) -> sosw::Result<Arc<SqliteTaskStore>> {
    let store = Arc::new(SqliteTaskStore::in_memory()?);
    let tasks: Vec<Task> = (0..count)
        .map(|n| {
            Task::new(
                format!("t{n}"),
                "w",
                json!({"n": n}),
                2000 + 1000 * n as i64,
                0.0,
            )
        })
        .collect();
    store.enqueue(&tasks, EnqueueMode::Fresh).await?;
    Ok(store)
}

fn event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

fn id(task_id: &str) -> sosw::Result<TaskId> {
    TaskId::new(task_id)
}

/// The worker assistant's or scavenger's closer over `store`, notifications kept in memory.
fn closer(store: &Arc<SqliteTaskStore>) -> Closer {
    Closer::new(store.clone(), Arc::new(MemoryNotifier::default()))
}

#[tokio::test]
async fn the_worker_assistant_marks_a_task_completed_and_archives_it() -> TestResult {
    let store = store_with_tasks(1).await?;
    let config: WorkerAssistantConfig = config("sosw_worker_assistant_config", json!({}))?;
    let assistant = WorkerAssistant::new(config, closer(&store));
    let service = ProcessorService::new(assistant, WORKER_ASSISTANT_FUNCTION);
    let reply = service
        .handle(event(json!({
            "action": "mark_task_as_completed", "task_id": "t0", "stats": {"rows": 3}
        })))
        .await?;
    assert_eq!(
        (reply["outcome"].as_str(), reply["archived"].as_bool()),
        (Some("completed"), Some(true))
    );
    assert!(
        store.get_task(&id("t0")?).await?.is_none(),
        "left the queue"
    );
    let closed = store
        .get_closed_task(&id("t0")?)
        .await?
        .ok_or("not archived")?;
    assert!(closed.completed_at.is_some());
    Ok(())
}

#[tokio::test]
async fn a_malformed_report_is_a_non_retryable_diagnostic_and_changes_nothing() -> TestResult {
    let store = store_with_tasks(1).await?;
    let config: WorkerAssistantConfig = config("sosw_worker_assistant_config", json!({}))?;
    let assistant = WorkerAssistant::new(config, closer(&store));
    let service = ProcessorService::new(assistant, WORKER_ASSISTANT_FUNCTION);
    let err = service
        .handle(event(
            json!({"action": "mark_task_as_done", "task_id": "t0"}),
        ))
        .await
        .err()
        .ok_or("a bad action must fail")?;
    let diagnostic = sosw::processor::diagnostic(err);
    assert_eq!(diagnostic.error_type, "NonRetryable");
    assert!(
        diagnostic.error_message.contains("unsupported action"),
        "{}",
        diagnostic.error_message
    );
    let task = store.get_task(&id("t0")?).await?.ok_or("task gone")?;
    assert_eq!(task.completed_at, None);
    Ok(())
}

/// An orchestrator over `store` invoking through `invoker`, with fixed (healthy) metrics.
fn orchestrator_over(
    store: Arc<SqliteTaskStore>,
    invoker: &InProcessInvoker,
    config: OrchestratorConfig,
) -> Orchestrator {
    Orchestrator::new(
        store,
        Arc::new(invoker.clone()),
        Arc::new(FixedMetrics::new()),
        ConfigFeed::fixed(config),
        Arc::new(SystemClock),
    )
}

#[tokio::test]
async fn the_orchestrator_invokes_queued_tasks_through_an_in_process_invoker() -> TestResult {
    let store = store_with_tasks(2).await?;
    let worker_store = store.clone();
    // The worker reports through the store, as a Lambda worker reports through the assistant.
    let invoker = InProcessInvoker::new().register(
        "w",
        handler_fn(move |payload: Value| {
            let store = worker_store.clone();
            async move {
                if let Some(task_id) = payload["task_id"]
                    .as_str()
                    .and_then(|t| TaskId::new(t).ok())
                {
                    let now = SystemClock.now_secs();
                    let _ = store.complete(&task_id, &TaskReport::default(), now).await;
                }
            }
        }),
    );
    let config: OrchestratorConfig = config("sosw_orchestrator_config", json!({}))?;
    let orchestrator = orchestrator_over(store.clone(), &invoker, config);
    let handler = ProcessorService::new(orchestrator, ORCHESTRATOR_FUNCTION);
    // Default (continuous) settings: an idle queue ends the run long before the fallback deadline.
    let report =
        tokio::time::timeout(Duration::from_secs(60), handler.handle(event(json!({})))).await??;
    assert_eq!(report["labourers"]["w"]["invoked"], 2, "{report}");
    tokio::time::timeout(Duration::from_secs(30), invoker.wait_idle()).await?;
    for task_id in ["t0", "t1"] {
        let task = store.get_task(&id(task_id)?).await?.ok_or("task gone")?;
        assert_eq!(task.attempts, 1, "{task_id} invoked once");
        assert!(task.completed_at.is_some(), "{task_id} reported completed");
    }
    Ok(())
}

#[tokio::test]
async fn the_scavenger_archives_a_completed_task() -> TestResult {
    let store = store_with_tasks(2).await?;
    let now = SystemClock.now_secs();
    store
        .complete(&id("t0")?, &TaskReport::default(), now)
        .await?;
    let config: ScavengerConfig = config("sosw_scavenger_config", json!({}))?;
    let scavenger = Scavenger::new(config, closer(&store));
    let service = ProcessorService::new(scavenger, SCAVENGER_FUNCTION);
    let report = service
        .handle(event(json!({"source": "aws.events"})))
        .await?;
    assert_eq!(report["labourers"]["w"]["archived"], 1, "{report}");
    assert!(store.get_closed_task(&id("t0")?).await?.is_some());
    assert!(store.get_task(&id("t0")?).await?.is_none());
    assert!(
        store.get_task(&id("t1")?).await?.is_some(),
        "a queued task stays"
    );
    Ok(())
}

fn scheduler_handler(store: Arc<SqliteTaskStore>) -> sosw::Result<ProcessorService<Scheduler>> {
    let config: SchedulerConfig = config(
        "sosw_scheduler_config",
        json!({"job_schema": {"chunkable_attrs": [["section", {}]]}}),
    )?;
    Ok(ProcessorService::new(
        Scheduler::new(config, store),
        SCHEDULER_FUNCTION,
    ))
}

fn small_job() -> Value {
    json!({"job": {"lambda_name": "w", "isolate_sections": true, "sections": ["a", "b", "c"]}})
}

#[tokio::test]
async fn the_scheduler_enqueues_a_small_job() -> TestResult {
    let store = Arc::new(SqliteTaskStore::in_memory()?);
    let handler = scheduler_handler(store.clone())?;
    let report = handler.handle(event(small_job())).await?;
    assert_eq!(report["written"], 3, "{report}");
    assert_eq!(report["outcome"]["state"], "enqueued");
    let now = SystemClock.now_secs();
    assert_eq!(store.queue_length("w", now).await?, 3);
    let again = handler.handle(event(small_job())).await?;
    assert_eq!(again["outcome"]["state"], "already_enqueued", "{again}");
    assert_eq!(store.queue_length("w", now).await?, 3, "nothing twice");
    Ok(())
}

#[tokio::test]
async fn the_scheduler_honours_the_invocation_deadline() -> TestResult {
    let store = Arc::new(SqliteTaskStore::in_memory()?);
    let handler = scheduler_handler(store.clone())?;
    let mut context = Context::default();
    // Within the shutdown period already: nothing may be written.
    context.deadline = u64::try_from(SystemClock.now().timestamp_millis() + 1000)?;
    let report = handler
        .handle(LambdaEvent::new(small_job(), context))
        .await?;
    assert_eq!(report["written"], 0, "{report}");
    assert_eq!(report["outcome"]["state"], "handed_off", "{report}");
    let report = handler.handle(event(small_job())).await?;
    assert_eq!(
        report["written"], 3,
        "the same job again continues it: {report}"
    );
    Ok(())
}

#[tokio::test]
async fn a_job_for_an_unknown_labourer_is_non_retryable() -> TestResult {
    let store = Arc::new(SqliteTaskStore::in_memory()?);
    let handler = scheduler_handler(store.clone())?;
    let err: HandlerError = handler
        .handle(event(json!({"job": {"lambda_name": "nobody"}})))
        .await
        .err()
        .ok_or("an unknown labourer must fail")?;
    assert_eq!(err.error_type(), "NonRetryable");
    assert!(err.message().contains("nobody"), "{err}");
    assert_eq!(
        store.queue_length("nobody", SystemClock.now_secs()).await?,
        0
    );
    Ok(())
}

/// The EMF lines `lines` captured, parsed.
fn emf_lines(
    lines: &std::sync::Mutex<Vec<String>>,
) -> Result<Vec<Value>, Box<dyn std::error::Error>> {
    let lines = lines.lock().map_err(|_| "poisoned")?.clone();
    Ok(lines
        .iter()
        .map(|line| serde_json::from_str(line))
        .collect::<Result<_, _>>()?)
}

#[tokio::test]
async fn the_orchestrator_prints_queue_length_and_invocations_as_emf() -> TestResult {
    let store = store_with_tasks(5).await?;
    // A labourer limited to 2 slots whose worker never reports: 2 invoked, 3 left in the queue.
    let config: OrchestratorConfig = parse_config(
        "sosw_orchestrator_config",
        json!({"task_config": {"labourers": {"w": {"max_simultaneous_invocations": 2}}}}),
    )?;
    let invoker = InProcessInvoker::new().register("w", handler_fn(|_: Value| async {}));
    let orchestrator = orchestrator_over(store.clone(), &invoker, config)
        // One round, as sosw 0.7: a continuous run would wait for free slots until its deadline.
        .with_settings(OrchestratorSettings {
            mode: RunMode::SinglePass,
            ..OrchestratorSettings::default()
        });
    let (metrics, lines) = Metrics::in_memory("sosw-test", ORCHESTRATOR_FUNCTION);
    let handler = ProcessorService::new(orchestrator, ORCHESTRATOR_FUNCTION).with_metrics(
        metrics,
        OrchestratorMeter::new().with_queue_lengths(store.clone(), 100_000),
    );
    let report =
        tokio::time::timeout(Duration::from_secs(60), handler.handle(event(json!({})))).await??;
    tokio::time::timeout(Duration::from_secs(30), invoker.wait_idle()).await?;
    let docs = emf_lines(&lines)?;
    let w = docs
        .iter()
        .find(|d| d["labourer_id"] == "w")
        .ok_or("no line for labourer w")?;
    assert_eq!(w["function"], ORCHESTRATOR_FUNCTION);
    assert_eq!(w["_aws"]["CloudWatchMetrics"][0]["Namespace"], "sosw-test");
    assert_eq!(
        w["invoked"],
        report["labourers"]["w"]["invoked"].as_f64().unwrap_or(-1.0)
    );
    assert_eq!(w["invoked"], 2.0, "{w}");
    assert_eq!(w["queue_length"], 3.0, "{w}");
    assert!(w["eco_status"].is_number(), "{w}");
    Ok(())
}

#[tokio::test]
async fn the_scheduler_prints_the_tasks_it_wrote_as_emf() -> TestResult {
    let store = Arc::new(SqliteTaskStore::in_memory()?);
    let (metrics, lines) = Metrics::in_memory("sosw", SCHEDULER_FUNCTION);
    let handler = scheduler_handler(store)?.with_metrics(metrics, scheduler_metrics);
    handler.handle(event(small_job())).await?;
    let docs = emf_lines(&lines)?;
    let [doc] = docs.as_slice() else {
        return Err(format!("one line expected: {docs:?}").into());
    };
    assert_eq!(
        doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["function", "labourer_id"]])
    );
    assert_eq!(
        (doc["labourer_id"].as_str(), doc["tasks_written"].as_f64()),
        (Some("w"), Some(3.0))
    );
    assert_eq!(doc["job_tasks"], 3.0);
    Ok(())
}
