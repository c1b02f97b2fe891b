//! A worker's config document (`<function>_config`, as in sosw 0.7).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where a worker's reports go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportTo {
    /// Invoke the worker assistant Lambda (sosw 0.7's way, the default).
    #[default]
    WorkerAssistant,
    /// Run the worker assistant's logic in-process against the task store: the DynamoDB tables in
    /// `sosw_lambda::worker::run`, any store through `sosw_lambda::worker::run_with` and
    /// [`crate::worker::StoreReporter`] (local mode).
    Store,
}

/// A worker's config. Unlike the essentials' configs, unknown keys are accepted: they are the worker's
/// own settings (sosw 0.7 workers keep theirs in the same document) and reach it through
/// [`crate::worker::WorkerContext::config`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct WorkerConfig {
    /// The worker assistant's function name or ARN (`sosw_worker_assistant_lambda`; default
    /// `sosw_worker_assistant`, sosw 0.7's).
    pub sosw_worker_assistant_lambda: String,

    /// How the assistant is invoked (`report_invocation`, new here; default `RequestResponse`, so a
    /// failed report is seen by the worker; `Event` is sosw 0.7's fire-and-forget with the 202 checked).
    pub report_invocation: ReportInvocation,

    /// Where reports go (`report_to`, new here; default `worker_assistant`).
    pub report_to: ReportTo,

    /// The S3 bucket where the scheduler stores task payloads too large for a task row (`queue_bucket`
    /// of the scheduler's config; default none). A payload that arrives as a pointer
    /// (`{"sosw_payload_ref": "<key>"}`) is fetched from it before the worker sees it; without a bucket
    /// such a payload fails the task as non-retryable, naming this key.
    pub payload_bucket: Option<String>,

    /// Every other key: the worker's own settings. sosw 0.7's `init_clients` and
    /// `meta_handler_config` land here too and are not read by sosw.
    #[serde(flatten)]
    pub custom: Map<String, Value>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            sosw_worker_assistant_lambda: "sosw_worker_assistant".to_string(),
            report_invocation: ReportInvocation::default(),
            report_to: ReportTo::default(),
            payload_bucket: None,
            custom: Map::new(),
        }
    }
}

/// How the worker assistant is invoked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportInvocation {
    /// Synchronous: the report has been applied when the call returns.
    #[default]
    RequestResponse,
    /// Asynchronous (sosw 0.7): the report has been queued by Lambda when the call returns.
    Event,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_config;
    use serde_json::json;

    #[test]
    fn a_sosw_07_worker_config_parses_and_keeps_the_workers_own_keys() {
        let c: WorkerConfig = parse_config(
            "my_worker_config",
            json!({
                "init_clients": ["lambda"],
                "sosw_worker_assistant_lambda": "arn:aws:lambda:us-east-1:1:function:sosw_worker_assistant",
                "bucket": "data"
            }),
        )
        .expect("parses");
        assert!(
            c.sosw_worker_assistant_lambda
                .ends_with(":sosw_worker_assistant")
        );
        assert_eq!(c.custom["bucket"], json!("data"));
        assert_eq!(c.report_invocation, ReportInvocation::RequestResponse);
        assert_eq!(c.report_to, ReportTo::WorkerAssistant);
    }

    #[test]
    fn report_settings_parse_and_bad_values_name_the_key() {
        let c: WorkerConfig = parse_config(
            "w_config",
            json!({"report_invocation": "Event", "report_to": "store"}),
        )
        .expect("parses");
        assert_eq!(c.report_invocation, ReportInvocation::Event);
        assert_eq!(c.report_to, ReportTo::Store);
        let err = parse_config::<WorkerConfig>("w_config", json!({"report_to": "email"}))
            .expect_err("bad value");
        assert!(err.to_string().contains("report_to"), "{err}");
    }
}
