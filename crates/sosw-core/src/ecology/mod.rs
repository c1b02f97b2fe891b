//! Ecology: how healthy a labourer's surroundings are, as a status from 0 (Bad) to 4 (High), and how
//! long its tasks take.
//!
//! * [`MetricsSource`] is the port health metrics are read through. Adapters: CloudWatch
//!   `GetMetricStatistics` (`sosw_aws::cloudwatch::CloudWatchMetrics`) and fixed values set in code
//!   or config ([`FixedMetrics`], for local mode and tests).
//! * [`EcologyManager`] turns a labourer's `health_metrics` into its status; the orchestrator
//!   multiplies the labourer's `max_simultaneous_invocations` by the coefficient of that status.
//!
//! How a status is computed (sosw 0.7's rules, with its bugs B2 and B6 fixed):
//! 1. each metric's datapoints are fetched over `MetricAggregationTimeSlice` seconds back from now,
//!    with its `Period` and its one statistic (defaults from `ecology_config.default_metric_values`),
//!    **once per distinct metric per run** however many labourers share it ([`HealthCache`]);
//! 2. the datapoints are aggregated: `Average` → mean, `Maximum` → max, `Minimum` → min, `Sum` → sum,
//!    `SampleCount` → sum ([`aggregate`]);
//! 3. the value is compared with the metric's `feelings` from status 4 down with its
//!    `feeling_comparison_operator` (`<`, `<=`, `>`, `>=`, `==`, or sosw 0.7's `le`, `__le__`, ...); the
//!    first status whose threshold holds is the metric's status, else 0 ([`metric_status`]);
//! 4. the labourer's status is the worst of its metrics' statuses; a labourer without metrics is 4; a
//!    configured `health` replaces the computation, as in sosw 0.7.
//!
//! **No datapoints.** CloudWatch returns none for a period in which nothing was recorded, which for
//! many metrics (errors, throttles) means "nothing happened". So by default a metric without
//! datapoints does not lower the status ([`NoDataPolicy::Ignore`]); [`NoDataPolicy::Status`] makes it
//! count as a fixed status instead (e.g. 0, to stop a labourer whose health cannot be seen). sosw 0.7
//! raised an error.
//!
//! **Errors.** A metric that cannot be fetched, or a metric with invalid feelings, is an error for its
//! labourer; the orchestrator skips that labourer for the run and reports why.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::task::{MetricDimension, Statistic};

pub mod adaptive;
mod durations;
pub mod fair;
mod fixed;
mod health;
mod manager;
pub mod rate;
pub mod simulation;

pub use durations::average_duration;
pub use fixed::{FixedMetric, FixedMetrics};
pub use health::{aggregate, metric_status, validate_metric};
pub use manager::{EcologyManager, HealthCache, NoDataPolicy};

/// The name of each status, by value: 0 Bad, 1 Poor, 2 Moderate, 3 Good, 4 High.
pub const STATUS_NAMES: [&str; 5] = ["Bad", "Poor", "Moderate", "Good", "High"];

/// The status of a labourer in full health (and of one without health metrics).
pub const FULL_HEALTH: u8 = 4;

/// One `GetMetricStatistics` request, with every default filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRequest {
    /// CloudWatch namespace, e.g. `AWS/DynamoDB`.
    pub namespace: String,
    /// Metric name.
    pub metric_name: String,
    /// Dimensions, in configured order.
    pub dimensions: Vec<MetricDimension>,
    /// Optional CloudWatch unit.
    pub unit: Option<String>,
    /// Granularity of the datapoints, in seconds.
    pub period_secs: u32,
    /// The one statistic asked for.
    pub statistic: Statistic,
    /// Start of the window (inclusive).
    pub start: DateTime<Utc>,
    /// End of the window (exclusive).
    pub end: DateTime<Utc>,
}

/// One datapoint: the value of the requested statistic over one period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Datapoint {
    /// Start of the period, when the source says.
    pub timestamp: Option<DateTime<Utc>>,
    /// The value of [`MetricRequest::statistic`].
    pub value: f64,
}

/// Where health metrics come from.
#[async_trait]
pub trait MetricsSource: Send + Sync {
    /// The datapoints of `request` in its window; an empty list when there are none.
    async fn datapoints(&self, request: &MetricRequest) -> Result<Vec<Datapoint>>;
}
