//! This implementation's side of each workload, run in a child process (`sosw-bench ours ...`) so
//! that both implementations are measured the same way: a process of their own, talking to the
//! harness's proxy and receiver through the `AWS_ENDPOINT_URL_*` variables. The essentials are wired
//! as the Lambda binaries wire them (`sosw::lambda::aws`), over the same tables Python sosw 0.7 uses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use sosw::aws::cloudwatch::CloudWatchMetrics;
use sosw::aws::dynamodb::DynamoTaskStore;
use sosw::aws::dynamodb::lean::migrate::{Migration, MigrationSettings};
use sosw::aws::dynamodb::lean::{LeanOptions, LeanTaskStore};
use sosw::aws::lambda::{FunctionTimeouts, LambdaInvoker};
use sosw::aws::s3::S3BlobStore;
use sosw::aws::sns::SnsNotifier;
use sosw::clock::SystemClock;
use sosw::config::{OrchestratorConfig, ScavengerConfig, SchedulerConfig, WorkerAssistantConfig};
use sosw::essentials::closer::Closer;
use sosw::essentials::orchestrator::{ConfigFeed, Orchestrator, OrchestratorSettings, RunMode};
use sosw::essentials::scavenger::Scavenger;
use sosw::essentials::scheduler::Scheduler;
use sosw::essentials::worker_assistant::AssistantRequest;
use sosw::essentials::worker_assistant::WorkerAssistant;
use sosw::invoke::{InvokeOutcome, Invoker};
use sosw::lambda::aws::{Clients, build_worker_assistant};
use sosw::processor::Stats;
use sosw::store::{JobStore, TaskStore};
use sosw::task::TaskId;
use sosw::task::receipt::carries_receipt;

use crate::{Args, BenchResult, bench_error, phase, sections_job};

/// The `task_config` both implementations get: the benchmark's tables (by prefix) and one labourer.
fn task_config(args: &Args, slots: u64) -> Value {
    json!({
        "table_prefix": args.prefix,
        "labourers": {
            args.labourer.as_str(): {
                "arn": format!("arn:aws:lambda:us-east-1:000000000000:function:{}", args.labourer),
                "max_simultaneous_invocations": slots,
            }
        }
    })
}

fn parse<T: serde::de::DeserializeOwned>(name: &str, document: Value) -> BenchResult<T> {
    sosw::config::parse_config(name, document).map_err(bench_error)
}

fn store(clients: &Clients, args: &Args) -> BenchResult<Arc<DynamoTaskStore>> {
    let config: WorkerAssistantConfig = parse(
        "sosw_worker_assistant_config",
        json!({"task_config": task_config(args, 1)}),
    )?;
    Ok(sosw::lambda::aws::task_store(clients, &config.task_config))
}

fn scheduler(clients: &Clients, args: &Args) -> BenchResult<Scheduler> {
    let schema = json!({"chunkable_attrs": [["section", {}]]});
    let config: SchedulerConfig = parse(
        "sosw_scheduler_config",
        json!({
            "task_config": task_config(args, 1),
            "queue_bucket": args.bucket,
            "job_schema": schema,
        }),
    )?;
    let blobs = S3BlobStore::new(S3BlobStore::client(&clients.sdk, true), &args.bucket);
    Ok(Scheduler::new(config, store(clients, args)?).with_blob_store(Arc::new(blobs)))
}

/// One pass, as sosw 0.7's orchestrator makes one per scheduled run.
fn orchestrator(clients: &Clients, args: &Args) -> BenchResult<Orchestrator> {
    let config: OrchestratorConfig = parse(
        "sosw_orchestrator_config",
        json!({"task_config": task_config(args, args.tasks)}),
    )?;
    Ok(Orchestrator::new(
        store(clients, args)?,
        Arc::new(LambdaInvoker::from_sdk_config(&clients.sdk)),
        Arc::new(CloudWatchMetrics::from_sdk_config(&clients.sdk)),
        ConfigFeed::fixed(config),
        Arc::new(SystemClock),
    )
    .with_worker_timeouts(Arc::new(FunctionTimeouts::from_sdk_config(&clients.sdk)))
    .with_settings(OrchestratorSettings {
        mode: RunMode::SinglePass,
        ..OrchestratorSettings::default()
    }))
}

async fn clients() -> Clients {
    Clients::new(sosw::lambda::aws::sdk_config().await)
}

/// Schedules the job of `args.tasks` tasks; times the scheduler's run.
pub async fn enqueue(args: &Args) -> BenchResult<Value> {
    let clients = clients().await;
    let scheduler = scheduler(&clients, args)?;
    let job = json!({"job": sections_job(&args.labourer, args.tasks)});
    phase("enqueue").await;
    let started = Instant::now();
    let report = scheduler
        .run(&job, Utc::now() + TimeDelta::hours(24))
        .await
        .map_err(bench_error)?;
    let secs = started.elapsed().as_secs_f64();
    phase("idle").await;
    Ok(json!({"secs": secs, "enqueued": report.enqueued}))
}

/// One orchestrator pass over the queue; times it.
pub async fn orchestrate(args: &Args) -> BenchResult<Value> {
    let clients = clients().await;
    let orchestrator = orchestrator(&clients, args)?;
    phase("orchestrate").await;
    let started = Instant::now();
    let report = orchestrator
        .run(Utc::now() + TimeDelta::seconds(600))
        .await
        .map_err(bench_error)?;
    let secs = started.elapsed().as_secs_f64();
    phase("idle").await;
    Ok(json!({"secs": secs, "invoked": report.invoked()}))
}

/// `sosw migrate-layout`'s move of the 0.7 queue the harness seeded to the lean table,
/// `args.concurrency` tasks at once; times it and gives this process's peak memory.
pub async fn migrate(args: &Args) -> BenchResult<Value> {
    let clients = clients().await;
    let from = store(&clients, args)?;
    let to = LeanTaskStore::new(
        clients.dynamodb.clone(),
        LeanOptions::with_prefix(&args.prefix).shards(args.shards),
    )
    .map_err(bench_error)?;
    let migration = Migration::new((*from).clone(), to);
    let settings = MigrationSettings {
        every: u64::MAX,
        concurrency: args.concurrency,
    };
    phase("migrate").await;
    let started = Instant::now();
    let report = migration
        .run(Utc::now().timestamp(), false, settings, |_| {})
        .await
        .map_err(bench_error)?;
    let secs = started.elapsed().as_secs_f64();
    phase("idle").await;
    Ok(json!({
        "secs": secs,
        "moved": report.queued_moved,
        "peak_rss_mb": own_peak_rss_mb(),
    }))
}

/// This process's peak resident set (`VmHWM`), in MB, or NaN when it cannot be read.
fn own_peak_rss_mb() -> f64 {
    crate::harness::vm_hwm_mb("/proc/self/status")
}

/// Enqueue, claim, complete (one worker report per task) and archive, each phase timed and counted,
/// on the layout `args.layout` names.
pub async fn lifecycle(args: &Args) -> BenchResult<Value> {
    let clients = clients().await;
    match args.layout.as_str() {
        "0.7" => {
            let store = store(&clients, args)?;
            lifecycle_on(&clients, args, store).await
        }
        "lean" => {
            let options = LeanOptions {
                close_on_completion: args.lean_close,
                pack_queued: args.lean_pack,
                ..LeanOptions::with_prefix(&args.prefix).shards(args.shards)
            };
            // Job counters in batches from the table's stream, as a lean deployment keeps them
            // (SOSW_LEAN_JOB_COUNTS=batched, the default): the scavenger's pass counts them.
            let store = Arc::new(
                LeanTaskStore::new(clients.dynamodb.clone(), options)
                    .map_err(bench_error)?
                    .with_job_counts_from_stream(clients.dynamodb_streams.clone()),
            );
            lifecycle_on(&clients, args, store).await
        }
        other => Err(format!("unknown layout `{other}`: 0.7 or lean").into()),
    }
}

/// The lifecycle over `store`, wired as the Lambda binaries wire the essentials.
async fn lifecycle_on<S>(clients: &Clients, args: &Args, store: Arc<S>) -> BenchResult<Value>
where
    S: TaskStore + JobStore + 'static,
{
    let config: SchedulerConfig = parse(
        "sosw_scheduler_config",
        json!({
            "task_config": task_config(args, 1),
            "queue_bucket": args.bucket,
            "job_schema": {"chunkable_attrs": [["section", {}]]},
        }),
    )?;
    let blobs = S3BlobStore::new(S3BlobStore::client(&clients.sdk, true), &args.bucket);
    let scheduler = Scheduler::new(config, store.clone()).with_blob_store(Arc::new(blobs));
    let config: OrchestratorConfig = parse(
        "sosw_orchestrator_config",
        json!({"task_config": task_config(args, args.tasks)}),
    )?;
    let invoker = Arc::new(Echoing::new(LambdaInvoker::from_sdk_config(&clients.sdk)));
    let orchestrator = Orchestrator::new(
        store.clone(),
        invoker.clone(),
        Arc::new(CloudWatchMetrics::from_sdk_config(&clients.sdk)),
        ConfigFeed::fixed(config),
        Arc::new(SystemClock),
    )
    .with_worker_timeouts(Arc::new(FunctionTimeouts::from_sdk_config(&clients.sdk)))
    .with_settings(OrchestratorSettings {
        mode: RunMode::SinglePass,
        ..OrchestratorSettings::default()
    });
    let closer = || {
        Closer::new(store.clone(), Arc::new(SnsNotifier::new(&clients.sdk)))
            .with_jobs(store.clone())
    };
    let config: WorkerAssistantConfig = parse(
        "sosw_worker_assistant_config",
        json!({"task_config": task_config(args, args.tasks)}),
    )?;
    let assistant = WorkerAssistant::new(config, closer());
    let config: ScavengerConfig = parse(
        "sosw_scavenger_config",
        json!({"task_config": task_config(args, args.tasks)}),
    )?;
    let scavenger = Scavenger::new(config, closer());
    let mut secs = serde_json::Map::new();

    phase("enqueue").await;
    let started = Instant::now();
    let job = json!({"job": sections_job(&args.labourer, args.tasks)});
    scheduler
        .run(&job, Utc::now() + TimeDelta::hours(24))
        .await
        .map_err(bench_error)?;
    secs.insert("enqueue".into(), started.elapsed().as_secs_f64().into());

    phase("claim").await;
    let started = Instant::now();
    orchestrator
        .run(Utc::now() + TimeDelta::seconds(600))
        .await
        .map_err(bench_error)?;
    secs.insert("claim".into(), started.elapsed().as_secs_f64().into());

    phase("idle").await;
    let task_ids = live_task_ids(clients, args).await?;
    phase("complete").await;
    let started = Instant::now();
    let mut stats = Stats::default();
    for task_id in &task_ids {
        // A worker run by sosw's worker runner sends its event back when it carries a claim
        // receipt; with `--no-echo`, the report is the task id alone (sosw 0.7's workers).
        let request = AssistantRequest {
            invocation: invoker
                .event_of(task_id)
                .filter(|event| args.echo && carries_receipt(event)),
            ..AssistantRequest::completed(task_id.clone())
        };
        assistant
            .handle(&request, &mut stats)
            .await
            .map_err(bench_error)?;
    }
    secs.insert("complete".into(), started.elapsed().as_secs_f64().into());

    phase("archive").await;
    let started = Instant::now();
    let report = scavenger.run().await;
    secs.insert("archive".into(), started.elapsed().as_secs_f64().into());
    phase("idle").await;
    if !report.failures.is_empty() {
        return Err(format!("the scavenger failed: {:?}", report.failures).into());
    }
    Ok(json!({"secs": secs, "completed": task_ids.len()}))
}

/// The Lambda invoker, keeping each task's event as its worker got it, so the simulated worker can
/// send it back with its completion as a worker run by sosw's worker runner does.
struct Echoing {
    inner: LambdaInvoker,
    events: Mutex<HashMap<String, Value>>,
}

impl Echoing {
    fn new(inner: LambdaInvoker) -> Self {
        Echoing {
            inner,
            events: Mutex::new(HashMap::new()),
        }
    }

    fn event_of(&self, task_id: &TaskId) -> Option<Value> {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(task_id.as_str())
            .cloned()
    }
}

#[async_trait::async_trait]
impl Invoker for Echoing {
    async fn invoke(&self, function: &str, payload: &Value) -> sosw::Result<InvokeOutcome> {
        if let Some(id) = payload.get("task_id").and_then(Value::as_str) {
            self.events
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(id.to_owned(), payload.clone());
        }
        self.inner.invoke(function, payload).await
    }
}

/// The ids of every live task (read outside the counted phases): the live table's rows on sosw 0.7's
/// layout, the claim items on the lean one.
async fn live_task_ids(clients: &Clients, args: &Args) -> BenchResult<Vec<TaskId>> {
    let (table, claims_only) = if args.layout == "lean" {
        (LeanOptions::with_prefix(&args.prefix).table, true)
    } else {
        (store(clients, args)?.tables().tasks.clone(), false)
    };
    let mut ids = Vec::new();
    let mut pages = clients
        .dynamodb
        .scan()
        .table_name(table)
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        let item = item.map_err(bench_error)?;
        let is_claim = item
            .get("pk")
            .and_then(|v| v.as_s().ok())
            .is_some_and(|pk| pk.starts_with("r#"));
        if claims_only && !is_claim {
            continue;
        }
        if let Some(id) = item.get("task_id").and_then(|v| v.as_s().ok()) {
            ids.push(TaskId::new(id.as_str()).map_err(bench_error)?);
        }
    }
    Ok(ids)
}

/// Short tasks: one orchestrator run of a one-minute schedule (production settings: continuous
/// refill, 10 s margin) over `args.tasks` queued tasks of a labourer with `args.slots` slots, each
/// task working one second and then reporting through the worker assistant. Counts the tasks finished
/// within the minute.
pub async fn throughput(args: &Args) -> BenchResult<Value> {
    use sosw::invoke::inprocess::{InProcessInvoker, handler_fn};
    use std::sync::atomic::{AtomicU64, Ordering};

    let clients = clients().await;
    let config: WorkerAssistantConfig = parse(
        "sosw_worker_assistant_config",
        json!({"task_config": task_config(args, args.slots)}),
    )?;
    let assistant = Arc::new(build_worker_assistant(&clients, config).map_err(bench_error)?);
    let started = Instant::now();
    let window = std::time::Duration::from_secs(60);
    let finished = Arc::new(AtomicU64::new(0));
    let counter = finished.clone();
    let worker = handler_fn(move |payload: Value| {
        let assistant = assistant.clone();
        let counter = counter.clone();
        async move {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            let Some(id) = payload["task_id"]
                .as_str()
                .and_then(|id| TaskId::new(id).ok())
            else {
                return;
            };
            let request = AssistantRequest::completed(id);
            if assistant
                .handle(&request, &mut Stats::default())
                .await
                .is_ok()
                && started.elapsed() <= window
            {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let invoker = Arc::new(InProcessInvoker::new().register(args.labourer.as_str(), worker));
    let config: OrchestratorConfig = parse(
        "sosw_orchestrator_config",
        json!({"task_config": task_config(args, args.slots)}),
    )?;
    let orchestrator = Orchestrator::new(
        store(&clients, args)?,
        invoker.clone(),
        Arc::new(CloudWatchMetrics::from_sdk_config(&clients.sdk)),
        ConfigFeed::fixed(config),
        Arc::new(SystemClock),
    );
    let report = orchestrator
        .run(Utc::now() + TimeDelta::seconds(60))
        .await
        .map_err(bench_error)?;
    invoker.wait_idle().await;
    Ok(json!({
        "finished": finished.load(Ordering::SeqCst),
        "invoked": report.invoked(),
        "secs": started.elapsed().as_secs_f64(),
    }))
}
