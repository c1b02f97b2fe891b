//! The orchestrator's config (`sosw_orchestrator_config`).

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::processor::{ProcessorConfig, essential_config_deserialize};
use super::task::TaskConfig;

/// The orchestrator's config: sosw 0.7's Orchestrator keys plus the [`ProcessorConfig`] root keys.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields, default)]
pub struct OrchestratorConfig {
    /// The task manager's config (`task_config`; default [`TaskConfig::default`]).
    pub task_config: TaskConfig,

    /// Share of a labourer's `max_simultaneous_invocations` to run for each health status
    /// (`invocation_number_coefficient`).
    pub invocation_number_coefficient: InvocationCoefficients,

    /// sosw 0.7's `default_simultaneous_invocations` (2 there). Accepted and ignored, as in sosw 0.7
    /// (bug B5): the fallback is `task_config.max_simultaneous_invocations`.
    pub default_simultaneous_invocations: Option<u32>,

    /// The root keys every essential accepts.
    #[serde(skip)]
    pub processor: ProcessorConfig,
}

essential_config_deserialize!(
    OrchestratorConfig,
    "an object with orchestrator config keys"
);

/// How many of a labourer's slots to fill for each ecology status (sosw 0.7's
/// `invocation_number_coefficient`, keys `"0"` to `"4"`). A partial object keeps the defaults of the
/// statuses it leaves out, as sosw 0.7's merge did. Values must be finite and not negative.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InvocationCoefficients {
    /// Status 0, Bad (`"0"`; default 0).
    #[serde(rename = "0", deserialize_with = "coefficient")]
    pub bad: f64,
    /// Status 1, Poor (`"1"`; default 0).
    #[serde(rename = "1", deserialize_with = "coefficient")]
    pub poor: f64,
    /// Status 2, Moderate (`"2"`; default 0.5).
    #[serde(rename = "2", deserialize_with = "coefficient")]
    pub moderate: f64,
    /// Status 3, Good (`"3"`; default 0.75).
    #[serde(rename = "3", deserialize_with = "coefficient")]
    pub good: f64,
    /// Status 4, High (`"4"`; default 1).
    #[serde(rename = "4", deserialize_with = "coefficient")]
    pub high: f64,
}

impl Default for InvocationCoefficients {
    fn default() -> Self {
        InvocationCoefficients {
            bad: 0.0,
            poor: 0.0,
            moderate: 0.5,
            good: 0.75,
            high: 1.0,
        }
    }
}

impl InvocationCoefficients {
    /// The coefficient for `status` (0-4); statuses above 4 count as 4.
    pub fn for_status(&self, status: u8) -> f64 {
        match status {
            0 => self.bad,
            1 => self.poor,
            2 => self.moderate,
            3 => self.good,
            _ => self.high,
        }
    }
}

fn coefficient<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let value = f64::deserialize(d)?;
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(de::Error::custom(format!(
            "must be a number of at least 0 (a share of max_simultaneous_invocations), found {value}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_config;
    use crate::error::{Error, Result};
    use serde_json::{Value, json};

    fn parse(value: Value) -> Result<OrchestratorConfig> {
        parse_config("sosw_orchestrator_config", value)
    }

    fn config_error(value: Value) -> (String, String) {
        match parse(value) {
            Err(Error::Config { path, message, .. }) => (path, message),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_sosw_07_coefficients() {
        let config = parse(json!({})).expect("empty config parses");
        let by_status: Vec<f64> = (0..=4)
            .map(|s| config.invocation_number_coefficient.for_status(s))
            .collect();
        assert_eq!(by_status, [0.0, 0.0, 0.5, 0.75, 1.0]);
        assert_eq!(config.default_simultaneous_invocations, None);
        assert_eq!(config, OrchestratorConfig::default());
    }

    #[test]
    fn a_partial_coefficient_object_keeps_the_other_defaults() {
        let config = parse(json!({"invocation_number_coefficient": {"2": 0.25}})).expect("parses");
        assert_eq!(config.invocation_number_coefficient.moderate, 0.25);
        assert_eq!(config.invocation_number_coefficient.good, 0.75);
    }

    #[test]
    fn coefficient_keys_outside_0_to_4_are_rejected() {
        let (path, message) = config_error(json!({"invocation_number_coefficient": {"5": 1}}));
        assert_eq!(path, "invocation_number_coefficient.5");
        assert!(message.starts_with("unknown key"), "{message}");
    }

    #[test]
    fn negative_coefficients_are_rejected() {
        let (path, message) = config_error(json!({"invocation_number_coefficient": {"4": -1}}));
        assert_eq!(path, "invocation_number_coefficient.4");
        assert!(message.contains("at least 0"), "{message}");
    }

    #[test]
    fn sosw_07_keys_are_accepted() {
        let config = parse(json!({
            "init_clients": ["Task"],
            "default_simultaneous_invocations": 2,
            "meta_handler_config": {"write_meta_to_ddb": false},
            "dead_sns_topic": "Errors",
            "lifetime_stats_params": ["invoked_tasks"],
            "logging_level": 20,
            "test": true,
            "task_config": {"labourers": {"w1": {"arn": "arn:aws:lambda:us-west-2:000000000000:function:w1"}}}
        }))
        .expect("sosw 0.7 keys parse");
        assert_eq!(config.default_simultaneous_invocations, Some(2));
        assert_eq!(config.processor.dead_sns_topic.as_deref(), Some("Errors"));
        assert_eq!(config.processor.lifetime_stats_params, ["invoked_tasks"]);
        assert!(config.processor.meta_handler_config.is_some());
        assert_eq!(config.task_config.labourers_resolved().len(), 1);
    }

    #[test]
    fn unknown_root_keys_suggest_orchestrator_and_processor_keys() {
        let (path, message) = config_error(json!({"invocation_number_coeficient": {}}));
        assert_eq!(path, "invocation_number_coeficient");
        assert!(
            message.ends_with("did you mean `invocation_number_coefficient`?"),
            "{message}"
        );
        let (_, message) = config_error(json!({"dead_sns_topik": "x"}));
        assert!(
            message.ends_with("did you mean `dead_sns_topic`?"),
            "{message}"
        );
    }

    #[test]
    fn errors_inside_task_config_name_the_full_path() {
        let (path, message) = config_error(json!({
            "task_config": {"labourers": {"w1": {"max_simultanious_invocations": 3}}}
        }));
        assert_eq!(
            path,
            "task_config.labourers.w1.max_simultanious_invocations"
        );
        assert_eq!(
            message,
            "unknown key `task_config.labourers.w1.max_simultanious_invocations`; did you mean \
             `max_simultaneous_invocations`?"
        );
    }
}
