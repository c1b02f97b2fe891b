//! The Lambda handlers of the two essentials that need the invocation's deadline, which a
//! [`sosw_core::processor::Processor`] does not see: the scheduler (it hands the rest of a job on before the
//! deadline) and the orchestrator (it refills slots until the deadline). The worker assistant and the
//! scavenger run as processors, wrapped in a [`MeteredService`] that prints their metrics.
//!
//! Each handler is a plain `LambdaEvent<Value> -> Result<Value, HandlerError>` method: call it from a
//! test with `LambdaEvent::new(payload, Context::default())`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use lambda_runtime::{Context, LambdaEvent};
use serde::Serialize;
use serde_json::Value;
use sosw_core::clock::{Clock, SystemClock};
use sosw_core::essentials::orchestrator::Orchestrator;
use sosw_core::essentials::scheduler::{Scheduler, SiblingContinuation};
use sosw_core::processor::{HandlerError, Processor};

use crate::service::ProcessorService;
use sosw_core::siblings::SiblingsManager;
use sosw_core::store::TaskQueue;

use crate::metrics::{self, MetricSet, Metrics};

/// The time an invocation gets when its context carries no deadline (a direct call, a test):
/// 15 minutes, Lambda's longest timeout.
pub const NO_DEADLINE_BUDGET: Duration = Duration::from_secs(15 * 60);

/// The invocation's deadline from its context, or `now` + [`NO_DEADLINE_BUDGET`] when the context has
/// none (`deadline` 0, as in `Context::default()`).
pub fn deadline_of(context: &Context, now: DateTime<Utc>) -> DateTime<Utc> {
    let given = i64::try_from(context.deadline)
        .ok()
        .filter(|millis| *millis > 0)
        .and_then(|millis| Utc.timestamp_millis_opt(millis).single());
    given.unwrap_or_else(|| {
        now + chrono::Duration::from_std(NO_DEADLINE_BUDGET).unwrap_or(chrono::Duration::MAX)
    })
}

/// A result as the JSON Lambda returns.
fn to_output<T: Serialize>(function: &str, output: &T) -> Result<Value, HandlerError> {
    serde_json::to_value(output).map_err(|err| {
        HandlerError::non_retryable(format!("{function}: cannot encode the result: {err}"))
    })
}

/// Logs a failed invocation before it becomes the Lambda diagnostic.
fn failed(function: &str, context: &Context, err: sosw_core::Error) -> HandlerError {
    let err = HandlerError::from(err);
    tracing::error!(function, request_id = %context.request_id, retryable = err.is_retryable(),
        error = %err.message(), "invocation failed");
    err
}

/// The scheduler's handler: one job (or continuation) per event, written until the deadline.
#[derive(Debug)]
pub struct SchedulerHandler {
    scheduler: Scheduler,
    siblings: Option<Arc<SiblingsManager>>,
    clock: Arc<dyn Clock>,
    name: String,
    metrics: Metrics,
}

impl SchedulerHandler {
    /// A handler running `scheduler`, named `name` in logs, with no siblings: a job cut short by the
    /// deadline is continued by submitting it again.
    pub fn new(scheduler: Scheduler, name: impl Into<String>) -> Self {
        SchedulerHandler {
            scheduler,
            siblings: None,
            clock: Arc::new(SystemClock),
            name: name.into(),
            metrics: Metrics::off(),
        }
    }

    /// Prints each job's metrics through `metrics` (see [`crate::metrics`]).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Hands a job cut short on to a sibling invocation through `siblings` (sosw 0.7's
    /// `spawn_sibling`), as the continuation of each invocation's own event.
    pub fn with_siblings(mut self, siblings: Arc<SiblingsManager>) -> Self {
        self.siblings = Some(siblings);
        self
    }

    /// Reads "now" from `clock` (for the fallback deadline).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The scheduler it runs.
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// Handles one event: its [`sosw_core::essentials::scheduler::SchedulerReport`] as JSON.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, HandlerError> {
        let (payload, context) = event.into_parts();
        let deadline = deadline_of(&context, self.clock.now());
        let scheduler = match &self.siblings {
            None => self.scheduler.clone(),
            // The continuation carries this event's sibling generation, so it is built per event.
            Some(siblings) => {
                self.scheduler
                    .clone()
                    .with_continuation(Arc::new(SiblingContinuation::new(
                        Arc::clone(siblings),
                        payload.clone(),
                        context.invoked_function_arn.clone(),
                        false,
                    )))
            }
        };
        let report = scheduler
            .run(&payload, deadline)
            .await
            .map_err(|err| failed(&self.name, &context, err))?;
        tracing::info!(function = %self.name, request_id = %context.request_id,
            job_id = %report.job_id, written = report.written, outcome = ?report.outcome,
            "invocation done");
        let now = self.clock.now().timestamp_millis();
        self.metrics.emit(&metrics::scheduler_metrics(&report), now);
        to_output(&self.name, &report)
    }
}

/// The orchestrator's handler: one run per event (the schedule's event is not read).
pub struct OrchestratorHandler {
    orchestrator: Orchestrator,
    clock: Arc<dyn Clock>,
    name: String,
    metrics: Metrics,
    queue: Option<Arc<dyn TaskQueue>>,
}

impl std::fmt::Debug for OrchestratorHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrchestratorHandler")
            .field("name", &self.name)
            .field("metrics", &self.metrics)
            .field("queue_lengths", &self.queue.is_some())
            .finish_non_exhaustive()
    }
}

impl OrchestratorHandler {
    /// A handler running `orchestrator`, named `name` in logs.
    pub fn new(orchestrator: Orchestrator, name: impl Into<String>) -> Self {
        OrchestratorHandler {
            orchestrator,
            clock: Arc::new(SystemClock),
            name: name.into(),
            metrics: Metrics::off(),
            queue: None,
        }
    }

    /// Prints each run's metrics through `metrics` (see [`crate::metrics`]).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Counts each reported labourer's queue in `queue` after a run, for the `queue_length` metric.
    pub fn with_queue_lengths(mut self, queue: Arc<dyn TaskQueue>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// Reads "now" from `clock` (for the fallback deadline).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The orchestrator it runs.
    pub fn orchestrator(&self) -> &Orchestrator {
        &self.orchestrator
    }

    /// Handles one event: the run's [`sosw_core::essentials::orchestrator::OrchestratorReport`] as JSON.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, HandlerError> {
        let context = event.context;
        let deadline = deadline_of(&context, self.clock.now());
        let report = self
            .orchestrator
            .run(deadline)
            .await
            .map_err(|err| failed(&self.name, &context, err))?;
        if self.metrics.is_on() {
            let now = self.clock.now();
            let lengths = self
                .queue_lengths(report.labourers.keys(), now.timestamp())
                .await;
            let sets = metrics::orchestrator_metrics(&report, &lengths);
            self.metrics.emit(&sets, now.timestamp_millis());
        }
        to_output(&self.name, &report)
    }

    /// The queue length of each labourer that could be counted (a failed count is logged and left
    /// out: metrics never fail a run).
    async fn queue_lengths<'a>(
        &self,
        labourers: impl Iterator<Item = &'a String>,
        now: i64,
    ) -> BTreeMap<String, u64> {
        let mut lengths = BTreeMap::new();
        let Some(queue) = &self.queue else {
            return lengths;
        };
        for labourer in labourers {
            match queue.queue_length(labourer, now).await {
                Ok(length) => {
                    lengths.insert(labourer.clone(), length);
                }
                Err(err) => tracing::warn!(labourer = %labourer, error = %err,
                    "queue length not counted for the metrics"),
            }
        }
        lengths
    }
}

/// A [`Processor`] as a Lambda handler that also prints metrics from each answer: the scavenger and
/// the worker assistant on Lambda.
pub struct MeteredService<P> {
    service: ProcessorService<P>,
    metrics: Metrics,
    measure: fn(&Value) -> Vec<MetricSet>,
    clock: Arc<dyn Clock>,
}

impl<P> std::fmt::Debug for MeteredService<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeteredService")
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

impl<P: Processor> MeteredService<P> {
    /// `service`, printing `measure(answer)` through `metrics` after each successful invocation
    /// (e.g. [`metrics::scavenger_output_metrics`]).
    pub fn new(
        service: ProcessorService<P>,
        metrics: Metrics,
        measure: fn(&Value) -> Vec<MetricSet>,
    ) -> Self {
        MeteredService {
            service,
            metrics,
            measure,
            clock: Arc::new(SystemClock),
        }
    }

    /// The wrapped service.
    pub fn service(&self) -> &ProcessorService<P> {
        &self.service
    }

    /// Handles one event as [`ProcessorService::handle`] does, then prints its metrics.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, HandlerError> {
        let output = self.service.handle(event).await?;
        if self.metrics.is_on() {
            let sets = (self.measure)(&output);
            self.metrics
                .emit(&sets, self.clock.now().timestamp_millis());
        }
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_context_deadline_is_used_as_given() {
        let now = Utc
            .timestamp_opt(1_700_000_000, 0)
            .single()
            .unwrap_or_default();
        let mut context = Context::default();
        context.deadline = 1_700_000_060_500;
        assert_eq!(
            deadline_of(&context, now).timestamp_millis(),
            1_700_000_060_500
        );
    }

    #[test]
    fn a_context_without_deadline_gets_lambdas_longest_timeout() {
        let now = Utc
            .timestamp_opt(1_700_000_000, 0)
            .single()
            .unwrap_or_default();
        let deadline = deadline_of(&Context::default(), now);
        assert_eq!((deadline - now).num_seconds(), 900);
        let mut huge = Context::default();
        huge.deadline = u64::MAX;
        assert_eq!((deadline_of(&huge, now) - now).num_seconds(), 900);
    }
}
