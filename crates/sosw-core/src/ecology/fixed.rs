//! Fixed metric values, set in code or config: the [`MetricsSource`] of local mode and tests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;

use super::{Datapoint, MetricRequest, MetricsSource};
use crate::error::{Error, Result};
use crate::task::{MetricDimension, MetricQuery};

/// One fixed metric in config: the metric's identity (the keys of a health metric's `details`) and the
/// datapoints to return for it, as `"value": 12.5` or `"values": [10, 15]`.
///
/// ```json
/// [{"Namespace": "AWS/RDS", "MetricName": "CPUUtilization",
///   "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "db"}], "value": 35}]
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixedMetric {
    /// CloudWatch namespace.
    #[serde(rename = "Namespace")]
    pub namespace: String,
    /// Metric name (`Name` accepted, as in health metrics).
    #[serde(rename = "MetricName", alias = "Name")]
    pub metric_name: String,
    /// Dimensions; their order does not matter.
    #[serde(rename = "Dimensions", default)]
    pub dimensions: Vec<MetricDimension>,
    /// One datapoint value.
    #[serde(default)]
    pub value: Option<f64>,
    /// Several datapoint values.
    #[serde(default)]
    pub values: Option<Vec<f64>>,
}

/// A metric's identity: namespace, name and dimensions sorted by name.
type Key = (String, String, Vec<(String, String)>);

fn key(namespace: &str, metric_name: &str, dimensions: &[MetricDimension]) -> Key {
    let mut dims: Vec<(String, String)> = dimensions
        .iter()
        .map(|d| (d.name.clone(), d.value.clone()))
        .collect();
    dims.sort();
    (namespace.to_string(), metric_name.to_string(), dims)
}

/// Returns the values set for each metric as its datapoints, whatever statistic and window are asked
/// for; a metric with no values set has no datapoints. Counts fetches, so tests can check that a run
/// reads each metric once.
#[derive(Debug, Default)]
pub struct FixedMetrics {
    values: Mutex<HashMap<Key, Vec<f64>>>,
    fetches: AtomicUsize,
}

impl FixedMetrics {
    /// No metric has values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Metrics from config: a JSON list of [`FixedMetric`]. Values must be finite.
    pub fn from_config(config: Value) -> Result<Self> {
        let entries: Vec<FixedMetric> = serde_json::from_value(config)
            .map_err(|e| Error::invalid("fixed metrics", e.to_string()))?;
        let metrics = FixedMetrics::new();
        for entry in entries {
            let values = match (entry.value, entry.values) {
                (Some(v), None) => vec![v],
                (None, Some(vs)) => vs,
                _ => {
                    return Err(Error::invalid(
                        "fixed metrics",
                        format!(
                            "`{}/{}` needs exactly one of `value` and `values`",
                            entry.namespace, entry.metric_name
                        ),
                    ));
                }
            };
            if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
                return Err(Error::invalid(
                    "fixed metrics",
                    format!(
                        "`{}/{}` has the value {bad}; values must be finite",
                        entry.namespace, entry.metric_name
                    ),
                ));
            }
            metrics.set(
                &entry.namespace,
                &entry.metric_name,
                &entry.dimensions,
                values,
            );
        }
        Ok(metrics)
    }

    /// Sets the datapoints of a metric (an empty list: no datapoints).
    pub fn set(
        &self,
        namespace: &str,
        metric_name: &str,
        dimensions: &[MetricDimension],
        values: Vec<f64>,
    ) {
        self.lock()
            .insert(key(namespace, metric_name, dimensions), values);
    }

    /// Sets the datapoints of the metric a health metric's `details` ask for.
    pub fn set_for(&self, query: &MetricQuery, values: Vec<f64>) {
        self.set(
            &query.namespace,
            &query.metric_name,
            &query.dimensions,
            values,
        );
    }

    /// Removes a metric's values: it has no datapoints again.
    pub fn clear_for(&self, query: &MetricQuery) {
        self.lock().remove(&key(
            &query.namespace,
            &query.metric_name,
            &query.dimensions,
        ));
    }

    /// How many times [`MetricsSource::datapoints`] was called.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Vec<f64>>> {
        // The map is always consistent (single inserts and removes), so a poisoned lock is still usable.
        self.values
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl MetricsSource for FixedMetrics {
    async fn datapoints(&self, request: &MetricRequest) -> Result<Vec<Datapoint>> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let key = key(
            &request.namespace,
            &request.metric_name,
            &request.dimensions,
        );
        let values = self.lock().get(&key).cloned().unwrap_or_default();
        Ok(values
            .into_iter()
            .map(|value| Datapoint {
                timestamp: None,
                value,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::Statistic;
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    fn request(dimensions: Vec<MetricDimension>) -> MetricRequest {
        let end = Utc.timestamp_opt(1_700_000_000, 0).single().expect("time");
        MetricRequest {
            namespace: "AWS/RDS".into(),
            metric_name: "CPUUtilization".into(),
            dimensions,
            unit: None,
            period_secs: 60,
            statistic: Statistic::Average,
            start: end - chrono::Duration::seconds(300),
            end,
        }
    }

    fn dim(name: &str, value: &str) -> MetricDimension {
        MetricDimension {
            name: name.into(),
            value: value.into(),
        }
    }

    #[tokio::test]
    async fn config_values_come_back_as_datapoints_whatever_the_dimension_order() {
        let metrics = FixedMetrics::from_config(json!([
            {"Namespace": "AWS/RDS", "MetricName": "CPUUtilization",
             "Dimensions": [{"Name": "a", "Value": "1"}, {"Name": "b", "Value": "2"}],
             "values": [10, 20]},
            {"Namespace": "AWS/RDS", "Name": "CPUUtilization", "value": 99}
        ]))
        .expect("valid config");
        let with_dims = request(vec![dim("b", "2"), dim("a", "1")]);
        let values: Vec<f64> = metrics
            .datapoints(&with_dims)
            .await
            .expect("fetch")
            .iter()
            .map(|d| d.value)
            .collect();
        assert_eq!(values, [10.0, 20.0]);
        let plain = metrics.datapoints(&request(vec![])).await.expect("fetch");
        assert_eq!(plain.len(), 1);
        assert_eq!(plain[0].value, 99.0);
        let other = metrics
            .datapoints(&request(vec![dim("a", "9")]))
            .await
            .expect("fetch");
        assert!(
            other.is_empty(),
            "a metric with no values has no datapoints"
        );
        assert_eq!(metrics.fetches(), 3);
    }

    #[test]
    fn bad_config_is_an_error_naming_the_metric() {
        for (config, expected) in [
            (
                json!([{"Namespace": "N", "MetricName": "M"}]),
                "exactly one",
            ),
            (
                json!([{"Namespace": "N", "MetricName": "M", "value": 1, "values": [1]}]),
                "exactly one",
            ),
            (
                json!([{"Namespace": "N", "MetricName": "M", "valeu": 1}]),
                "valeu",
            ),
            (json!({"Namespace": "N"}), "sequence"),
        ] {
            let err = FixedMetrics::from_config(config).expect_err("invalid");
            assert!(err.to_string().contains(expected), "{err}");
        }
    }
}
