//! # The sosw essentials as AWS Lambda functions
//!
//! Four binaries, one per essential, each a `bootstrap` for the `provided.al2023` runtime:
//!
//! | binary | essential | handler |
//! |---|---|---|
//! | `sosw_scheduler` | [`sosw::essentials::scheduler`] | [`SchedulerHandler`] |
//! | `sosw_orchestrator` | [`sosw::essentials::orchestrator`] | [`OrchestratorHandler`] |
//! | `sosw_scavenger` | [`sosw::essentials::scavenger`] | [`MeteredService`] |
//! | `sosw_worker_assistant` | [`sosw::essentials::worker_assistant`] | [`MeteredService`] |
//!
//! Each `main` does, once per container: [`init_tracing`] (JSON lines for CloudWatch), [`Settings`]
//! from the environment, the SDK config and clients ([`aws::Clients`]), the function's config rows
//! (`<function>_config` over `sosw_essential_config` in the config table), the essential; then it
//! answers invocations with `lambda_runtime` until the container stops. An error reaches Lambda as a
//! diagnostic whose `errorType` is `Retryable` (the same event may succeed later: a throttled table)
//! or `NonRetryable` (it never will: a malformed event), from [`sosw::Error::is_retryable`].
//!
//! ## Runtime
//!
//! Each binary runs on Tokio's single-threaded runtime. An essential mostly waits on the network, and
//! Lambda gives a small function a fraction of one vCPU; with worker threads the handler runs on the
//! main thread while hyper's connection tasks run on the workers, so every request and every response
//! crosses threads (a futex wake-up and a context switch each way) for no parallelism.
//!
//! ## Environment
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `SOSW_CONFIG_TABLE` | `config` | DynamoDB table of the config rows (hash key `env`, range key `config_name`) |
//! | `SOSW_CONFIG_ENV` | `production` | `env` of the rows read |
//! | `SOSW_CONFIG_NAME` | the function's name | the row read is `<name>_config` |
//! | `SOSW_S3_FORCE_PATH_STYLE` | `false` | path-style S3 addressing (emulators) for the scheduler's spool |
//! | `SOSW_METRICS` | `true` | print CloudWatch EMF metric lines (see [`metrics`]) |
//! | `SOSW_METRICS_NAMESPACE` | `sosw` | the metrics' CloudWatch namespace |
//! | `SOSW_METRICS_QUEUE_LENGTHS` | `true` | the orchestrator counts each labourer's queue for `queue_length` |
//! | `AWS_LAMBDA_FUNCTION_NAME` | set by Lambda; else the essential's name | the function (siblings, logs, config row) |
//! | `RUST_LOG` | `AWS_LAMBDA_LOG_LEVEL`, else `info` | log filter (`info`, `sosw=debug,info`, ...) |
//! | `AWS_REGION`, `AWS_ENDPOINT_URL`, ... | set by Lambda | the AWS SDK's own settings |
//!
//! Table names, the SNS topic and the scheduler's bucket are in the config rows (`task_config`,
//! `sns_config`, `queue_bucket`), as in sosw 0.7.
//!
//! ## Testing
//!
//! Handlers are plain methods over ports: a test builds the essential over the SQLite store and
//! in-process adapters and calls the handler with `LambdaEvent::new(payload, Context::default())`
//! (see `tests/handlers.rs`). A context without a deadline gets [`handlers::NO_DEADLINE_BUDGET`].
#![forbid(unsafe_code)]

pub mod aws;
pub mod cli;
pub mod handlers;
pub mod logging;
pub mod metrics;
pub mod settings;

pub use handlers::{MeteredService, OrchestratorHandler, SchedulerHandler};
pub use logging::init_tracing;
pub use settings::Settings;
