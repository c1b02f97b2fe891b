//! The scavenger's config (`sosw_scavenger_config`).

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::processor::{ProcessorConfig, essential_config_deserialize};
use super::task::TaskConfig;

/// The scavenger's config: sosw 0.7's Scavenger keys plus the [`ProcessorConfig`] root keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields, default)]
pub struct ScavengerConfig {
    /// The task manager's config (`task_config`; default [`TaskConfig::default`]).
    pub task_config: TaskConfig,

    /// Most due retries moved back to the queue per labourer per run (`retry_tasks_limit`; default 20).
    pub retry_tasks_limit: u32,

    /// Where dead-task messages go (`sns_config`).
    pub sns_config: SnsConfig,

    /// Whether each run reconciles unfinished jobs with the closed table (`reconcile_jobs`; default
    /// false): turn it on while Python sosw 0.7 essentials may archive tasks our scheduler wrote, so
    /// those jobs still finish. It costs a scan of `sosw_jobs` and one closed-row read per task of up to
    /// 10 unfinished jobs per run (see the scavenger's docs).
    pub reconcile_jobs: bool,

    /// The root keys every essential accepts.
    #[serde(skip)]
    pub processor: ProcessorConfig,
}

impl Default for ScavengerConfig {
    fn default() -> Self {
        ScavengerConfig {
            task_config: TaskConfig::default(),
            retry_tasks_limit: 20,
            sns_config: SnsConfig::default(),
            reconcile_jobs: false,
            processor: ProcessorConfig::default(),
        }
    }
}

essential_config_deserialize!(ScavengerConfig, "an object with scavenger config keys");

/// SNS notifications (sosw 0.7's `sns_config` of the Scavenger).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SnsConfig {
    /// Topic ARN (`recipient`). Default none: messages are only logged. sosw 0.7 defaulted to a
    /// placeholder ARN in account 000000000000, which could never be delivered.
    #[serde(deserialize_with = "topic_arn")]
    pub recipient: Option<String>,

    /// Default subject (`subject`; default ``` ``sosw`` Info ```, sosw 0.7's).
    pub subject: String,
}

impl Default for SnsConfig {
    fn default() -> Self {
        SnsConfig {
            recipient: None,
            subject: "``sosw`` Info".to_string(),
        }
    }
}

fn topic_arn<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let recipient = Option::<String>::deserialize(d)?;
    match &recipient {
        Some(arn) if !arn.starts_with("arn:") => Err(de::Error::custom(format!(
            "must be an SNS topic ARN (`arn:aws:sns:<region>:<account>:<topic>`), found `{arn}`"
        ))),
        _ => Ok(recipient),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_config;
    use crate::error::Error;
    use serde_json::json;

    #[test]
    fn defaults_match_sosw_07_except_the_placeholder_recipient() {
        let config: ScavengerConfig =
            parse_config("sosw_scavenger_config", json!({})).expect("empty config parses");
        assert_eq!(config.retry_tasks_limit, 20);
        assert_eq!(config.sns_config.subject, "``sosw`` Info");
        assert_eq!(config.sns_config.recipient, None);
        assert_eq!(config, ScavengerConfig::default());
    }

    #[test]
    fn sosw_07_scavenger_config_parses() {
        let config: ScavengerConfig = parse_config(
            "sosw_scavenger_config",
            json!({
                "init_clients": ["Task", "Sns"],
                "sns_config": {"recipient": "arn:aws:sns:us-west-2:000000000000:sosw_info", "subject": "dead"},
                "retry_tasks_limit": 5,
                "task_config": {}
            }),
        )
        .expect("parses");
        assert_eq!(config.retry_tasks_limit, 5);
        assert_eq!(
            config.sns_config.recipient.as_deref(),
            Some("arn:aws:sns:us-west-2:000000000000:sosw_info")
        );
    }

    #[test]
    fn a_recipient_that_is_not_an_arn_is_rejected() {
        let err = parse_config::<ScavengerConfig>(
            "sosw_scavenger_config",
            json!({"sns_config": {"recipient": "sosw_info"}}),
        )
        .expect_err("not an ARN");
        assert!(
            matches!(&err, Error::Config { path, .. } if path == "sns_config.recipient"),
            "{err}"
        );
    }
}
