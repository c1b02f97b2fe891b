//! The worker's [`Reporter`] that invokes the worker assistant Lambda with sosw 0.7's
//! `{action, task_id, stats, result}` payload.
//!
//! sosw 0.7 fired an `Event` invoke and ignored the answer, so a report that never arrived was silent
//! (bug B23). Here the answer is always checked:
//! * [`ReportInvocation::RequestResponse`] (the default): the worker waits for the assistant (a few
//!   milliseconds of store writes) and gets its verdict: a `FunctionError` is an error, retryable unless
//!   the assistant called it `NonRetryable` (a malformed report).
//! * [`ReportInvocation::Event`]: sosw 0.7's asynchronous invoke; Lambda must answer 202 (queued for
//!   the assistant), anything else is an error. The assistant's own failures then only show in its
//!   logs and metrics, and Lambda retries its event.

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::Value;

use super::sdk_errors::is_transient;
use sosw_core::error::{Error, Result};
use sosw_core::essentials::worker_assistant::AssistantRequest;
pub use sosw_core::worker::ReportInvocation;
use sosw_core::worker::Reporter;

/// Reports by invoking the worker assistant Lambda.
#[derive(Debug, Clone)]
pub struct LambdaAssistantReporter {
    client: Client,
    function: String,
    invocation: ReportInvocation,
}

impl LambdaAssistantReporter {
    /// A reporter invoking `function` (name or ARN) with `sdk`'s region, credentials and endpoint.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        function: impl Into<String>,
        invocation: ReportInvocation,
    ) -> Self {
        Self::from_client(Client::new(sdk), function, invocation)
    }

    /// A reporter using an existing client.
    pub fn from_client(
        client: Client,
        function: impl Into<String>,
        invocation: ReportInvocation,
    ) -> Self {
        LambdaAssistantReporter {
            client,
            function: function.into(),
            invocation,
        }
    }

    fn failed(&self, retryable: bool, message: String) -> Error {
        Error::service(
            "Lambda",
            "Invoke",
            retryable,
            format!("worker assistant `{}`: {message}", self.function),
        )
    }
}

/// What a function error's payload says: `{"errorType": ..., "errorMessage": ...}`.
fn function_error_parts(payload: Option<&Blob>) -> (String, String) {
    let parsed: Option<Value> = payload.and_then(|p| serde_json::from_slice(p.as_ref()).ok());
    let field = |key: &str| {
        parsed
            .as_ref()
            .and_then(|v| v.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (field("errorType"), field("errorMessage"))
}

#[async_trait]
impl Reporter for LambdaAssistantReporter {
    async fn report(&self, request: &AssistantRequest) -> Result<()> {
        let payload = serde_json::to_vec(&request.to_event())
            .map_err(|e| Error::invalid("worker assistant request", e.to_string()))?;
        let invocation_type = match self.invocation {
            ReportInvocation::RequestResponse => InvocationType::RequestResponse,
            ReportInvocation::Event => InvocationType::Event,
        };
        let out = self
            .client
            .invoke()
            .function_name(&self.function)
            .invocation_type(invocation_type)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|err| {
                let retryable = is_transient(&err);
                Error::service("Lambda", "Invoke", retryable, err.into_service_error())
            })?;
        if let Some(kind) = out.function_error() {
            let (error_type, message) = function_error_parts(out.payload());
            return Err(self.failed(
                error_type != "NonRetryable",
                format!("{kind} function error: {error_type}: {message}"),
            ));
        }
        let expected = match self.invocation {
            ReportInvocation::RequestResponse => 200,
            ReportInvocation::Event => 202,
        };
        if out.status_code() != expected {
            return Err(self.failed(
                true,
                format!(
                    "Invoke answered status {} (expected {expected})",
                    out.status_code()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_lambda::operation::invoke::{InvokeError, InvokeOutput};
    use aws_sdk_lambda::types::error::ResourceNotFoundException;
    use aws_smithy_mocks::{mock, mock_client};
    use serde_json::json;
    use sosw_core::task::TaskId;

    fn request() -> AssistantRequest {
        let mut r = AssistantRequest::completed(TaskId::new("t1").expect("id"));
        r.stats.insert("rows".into(), json!(3));
        r
    }

    fn payload_of(req: &aws_sdk_lambda::operation::invoke::InvokeInput) -> Value {
        req.payload()
            .and_then(|p| serde_json::from_slice(p.as_ref()).ok())
            .unwrap_or(Value::Null)
    }

    #[tokio::test]
    async fn event_reports_send_the_sosw_07_payload_and_check_the_202() {
        let rule = mock!(Client::invoke)
            .match_requests(|req| {
                req.function_name() == Some("sosw_worker_assistant")
                    && req.invocation_type() == Some(&InvocationType::Event)
                    && payload_of(req)
                        == json!({"action": "mark_task_as_completed", "task_id": "t1",
                                  "stats": {"rows": 3}})
            })
            .then_output(|| InvokeOutput::builder().status_code(202).build());
        let client = mock_client!(aws_sdk_lambda, [&rule]);
        LambdaAssistantReporter::from_client(
            client,
            "sosw_worker_assistant",
            ReportInvocation::Event,
        )
        .report(&request())
        .await
        .expect("queued");
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_function_error_is_an_error_with_the_assistants_verdict() {
        let rule = mock!(Client::invoke)
            .match_requests(|req| req.invocation_type() == Some(&InvocationType::RequestResponse))
            .then_output(|| {
                InvokeOutput::builder()
                    .status_code(200)
                    .function_error("Unhandled")
                    .payload(Blob::new(
                        r#"{"errorType":"NonRetryable","errorMessage":"missing `task_id`"}"#,
                    ))
                    .build()
            });
        let client = mock_client!(aws_sdk_lambda, [&rule]);
        let err = LambdaAssistantReporter::from_client(
            client,
            "sosw_worker_assistant",
            ReportInvocation::RequestResponse,
        )
        .report(&request())
        .await
        .expect_err("function error");
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("Invoke"), "{err}");
        let text = format!("{:?}", err);
        assert!(text.contains("missing `task_id`"), "{text}");
    }

    #[tokio::test]
    async fn a_retryable_function_error_and_a_wrong_status_are_retryable_errors() {
        let rule = mock!(Client::invoke).then_output(|| {
            InvokeOutput::builder()
                .status_code(200)
                .function_error("Unhandled")
                .payload(Blob::new(
                    r#"{"errorType":"Retryable","errorMessage":"busy"}"#,
                ))
                .build()
        });
        let client = mock_client!(aws_sdk_lambda, [&rule]);
        let reporter =
            LambdaAssistantReporter::from_client(client, "a", ReportInvocation::default());
        assert!(
            reporter
                .report(&request())
                .await
                .expect_err("error")
                .is_retryable()
        );

        let rule =
            mock!(Client::invoke).then_output(|| InvokeOutput::builder().status_code(200).build());
        let client = mock_client!(aws_sdk_lambda, [&rule]);
        let reporter = LambdaAssistantReporter::from_client(client, "a", ReportInvocation::Event);
        let err = reporter
            .report(&request())
            .await
            .expect_err("200 is not 202");
        assert!(
            err.is_retryable() && format!("{err:?}").contains("expected 202"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_missing_assistant_function_is_a_non_retryable_error() {
        let rule = mock!(Client::invoke).then_error(|| {
            InvokeError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("no function")
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_lambda, [&rule]);
        let err = LambdaAssistantReporter::from_client(client, "gone", ReportInvocation::default())
            .report(&request())
            .await
            .expect_err("missing");
        assert!(!err.is_retryable(), "{err}");
    }
}
