//! A [`Processor`] on Lambda: [`ProcessorService`] types the event, counts stats per invocation and
//! for the container's life, logs, and turns errors into `Retryable` / `NonRetryable` diagnostics;
//! [`serve`] runs it on `lambda_runtime`.
//!
//! ```no_run
//! # async fn demo(assistant: sosw_core::essentials::worker_assistant::WorkerAssistant)
//! #     -> Result<(), lambda_runtime::Error> {
//! sosw_lambda::service::serve(assistant).await
//! # }
//! ```

use std::sync::Mutex;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use sosw_core::processor::{HandlerError, LifetimeStats, Processor, Stats, function_name_or};

/// `err` as the diagnostic Lambda records: `errorType` `Retryable` or `NonRetryable`, and the message.
pub fn diagnostic(err: HandlerError) -> Diagnostic {
    Diagnostic {
        error_type: err.error_type().to_string(),
        error_message: err.message().to_string(),
    }
}

/// A [`Processor`] as a Lambda handler: typed event, per-invocation stats, lifetime sums, logs.
#[derive(Debug)]
pub struct ProcessorService<P> {
    processor: P,
    name: String,
    lifetime: Mutex<LifetimeStats>,
}

impl<P: Processor> ProcessorService<P> {
    /// Wraps `processor`, named `name` in logs (usually the function name).
    pub fn new(processor: P, name: impl Into<String>) -> Self {
        ProcessorService {
            processor,
            name: name.into(),
            lifetime: Mutex::new(LifetimeStats::default()),
        }
    }

    /// Keeps the counters named in `params` under their own name instead of `total_*` (sosw 0.7's
    /// `lifetime_stats_params`).
    pub fn with_lifetime_params(self, params: impl IntoIterator<Item = String>) -> Self {
        ProcessorService {
            lifetime: Mutex::new(LifetimeStats::new(params)),
            ..self
        }
    }

    /// The wrapped processor.
    pub fn processor(&self) -> &P {
        &self.processor
    }

    /// The lifetime sums so far (`total_*`).
    pub fn lifetime_stats(&self) -> Stats {
        self.lifetime
            .lock()
            .map(|l| l.sums().clone())
            .unwrap_or_default()
    }

    /// Handles one Lambda event: the function's handler.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, HandlerError> {
        let (payload, context) = event.into_parts();
        let event: P::Event = serde_json::from_value(payload).map_err(|err| {
            HandlerError::non_retryable(format!("{}: the event is malformed: {err}", self.name))
        })?;
        let mut stats = Stats::new();
        stats.inc("processor_calls");
        let outcome = self.processor.process(event, &mut stats).await;
        let totals = self.absorb(&stats);
        match &outcome {
            Ok(_) => tracing::info!(
                function = %self.name, request_id = %context.request_id,
                stats = ?stats, totals = ?totals, "invocation done"
            ),
            Err(err) => tracing::error!(
                function = %self.name, request_id = %context.request_id,
                stats = ?stats, error = %err, retryable = err.is_retryable(), "invocation failed"
            ),
        }
        let output = outcome?;
        serde_json::to_value(output).map_err(|err| {
            HandlerError::non_retryable(format!("{}: cannot encode the result: {err}", self.name))
        })
    }

    fn absorb(&self, stats: &Stats) -> Stats {
        match self.lifetime.lock() {
            Ok(mut lifetime) => {
                lifetime.absorb(stats);
                lifetime.sums().clone()
            }
            // A poisoned lock only loses statistics, never work: carry on without them.
            Err(_) => Stats::new(),
        }
    }
}

/// Runs `processor` as this Lambda function until the runtime stops, named by
/// `AWS_LAMBDA_FUNCTION_NAME`.
pub async fn serve<P: Processor + 'static>(processor: P) -> Result<(), lambda_runtime::Error> {
    let service = ProcessorService::new(processor, function_name_or("sosw"));
    let service = &service;
    lambda_runtime::run(service_fn(move |event| async move {
        service.handle(event).await.map_err(diagnostic)
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use lambda_runtime::Context;
    use serde::Deserialize;
    use serde_json::json;
    use sosw_core::error::{Error, Result};

    #[test]
    fn handler_errors_become_retryable_or_non_retryable_diagnostics() {
        let d = diagnostic(HandlerError::from(Error::store(
            "SQLite", "claim", true, "busy",
        )));
        assert_eq!(d.error_type, "Retryable");
        assert!(d.error_message.contains("busy"), "{}", d.error_message);
        let d = diagnostic(HandlerError::from(Error::invalid("task id", "empty")));
        assert_eq!(d.error_type, "NonRetryable");
    }

    #[derive(Deserialize)]
    struct Add {
        a: u64,
        b: u64,
    }

    struct Adder;

    #[async_trait]
    impl Processor for Adder {
        type Event = Add;
        type Output = u64;
        async fn process(&self, event: Add, stats: &mut Stats) -> Result<u64> {
            stats.inc("additions");
            event
                .a
                .checked_add(event.b)
                .ok_or_else(|| Error::invalid("sum", "overflow"))
        }
    }

    #[tokio::test]
    async fn the_service_types_the_event_and_keeps_lifetime_totals() {
        let service = ProcessorService::new(Adder, "adder");
        let out = service
            .handle(LambdaEvent::new(
                json!({"a": 1, "b": 2}),
                Context::default(),
            ))
            .await
            .expect("adds");
        assert_eq!(out, json!(3));
        let err = service
            .handle(LambdaEvent::new(json!({"a": "x"}), Context::default()))
            .await
            .expect_err("malformed");
        assert!(
            !err.is_retryable() && err.message().contains("malformed"),
            "{err}"
        );
        let err = service
            .handle(LambdaEvent::new(
                json!({"a": u64::MAX, "b": 1}),
                Context::default(),
            ))
            .await
            .expect_err("overflow");
        assert_eq!(err.error_type(), "NonRetryable");
        let totals = service.lifetime_stats();
        assert_eq!(
            totals.get("total_processor_calls"),
            2,
            "both processed calls"
        );
        assert_eq!(totals.get("total_additions"), 2);
    }
}
