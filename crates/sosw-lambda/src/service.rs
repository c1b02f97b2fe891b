//! A [`Processor`] on Lambda: [`ProcessorService`] types the event, builds the [`Invocation`] (the
//! deadline from the Lambda context, the request id, the function's ARN, fresh stats), counts stats
//! per invocation and for the container's life, logs, prints the processor's EMF metrics
//! ([`ProcessorService::with_metrics`]), and turns errors into `Retryable` / `NonRetryable`
//! diagnostics; [`serve`] and [`ProcessorService::serve`] run it on `lambda_runtime`.
//!
//! Every sosw function is one of these: the four essentials (see `crate::essential`) and any
//! processor of your own.
//!
//! ```no_run
//! # async fn demo(assistant: sosw_core::essentials::worker_assistant::WorkerAssistant)
//! #     -> Result<(), lambda_runtime::Error> {
//! sosw_lambda::service::serve(assistant).await
//! # }
//! ```

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use lambda_runtime::{Context, Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use sosw_core::clock::{Clock, SystemClock};
use sosw_core::processor::{
    HandlerError, Invocation, LifetimeStats, Processor, Stats, function_name_or,
};

use crate::metrics::{Meter, Metrics};

/// `err` as the diagnostic Lambda records: `errorType` `Retryable` or `NonRetryable`, and the message.
pub fn diagnostic(err: HandlerError) -> Diagnostic {
    Diagnostic {
        error_type: err.error_type().to_string(),
        error_message: err.message().to_string(),
    }
}

/// The invocation a Lambda `context` describes, at `now`: its deadline (or `now` +
/// [`sosw_core::processor::NO_DEADLINE_BUDGET`] when it has none, as `Context::default()`), its
/// request id and the ARN it was invoked as.
pub fn invocation_of(context: &Context, now: DateTime<Utc>) -> Invocation {
    Invocation::from_deadline_millis(context.deadline, now)
        .with_request_id(&context.request_id)
        .with_function_arn(&context.invoked_function_arn)
}

/// A [`Processor`] as a Lambda handler: typed event, the invocation's context, per-invocation stats,
/// lifetime sums, logs and metrics.
pub struct ProcessorService<P: Processor> {
    processor: P,
    name: String,
    lifetime: Mutex<LifetimeStats>,
    clock: Arc<dyn Clock>,
    metrics: Metrics,
    meter: Option<Box<dyn Meter<P::Output>>>,
}

impl<P: Processor + std::fmt::Debug> std::fmt::Debug for ProcessorService<P>
where
    P::Output: Sync,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessorService")
            .field("processor", &self.processor)
            .field("name", &self.name)
            .field("metrics", &self.metrics)
            .field("metered", &self.meter.is_some())
            .finish_non_exhaustive()
    }
}

impl<P: Processor> ProcessorService<P>
where
    P::Output: Sync,
{
    /// Wraps `processor`, named `name` in logs (usually the function name), with no metrics.
    pub fn new(processor: P, name: impl Into<String>) -> Self {
        ProcessorService {
            processor,
            name: name.into(),
            lifetime: Mutex::new(LifetimeStats::default()),
            clock: Arc::new(SystemClock),
            metrics: Metrics::off(),
            meter: None,
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

    /// After each successful invocation, prints what `meter` makes of the output through `metrics`
    /// (see [`crate::metrics`]).
    pub fn with_metrics(
        mut self,
        metrics: Metrics,
        meter: impl Meter<P::Output> + 'static,
    ) -> Self {
        self.metrics = metrics;
        self.meter = Some(Box::new(meter));
        self
    }

    /// Reads "now" from `clock` (for the fallback deadline and the metrics' timestamps).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
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
        let mut invocation = invocation_of(&context, self.clock.now());
        invocation.stats.inc("processor_calls");
        let outcome = self.processor.process(event, &mut invocation).await;
        let stats = &invocation.stats;
        let totals = self.absorb(stats);
        match &outcome {
            Ok(_) => tracing::info!(
                function = %self.name, request_id = %context.request_id,
                stats = ?stats, totals = ?totals, "invocation done"
            ),
            Err(err) => tracing::error!(
                function = %self.name, request_id = %context.request_id,
                stats = ?stats, error = %err.with_causes(), retryable = err.is_retryable(), "invocation failed"
            ),
        }
        let output = outcome?;
        self.measure(&output).await;
        serde_json::to_value(output).map_err(|err| {
            HandlerError::non_retryable(format!("{}: cannot encode the result: {err}", self.name))
        })
    }

    /// Runs this service as the Lambda function until the runtime stops.
    pub async fn serve(self) -> Result<(), lambda_runtime::Error> {
        let service = &self;
        lambda_runtime::run(service_fn(move |event| async move {
            service.handle(event).await.map_err(diagnostic)
        }))
        .await
    }

    /// Prints the output's metrics, if metered and on.
    async fn measure(&self, output: &P::Output) {
        let Some(meter) = &self.meter else { return };
        if !self.metrics.is_on() {
            return;
        }
        let now = self.clock.now();
        let sets = meter.measure(output, now).await;
        self.metrics.emit(&sets, now.timestamp_millis());
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
pub async fn serve<P: Processor + 'static>(processor: P) -> Result<(), lambda_runtime::Error>
where
    P::Output: Sync,
{
    ProcessorService::new(processor, function_name_or("sosw"))
        .serve()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
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
        async fn process(&self, event: Add, invocation: &mut Invocation) -> Result<u64> {
            invocation.stats.inc("additions");
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

    /// Sees the invocation it is given.
    struct Deadline;

    #[async_trait]
    impl Processor for Deadline {
        type Event = Value;
        type Output = (i64, String, String);
        async fn process(
            &self,
            _event: Value,
            invocation: &mut Invocation,
        ) -> Result<(i64, String, String)> {
            Ok((
                invocation.deadline.timestamp_millis(),
                invocation.request_id.clone(),
                invocation.function_arn.clone(),
            ))
        }
    }

    #[tokio::test]
    async fn the_processor_sees_the_lambda_contexts_deadline_request_and_arn() {
        let mut context = Context::default();
        context.deadline = 1_700_000_060_500;
        context.request_id = "req-1".into();
        context.invoked_function_arn = "arn:aws:lambda:eu-west-1:1:function:f".into();
        let service = ProcessorService::new(Deadline, "deadline");
        let out = service
            .handle(LambdaEvent::new(json!({}), context))
            .await
            .expect("answers");
        assert_eq!(
            out,
            json!([
                1_700_000_060_500_i64,
                "req-1",
                "arn:aws:lambda:eu-west-1:1:function:f"
            ])
        );
    }

    #[tokio::test]
    async fn metrics_are_printed_from_the_typed_output_after_success_only() {
        use crate::metrics::MetricSet;
        let (metrics, lines) = Metrics::in_memory("ns", "adder");
        let service = ProcessorService::new(Adder, "adder").with_metrics(metrics, |sum: &u64| {
            vec![MetricSet::new(None).count("sum", *sum)]
        });
        service
            .handle(LambdaEvent::new(
                json!({"a": 2, "b": 3}),
                Context::default(),
            ))
            .await
            .expect("adds");
        let _ = service
            .handle(LambdaEvent::new(
                json!({"a": u64::MAX, "b": 1}),
                Context::default(),
            ))
            .await;
        let lines = lines.lock().map(|l| l.clone()).unwrap_or_default();
        assert_eq!(lines.len(), 1, "{lines:?}");
        let doc: Value = serde_json::from_str(&lines[0]).unwrap_or_default();
        assert_eq!(
            (doc["sum"].as_f64(), doc["function"].as_str()),
            (Some(5.0), Some("adder"))
        );
    }
}
