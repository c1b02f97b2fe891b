//! # sosw-lambda: sosw on AWS Lambda
//!
//! * [`worker`]: a [`Worker`](sosw_core::worker::Worker) as a Lambda function ([`worker::run`]): the
//!   payload split into task metadata and the typed body, the outcome reported to the worker assistant.
//! * [`service`]: any [`Processor`](sosw_core::processor::Processor) as a Lambda handler
//!   ([`service::ProcessorService`], [`service::serve`]), with `Retryable` / `NonRetryable` diagnostics.
//! * With the `essentials` feature: the four essentials as Lambda services ([`handlers`]), their EMF
//!   metrics ([`metrics`]), their settings from the environment ([`settings`]), and the one wiring of
//!   AWS clients and config rows ([`aws`]); [`logging`] sets up JSON logs for CloudWatch.
#![forbid(unsafe_code)]

#[cfg(feature = "essentials")]
pub mod aws;
#[cfg(feature = "essentials")]
pub mod handlers;
pub mod logging;
#[cfg(feature = "essentials")]
pub mod metrics;
pub mod service;
#[cfg(feature = "essentials")]
pub mod settings;
pub mod worker;

#[cfg(feature = "essentials")]
pub use handlers::{MeteredService, OrchestratorHandler, SchedulerHandler};
pub use logging::init_tracing;
#[cfg(feature = "essentials")]
pub use settings::Settings;
