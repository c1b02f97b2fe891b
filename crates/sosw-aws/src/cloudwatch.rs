//! The CloudWatch [`MetricsSource`]: `GetMetricStatistics` with sosw 0.7's request shape.
//!
//! One request per metric: `Namespace`, `MetricName`, `Dimensions`, `Period`, exactly one of
//! `Statistics`, optional `Unit`, and the window `[now - MetricAggregationTimeSlice, now)` as
//! `StartTime`/`EndTime`. Every statistic sosw aggregates is read back, `Sum` and `SampleCount`
//! included (sosw 0.7 supported only `Average`, `Maximum` and `Minimum`, bug B6).

use async_trait::async_trait;
use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::error::{DisplayErrorContext, SdkError};
use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{Datapoint as AwsDatapoint, Dimension, StandardUnit};
use chrono::{DateTime, TimeZone, Utc};

use sosw_core::ecology::{Datapoint, MetricRequest, MetricsSource};
use sosw_core::error::{Error, Result};
use sosw_core::task::Statistic;

/// Reads health metrics from CloudWatch.
#[derive(Debug, Clone)]
pub struct CloudWatchMetrics {
    client: Client,
}

impl CloudWatchMetrics {
    /// A source over `client`.
    pub fn new(client: Client) -> Self {
        CloudWatchMetrics { client }
    }

    /// A source with a client built from `config` (region, credentials, endpoint such as
    /// `AWS_ENDPOINT_URL`).
    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(config))
    }
}

#[async_trait]
impl MetricsSource for CloudWatchMetrics {
    async fn datapoints(&self, request: &MetricRequest) -> Result<Vec<Datapoint>> {
        let mut call = self
            .client
            .get_metric_statistics()
            .namespace(&request.namespace)
            .metric_name(&request.metric_name)
            .start_time(aws_time(request.start))
            .end_time(aws_time(request.end))
            .period(i32::try_from(request.period_secs).unwrap_or(i32::MAX))
            .statistics(aws_statistic(request.statistic));
        for d in &request.dimensions {
            call = call.dimensions(Dimension::builder().name(&d.name).value(&d.value).build());
        }
        if let Some(unit) = &request.unit {
            call = call.unit(StandardUnit::from(unit.as_str()));
        }
        let output = call.send().await.map_err(|e| {
            let retryable = retryable(&e);
            Error::Service {
                service: "CloudWatch",
                operation: "GetMetricStatistics",
                retryable,
                source: DisplayErrorContext(e).to_string().into(),
            }
        })?;
        Ok(output
            .datapoints()
            .iter()
            .filter_map(|d| datapoint(d, request.statistic))
            .collect())
    }
}

fn aws_time(t: DateTime<Utc>) -> AwsDateTime {
    AwsDateTime::from_millis(t.timestamp_millis())
}

fn aws_statistic(statistic: Statistic) -> aws_sdk_cloudwatch::types::Statistic {
    use aws_sdk_cloudwatch::types::Statistic as Aws;
    match statistic {
        Statistic::Average => Aws::Average,
        Statistic::Maximum => Aws::Maximum,
        Statistic::Minimum => Aws::Minimum,
        Statistic::Sum => Aws::Sum,
        Statistic::SampleCount => Aws::SampleCount,
    }
}

/// The requested statistic's value of one datapoint; a datapoint without it is skipped.
fn datapoint(d: &AwsDatapoint, statistic: Statistic) -> Option<Datapoint> {
    let value = match statistic {
        Statistic::Average => d.average(),
        Statistic::Maximum => d.maximum(),
        Statistic::Minimum => d.minimum(),
        Statistic::Sum => d.sum(),
        Statistic::SampleCount => d.sample_count(),
    }?;
    let timestamp = d
        .timestamp()
        .and_then(|t| t.to_millis().ok())
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
    Some(Datapoint { timestamp, value })
}

/// Throttling, server errors and transport failures may succeed later.
fn retryable<E>(e: &SdkError<E, aws_sdk_cloudwatch::config::http::HttpResponse>) -> bool {
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            status == 429 || status >= 500
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_cloudwatch::operation::get_metric_statistics::GetMetricStatisticsOutput;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use chrono::TimeZone;

    use sosw_core::task::MetricDimension;

    fn request(statistic: Statistic) -> MetricRequest {
        let end = Utc
            .timestamp_opt(1_700_000_000, 0)
            .single()
            .expect("a valid time");
        MetricRequest {
            namespace: "AWS/RDS".into(),
            metric_name: "CPUUtilization".into(),
            dimensions: vec![MetricDimension {
                name: "DBInstanceIdentifier".into(),
                value: "db".into(),
            }],
            unit: Some("Percent".into()),
            period_secs: 60,
            statistic,
            start: end - chrono::Duration::seconds(300),
            end,
        }
    }

    fn point(sum: f64, count: f64, minute: i64) -> AwsDatapoint {
        AwsDatapoint::builder()
            .timestamp(AwsDateTime::from_secs(1_700_000_000 - 60 * minute))
            .sum(sum)
            .sample_count(count)
            .build()
    }

    #[tokio::test]
    async fn the_request_has_sosw_07s_shape_with_one_statistic_and_the_window() {
        let rule = mock!(Client::get_metric_statistics)
            .match_requests(|r| {
                r.namespace() == Some("AWS/RDS")
                    && r.metric_name() == Some("CPUUtilization")
                    && r.period() == Some(60)
                    && r.statistics() == [aws_sdk_cloudwatch::types::Statistic::Sum]
                    && r.extended_statistics().is_empty()
                    && r.start_time().map(|t| t.secs()) == Some(1_700_000_000 - 300)
                    && r.end_time().map(|t| t.secs()) == Some(1_700_000_000)
                    && r.unit() == Some(&StandardUnit::Percent)
                    && r.dimensions().len() == 1
                    && r.dimensions()[0].name() == Some("DBInstanceIdentifier")
                    && r.dimensions()[0].value() == Some("db")
            })
            .then_output(|| {
                GetMetricStatisticsOutput::builder()
                    .datapoints(point(5.0, 2.0, 1))
                    .datapoints(point(7.0, 3.0, 2))
                    .build()
            });
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
        let points = CloudWatchMetrics::new(client)
            .datapoints(&request(Statistic::Sum))
            .await
            .expect("the request matches the pinned shape");
        let values: Vec<f64> = points.iter().map(|p| p.value).collect();
        assert_eq!(values, [5.0, 7.0]);
        assert_eq!(
            points[0].timestamp.map(|t| t.timestamp()),
            Some(1_700_000_000 - 60)
        );
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn sample_count_is_read_from_its_own_field() {
        let rule = mock!(Client::get_metric_statistics)
            .match_requests(|r| {
                r.statistics() == [aws_sdk_cloudwatch::types::Statistic::SampleCount]
            })
            .then_output(|| {
                GetMetricStatisticsOutput::builder()
                    .datapoints(point(5.0, 2.0, 1))
                    .datapoints(AwsDatapoint::builder().sum(1.0).build())
                    .build()
            });
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule]);
        let points = CloudWatchMetrics::new(client)
            .datapoints(&request(Statistic::SampleCount))
            .await
            .expect("datapoints");
        let values: Vec<f64> = points.iter().map(|p| p.value).collect();
        assert_eq!(
            values,
            [2.0],
            "a datapoint without the statistic is skipped"
        );
    }

    #[tokio::test]
    async fn a_throttled_request_is_a_retryable_service_error() {
        let rule = mock!(Client::get_metric_statistics)
            .sequence()
            .http_status(429, None)
            .repeatedly()
            .build();
        let client = mock_client!(aws_sdk_cloudwatch, RuleMode::MatchAny, [&rule], |b| {
            b.retry_config(aws_sdk_cloudwatch::config::retry::RetryConfig::disabled())
        });
        let err = CloudWatchMetrics::new(client)
            .datapoints(&request(Statistic::Average))
            .await
            .expect_err("throttled");
        assert!(
            matches!(
                err,
                Error::Service {
                    service: "CloudWatch",
                    retryable: true,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
