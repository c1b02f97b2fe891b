//! # sosw-aws: the AWS adapters of sosw's ports
//!
//! * [`dynamodb`]: `TaskStore` and `JobStore` on sosw 0.7's tables; [`config_source`]: the `config` table.
//! * [`lambda`]: the `Invoker` (`Invoke`, `Event`) and worker timeouts; [`assistant`]: a worker's
//!   reports to the worker assistant Lambda.
//! * [`sns`]: the `Notifier`.
//! * `cloudwatch` (feature `cloudwatch`): the ecology's `MetricsSource`.
//! * `eventbridge` (feature `eventbridge`): the orchestrator's schedule rule, for siblings.
//! * `s3` (feature `s3`): the `BlobStore` of the scheduler's spool and large payloads.
//! * `dynamo_db_client` (feature `dynamodb-client`): `DynamoDbClient`, sosw 0.7's client of a worker's own
//!   tables, typed by serde.
//! * [`http`]: the SDK config every adapter is built from (lazy TLS, environment credentials).
//!
//! A worker needs only DynamoDB, Lambda and SNS: build with `default-features = false`.
#![forbid(unsafe_code)]

pub mod assistant;
#[cfg(feature = "cloudwatch")]
pub mod cloudwatch;
pub mod config_source;
#[cfg(feature = "dynamodb-client")]
pub mod dynamo_db_client;
pub mod dynamodb;
#[cfg(feature = "eventbridge")]
pub mod eventbridge;
pub mod http;
pub mod lambda;
#[cfg(feature = "s3")]
pub mod s3;
mod sdk_errors;
pub mod sns;
