//! Labourers: the worker functions sosw invokes, and their per-labourer settings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::greenfield::{DEFAULT_COOLDOWN, DEFAULT_DURATION};

/// Default number of invocations before a task is declared dead (sosw 0.7's `max_attempts`).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;

/// One labourer: a worker function and how sosw treats it.
///
/// This is both the config shape (`task_config.labourers.<id>` in an essential's config, keyed by the
/// labourer id) and what the essentials use at run time. It accepts every key sosw 0.7 reads from a
/// labourer's config and fixes bug B3: `duration`, `cooldown` and `max_attempts` are actually configurable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Labourer {
    /// The labourer id: the worker's function name. Taken from the config map key; an `id` key in the
    /// settings is accepted when it is equal to the map key.
    #[serde(default)]
    pub id: String,

    /// The worker function's ARN (or name), used to invoke it and read its timeout. Defaults to `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,

    /// How many tasks may run at once when the labourer is in full health (status 4). `0` pauses the
    /// labourer (sosw 0.7 turned 0 into its fallback, bug B5). Default: the essential's
    /// `max_simultaneous_invocations`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_simultaneous_invocations: Option<u32>,

    /// Health metrics by name; the worst one sets the labourer's status. Default: none (status 4).
    #[serde(default, deserialize_with = "null_as_default")]
    pub health_metrics: BTreeMap<String, HealthMetric>,

    /// Invocations allowed before a task is declared dead. Default: the task config's
    /// `max_attempts_<id>`, else its `max_attempts`, else 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,

    /// Assumed longest run of one task, in seconds. Default: the worker's real timeout when known
    /// (`max_duration`), else 900.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<u64>,

    /// Grace period after `duration` before a silent task counts as expired, in seconds. Default: 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown: Option<u64>,

    /// The worker's timeout in seconds. Normally read from Lambda `GetFunctionConfiguration` once per
    /// container; a configured value overrides it (as in sosw 0.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<u64>,

    /// Average run time in seconds. Normally computed from recently closed tasks; a configured value
    /// overrides it (as in sosw 0.7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub average_duration: Option<u64>,

    /// A fixed health status 0-4. Normally computed from `health_metrics`; a configured value overrides it
    /// (as in sosw 0.7, where `health` is a custom attribute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<u8>,

    /// How expired and failed tasks are delayed before they run again. Default: exponential with full
    /// jitter (`{"policy": "exponential", "base_secs": 30, "cap_secs": 3600}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,

    /// At most this many invocations per period, counted in the store and shared by every
    /// orchestrator (new in this implementation; default no limit). `{"tasks": 100, "period_secs": 60}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,

    /// How the orchestrator sets the labourer's concurrency: `{"policy": "thresholds"}` (sosw 0.7's,
    /// the default) or `{"policy": "adaptive", ...}`, the adaptive controller (new in this
    /// implementation; see docs/ecology.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecology: Option<crate::ecology::adaptive::EcologyPolicy>,

    /// Per-key fairness: `{"key": "tenant", "max_per_key": 5}` shares the labourer's slots fairly among
    /// the keys (read from each task's payload at `key`) with queued work, at most `max_per_key` running
    /// per key (new in this implementation; default none: one queue in greenfield order). Needs a store
    /// with a per-key queue index (SQLite); see docs/ecology.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fairness: Option<crate::ecology::fair::Fairness>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

impl Labourer {
    /// A labourer with every setting at its default.
    pub fn new(id: impl Into<String>) -> Self {
        Labourer {
            id: id.into(),
            arn: None,
            max_simultaneous_invocations: None,
            health_metrics: BTreeMap::new(),
            max_attempts: None,
            duration: None,
            cooldown: None,
            max_duration: None,
            average_duration: None,
            health: None,
            retry: None,
            rate_limit: None,
            ecology: None,
            fairness: None,
        }
    }

    /// What to invoke: the ARN if configured, else the id (a function name).
    pub fn function(&self) -> &str {
        self.arn.as_deref().unwrap_or(&self.id)
    }

    /// The assumed longest run: `duration`, else the worker's real timeout, else 900 s.
    pub fn effective_duration(&self) -> u64 {
        self.duration
            .or(self.max_duration)
            .unwrap_or(DEFAULT_DURATION)
    }

    /// The cooldown: `cooldown`, else 300 s.
    pub fn effective_cooldown(&self) -> u64 {
        self.cooldown.unwrap_or(DEFAULT_COOLDOWN)
    }

    /// Seconds after its invocation at which a silent task counts as expired: duration + cooldown.
    pub fn expiry_window(&self) -> u64 {
        self.effective_duration()
            .saturating_add(self.effective_cooldown())
    }

    /// Whether `max_simultaneous_invocations` pauses this labourer.
    pub fn is_paused(&self) -> bool {
        self.max_simultaneous_invocations == Some(0)
    }

    /// The adaptive controller's tuning, when the labourer's `ecology` selects it.
    pub fn adaptive(&self) -> Option<&crate::ecology::adaptive::AdaptiveConfig> {
        match &self.ecology {
            Some(crate::ecology::adaptive::EcologyPolicy::Adaptive(config)) => Some(config),
            _ => None,
        }
    }

    /// The retry policy, defaulted.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry.clone().unwrap_or_default()
    }
}

/// A labourer's invocation rate limit: at most `tasks` invocations in any `period_secs` seconds.
///
/// Counted in the labourer's ecology record in the store, which every orchestrator takes its grants
/// from by compare-and-set: however many orchestrators run, together they never exceed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, try_from = "RawRateLimit")]
pub struct RateLimit {
    /// Invocations allowed per period.
    pub tasks: u32,
    /// The period in seconds; at least 1.
    pub period_secs: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    tasks: u32,
    period_secs: u64,
}

impl TryFrom<RawRateLimit> for RateLimit {
    type Error = String;

    fn try_from(raw: RawRateLimit) -> Result<Self, Self::Error> {
        if raw.period_secs == 0 {
            return Err("`period_secs` of a rate limit must be at least 1".into());
        }
        Ok(RateLimit {
            tasks: raw.tasks,
            period_secs: raw.period_secs,
        })
    }
}

/// How long a task waits before it runs again after it expired or failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case", deny_unknown_fields)]
pub enum RetryPolicy {
    /// `random(0, min(cap, base * 2^(attempts-1)))` seconds: exponential backoff with full jitter.
    Exponential {
        /// The first delay's upper bound, in seconds. Default 30.
        #[serde(default = "default_base_secs")]
        base_secs: u64,
        /// The longest delay, in seconds. Default 3600.
        #[serde(default = "default_cap_secs")]
        cap_secs: u64,
    },
    /// sosw 0.7's behaviour: the worker's timeout times the number of attempts so far.
    Linear,
}

fn default_base_secs() -> u64 {
    30
}

fn default_cap_secs() -> u64 {
    3600
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::Exponential {
            base_secs: default_base_secs(),
            cap_secs: default_cap_secs(),
        }
    }
}

/// One health metric of a labourer (sosw 0.7's `health_metrics.<name>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthMetric {
    /// What to ask CloudWatch for.
    pub details: MetricQuery,
    /// Threshold per status (`"4": 25, "3": 50`): the highest status whose threshold the value satisfies
    /// with `feeling_comparison_operator` wins; if none does, status 0.
    pub feelings: BTreeMap<u8, f64>,
    /// How the value is compared with each threshold.
    pub feeling_comparison_operator: ComparisonOperator,
}

/// A CloudWatch `GetMetricStatistics` query, with sosw 0.7's key names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricQuery {
    /// CloudWatch namespace, e.g. `AWS/DynamoDB`.
    #[serde(rename = "Namespace")]
    pub namespace: String,
    /// Metric name. `Name` (used by sosw 0.7's docs) is accepted as an alias.
    #[serde(rename = "MetricName", alias = "Name")]
    pub metric_name: String,
    /// Dimensions.
    #[serde(rename = "Dimensions", default)]
    pub dimensions: Vec<MetricDimension>,
    /// Period in seconds. Default 60.
    #[serde(rename = "Period", default, skip_serializing_if = "Option::is_none")]
    pub period: Option<u32>,
    /// Exactly one statistic. Default `["Average"]`.
    #[serde(
        rename = "Statistics",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub statistics: Option<Vec<Statistic>>,
    /// How far back to look, in seconds. Default 300.
    #[serde(
        rename = "MetricAggregationTimeSlice",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub aggregation_time_slice: Option<u32>,
    /// Optional CloudWatch unit.
    #[serde(rename = "Unit", default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A CloudWatch metric dimension.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricDimension {
    /// Dimension name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Dimension value.
    #[serde(rename = "Value")]
    pub value: String,
}

/// CloudWatch statistics sosw aggregates (sosw 0.7 lacked `Sum` and `SampleCount`, bug B6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Statistic {
    /// Mean of the datapoints' averages.
    Average,
    /// Largest maximum.
    Maximum,
    /// Smallest minimum.
    Minimum,
    /// Sum of sums.
    Sum,
    /// Sum of sample counts.
    SampleCount,
}

/// How a metric value is compared with a feeling threshold. The documented symbols (`<=`) and sosw 0.7's
/// `operator` module names (`le`, `__le__`) are both accepted (bug B6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComparisonOperator {
    /// `value < threshold`
    #[serde(rename = "<", alias = "lt", alias = "__lt__")]
    Lt,
    /// `value <= threshold`
    #[serde(rename = "<=", alias = "le", alias = "__le__")]
    Le,
    /// `value > threshold`
    #[serde(rename = ">", alias = "gt", alias = "__gt__")]
    Gt,
    /// `value >= threshold`
    #[serde(rename = ">=", alias = "ge", alias = "__ge__")]
    Ge,
    /// `value == threshold`
    #[serde(rename = "==", alias = "eq", alias = "__eq__")]
    Eq,
}

impl ComparisonOperator {
    /// Applies the operator.
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            ComparisonOperator::Lt => value < threshold,
            ComparisonOperator::Le => value <= threshold,
            ComparisonOperator::Gt => value > threshold,
            ComparisonOperator::Ge => value >= threshold,
            ComparisonOperator::Eq => value == threshold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_sosw_07_labourer_config_parses() {
        let cfg = json!({
            "arn": "arn:aws:lambda:us-west-2:000000000000:function:w1",
            "max_simultaneous_invocations": 3,
            "health_metrics": {
                "SomeDBCPU": {
                    "details": {
                        "Name": "CPUUtilization", "Namespace": "AWS/RDS",
                        "Period": 60, "Statistics": ["Average"],
                        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": "db"}]
                    },
                    "feelings": {"3": 50, "4": 25},
                    "feeling_comparison_operator": "__le__"
                }
            }
        });
        let lab: Labourer = serde_json::from_value(cfg).expect("parses");
        let m = &lab.health_metrics["SomeDBCPU"];
        assert_eq!(m.details.metric_name, "CPUUtilization");
        assert_eq!(m.feelings.get(&4), Some(&25.0));
        assert_eq!(m.feeling_comparison_operator, ComparisonOperator::Le);
        assert_eq!(lab.max_simultaneous_invocations, Some(3));
    }

    #[test]
    fn documented_operator_symbols_parse() {
        for (text, op) in [
            ("<", ComparisonOperator::Lt),
            ("<=", ComparisonOperator::Le),
            (">", ComparisonOperator::Gt),
            (">=", ComparisonOperator::Ge),
            ("==", ComparisonOperator::Eq),
            ("ge", ComparisonOperator::Ge),
        ] {
            let parsed: ComparisonOperator =
                serde_json::from_value(json!(text)).expect("operator parses");
            assert_eq!(parsed, op, "{text}");
        }
        assert!(ComparisonOperator::Ge.holds(5.0, 5.0));
        assert!(!ComparisonOperator::Gt.holds(5.0, 5.0));
    }

    #[test]
    fn unknown_labourer_keys_are_rejected_by_name() {
        let err = serde_json::from_value::<Labourer>(json!({"max_simultanious_invocations": 1}))
            .expect_err("typo");
        assert!(
            err.to_string().contains("max_simultanious_invocations"),
            "{err}"
        );
    }

    #[test]
    fn duration_cooldown_and_max_attempts_are_configurable() {
        let lab: Labourer =
            serde_json::from_value(json!({"duration": 60, "cooldown": 10, "max_attempts": 7}))
                .expect("parses");
        assert_eq!(lab.expiry_window(), 70);
        assert_eq!(crate::task::fate::max_attempts(&lab), 7);
        assert!(!lab.is_paused());
        let paused: Labourer =
            serde_json::from_value(json!({"max_simultaneous_invocations": 0})).expect("parses");
        assert!(paused.is_paused());
    }

    #[test]
    fn rate_limits_parse_and_a_zero_period_is_rejected() {
        let lab: Labourer =
            serde_json::from_value(json!({"rate_limit": {"tasks": 5, "period_secs": 60}}))
                .expect("parses");
        assert_eq!(
            lab.rate_limit,
            Some(RateLimit {
                tasks: 5,
                period_secs: 60
            })
        );
        let err = serde_json::from_value::<Labourer>(
            json!({"rate_limit": {"tasks": 5, "period_secs": 0}}),
        )
        .expect_err("zero period");
        assert!(err.to_string().contains("period_secs"), "{err}");
        assert_eq!(Labourer::new("x").rate_limit, None);
    }

    #[test]
    fn retry_policies_parse() {
        let lab: Labourer =
            serde_json::from_value(json!({"retry": {"policy": "linear"}})).expect("parses");
        assert_eq!(lab.retry_policy(), RetryPolicy::Linear);
        let lab: Labourer =
            serde_json::from_value(json!({"retry": {"policy": "exponential", "cap_secs": 60}}))
                .expect("parses");
        assert_eq!(
            lab.retry_policy(),
            RetryPolicy::Exponential {
                base_secs: 30,
                cap_secs: 60
            }
        );
        assert_eq!(Labourer::new("x").retry_policy(), RetryPolicy::default());
    }
}
