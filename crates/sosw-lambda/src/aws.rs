//! Each essential over the AWS adapters, built once per container: its config rows read from the
//! DynamoDB config table, its clients from one SDK config.
//!
//! The `build_*` functions make no request (they take a parsed config) and give the bare essential;
//! the `load_*` functions read the function's config first, then build, and give the essential as the
//! [`ProcessorService`] its Lambda runs (named, with its metrics). A config that cannot be read or
//! parsed is an error naming the row, and the process exits with it: Lambda reports it as an init
//! error.

use std::sync::Arc;

use aws_config::SdkConfig;
use serde::de::DeserializeOwned;
use serde_json::json;
use sosw_aws::cloudwatch::CloudWatchMetrics;
use sosw_aws::config_source::DynamoConfigSource;
use sosw_aws::dynamodb::DynamoTaskStore;
use sosw_aws::dynamodb::lean::{LeanOptions, LeanTaskStore};
use sosw_aws::eventbridge::EventBridgeRules;
use sosw_aws::lambda::{FunctionTimeouts, LambdaInvoker};
use sosw_aws::s3::S3BlobStore;
use sosw_aws::sns::SnsNotifier;
use sosw_core::Result;
use sosw_core::clock::{Clock, SystemClock};
use sosw_core::config::{
    ConfigSource, OrchestratorConfig, ScavengerConfig, SchedulerConfig, TaskConfig,
    WorkerAssistantConfig,
};
use sosw_core::essentials::closer::Closer;
use sosw_core::essentials::orchestrator::{
    ConfigFeed, DEFAULT_CONFIG_TTL, Orchestrator, OrchestratorStore,
};
use sosw_core::essentials::scavenger::Scavenger;
use sosw_core::essentials::scheduler::Scheduler;
use sosw_core::essentials::worker_assistant::WorkerAssistant;
use sosw_core::processor::Processor;
use sosw_core::siblings::{ScheduleRules, SiblingsManager};
use sosw_core::store::{JobStore, TaskStore};

use crate::metrics::{
    Meter, Metrics, OrchestratorMeter, assistant_metrics, scavenger_metrics, scheduler_metrics,
};
use crate::service::ProcessorService;
use crate::settings::{Settings, StoreLayout};

/// The SDK config of this container: [`sosw_aws::http::load_sdk_config`] (region, credentials and
/// endpoints from the environment, TLS set up at the first `https` request).
pub async fn sdk_config() -> SdkConfig {
    sosw_aws::http::load_sdk_config().await
}

/// The clients every essential shares, built once per container, and the layout of the task tables
/// they reach.
#[derive(Debug, Clone)]
pub struct Clients {
    /// The SDK config the other clients are built from.
    pub sdk: SdkConfig,
    /// DynamoDB: the config table and the task tables.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// DynamoDB Streams: the lean table's stream, which its job counters are counted from.
    pub dynamodb_streams: aws_sdk_dynamodbstreams::Client,
    /// The task tables' layout (sosw 0.7's unless [`Clients::with_layout`] names another).
    pub layout: StoreLayout,
}

impl Clients {
    /// The clients over `sdk`, on sosw 0.7's tables.
    pub fn new(sdk: SdkConfig) -> Self {
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let dynamodb_streams = aws_sdk_dynamodbstreams::Client::new(&sdk);
        Clients {
            sdk,
            dynamodb,
            dynamodb_streams,
            layout: StoreLayout::Sosw07,
        }
    }

    /// The same clients with another DynamoDB client (a mocked one in tests).
    pub fn with_dynamodb(mut self, dynamodb: aws_sdk_dynamodb::Client) -> Self {
        self.dynamodb = dynamodb;
        self
    }

    /// The same clients with another DynamoDB Streams client (one at an emulator in tests).
    pub fn with_dynamodb_streams(mut self, streams: aws_sdk_dynamodbstreams::Client) -> Self {
        self.dynamodb_streams = streams;
        self
    }

    /// The same clients over the task tables of `layout` (the settings' `SOSW_LAYOUT`).
    pub fn with_layout(mut self, layout: StoreLayout) -> Self {
        self.layout = layout;
        self
    }
}

/// What the essentials need of a deployment's store: every task capability and the job records. Both
/// DynamoDB layouts implement it.
pub trait DeploymentStore: TaskStore + JobStore + OrchestratorStore + std::fmt::Debug {}

impl<T: TaskStore + JobStore + std::fmt::Debug + ?Sized> DeploymentStore for T {}

/// `clients` over the layout `settings` name (`SOSW_LAYOUT`): the `load_*` functions build on it.
fn settings_layout(clients: &Clients, settings: &Settings) -> Clients {
    clients.clone().with_layout(settings.layout.clone())
}

/// The config table and env named by `settings`.
pub fn config_source(clients: &Clients, settings: &Settings) -> DynamoConfigSource {
    DynamoConfigSource::new(clients.dynamodb.clone())
        .with_table(&settings.config_table)
        .with_env(&settings.config_env)
}

/// Reads `<config_name>_config` layered over `sosw_essential_config` from `source`, as a `C`.
pub async fn read_config<C, S>(source: &S, settings: &Settings) -> Result<C>
where
    C: DeserializeOwned,
    S: ConfigSource + ?Sized,
{
    sosw_core::processor::load_config(source, &settings.config_name, json!({}), None).await
}

/// The DynamoDB task store (and job store) over sosw 0.7's tables `task_config` names, whatever the
/// clients' layout (the bench and tools of that layout).
pub fn task_store(clients: &Clients, task_config: &TaskConfig) -> Arc<DynamoTaskStore> {
    Arc::new(DynamoTaskStore::new(
        clients.dynamodb.clone(),
        task_config.table_names(),
    ))
}

/// The store of the clients' layout: sosw 0.7's tables `task_config` names, or the lean table
/// (`SOSW_LEAN_TABLE`, else `<table_prefix>sosw_lean`) with the job and ecology tables `task_config`
/// names. What every essential here is built over.
pub fn deployment_store(
    clients: &Clients,
    task_config: &TaskConfig,
) -> Result<Arc<dyn DeploymentStore>> {
    match &clients.layout {
        StoreLayout::Sosw07 => Ok(task_store(clients, task_config)),
        StoreLayout::Lean(lean) => {
            let tables = task_config.table_names();
            let options = LeanOptions {
                table: lean.table_name(&task_config.table_prefix),
                jobs_table: tables.jobs,
                ecology_table: tables.ecology,
                shards: lean.shards(),
                close_on_completion: lean.close_on_completion(),
                claim_receipts: lean.claim_receipts(),
                pack_queued: lean.pack_queued(),
                ..LeanOptions::default()
            };
            let store = LeanTaskStore::new(clients.dynamodb.clone(), options)?;
            Ok(Arc::new(if lean.batched_job_counts() {
                store.with_job_counts_from_stream(clients.dynamodb_streams.clone())
            } else {
                store
            }))
        }
    }
}

/// `processor` as the Lambda service of the function `settings` name, printing what `meter` makes of
/// each output as EMF metrics when `settings` turn them on.
pub fn service<P>(
    settings: &Settings,
    processor: P,
    meter: impl Meter<P::Output> + 'static,
) -> ProcessorService<P>
where
    P: Processor,
    P::Output: Sync,
{
    ProcessorService::new(processor, &settings.function_name)
        .with_metrics(Metrics::from_settings(settings), meter)
}

/// The closer of the worker assistant and the scavenger over DynamoDB: job counters and SNS alerts.
fn closer(clients: &Clients, task_config: &TaskConfig) -> Result<Closer> {
    let store = deployment_store(clients, task_config)?;
    Ok(Closer::new(store.clone(), Arc::new(SnsNotifier::new(&clients.sdk))).with_jobs(store))
}

/// The worker assistant over DynamoDB (the clients' layout), with job counters and SNS alerts.
pub fn build_worker_assistant(
    clients: &Clients,
    config: WorkerAssistantConfig,
) -> Result<WorkerAssistant> {
    let closer = closer(clients, &config.task_config)?;
    Ok(WorkerAssistant::new(config, closer))
}

/// Reads the worker assistant's config and builds its service.
pub async fn load_worker_assistant(
    clients: &Clients,
    settings: &Settings,
) -> Result<ProcessorService<WorkerAssistant>> {
    let clients = &settings_layout(clients, settings);
    let config = read_config(&config_source(clients, settings), settings).await?;
    let assistant = build_worker_assistant(clients, config)?;
    Ok(service(settings, assistant, assistant_metrics))
}

/// The scavenger over DynamoDB (the clients' layout), with job counters and SNS alerts.
pub fn build_scavenger(clients: &Clients, config: ScavengerConfig) -> Result<Scavenger> {
    let closer = closer(clients, &config.task_config)?;
    Ok(Scavenger::new(config, closer))
}

/// Reads the scavenger's config and builds its service.
pub async fn load_scavenger(
    clients: &Clients,
    settings: &Settings,
) -> Result<ProcessorService<Scavenger>> {
    let clients = &settings_layout(clients, settings);
    let config = read_config(&config_source(clients, settings), settings).await?;
    let scavenger = build_scavenger(clients, config)?;
    Ok(service(settings, scavenger, scavenger_metrics))
}

/// The scheduler over DynamoDB (the clients' layout), with the S3 spool when `queue_bucket` is set and siblings spawned as
/// `settings.function_name` (Lambda `Invoke`, guarded by the EventBridge rule `settings.schedule_rule`).
pub fn build_scheduler(
    clients: &Clients,
    settings: &Settings,
    config: SchedulerConfig,
) -> Result<Scheduler> {
    let store = deployment_store(clients, &config.task_config)?;
    let siblings = SiblingsManager::new(
        Arc::new(LambdaInvoker::from_sdk_config(&clients.sdk)),
        settings.schedule_rule.as_ref().map(|rule| {
            Arc::new(EventBridgeRules::new(&clients.sdk, rule)) as Arc<dyn ScheduleRules>
        }),
        &settings.function_name,
        &config.siblings_config,
    );
    let bucket = config.queue_bucket.clone();
    let mut scheduler =
        Scheduler::from_parts(config, store.clone(), store).with_siblings(Arc::new(siblings));
    if let Some(bucket) = bucket {
        let client = S3BlobStore::client(&clients.sdk, settings.s3_force_path_style);
        scheduler = scheduler.with_blob_store(Arc::new(S3BlobStore::new(client, bucket)));
    }
    Ok(scheduler)
}

/// Reads the scheduler's config and builds its service.
pub async fn load_scheduler(
    clients: &Clients,
    settings: &Settings,
) -> Result<ProcessorService<Scheduler>> {
    let clients = &settings_layout(clients, settings);
    let config = read_config(&config_source(clients, settings), settings).await?;
    let scheduler = build_scheduler(clients, settings, config)?;
    Ok(service(settings, scheduler, scheduler_metrics))
}

/// The orchestrator over DynamoDB (the clients' layout), Lambda and CloudWatch. The tables come from `config` (read at
/// start); labourers and coefficients are re-read from `source` every [`DEFAULT_CONFIG_TTL`], so
/// labourer changes need no redeploy.
pub fn build_orchestrator(
    clients: &Clients,
    settings: &Settings,
    config: &OrchestratorConfig,
    source: Arc<dyn ConfigSource>,
) -> Result<Orchestrator> {
    let clock = Arc::new(SystemClock);
    // The config just read serves the first runs: no second read of the same rows.
    let feed = ConfigFeed::reloading(
        source,
        &settings.config_name,
        DEFAULT_CONFIG_TTL,
        clock.clone(),
    )
    .with_loaded(config.clone(), clock.now());
    let store = deployment_store(clients, &config.task_config)?;
    Ok(Orchestrator::new(
        store,
        Arc::new(LambdaInvoker::from_sdk_config(&clients.sdk)),
        Arc::new(CloudWatchMetrics::from_sdk_config(&clients.sdk)),
        feed,
        clock,
    )
    .with_worker_timeouts(Arc::new(FunctionTimeouts::from_sdk_config(&clients.sdk)))
    // `sosw pause`: one consistent GetItem of the config table's `sosw_paused_labourers` row per round.
    .with_labourer_control(Arc::new(config_source(clients, settings))))
}

/// Reads the orchestrator's config and builds its service, counting queue lengths for the metrics
/// unless `settings.metrics_queue_lengths` is off.
pub async fn load_orchestrator(
    clients: &Clients,
    settings: &Settings,
) -> Result<ProcessorService<Orchestrator>> {
    let clients = &settings_layout(clients, settings);
    let source = Arc::new(config_source(clients, settings));
    let config: OrchestratorConfig = read_config(source.as_ref(), settings).await?;
    let orchestrator = build_orchestrator(clients, settings, &config, source)?;
    let mut meter = OrchestratorMeter::new();
    if settings.metrics_queue_lengths {
        let store = deployment_store(clients, &config.task_config)?;
        meter = meter.with_queue_lengths(store, settings.metrics_queue_length_cap);
    }
    Ok(service(settings, orchestrator, meter))
}
