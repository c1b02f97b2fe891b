//! Health drives the orchestrator: metric values pushed to the fixed source move a labourer through
//! every status 0-4 and its desired count with it; a metric without datapoints behaves as documented.

use crate::orchestrator_support;

use std::sync::Arc;

use serde_json::{Value, json};
use sosw::clock::{Clock, ManualClock};
use sosw::ecology::{FixedMetrics, NoDataPolicy};
use sosw::essentials::orchestrator::{
    ConfigFeed, LabourerReport, Orchestrator, OrchestratorSettings, RunMode,
};
use sosw::invoke::inprocess::{InProcessInvoker, handler_fn};
use sosw::task::MetricQuery;

use orchestrator_support::{T0, config, sqlite_with};

/// CPU-like metric: lower is better. Coefficients chosen so every status has its own desired count.
fn labourer_config() -> (Value, Value) {
    let labourers = json!({"w": {
        "max_simultaneous_invocations": 20,
        "health_metrics": {"cpu": {
            "details": {"Namespace": "AWS/RDS", "MetricName": "CPUUtilization",
                        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "db"}],
                        "Statistics": ["Maximum"]},
            "feelings": {"4": 20, "3": 40, "2": 60, "1": 80},
            "feeling_comparison_operator": "<="
        }}
    }});
    let coefficients = json!({"invocation_number_coefficient":
        {"0": 0, "1": 0.1, "2": 0.5, "3": 0.75, "4": 1}});
    (labourers, coefficients)
}

fn cpu_query() -> MetricQuery {
    serde_json::from_value(
        json!({"Namespace": "AWS/RDS", "MetricName": "CPUUtilization",
        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "db"}]}),
    )
    .expect("a valid query")
}

/// One single-pass run over 100 fresh queued tasks; the labourer's report entry.
async fn run_once(
    metrics: Arc<FixedMetrics>,
    feed: ConfigFeed,
    no_data: NoDataPolicy,
) -> LabourerReport {
    let store = sqlite_with("w", 100).await;
    let invoker = InProcessInvoker::new().register("w", handler_fn(|_| async {}));
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::at_secs(T0));
    let orchestrator = Orchestrator::new(store, Arc::new(invoker), metrics, feed, clock.clone())
        .with_settings(OrchestratorSettings {
            mode: RunMode::SinglePass,
            no_data,
            ..OrchestratorSettings::default()
        });
    let report = orchestrator
        .run(clock.now() + chrono::Duration::seconds(60))
        .await
        .expect("run");
    report.labourers["w"].clone()
}

#[tokio::test]
async fn pushed_values_drive_status_and_desired_count_through_every_status() {
    let (labourers, coefficients) = labourer_config();
    let metrics = Arc::new(FixedMetrics::new());
    // (datapoints, expected status, expected desired = floor(20 x coefficient))
    let cases = [
        (vec![5.0, 15.0], 4, 20),
        (vec![10.0, 35.0], 3, 15),
        (vec![55.0], 2, 10),
        (vec![30.0, 79.5], 1, 2),
        (vec![81.0, 10.0], 0, 0),
    ];
    for (values, status, desired) in cases {
        metrics.set_for(&cpu_query(), values.clone());
        let entry = run_once(
            metrics.clone(),
            config(labourers.clone(), coefficients.clone()),
            NoDataPolicy::default(),
        )
        .await;
        assert_eq!(entry.status, Some(status), "Maximum of {values:?}");
        assert_eq!(entry.desired, desired, "status {status}");
        assert_eq!(
            entry.invoked, desired,
            "status {status} invokes its desired count"
        );
    }
    assert_eq!(metrics.fetches(), 5, "one fetch per run");
}

#[tokio::test]
async fn a_metric_without_datapoints_is_ignored_by_default_or_counts_as_the_configured_status() {
    let (labourers, coefficients) = labourer_config();
    let metrics = Arc::new(FixedMetrics::new());
    let feed = || config(labourers.clone(), coefficients.clone());
    let ignored = run_once(metrics.clone(), feed(), NoDataPolicy::Ignore).await;
    assert_eq!((ignored.status, ignored.invoked), (Some(4), 20));
    let cautious = run_once(metrics.clone(), feed(), NoDataPolicy::Status(0)).await;
    assert_eq!((cautious.status, cautious.invoked), (Some(0), 0));
    let halved = run_once(metrics.clone(), feed(), NoDataPolicy::Status(2)).await;
    assert_eq!((halved.status, halved.desired), (Some(2), 10));
}

#[tokio::test]
async fn fixed_values_from_config_and_invalid_feelings_are_reported_per_labourer() {
    let (mut labourers, coefficients) = labourer_config();
    let metrics = Arc::new(
        FixedMetrics::from_config(
            json!([{"Namespace": "AWS/RDS", "MetricName": "CPUUtilization",
            "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "db"}], "value": 50}]),
        )
        .expect("valid fixed metrics"),
    );
    let entry = run_once(
        metrics.clone(),
        config(labourers.clone(), coefficients.clone()),
        NoDataPolicy::Ignore,
    )
    .await;
    assert_eq!((entry.status, entry.desired), (Some(2), 10));
    labourers["w"]["health_metrics"]["cpu"]["feelings"] = json!({"9": 1});
    let entry = run_once(
        metrics,
        config(labourers, coefficients),
        NoDataPolicy::Ignore,
    )
    .await;
    assert_eq!(entry.status, None);
    assert_eq!(
        entry.invoked, 0,
        "a labourer whose health cannot be read is not invoked"
    );
    assert!(entry.errors[0].contains("status 9"), "{:?}", entry.errors);
}
