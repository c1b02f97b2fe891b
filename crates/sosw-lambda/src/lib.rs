//! # sosw-lambda: sosw on AWS Lambda
//!
//! * [`worker`]: a [`Worker`](sosw_core::worker::Worker) as a Lambda function ([`worker::run`]): the
//!   payload split into task metadata and the typed body, the outcome reported to the worker assistant.
//! * [`service`]: any [`Processor`](sosw_core::processor::Processor) as a Lambda handler
//!   ([`service::ProcessorService`], [`service::serve`]): the invocation's context (deadline, request
//!   id) handed to the processor, `Retryable` / `NonRetryable` diagnostics, and EMF [`metrics`].
//! * With the `essentials` feature: the four essentials' Lambda `main` ([`essential::run_essential`]),
//!   their settings from the environment ([`settings`]), and the one wiring of AWS clients and config
//!   rows ([`aws`]); [`logging`] sets up JSON logs for CloudWatch.
#![forbid(unsafe_code)]

#[cfg(feature = "essentials")]
pub mod aws;
#[cfg(feature = "essentials")]
pub mod essential;
pub mod logging;
pub mod metrics;
pub mod service;
#[cfg(feature = "essentials")]
pub mod settings;
pub mod worker;

#[cfg(feature = "essentials")]
pub use essential::{Essential, run_essential};
pub use logging::init_tracing;
#[cfg(feature = "essentials")]
pub use settings::Settings;
