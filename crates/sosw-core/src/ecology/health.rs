//! Pure health arithmetic: aggregating datapoints and reading a value against a metric's feelings.

use crate::error::{Error, Result};
use crate::task::{HealthMetric, Statistic};

/// The value of `statistic` over `values` (the datapoints of one window): `Average` → mean,
/// `Maximum` → max, `Minimum` → min, `Sum` and `SampleCount` → sum. `None` for no values.
pub fn aggregate(statistic: Statistic, values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let sum = || values.iter().sum::<f64>();
    Some(match statistic {
        Statistic::Average => sum() / values.len() as f64,
        Statistic::Maximum => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Statistic::Minimum => values.iter().copied().fold(f64::INFINITY, f64::min),
        Statistic::Sum | Statistic::SampleCount => sum(),
    })
}

/// Checks a metric's feelings: at least one, statuses 0 to 4, finite thresholds. `name` is the
/// metric's key under `health_metrics`, for the message.
///
/// Unlike sosw 0.7 there is no ordering rule between thresholds: sosw 0.7's rule rejected every
/// `>`/`>=` metric with non-negative thresholds (bug B6). Evaluation from status 4 down is well defined
/// for any thresholds.
pub fn validate_metric(name: &str, metric: &HealthMetric) -> Result<()> {
    let problem = if metric.feelings.is_empty() {
        Some("has no feelings: give a threshold for at least one status 0-4".to_string())
    } else if let Some(status) = metric.feelings.keys().find(|s| **s > 4) {
        Some(format!(
            "has a feeling for status {status}; statuses are 0-4"
        ))
    } else {
        metric
            .feelings
            .iter()
            .find(|(_, t)| !t.is_finite())
            .map(|(s, t)| format!("has a threshold {t} for status {s}; thresholds must be finite"))
    };
    match problem {
        None => Ok(()),
        Some(message) => Err(Error::invalid(
            "health metric",
            format!("`{name}` {message}"),
        )),
    }
}

/// The status `value` earns against `metric`: the highest status whose threshold `value` satisfies
/// with the metric's operator, else 0. The metric must be valid ([`validate_metric`]).
pub fn metric_status(value: f64, metric: &HealthMetric) -> u8 {
    metric
        .feelings
        .iter()
        .rev()
        .find(|(_, threshold)| metric.feeling_comparison_operator.holds(value, **threshold))
        .map(|(status, _)| *status)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn metric(operator: &str, feelings: serde_json::Value) -> HealthMetric {
        serde_json::from_value(json!({
            "details": {"Namespace": "N", "MetricName": "M"},
            "feelings": feelings,
            "feeling_comparison_operator": operator,
        }))
        .expect("a valid metric")
    }

    #[test]
    fn every_statistic_aggregates_as_documented() {
        let values = [4.0, 1.0, 7.0];
        assert_eq!(aggregate(Statistic::Average, &values), Some(4.0));
        assert_eq!(aggregate(Statistic::Maximum, &values), Some(7.0));
        assert_eq!(aggregate(Statistic::Minimum, &values), Some(1.0));
        assert_eq!(aggregate(Statistic::Sum, &values), Some(12.0));
        assert_eq!(aggregate(Statistic::SampleCount, &values), Some(12.0));
        assert_eq!(aggregate(Statistic::Maximum, &[]), None);
    }

    #[test]
    fn sosw_07s_example_le_feelings() {
        let m = metric("__le__", json!({"3": 50, "4": 25}));
        assert_eq!(metric_status(10.0, &m), 4);
        assert_eq!(metric_status(25.0, &m), 4);
        assert_eq!(metric_status(40.0, &m), 3);
        assert_eq!(metric_status(51.0, &m), 0);
    }

    #[test]
    fn ge_and_gt_feelings_work_and_validate() {
        // Free capacity: more is better. sosw 0.7 rejected this shape (B6).
        let m = metric(">=", json!({"1": 10, "2": 20, "3": 30, "4": 40}));
        validate_metric("free", &m).expect("valid");
        assert_eq!(metric_status(45.0, &m), 4);
        assert_eq!(metric_status(30.0, &m), 3);
        assert_eq!(metric_status(29.9, &m), 2);
        assert_eq!(metric_status(5.0, &m), 0);
        let m = metric(">", json!({"4": 0}));
        assert_eq!(metric_status(0.0, &m), 0);
        assert_eq!(metric_status(0.5, &m), 4);
    }

    #[test]
    fn lt_and_eq_feelings() {
        let m = metric("<", json!({"4": 1, "2": 5}));
        assert_eq!(metric_status(0.0, &m), 4);
        assert_eq!(metric_status(1.0, &m), 2);
        assert_eq!(metric_status(5.0, &m), 0);
        let m = metric("==", json!({"4": 0}));
        assert_eq!(metric_status(0.0, &m), 4);
        assert_eq!(metric_status(1.0, &m), 0);
    }

    #[test]
    fn invalid_feelings_are_rejected_naming_the_metric() {
        let bad = [
            (metric("<=", json!({})), "no feelings"),
            (metric("<=", json!({"5": 1})), "status 5"),
        ];
        for (m, expected) in bad {
            let err = validate_metric("cpu", &m).expect_err("invalid");
            let text = err.to_string();
            assert!(text.contains("`cpu`") && text.contains(expected), "{text}");
        }
        let mut m = metric("<=", json!({"4": 1}));
        m.feelings.insert(3, f64::NAN);
        let err = validate_metric("cpu", &m).expect_err("NaN threshold");
        assert!(err.to_string().contains("finite"), "{err}");
    }
}
