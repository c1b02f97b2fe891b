//! A [`Worker`] as a Lambda function: one invocation ([`HandleEvent::handle`]) and the Lambda loop
//! ([`run`]).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::{Value, json};

use sosw_aws::assistant::LambdaAssistantReporter;
use sosw_aws::config_source::DynamoConfigSource;
use sosw_core::config::WorkerAssistantConfig;
use sosw_core::error::Result;
use sosw_core::essentials::worker_assistant::FUNCTION_NAME as ASSISTANT_FUNCTION_NAME;
use sosw_core::processor::{HandlerError, function_name_or, load_config};
use sosw_core::worker::{Reporter, StoreReporter, Worker, WorkerConfig, WorkerRunner};

use crate::service::diagnostic;

/// A [`WorkerRunner`] as a Lambda handler: the invocation's payload, deadline and request id.
#[async_trait]
pub trait HandleEvent {
    /// Handles one Lambda invocation: the function's handler.
    async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, HandlerError>;
}

#[async_trait]
impl<W: Worker> HandleEvent for WorkerRunner<W> {
    async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, HandlerError> {
        let (payload, context) = event.into_parts();
        let deadline = (context.deadline > 0)
            .then(|| i64::try_from(context.deadline).ok())
            .flatten()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
        self.handle_payload(payload, deadline, &context.request_id)
            .await
    }
}

/// Runs `worker` as this Lambda function, as sosw 0.7's Worker does: reads the function's config
/// (`<AWS_LAMBDA_FUNCTION_NAME>_config` from the DynamoDB `config` table, or the table named by
/// `SOSW_CONFIG_TABLE`, rows of env `production` or `SOSW_CONFIG_ENV`, with `sosw_essential_config`
/// under it) once per container, then reports where it says:
/// * `report_to: "worker_assistant"` (default): invokes the Lambda named by
///   `sosw_worker_assistant_lambda` ([`LambdaAssistantReporter`]);
/// * `report_to: "store"`: runs the worker assistant's logic in-process on the DynamoDB tables, with
///   the worker assistant's own config (`sosw_worker_assistant_config`), SNS for its notifications
///   and the job records in the same store. The worker then needs the assistant's table permissions.
///
/// For any other store (SQLite in local mode) or reporter, use [`run_with`].
pub async fn run<W: Worker + 'static>(worker: W) -> Result<(), lambda_runtime::Error> {
    let sdk = sosw_aws::http::load_sdk_config().await;
    let function = function_name_or("sosw_worker");
    let mut source = DynamoConfigSource::new(aws_sdk_dynamodb::Client::new(&sdk));
    // The same switches as the essentials' binaries, so one stack parameter names the table for all.
    if let Some(table) = non_empty_env("SOSW_CONFIG_TABLE") {
        source = source.with_table(table);
    }
    if let Some(env) = non_empty_env("SOSW_CONFIG_ENV") {
        source = source.with_env(env);
    }
    let config: WorkerConfig = load_config(&source, &function, json!({}), None).await?;
    let reporter: Arc<dyn Reporter> = match config.report_to {
        sosw_core::worker::ReportTo::WorkerAssistant => Arc::new(LambdaAssistantReporter::new(
            &sdk,
            &config.sosw_worker_assistant_lambda,
            config.report_invocation,
        )),
        sosw_core::worker::ReportTo::Store => Arc::new(store_reporter(&sdk, &source).await?),
    };
    let mut runner = WorkerRunner::new(worker, reporter).with_config(&config);
    if let Some(bucket) = &config.payload_bucket {
        runner = with_payload_bucket(runner, &sdk, bucket)?;
    }
    serve(runner).await
}

/// Payloads the scheduler stored in S3 (`payload_bucket`) are fetched from `bucket`.
#[cfg(feature = "s3-payloads")]
fn with_payload_bucket<W: Worker>(
    runner: WorkerRunner<W>,
    sdk: &aws_config::SdkConfig,
    bucket: &str,
) -> Result<WorkerRunner<W>> {
    let s3 = aws_sdk_s3::Client::new(sdk);
    Ok(runner.with_blobs(Arc::new(sosw_aws::s3::S3BlobStore::new(s3, bucket))))
}

/// Without the `s3-payloads` feature a worker cannot read payloads stored in S3: a config that
/// names `payload_bucket` is refused at start, naming the feature, rather than failing every task.
#[cfg(not(feature = "s3-payloads"))]
fn with_payload_bucket<W: Worker>(
    _runner: WorkerRunner<W>,
    _sdk: &aws_config::SdkConfig,
    bucket: &str,
) -> Result<WorkerRunner<W>> {
    Err(sosw_core::Error::invalid(
        "worker config",
        format!(
            "`payload_bucket` is {bucket:?}, but this worker was built without S3 support: \
             enable the `s3-payloads` feature of `sosw` (or `sosw-lambda`) to read payloads stored in S3"
        ),
    ))
}

/// The value of environment variable `name`, if set and not empty.
fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A [`StoreReporter`] over the DynamoDB tables named in the worker assistant's config, in the layout
/// `SOSW_LAYOUT` names (the essentials' setting: a worker reporting to the store must read the same).
async fn store_reporter(
    sdk: &aws_config::SdkConfig,
    source: &DynamoConfigSource,
) -> Result<StoreReporter> {
    let layout = crate::settings::StoreLayout::from_env()?;
    let config: WorkerAssistantConfig =
        load_config(source, ASSISTANT_FUNCTION_NAME, json!({}), None).await?;
    let clients = crate::aws::Clients::new(sdk.clone()).with_layout(layout);
    let assistant = crate::aws::build_worker_assistant(&clients, config)?;
    Ok(StoreReporter::new(Arc::new(assistant)))
}

/// Runs `worker` as this Lambda function with `reporter` and `config`.
pub async fn run_with<W: Worker + 'static>(
    worker: W,
    reporter: Arc<dyn Reporter>,
    config: &WorkerConfig,
) -> Result<(), lambda_runtime::Error> {
    serve(WorkerRunner::new(worker, reporter).with_config(config)).await
}

/// The Lambda loop over one runner.
async fn serve<W: Worker + 'static>(runner: WorkerRunner<W>) -> Result<(), lambda_runtime::Error> {
    let runner = &runner;
    lambda_runtime::run(service_fn(move |event| async move {
        runner.handle(event).await.map_err(diagnostic)
    }))
    .await
}
