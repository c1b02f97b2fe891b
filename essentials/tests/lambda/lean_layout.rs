//! The essentials wired as the Lambda binaries wire them (`sosw::lambda::aws`) with `SOSW_LAYOUT=lean`,
//! on DynamoDB Local: a job through the scheduler, the orchestrator, a worker reporting through the
//! worker assistant and the scavenger, to closed, on the lean table alone (sosw 0.7's task tables are
//! never created, so a store of that layout would fail at its first request).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use serde_json::{Value, json};
use sosw::aws::dynamodb::lean::{LeanOptions, create_lean_tables, delete_lean_tables};
use sosw::config::{
    OrchestratorConfig, ScavengerConfig, SchedulerConfig, WorkerAssistantConfig, parse_config,
};
use sosw::essentials::worker_assistant::{AssistantRequest, WorkerAssistant};
use sosw::invoke::inprocess::{InProcessInvoker, handler_fn};
use sosw::lambda::settings::{
    LAYOUT_VAR, LEAN_SHARDS_VAR, LeanLayout, SCHEDULER_FUNCTION, StoreLayout,
};
use sosw::lambda::{Settings, aws};
use sosw::processor::Stats;
use sosw::task::TaskId;
use sosw::task::receipt::{CLAIM_RECEIPT_KEY, carries_receipt};
use sosw::worker::{StoreReporter, WorkError, Worker, WorkerContext, WorkerRunner};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const LABOURER: &str = "lean_worker";
const TASKS: usize = 12;

fn sdk() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .build()
}

fn config<C: serde::de::DeserializeOwned>(
    document: &str,
    prefix: &str,
    extra: Value,
) -> sosw::Result<C> {
    let mut value = json!({"task_config": {
        "table_prefix": prefix,
        "labourers": {LABOURER: {"max_simultaneous_invocations": TASKS}},
    }});
    if let (Some(map), Value::Object(extra)) = (value.as_object_mut(), extra) {
        map.extend(extra);
    }
    parse_config(document, value)
}

/// A lean deployment on DynamoDB Local wired as the Lambda binaries wire it, with the job's `TASKS`
/// tasks enqueued by the scheduler.
struct Deployment {
    client: aws_sdk_dynamodb::Client,
    prefix: String,
    options: LeanOptions,
    /// The lean layout as the functions' environment gives it.
    lean: LeanLayout,
    clients: aws::Clients,
    store: Arc<dyn aws::DeploymentStore>,
    job_id: String,
}

impl Deployment {
    /// `SOSW_LAYOUT=lean` and `vars` as the functions' environment; `None` without DynamoDB Local.
    async fn start(vars: &[(&str, &str)]) -> Result<Option<Self>, Box<dyn std::error::Error>> {
        let Some(client) = sosw_integration_tests::dynamodb_client().await else {
            return Ok(None);
        };
        let prefix = sosw_integration_tests::unique_prefix();
        let settings = Settings::from_lookup(SCHEDULER_FUNCTION, |name| {
            if name == LAYOUT_VAR {
                return Some("lean".into());
            }
            vars.iter()
                .find(|(var, _)| *var == name)
                .map(|(_, value)| (*value).to_owned())
        })?;
        let StoreLayout::Lean(lean) = &settings.layout else {
            return Err("SOSW_LAYOUT=lean must give the lean layout".into());
        };
        let options = LeanOptions::with_prefix(&prefix).shards(lean.shards());
        assert_eq!(
            options.table,
            lean.table_name(&prefix),
            "the same default name"
        );
        create_lean_tables(&client, &options).await?;
        let endpoint = sosw_integration_tests::emulator_endpoint(
            sosw_integration_tests::DYNAMODB_ENDPOINT_VAR,
        )
        .ok_or("the endpoint")?;
        let clients = aws::Clients::new(sdk())
            .with_dynamodb(client.clone())
            .with_dynamodb_streams(
                sosw_integration_tests::dynamodb_streams_client_at(&endpoint).await,
            )
            .with_layout(settings.layout.clone());

        // Scheduler: the job's tasks into the lean table.
        let scheduler_config: SchedulerConfig = config(
            "sosw_scheduler_config",
            &prefix,
            json!({"job_schema": {"chunkable_attrs": [["section", {}]]}}),
        )?;
        let task_config = scheduler_config.task_config.clone();
        let scheduler = aws::build_scheduler(&clients, &settings, scheduler_config)?;
        let sections: Vec<String> = (0..TASKS).map(|i| format!("s{i}")).collect();
        let job = json!({"job": {"lambda_name": LABOURER, "isolate_sections": true, "sections": sections}});
        let report = scheduler
            .run(&job, chrono::Utc::now() + chrono::TimeDelta::minutes(5))
            .await?;
        assert_eq!(report.enqueued, TASKS as u64);
        let store = aws::deployment_store(&clients, &task_config)?;
        let lean = lean.clone();
        Ok(Some(Deployment {
            client,
            prefix,
            options,
            lean,
            clients,
            store,
            job_id: report.job_id,
        }))
    }

    /// The worker assistant with `extra` config keys.
    fn assistant(&self, extra: Value) -> sosw::Result<Arc<WorkerAssistant>> {
        let config: WorkerAssistantConfig =
            config("sosw_worker_assistant_config", &self.prefix, extra)?;
        Ok(Arc::new(aws::build_worker_assistant(
            &self.clients,
            config,
        )?))
    }

    /// One orchestrator run invoking through `invoker`, until every invocation has returned.
    async fn orchestrate(&self, invoker: &InProcessInvoker) -> TestResult {
        let config: OrchestratorConfig =
            config("sosw_orchestrator_config", &self.prefix, json!({}))?;
        let orchestrator = sosw_integration_tests::single_pass_orchestrator(
            self.store.clone(),
            Arc::new(invoker.clone()),
            config,
        );
        let run = orchestrator
            .run(chrono::Utc::now() + chrono::TimeDelta::seconds(60))
            .await?;
        assert_eq!(run.invoked(), TASKS as u64);
        tokio::time::timeout(Duration::from_secs(60), invoker.wait_idle()).await?;
        Ok(())
    }
}

#[tokio::test]
async fn the_essentials_close_a_job_on_the_lean_layout() -> TestResult {
    let Some(d) = Deployment::start(&[(LEAN_SHARDS_VAR, "3")]).await? else {
        return Ok(());
    };
    assert_eq!(d.options.shards, 3, "SOSW_LEAN_SHARDS read");
    let store = &d.store;
    let now = chrono::Utc::now().timestamp() + 1;
    assert_eq!(store.queue_length(LABOURER, now).await?, TASKS as u64);

    // Orchestrator and worker: every task invoked once; the worker reports through the worker
    // assistant, which leaves completed tasks for the scavenger (`archive_completed: false`).
    let assistant = d.assistant(json!({"archive_completed": false}))?;
    let invoked = Arc::new(Mutex::new(Vec::new()));
    let seen = invoked.clone();
    let worker = handler_fn(move |payload: Value| {
        let assistant = assistant.clone();
        let seen = seen.clone();
        async move {
            let Some(id) = payload["task_id"]
                .as_str()
                .and_then(|id| TaskId::new(id).ok())
            else {
                return;
            };
            let outcome = assistant
                .handle(
                    &AssistantRequest::completed(id.clone()),
                    &mut Stats::default(),
                )
                .await;
            if let Ok(mut seen) = seen.lock() {
                seen.push((id.as_str().to_owned(), outcome.is_ok()));
            }
        }
    });
    let invoker = InProcessInvoker::new().register(LABOURER, worker);
    d.orchestrate(&invoker).await?;
    let invoked = invoked.lock().map_err(|_| "poisoned")?.clone();
    assert_eq!(invoked.len(), TASKS, "{invoked:?}");
    assert!(
        invoked.iter().all(|(_, ok)| *ok),
        "every report recorded: {invoked:?}"
    );
    let ids: BTreeSet<String> = invoked.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids.len(), TASKS, "each task invoked once");

    // Scavenger: archives the completed tasks to closed, then counts them into the job from the
    // lean table's stream (SOSW_LEAN_JOB_COUNTS defaults to batched) and finishes it.
    let scavenger_config: ScavengerConfig = config("sosw_scavenger_config", &d.prefix, json!({}))?;
    let scavenger = aws::build_scavenger(&d.clients, scavenger_config)?;
    let swept = scavenger.run().await;
    assert!(swept.failures.is_empty(), "{:?}", swept.failures);
    assert_eq!(swept.job_count_error, None);
    assert_eq!(swept.jobs_finished, vec![d.job_id.clone()]);

    for id in &ids {
        let id = TaskId::new(id.as_str())?;
        assert!(
            store.get_task(&id).await?.is_none(),
            "{id} is not live any more"
        );
        let closed = store
            .get_closed_task(&id)
            .await?
            .ok_or(format!("{id} closed"))?;
        assert!(closed.completed_at.is_some(), "{id} closed as completed");
    }
    let record = store.get_job(&d.job_id).await?.ok_or("the job record")?;
    assert_eq!(record.counts.completed, TASKS as u64, "{record:?}");
    assert_eq!(
        record.status,
        sosw::store::JobStatus::Finished,
        "{record:?}"
    );
    // The tasks are the lean table's closed items (`c#<labourer>#<shard>`), nowhere else.
    let scan = d.client.scan().table_name(&d.options.table).send().await?;
    let closed_items = scan
        .items()
        .iter()
        .filter(|item| {
            item.get("pk")
                .and_then(|pk| pk.as_s().ok())
                .is_some_and(|pk| pk.starts_with(&format!("c#{LABOURER}#")))
        })
        .count();
    assert_eq!(closed_items, TASKS);
    delete_lean_tables(&d.client, &d.options).await?;
    Ok(())
}

/// A worker built on the `Worker` trait, recording the payloads it is given.
struct Sections(Arc<Mutex<Vec<Value>>>);

#[async_trait::async_trait]
impl Worker for Sections {
    type Payload = Value;
    type Output = Value;

    async fn work(&self, payload: Value, _ctx: WorkerContext) -> Result<Value, WorkError> {
        if let Ok(mut seen) = self.0.lock() {
            seen.push(payload);
        }
        Ok(json!({"done": true}))
    }
}

/// As deployed on the lean layout: the orchestrator puts each claim's receipt in the worker's event,
/// a worker run by sosw's worker runner never sees it and sends it back with its completion, and the
/// worker assistant closes every task in one move, before any scavenger run.
#[tokio::test]
async fn a_worker_s_completions_close_its_tasks_through_their_claim_receipts() -> TestResult {
    let Some(d) = Deployment::start(&[]).await? else {
        return Ok(());
    };
    assert!(
        d.lean.claim_receipts(),
        "SOSW_LEAN_CLAIM_RECEIPTS defaults to on"
    );
    let assistant = d.assistant(json!({}))?;
    let payloads = Arc::new(Mutex::new(Vec::new()));
    let runner = Arc::new(WorkerRunner::new(
        Sections(payloads.clone()),
        Arc::new(StoreReporter::new(assistant)),
    ));
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let worker = handler_fn(move |event: Value| {
        let runner = runner.clone();
        let seen = seen.clone();
        async move {
            if let Ok(mut seen) = seen.lock() {
                seen.push(event.clone());
            }
            let _ = runner.handle_payload(event, None, "in-process").await;
        }
    });
    let invoker = InProcessInvoker::new().register(LABOURER, worker);
    d.orchestrate(&invoker).await?;

    let events = events.lock().map_err(|_| "poisoned")?.clone();
    assert_eq!(events.len(), TASKS);
    assert!(
        events.iter().all(carries_receipt),
        "every event carries its claim's receipt"
    );
    let payloads = payloads.lock().map_err(|_| "poisoned")?.clone();
    assert_eq!(payloads.len(), TASKS);
    for payload in &payloads {
        assert!(
            payload.get(CLAIM_RECEIPT_KEY).is_none() && payload.get("sections").is_some(),
            "the worker sees its payload without the receipt: {payload}"
        );
    }
    // Closed in one move each, before any scavenger run: no claim is left.
    for event in &events {
        let id = TaskId::new(event["task_id"].as_str().ok_or("a task id")?)?;
        assert!(d.store.get_task(&id).await?.is_none(), "{id} is not live");
        let closed = d
            .store
            .get_closed_task(&id)
            .await?
            .ok_or(format!("{id} closed"))?;
        assert!(closed.completed_at.is_some(), "{id} closed as completed");
        assert_eq!(closed.extra.get("result_done"), Some(&json!(true)));
        assert!(
            !closed.extra.contains_key(CLAIM_RECEIPT_KEY),
            "the receipt is not stored"
        );
    }
    delete_lean_tables(&d.client, &d.options).await?;
    Ok(())
}
