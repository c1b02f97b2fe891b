//! The ecology manager: a labourer's health metrics in, its status 0-4 out.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::health::{aggregate, metric_status, validate_metric};
use super::{FULL_HEALTH, MetricRequest, MetricsSource};
use crate::clock::Clock;
use crate::config::MetricDefaults;
use crate::error::{Error, Result};
use crate::task::{Labourer, MetricQuery, Statistic};

/// What a metric without datapoints in its window counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoDataPolicy {
    /// It does not lower the labourer's status (as if the metric were absent). The default: CloudWatch
    /// sends no datapoints for periods in which nothing was recorded.
    #[default]
    Ignore,
    /// It counts as this status (values above 4 count as 4).
    Status(u8),
}

/// The metric values read during one run, so each distinct metric is fetched once per run however
/// many labourers use it (sosw 0.7 fetched on every use, bug B2). Make a new one per run.
#[derive(Debug, Default)]
pub struct HealthCache {
    values: HashMap<String, Option<f64>>,
}

impl HealthCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many distinct metrics were read.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no metric was read yet.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Computes labourer statuses from their health metrics (see [`crate::ecology`]).
pub struct EcologyManager {
    source: Arc<dyn MetricsSource>,
    defaults: MetricDefaults,
    clock: Arc<dyn Clock>,
    no_data: NoDataPolicy,
}

impl fmt::Debug for EcologyManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcologyManager")
            .field("defaults", &self.defaults)
            .field("no_data", &self.no_data)
            .finish_non_exhaustive()
    }
}

impl EcologyManager {
    /// A manager reading `source`, filling metric queries from `defaults`
    /// (`task_config.ecology_config.default_metric_values`), with windows ending at `clock`'s now.
    pub fn new(
        source: Arc<dyn MetricsSource>,
        defaults: MetricDefaults,
        clock: Arc<dyn Clock>,
    ) -> Self {
        EcologyManager {
            source,
            defaults,
            clock,
            no_data: NoDataPolicy::default(),
        }
    }

    /// Sets what a metric without datapoints counts as (default [`NoDataPolicy::Ignore`]).
    pub fn with_no_data_policy(mut self, policy: NoDataPolicy) -> Self {
        self.no_data = policy;
        self
    }

    /// The status of `labourer`: its configured `health` if any, else the worst status of its health
    /// metrics, else 4. Metric values come from `cache` or are fetched into it.
    pub async fn labourer_status(
        &self,
        labourer: &Labourer,
        cache: &mut HealthCache,
    ) -> Result<u8> {
        if let Some(fixed) = labourer.health {
            return Ok(fixed.min(FULL_HEALTH));
        }
        let mut status = FULL_HEALTH;
        for (name, metric) in &labourer.health_metrics {
            validate_metric(name, metric)?;
            let metric_status = match self.metric_value(&metric.details, cache).await? {
                Some(value) => metric_status(value, metric),
                None => match self.no_data {
                    NoDataPolicy::Ignore => FULL_HEALTH,
                    NoDataPolicy::Status(s) => s.min(FULL_HEALTH),
                },
            };
            tracing::debug!(labourer = %labourer.id, metric = %name, metric_status, "health metric");
            status = status.min(metric_status);
        }
        Ok(status)
    }

    /// The request for `query` now: its own keys, the defaults for the rest.
    pub fn request(&self, query: &MetricQuery) -> Result<MetricRequest> {
        let statistic = self.statistic(query)?;
        let end = self.clock.now();
        let slice = query
            .aggregation_time_slice
            .unwrap_or(self.defaults.aggregation_time_slice);
        Ok(MetricRequest {
            namespace: query.namespace.clone(),
            metric_name: query.metric_name.clone(),
            dimensions: query.dimensions.clone(),
            unit: query.unit.clone(),
            period_secs: query.period.unwrap_or(self.defaults.period),
            statistic,
            start: end - chrono::Duration::seconds(i64::from(slice)),
            end,
        })
    }

    /// Exactly one statistic is aggregated per metric, as in sosw 0.7.
    fn statistic(&self, query: &MetricQuery) -> Result<Statistic> {
        let statistics = query
            .statistics
            .as_deref()
            .unwrap_or(&self.defaults.statistics);
        match statistics {
            [one] => Ok(*one),
            [] if query.statistics.is_none() => Ok(Statistic::Average),
            other => Err(Error::invalid(
                "health metric",
                format!(
                    "`{}/{}` asks for {} statistics; exactly one is aggregated per metric",
                    query.namespace,
                    query.metric_name,
                    other.len()
                ),
            )),
        }
    }

    /// The aggregated value of `query` over its window, `None` without datapoints.
    async fn metric_value(
        &self,
        query: &MetricQuery,
        cache: &mut HealthCache,
    ) -> Result<Option<f64>> {
        let request = self.request(query)?;
        let key = cache_key(&request, query, &self.defaults)?;
        if let Some(value) = cache.values.get(&key) {
            return Ok(*value);
        }
        let datapoints = self.source.datapoints(&request).await?;
        let values: Vec<f64> = datapoints
            .iter()
            .map(|d| d.value)
            .filter(|v| v.is_finite())
            .collect();
        let value = aggregate(request.statistic, &values);
        if value.is_none() {
            tracing::info!(
                namespace = %request.namespace,
                metric = %request.metric_name,
                policy = ?self.no_data,
                "health metric has no datapoints in its window"
            );
        }
        cache.values.insert(key, value);
        Ok(value)
    }
}

/// What makes two metrics the same for the per-run cache: everything but the window's position.
fn cache_key(
    request: &MetricRequest,
    query: &MetricQuery,
    defaults: &MetricDefaults,
) -> Result<String> {
    let slice = query
        .aggregation_time_slice
        .unwrap_or(defaults.aggregation_time_slice);
    serde_json::to_string(&(
        &request.namespace,
        &request.metric_name,
        &request.dimensions,
        &request.unit,
        request.period_secs,
        request.statistic,
        slice,
    ))
    .map_err(|e| Error::invalid("health metric", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::ecology::FixedMetrics;
    use crate::task::HealthMetric;
    use serde_json::json;

    fn metric(name: &str, operator: &str, feelings: serde_json::Value) -> HealthMetric {
        serde_json::from_value(json!({
            "details": {"Namespace": "Test", "MetricName": name},
            "feelings": feelings,
            "feeling_comparison_operator": operator,
        }))
        .expect("a valid metric")
    }

    fn labourer_with(metrics: &[(&str, HealthMetric)]) -> Labourer {
        let mut labourer = Labourer::new("w1");
        for (name, m) in metrics {
            labourer.health_metrics.insert(name.to_string(), m.clone());
        }
        labourer
    }

    fn manager(source: Arc<FixedMetrics>) -> EcologyManager {
        EcologyManager::new(
            source,
            MetricDefaults::default(),
            Arc::new(ManualClock::at_secs(1_700_000_000)),
        )
    }

    #[tokio::test]
    async fn the_worst_metric_wins() {
        let cpu = metric("cpu", "<=", json!({"4": 25, "3": 50, "2": 75, "1": 90}));
        let free = metric("free", ">=", json!({"4": 100, "2": 10}));
        let source = Arc::new(FixedMetrics::new());
        source.set_for(&cpu.details, vec![20.0]);
        source.set_for(&free.details, vec![50.0]);
        let labourer = labourer_with(&[("cpu", cpu.clone()), ("free", free)]);
        let eco = manager(source.clone());
        let status = eco
            .labourer_status(&labourer, &mut HealthCache::new())
            .await
            .expect("status");
        assert_eq!(status, 2, "cpu says 4, free capacity says 2");
        source.set_for(&cpu.details, vec![95.0]);
        let status = eco
            .labourer_status(&labourer, &mut HealthCache::new())
            .await
            .expect("status");
        assert_eq!(status, 0);
    }

    #[tokio::test]
    async fn one_fetch_per_distinct_metric_per_run() {
        let cpu = metric("cpu", "<=", json!({"4": 25}));
        let other = metric("other", "<=", json!({"4": 25}));
        let source = Arc::new(FixedMetrics::new());
        let eco = manager(source.clone());
        let first = labourer_with(&[("cpu", cpu.clone()), ("other", other.clone())]);
        let mut second = labourer_with(&[("cpu_again", cpu)]);
        second.id = "w2".into();
        let mut cache = HealthCache::new();
        for labourer in [&first, &second, &first] {
            eco.labourer_status(labourer, &mut cache)
                .await
                .expect("status");
        }
        assert_eq!(source.fetches(), 2, "cpu and other, once each");
        assert_eq!(cache.len(), 2);
        eco.labourer_status(&first, &mut HealthCache::new())
            .await
            .expect("status");
        assert_eq!(source.fetches(), 4, "a new run fetches again");
    }

    #[tokio::test]
    async fn no_datapoints_follow_the_policy() {
        let cpu = metric("cpu", "<=", json!({"4": 25, "3": 50}));
        let labourer = labourer_with(&[("cpu", cpu)]);
        let source = Arc::new(FixedMetrics::new());
        let ignoring = manager(source.clone());
        let status = ignoring
            .labourer_status(&labourer, &mut HealthCache::new())
            .await
            .expect("status");
        assert_eq!(
            status, 4,
            "by default a silent metric does not lower health"
        );
        let cautious = manager(source).with_no_data_policy(NoDataPolicy::Status(1));
        let status = cautious
            .labourer_status(&labourer, &mut HealthCache::new())
            .await
            .expect("status");
        assert_eq!(status, 1);
    }

    #[tokio::test]
    async fn configured_health_wins_and_no_metrics_is_full_health() {
        let source = Arc::new(FixedMetrics::new());
        let eco = manager(source.clone());
        let mut labourer = labourer_with(&[("cpu", metric("cpu", "<=", json!({"4": 0})))]);
        labourer.health = Some(3);
        let mut cache = HealthCache::new();
        assert_eq!(
            eco.labourer_status(&labourer, &mut cache)
                .await
                .expect("status"),
            3
        );
        assert_eq!(source.fetches(), 0, "a configured health needs no metric");
        assert_eq!(
            eco.labourer_status(&Labourer::new("plain"), &mut cache)
                .await
                .expect("status"),
            4
        );
    }

    #[tokio::test]
    async fn requests_carry_the_defaults_and_the_window() {
        let eco = manager(Arc::new(FixedMetrics::new()));
        let mut cpu = metric("cpu", "<=", json!({"4": 1}));
        let request = eco.request(&cpu.details).expect("request");
        assert_eq!(request.period_secs, 60);
        assert_eq!(request.statistic, Statistic::Average);
        assert_eq!((request.end - request.start).num_seconds(), 300);
        assert_eq!(request.end.timestamp(), 1_700_000_000);
        cpu.details.statistics = Some(vec![Statistic::Sum, Statistic::Maximum]);
        let err = eco.request(&cpu.details).expect_err("two statistics");
        assert!(err.to_string().contains("exactly one"), "{err}");
        cpu.details.statistics = Some(vec![Statistic::SampleCount]);
        cpu.details.aggregation_time_slice = Some(600);
        cpu.details.period = Some(300);
        let request = eco.request(&cpu.details).expect("request");
        assert_eq!(request.statistic, Statistic::SampleCount);
        assert_eq!(request.period_secs, 300);
        assert_eq!((request.end - request.start).num_seconds(), 600);
    }

    #[tokio::test]
    async fn invalid_feelings_are_an_error_before_any_fetch() {
        let source = Arc::new(FixedMetrics::new());
        let eco = manager(source.clone());
        let labourer = labourer_with(&[("cpu", metric("cpu", "<=", json!({"7": 1})))]);
        let err = eco
            .labourer_status(&labourer, &mut HealthCache::new())
            .await
            .expect_err("invalid");
        assert!(err.to_string().contains("status 7"), "{err}");
        assert_eq!(source.fetches(), 0);
    }
}
