//! Metrics in CloudWatch Embedded Metric Format (EMF), taken from each essential's run report.
//!
//! A [`ProcessorService`](crate::service::ProcessorService) prints them after each successful
//! invocation ([`ProcessorService::with_metrics`](crate::service::ProcessorService::with_metrics)):
//! each essential names its output metrics with a [`Meter`] of its report
//! ([`scheduler_metrics`], [`OrchestratorMeter`], [`scavenger_metrics`], [`assistant_metrics`]).
//!
//! Lambda sends every line a function prints to CloudWatch Logs; a line that is an EMF document
//! (a JSON object with an `_aws` member) also becomes CloudWatch metrics, with no `PutMetricData`
//! call, no extra permission and no latency added to the invocation. Each essential prints one line
//! per labourer it touched and one line for the whole invocation:
//!
//! * namespace: `SOSW_METRICS_NAMESPACE` (default [`DEFAULT_NAMESPACE`], `sosw`);
//! * dimensions: `function` (the Lambda's name) on every line, and `labourer_id` on the per-labourer
//!   lines, so each line is in exactly one dimension set: `[function, labourer_id]` or `[function]`;
//! * `SOSW_METRICS=false` turns the lines off.
//!
//! | essential | per labourer | per invocation |
//! |---|---|---|
//! | `sosw_orchestrator` | `queue_length`, `eco_status`, `desired`, `running`, `claimed`, `invoked`, `released`, `unknown`, `skipped`, `rate_limited`, `errors`, `labourer_ms` | `rounds`, `invoked`, `claimed`, `errors`, `run_ms` |
//! | `sosw_scavenger` | `completed`, `retried`, `dead`, `requeued`, `conflicts` | `jobs_finished`, `labourer_failures` |
//! | `sosw_scheduler` | `tasks_written`, `tasks_skipped`, `write_requests`, `payloads_stored`, `job_tasks`, `job_enqueued` | — |
//! | `sosw_worker_assistant` | — | `completed`, `retried`, `dead`, `failure_recorded`, `duplicate`, `not_found`, `cancelled`, `jobs_finished` (0 or 1 each) |
//!
//! `eco_status` is the ecology status 0-4 (absent when it could not be computed); `queue_length` is
//! the number of queued tasks at the end of the run, counted only when `SOSW_METRICS_QUEUE_LENGTHS`
//! is not `false`, and no further than `SOSW_METRICS_QUEUE_LENGTH_CAP` (100,000 by default; a deeper
//! queue reports the cap): on DynamoDB a count reads every item it counts, which costs read units in
//! proportion to the queue. Everything else is a count over the invocation.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sosw_core::essentials::orchestrator::OrchestratorReport;
use sosw_core::essentials::scavenger::ScavengerReport;
use sosw_core::essentials::scheduler::SchedulerReport;
use sosw_core::essentials::worker_assistant::{AssistantOutcome, AssistantReply};
use sosw_core::store::TaskQueue;

/// The namespace when `SOSW_METRICS_NAMESPACE` is not set.
pub const DEFAULT_NAMESPACE: &str = "sosw";

/// The dimension every line carries: the Lambda function's name.
pub const FUNCTION_DIMENSION: &str = "function";

/// The dimension of per-labourer lines.
pub const LABOURER_DIMENSION: &str = "labourer_id";

/// A CloudWatch unit, as EMF spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of things.
    Count,
    /// A duration.
    Milliseconds,
    /// A level or code (the ecology status).
    None,
}

impl Unit {
    /// The unit's name in CloudWatch.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::None => "None",
        }
    }
}

/// One value.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// The metric's name.
    pub name: &'static str,
    /// Its unit.
    pub unit: Unit,
    /// Its value.
    pub value: f64,
}

/// Metrics with the same dimensions: one EMF line.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricSet {
    /// The labourer they are about; `None` for the whole invocation.
    pub labourer_id: Option<String>,
    /// The values.
    pub metrics: Vec<Metric>,
}

impl MetricSet {
    /// An empty set about `labourer_id` (or the whole invocation).
    pub fn new(labourer_id: Option<&str>) -> Self {
        MetricSet {
            labourer_id: labourer_id.map(str::to_string),
            metrics: Vec::new(),
        }
    }

    /// Adds a count.
    pub fn count(mut self, name: &'static str, value: u64) -> Self {
        self.metrics.push(Metric {
            name,
            unit: Unit::Count,
            value: value as f64,
        });
        self
    }

    /// Adds a value in `unit`.
    pub fn value(mut self, name: &'static str, unit: Unit, value: f64) -> Self {
        self.metrics.push(Metric { name, unit, value });
        self
    }
}

/// Where the lines go.
#[derive(Debug, Clone)]
enum Sink {
    /// Nowhere: metrics are off.
    Off,
    /// The process's standard output (Lambda sends it to CloudWatch Logs).
    Stdout,
    /// A list, for tests.
    Memory(Arc<Mutex<Vec<String>>>),
}

/// Prints EMF lines for one function.
#[derive(Debug, Clone)]
pub struct Metrics {
    namespace: String,
    function: String,
    sink: Sink,
}

impl Metrics {
    /// Lines in `namespace` for `function`, printed to standard output.
    pub fn stdout(namespace: impl Into<String>, function: impl Into<String>) -> Self {
        Metrics {
            namespace: namespace.into(),
            function: function.into(),
            sink: Sink::Stdout,
        }
    }

    /// No lines at all.
    pub fn off() -> Self {
        Metrics {
            namespace: DEFAULT_NAMESPACE.into(),
            function: String::new(),
            sink: Sink::Off,
        }
    }

    /// Lines kept in memory, returned with the list they are appended to (for tests).
    pub fn in_memory(
        namespace: impl Into<String>,
        function: impl Into<String>,
    ) -> (Self, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let metrics = Metrics {
            namespace: namespace.into(),
            function: function.into(),
            sink: Sink::Memory(lines.clone()),
        };
        (metrics, lines)
    }

    /// The metrics `settings` ask for: stdout in their namespace, or off.
    #[cfg(feature = "essentials")]
    pub fn from_settings(settings: &crate::settings::Settings) -> Self {
        if settings.metrics_enabled {
            Metrics::stdout(&settings.metrics_namespace, &settings.function_name)
        } else {
            Metrics::off()
        }
    }

    /// Whether lines are printed anywhere.
    pub fn is_on(&self) -> bool {
        !matches!(self.sink, Sink::Off)
    }

    /// The EMF document of `set` at `timestamp_ms` (Unix milliseconds).
    pub fn document(&self, set: &MetricSet, timestamp_ms: i64) -> Value {
        let mut dimensions = vec![FUNCTION_DIMENSION];
        let mut root = Map::new();
        root.insert(FUNCTION_DIMENSION.into(), json!(self.function));
        if let Some(labourer) = &set.labourer_id {
            dimensions.push(LABOURER_DIMENSION);
            root.insert(LABOURER_DIMENSION.into(), json!(labourer));
        }
        let definitions: Vec<Value> = set
            .metrics
            .iter()
            .map(|m| json!({"Name": m.name, "Unit": m.unit.as_str()}))
            .collect();
        for metric in &set.metrics {
            root.insert(metric.name.into(), json!(metric.value));
        }
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dimensions],
                    "Metrics": definitions,
                }],
            }),
        );
        Value::Object(root)
    }

    /// Prints one line per non-empty set, stamped `timestamp_ms`.
    pub fn emit(&self, sets: &[MetricSet], timestamp_ms: i64) {
        if !self.is_on() {
            return;
        }
        for set in sets.iter().filter(|s| !s.metrics.is_empty()) {
            let line = self.document(set, timestamp_ms).to_string();
            match &self.sink {
                Sink::Off => {}
                // One write per line, so a log line printed at the same time cannot split it.
                Sink::Stdout => {
                    let _ = std::io::stdout()
                        .lock()
                        .write_all(format!("{line}\n").as_bytes());
                }
                Sink::Memory(lines) => {
                    if let Ok(mut lines) = lines.lock() {
                        lines.push(line);
                    }
                }
            }
        }
    }
}

/// The orchestrator's metrics: one set per labourer (with its queue length when counted) and one for
/// the run.
pub fn orchestrator_metrics(
    report: &OrchestratorReport,
    queue_lengths: &BTreeMap<String, u64>,
) -> Vec<MetricSet> {
    let mut sets: Vec<MetricSet> = report
        .labourers
        .iter()
        .map(|(id, l)| {
            let mut set = MetricSet::new(Some(id));
            if let Some(length) = queue_lengths.get(id) {
                set = set.count("queue_length", *length);
            }
            if let Some(status) = l.status {
                set = set.value("eco_status", Unit::None, f64::from(status));
            }
            set.count("desired", l.desired)
                .count("running", l.running)
                .count("claimed", l.claimed)
                .count("invoked", l.invoked)
                .count("released", l.released)
                .count("unknown", l.unknown)
                .count("skipped", l.skipped)
                .count("rate_limited", l.rate_limited)
                .count("errors", l.error_count)
                .value("labourer_ms", Unit::Milliseconds, l.elapsed_ms as f64)
        })
        .collect();
    let run_ms = (report.finished_at - report.started_at).num_milliseconds();
    sets.push(
        MetricSet::new(None)
            .count("rounds", u64::from(report.rounds))
            .count("invoked", report.invoked())
            .count("claimed", report.claimed())
            .count("errors", report.error_count())
            .value("run_ms", Unit::Milliseconds, run_ms as f64),
    );
    sets
}

/// The scavenger's metrics: what it did per labourer, and per run.
pub fn scavenger_metrics(report: &ScavengerReport) -> Vec<MetricSet> {
    let mut sets: Vec<MetricSet> = report
        .labourers
        .iter()
        .map(|(id, l)| {
            MetricSet::new(Some(id))
                .count("completed", l.archived)
                .count("retried", l.scheduled_for_retry)
                .count("dead", l.dead)
                .count("requeued", l.requeued)
                .count("conflicts", l.conflicts)
        })
        .collect();
    sets.push(
        MetricSet::new(None)
            .count("jobs_finished", report.jobs_finished.len() as u64)
            .count("labourer_failures", report.failures.len() as u64),
    );
    sets
}

/// The scheduler's metrics: one set for the job's labourer.
pub fn scheduler_metrics(report: &SchedulerReport) -> Vec<MetricSet> {
    vec![
        MetricSet::new(Some(&report.labourer_id))
            .count("tasks_written", report.written as u64)
            .count("tasks_skipped", report.skipped_existing as u64)
            .count("write_requests", report.write_requests as u64)
            .count("payloads_stored", report.payloads_stored as u64)
            .count("job_tasks", report.total)
            .count("job_enqueued", report.enqueued),
    ]
}

/// The worker assistant's metrics: one set per report, each outcome 0 or 1, so `Sum` over a period
/// counts them. The report names only the task, so there is no labourer dimension.
pub fn assistant_metrics(reply: &AssistantReply) -> Vec<MetricSet> {
    let is = |hit: bool| u64::from(hit);
    let outcome = &reply.outcome;
    vec![
        MetricSet::new(None)
            .count(
                "completed",
                is(matches!(outcome, AssistantOutcome::Completed { .. })),
            )
            .count(
                "retried",
                is(matches!(outcome, AssistantOutcome::RetryScheduled { .. })),
            )
            .count("dead", is(matches!(outcome, AssistantOutcome::Dead)))
            .count(
                "failure_recorded",
                is(matches!(outcome, AssistantOutcome::FailureRecorded)),
            )
            .count(
                "duplicate",
                is(matches!(outcome, AssistantOutcome::Duplicate)),
            )
            .count(
                "not_found",
                is(matches!(outcome, AssistantOutcome::NotFound)),
            )
            .count(
                "cancelled",
                is(matches!(outcome, AssistantOutcome::Cancelled)),
            )
            .count("jobs_finished", is(reply.job_finished)),
    ]
}

/// The metrics of one invocation's output `O`: what an essential names as its output metrics.
///
/// Any `Fn(&O) -> Vec<MetricSet>` is a meter ([`scheduler_metrics`], [`scavenger_metrics`],
/// [`assistant_metrics`]); [`OrchestratorMeter`] also reads the queues.
#[async_trait]
pub trait Meter<O: Sync>: Send + Sync {
    /// The sets to print for `output`, produced at `now`.
    async fn measure(&self, output: &O, now: DateTime<Utc>) -> Vec<MetricSet>;
}

#[async_trait]
impl<O, F> Meter<O> for F
where
    O: Sync,
    F: Fn(&O) -> Vec<MetricSet> + Send + Sync,
{
    async fn measure(&self, output: &O, _now: DateTime<Utc>) -> Vec<MetricSet> {
        self(output)
    }
}

/// The orchestrator's meter: [`orchestrator_metrics`], with each reported labourer's queue length
/// when it has a queue to count ([`OrchestratorMeter::with_queue_lengths`]).
#[derive(Default)]
pub struct OrchestratorMeter {
    queue: Option<Arc<dyn TaskQueue>>,
    /// How far each queue is counted.
    cap: u64,
}

impl std::fmt::Debug for OrchestratorMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrchestratorMeter")
            .field("queue_lengths", &self.queue.is_some())
            .field("cap", &self.cap)
            .finish()
    }
}

impl OrchestratorMeter {
    /// No queue lengths.
    pub fn new() -> Self {
        OrchestratorMeter::default()
    }

    /// Counts each reported labourer's queue in `queue` after a run, for the `queue_length` metric,
    /// no further than `cap` (a deeper queue is reported as `cap`).
    pub fn with_queue_lengths(mut self, queue: Arc<dyn TaskQueue>, cap: u64) -> Self {
        self.queue = Some(queue);
        self.cap = cap;
        self
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
            match queue.queue_length_up_to(labourer, now, self.cap).await {
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

#[async_trait]
impl Meter<OrchestratorReport> for OrchestratorMeter {
    async fn measure(&self, report: &OrchestratorReport, now: DateTime<Utc>) -> Vec<MetricSet> {
        let lengths = self
            .queue_lengths(report.labourers.keys(), now.timestamp())
            .await;
        orchestrator_metrics(report, &lengths)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sosw_core::essentials::scavenger::LabourerReport;
    use sosw_core::task::TaskId;

    fn lines_of(metrics: &Metrics, sets: &[MetricSet]) -> Vec<Value> {
        let (capture, lines) = Metrics::in_memory(&metrics.namespace, &metrics.function);
        capture.emit(sets, 1_700_000_000_123);
        let lines = lines.lock().map(|l| l.clone()).unwrap_or_default();
        lines
            .iter()
            .map(|line| serde_json::from_str(line).unwrap_or(Value::Null))
            .collect()
    }

    /// Checks one EMF document: the directive names every metric, each metric has a number at the
    /// root, and each dimension has a string at the root. Returns the directive's dimension set.
    fn check_emf(doc: &Value, namespace: &str) -> Vec<String> {
        let aws = &doc["_aws"];
        assert_eq!(aws["Timestamp"], 1_700_000_000_123_i64, "{doc}");
        let directives = aws["CloudWatchMetrics"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(directives.len(), 1, "{doc}");
        let directive = &directives[0];
        assert_eq!(directive["Namespace"], namespace, "{doc}");
        let dimension_sets = directive["Dimensions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(dimension_sets.len(), 1, "one dimension set: {doc}");
        let dimensions: Vec<String> = dimension_sets[0]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str().map(str::to_string))
            .collect();
        for dimension in &dimensions {
            assert!(doc[dimension].is_string(), "dimension {dimension}: {doc}");
        }
        let definitions = directive["Metrics"].as_array().cloned().unwrap_or_default();
        assert!(!definitions.is_empty(), "{doc}");
        for definition in &definitions {
            let name = definition["Name"].as_str().unwrap_or_default();
            assert!(doc[name].is_number(), "metric {name} has no value: {doc}");
            assert!(
                ["Count", "Milliseconds", "None"]
                    .contains(&definition["Unit"].as_str().unwrap_or("")),
                "{definition}"
            );
        }
        dimensions
    }

    #[test]
    fn a_labourer_set_becomes_one_emf_line_with_both_dimensions() {
        let metrics = Metrics::stdout("team/sosw", "sosw_scavenger");
        let sets =
            [MetricSet::new(Some("w1"))
                .count("completed", 7)
                .value("eco_status", Unit::None, 3.0)];
        let docs = lines_of(&metrics, &sets);
        assert_eq!(docs.len(), 1);
        let doc = &docs[0];
        assert_eq!(check_emf(doc, "team/sosw"), ["function", "labourer_id"]);
        assert_eq!(
            (doc["function"].as_str(), doc["labourer_id"].as_str()),
            (Some("sosw_scavenger"), Some("w1"))
        );
        assert_eq!(
            (doc["completed"].as_f64(), doc["eco_status"].as_f64()),
            (Some(7.0), Some(3.0))
        );
        let units: Vec<&str> = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["Unit"].as_str())
            .collect();
        assert_eq!(units, ["Count", "None"]);
    }

    #[test]
    fn empty_sets_print_nothing_and_metrics_off_print_nothing_at_all() {
        let metrics = Metrics::stdout(DEFAULT_NAMESPACE, "f");
        assert!(lines_of(&metrics, &[MetricSet::new(None)]).is_empty());
        assert!(!Metrics::off().is_on());
        // `off` has no sink: emitting must not fail or print.
        Metrics::off().emit(&[MetricSet::new(None).count("x", 1)], 0);
    }

    #[test]
    fn scavenger_metrics_map_the_report_per_labourer_and_per_run() {
        let mut report = ScavengerReport::default();
        report.labourers.insert(
            "w".into(),
            LabourerReport {
                archived: 4,
                scheduled_for_retry: 2,
                dead: 1,
                requeued: 3,
                conflicts: 0,
                cancelled: 0,
            },
        );
        report.jobs_finished.push("job-1".into());
        let docs = lines_of(
            &Metrics::stdout(DEFAULT_NAMESPACE, "sosw_scavenger"),
            &scavenger_metrics(&report),
        );
        assert_eq!(docs.len(), 2, "{docs:?}");
        assert_eq!(check_emf(&docs[0], "sosw"), ["function", "labourer_id"]);
        let w = &docs[0];
        let got: Vec<f64> = ["completed", "retried", "dead", "requeued", "conflicts"]
            .iter()
            .filter_map(|k| w[*k].as_f64())
            .collect();
        assert_eq!(got, [4.0, 2.0, 1.0, 3.0, 0.0]);
        assert_eq!(check_emf(&docs[1], "sosw"), ["function"]);
        assert_eq!(docs[1]["jobs_finished"], 1.0);
        assert_eq!(docs[1]["labourer_failures"], 0.0);
    }

    #[test]
    fn an_assistant_reply_counts_its_one_outcome() {
        let reply = AssistantReply {
            task_id: TaskId::new("t1").unwrap_or_else(|_| unreachable!("a valid id")),
            outcome: AssistantOutcome::RetryScheduled {
                desired_launch_time: 1_700_000_900,
            },
            job_finished: false,
            notify_error: None,
        };
        let docs = lines_of(
            &Metrics::stdout(DEFAULT_NAMESPACE, "sosw_worker_assistant"),
            &assistant_metrics(&reply),
        );
        let [doc] = docs.as_slice() else {
            panic!("one line expected: {docs:?}")
        };
        assert_eq!(check_emf(doc, "sosw"), ["function"]);
        let ones: Vec<&str> = [
            "completed",
            "retried",
            "dead",
            "failure_recorded",
            "duplicate",
            "not_found",
            "cancelled",
            "jobs_finished",
        ]
        .into_iter()
        .filter(|k| doc[*k] == 1.0)
        .collect();
        assert_eq!(ones, ["retried"]);
    }

    #[test]
    fn orchestrator_metrics_carry_queue_length_and_eco_status_per_labourer() {
        use sosw_core::essentials::orchestrator::LabourerReport as Orchestrated;
        let started_at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default();
        let mut report = OrchestratorReport {
            started_at,
            finished_at: started_at + chrono::Duration::milliseconds(1500),
            rounds: 2,
            labourers: BTreeMap::new(),
        };
        let busy = Orchestrated {
            status: Some(3),
            desired: 6,
            running: 2,
            claimed: 4,
            invoked: 4,
            ..Orchestrated::default()
        };
        report.labourers.insert("busy".into(), busy);
        // No status: the ecology could not be computed, so no eco_status value is invented.
        report
            .labourers
            .insert("sick".into(), Orchestrated::default());
        let lengths = BTreeMap::from([("busy".to_string(), 120_u64)]);
        let docs = lines_of(
            &Metrics::stdout("sosw", "sosw_orchestrator"),
            &orchestrator_metrics(&report, &lengths),
        );
        assert_eq!(docs.len(), 3, "{docs:?}");
        for doc in &docs[..2] {
            assert_eq!(check_emf(doc, "sosw"), ["function", "labourer_id"]);
        }
        let busy = &docs[0];
        assert_eq!(busy["labourer_id"], "busy");
        let got: Vec<f64> = [
            "queue_length",
            "eco_status",
            "desired",
            "running",
            "invoked",
        ]
        .iter()
        .filter_map(|k| busy[*k].as_f64())
        .collect();
        assert_eq!(got, [120.0, 3.0, 6.0, 2.0, 4.0]);
        let sick = &docs[1];
        assert!(
            sick.get("eco_status").is_none() && sick.get("queue_length").is_none(),
            "{sick}"
        );
        assert_eq!(check_emf(&docs[2], "sosw"), ["function"]);
        assert_eq!(
            (docs[2]["rounds"].as_f64(), docs[2]["run_ms"].as_f64()),
            (Some(2.0), Some(1500.0))
        );
        assert_eq!(docs[2]["invoked"], 4.0);
    }
}
