//! What an essential's process reads from its environment: where its config rows are, and which
//! function it is. Read once per container by [`Settings::from_env`]; [`Settings::from_lookup`] takes
//! any lookup so the rules are tested without touching the process environment.

use sosw_aws::config_source::{DEFAULT_CONFIG_ENV, DEFAULT_CONFIG_TABLE};
use sosw_core::processor::FUNCTION_NAME_VAR;
use sosw_core::{Error, Result};

/// The scheduler's standard function name (sosw 0.7's).
pub const SCHEDULER_FUNCTION: &str = "sosw_scheduler";

/// The orchestrator's standard function name.
pub const ORCHESTRATOR_FUNCTION: &str = sosw_core::essentials::orchestrator::ORCHESTRATOR_FUNCTION;

/// The scavenger's standard function name.
pub const SCAVENGER_FUNCTION: &str = sosw_core::essentials::scavenger::FUNCTION_NAME;

/// The worker assistant's standard function name.
pub const WORKER_ASSISTANT_FUNCTION: &str = sosw_core::essentials::worker_assistant::FUNCTION_NAME;

/// The DynamoDB table holding the config rows (default `config`, sosw 0.7's).
pub const CONFIG_TABLE_VAR: &str = "SOSW_CONFIG_TABLE";

/// The `env` of the config rows read (default `production`, sosw 0.7's).
pub const CONFIG_ENV_VAR: &str = "SOSW_CONFIG_ENV";

/// The name whose `<name>_config` row is read (default: the function's name).
pub const CONFIG_NAME_VAR: &str = "SOSW_CONFIG_NAME";

/// `true` addresses S3 buckets by path (`<endpoint>/<bucket>/<key>`), which S3 emulators need
/// (default `false`, what AWS wants).
pub const S3_FORCE_PATH_STYLE_VAR: &str = "SOSW_S3_FORCE_PATH_STYLE";

/// `false` turns the EMF metric lines off (default `true`).
pub const METRICS_VAR: &str = "SOSW_METRICS";

/// The CloudWatch namespace of the metrics (default [`crate::metrics::DEFAULT_NAMESPACE`]).
pub const METRICS_NAMESPACE_VAR: &str = "SOSW_METRICS_NAMESPACE";

/// `false` stops the orchestrator counting each labourer's queue for the `queue_length` metric
/// (default `true`; on DynamoDB the count reads the whole queue).
pub const METRICS_QUEUE_LENGTHS_VAR: &str = "SOSW_METRICS_QUEUE_LENGTHS";

/// The EventBridge rule whose state switches the scheduler's sibling chains (no default: unset, a
/// sibling is spawned only with `force` or `auto_spawning`). The essentials' stack sets its schedule.
pub const SCHEDULE_RULE_VAR: &str = "SOSW_SCHEDULE_RULE";

/// An essential's settings from the environment. Every default is stated on its field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The running function's name: `AWS_LAMBDA_FUNCTION_NAME`, else the essential's own name
    /// (`sosw_scheduler`, ...). A scheduler spawns its siblings as this function.
    pub function_name: String,
    /// Whose config row is read, `<config_name>_config`: `SOSW_CONFIG_NAME`, else `function_name`
    /// (as sosw 0.7 read `<AWS_LAMBDA_FUNCTION_NAME>_config`).
    pub config_name: String,
    /// The config table: `SOSW_CONFIG_TABLE`, else `config`.
    pub config_table: String,
    /// The config rows' `env`: `SOSW_CONFIG_ENV`, else `production`.
    pub config_env: String,
    /// S3 path-style addressing: `SOSW_S3_FORCE_PATH_STYLE`, else `false`.
    pub s3_force_path_style: bool,
    /// EMF metric lines on stdout: `SOSW_METRICS`, else `true`.
    pub metrics_enabled: bool,
    /// The metrics' namespace: `SOSW_METRICS_NAMESPACE`, else `sosw`.
    pub metrics_namespace: String,
    /// The orchestrator's `queue_length` metric: `SOSW_METRICS_QUEUE_LENGTHS`, else `true`.
    pub metrics_queue_lengths: bool,
    /// The rule the scheduler's sibling guard reads: `SOSW_SCHEDULE_RULE`, else none.
    pub schedule_rule: Option<String>,
}

impl Settings {
    /// The settings of the essential named `essential` (`sosw_scheduler`, ...) from this process's
    /// environment.
    pub fn from_env(essential: &str) -> Result<Self> {
        Self::from_lookup(essential, |name| std::env::var(name).ok())
    }

    /// The settings of `essential` from `lookup` (a variable's value, `None` when unset). Blank values
    /// count as unset.
    pub fn from_lookup(essential: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let read = |name: &str| {
            lookup(name)
                .map(|value| value.trim().to_string())
                .filter(|value| !value.is_empty())
        };
        let flag = |name: &str, default: bool| match read(name) {
            None => Ok(default),
            Some(value) => parse_bool(name, &value),
        };
        let function_name = read(FUNCTION_NAME_VAR).unwrap_or_else(|| essential.to_string());
        Ok(Settings {
            config_name: read(CONFIG_NAME_VAR).unwrap_or_else(|| function_name.clone()),
            function_name,
            config_table: read(CONFIG_TABLE_VAR).unwrap_or_else(|| DEFAULT_CONFIG_TABLE.into()),
            config_env: read(CONFIG_ENV_VAR).unwrap_or_else(|| DEFAULT_CONFIG_ENV.into()),
            s3_force_path_style: flag(S3_FORCE_PATH_STYLE_VAR, false)?,
            metrics_enabled: flag(METRICS_VAR, true)?,
            metrics_namespace: read(METRICS_NAMESPACE_VAR)
                .unwrap_or_else(|| crate::metrics::DEFAULT_NAMESPACE.into()),
            metrics_queue_lengths: flag(METRICS_QUEUE_LENGTHS_VAR, true)?,
            schedule_rule: read(SCHEDULE_RULE_VAR),
        })
    }
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(Error::invalid(
            "environment variable",
            format!("{name} is `{value}`; set it to `true` or `false`"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup("sosw_scheduler", |name| vars.get(name).cloned())
    }

    #[test]
    fn an_empty_environment_gives_sosw_07_defaults() -> Result<()> {
        let s = settings(&[])?;
        assert_eq!(s.function_name, "sosw_scheduler");
        assert_eq!(s.config_name, "sosw_scheduler");
        assert_eq!(
            (s.config_table.as_str(), s.config_env.as_str()),
            ("config", "production")
        );
        assert!(!s.s3_force_path_style);
        assert!(s.metrics_enabled && s.metrics_queue_lengths);
        assert_eq!(s.metrics_namespace, "sosw");
        assert_eq!(s.schedule_rule, None);
        Ok(())
    }

    #[test]
    fn metrics_can_be_renamed_or_turned_off() -> Result<()> {
        let s = settings(&[
            (METRICS_VAR, "false"),
            (METRICS_NAMESPACE_VAR, "team/sosw"),
            (METRICS_QUEUE_LENGTHS_VAR, "no"),
        ])?;
        assert!(!s.metrics_enabled && !s.metrics_queue_lengths);
        assert_eq!(s.metrics_namespace, "team/sosw");
        let err = settings(&[(METRICS_VAR, "sometimes")]).expect_err("not a bool");
        assert!(err.to_string().contains(METRICS_VAR), "{err}");
        Ok(())
    }

    #[test]
    fn the_config_row_follows_the_function_name_unless_overridden() -> Result<()> {
        let s = settings(&[(FUNCTION_NAME_VAR, "dev_sosw_scheduler")])?;
        assert_eq!(s.config_name, "dev_sosw_scheduler");
        let s = settings(&[
            (FUNCTION_NAME_VAR, "dev_sosw_scheduler"),
            (CONFIG_NAME_VAR, "sosw_scheduler"),
            (CONFIG_TABLE_VAR, "dev_config"),
            (CONFIG_ENV_VAR, " staging "),
            (S3_FORCE_PATH_STYLE_VAR, "TRUE"),
        ])?;
        assert_eq!(s.function_name, "dev_sosw_scheduler");
        assert_eq!(s.config_name, "sosw_scheduler");
        assert_eq!(
            (s.config_table.as_str(), s.config_env.as_str()),
            ("dev_config", "staging")
        );
        assert!(s.s3_force_path_style);
        Ok(())
    }

    #[test]
    fn blank_values_are_unset_and_a_bad_flag_names_the_variable() {
        let s = settings(&[(CONFIG_TABLE_VAR, "  "), (FUNCTION_NAME_VAR, "")]);
        assert_eq!(
            s.map(|s| (s.config_table, s.function_name)).ok(),
            Some(("config".to_string(), "sosw_scheduler".to_string()))
        );
        let err = settings(&[(S3_FORCE_PATH_STYLE_VAR, "maybe")]).expect_err("not a bool");
        assert!(!err.is_retryable());
        assert!(err.to_string().contains(S3_FORCE_PATH_STYLE_VAR), "{err}");
    }
}
