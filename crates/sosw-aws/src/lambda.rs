//! AWS Lambda adapters: the [`Invoker`] (`Invoke` with `InvocationType=Event`) and the worker timeouts
//! ([`WorkerTimeouts`], `GetFunctionConfiguration`, cached per container).
//!
//! How an `Invoke` ends, and what it means for the task's claim:
//!
//! | Lambda answers | outcome |
//! |---|---|
//! | 2xx (202 for `Event`) | [`InvokeOutcome::Accepted`] |
//! | `TooManyRequestsException` / HTTP 429 | retried with exponential backoff and full jitter ([`ThrottleRetry`]); beyond the bound [`InvokeOutcome::Rejected`] |
//! | any other 4xx (`ResourceNotFoundException`, `InvalidRequestContentException`, `RequestTooLargeException`, ...) | [`InvokeOutcome::Rejected`] |
//! | a 5xx (`ServiceException`), a timeout, a connection lost after sending, an unreadable response | [`InvokeOutcome::Unknown`] |
//! | the request could not be built, or the connection was refused | [`InvokeOutcome::Rejected`] (nothing was sent) |
//!
//! The SDK's own retries are turned off for `Invoke`: an `Event` invocation that timed out may have been
//! queued, and retrying it blindly could run the task twice. Only throttles, which Lambda answers before
//! queueing anything, are retried, here.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::config::http::HttpResponse;
use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::error::{DisplayErrorContext, SdkError};
use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::Value;

use sosw_core::error::{Error, Result};
use sosw_core::invoke::{InvokeOutcome, Invoker, WorkerTimeouts};

/// How throttled invocations are retried: up to `max_retries` more tries, the n-th after a random delay
/// in `[0, min(max_delay, base_delay * 2^n))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleRetry {
    /// Retries after the first try. Default 4.
    pub max_retries: u32,
    /// Upper bound of the first delay. Default 100 ms.
    pub base_delay: Duration,
    /// Upper bound of any delay. Default 2 s.
    pub max_delay: Duration,
}

impl Default for ThrottleRetry {
    fn default() -> Self {
        ThrottleRetry {
            max_retries: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl ThrottleRetry {
    /// The delay before retry number `retry` (0-based): full jitter under the exponential bound.
    fn delay(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry);
        let bound = self.base_delay.saturating_mul(factor).min(self.max_delay);
        bound.mul_f64(jitter())
    }
}

/// A number in `[0, 1)`, different on every call. Backoff needs spread, not cryptographic quality:
/// std's randomly keyed hasher over a counter gives that without another dependency.
fn jitter() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let bits = RandomState::new().hash_one(n);
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Invokes Lambda functions asynchronously (`InvocationType=Event`).
#[derive(Debug, Clone)]
pub struct LambdaInvoker {
    client: Client,
    throttle: ThrottleRetry,
}

/// One `Invoke` call's result: final, or throttled (to be retried).
enum Attempt {
    Done(InvokeOutcome),
    Throttled(String),
}

impl LambdaInvoker {
    /// An invoker over a copy of `client` with the SDK's retries turned off (see the module docs).
    pub fn new(client: &Client) -> Self {
        Self::without_retries(client.config().to_builder())
    }

    /// An invoker with a client built from `config` (region, credentials, endpoint such as
    /// `AWS_ENDPOINT_URL`), with the SDK's retries turned off.
    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
        Self::without_retries(aws_sdk_lambda::config::Builder::from(config))
    }

    fn without_retries(config: aws_sdk_lambda::config::Builder) -> Self {
        LambdaInvoker {
            client: Client::from_conf(config.retry_config(RetryConfig::disabled()).build()),
            throttle: ThrottleRetry::default(),
        }
    }

    /// Sets how throttles are retried.
    pub fn with_throttle_retry(mut self, throttle: ThrottleRetry) -> Self {
        self.throttle = throttle;
        self
    }

    async fn attempt(&self, function: &str, body: &[u8]) -> Attempt {
        let sent = self
            .client
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(body))
            .send()
            .await;
        match sent {
            Ok(_) => Attempt::Done(InvokeOutcome::Accepted),
            Err(e) => classify(e),
        }
    }
}

#[async_trait]
impl Invoker for LambdaInvoker {
    async fn invoke(&self, function: &str, payload: &Value) -> Result<InvokeOutcome> {
        let body = match serde_json::to_vec(payload) {
            Ok(body) => body,
            Err(e) => {
                return Ok(InvokeOutcome::Rejected(format!(
                    "the payload cannot be written as JSON: {e}"
                )));
            }
        };
        let mut retries = 0;
        loop {
            match self.attempt(function, &body).await {
                Attempt::Done(outcome) => return Ok(outcome),
                Attempt::Throttled(message) if retries >= self.throttle.max_retries => {
                    return Ok(InvokeOutcome::Rejected(format!(
                        "throttled {} times: {message}",
                        retries + 1
                    )));
                }
                Attempt::Throttled(_) => {
                    tokio::time::sleep(self.throttle.delay(retries)).await;
                    retries += 1;
                }
            }
        }
    }
}

/// Sorts a failed `Invoke` by whether the event can have been queued (see the module docs).
fn classify(e: SdkError<InvokeError, HttpResponse>) -> Attempt {
    let rejected = |e: &SdkError<InvokeError, HttpResponse>| {
        Attempt::Done(InvokeOutcome::Rejected(DisplayErrorContext(e).to_string()))
    };
    let unknown = |e: &SdkError<InvokeError, HttpResponse>| {
        Attempt::Done(InvokeOutcome::Unknown(DisplayErrorContext(e).to_string()))
    };
    match &e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            match se.err() {
                InvokeError::TooManyRequestsException(_) => {
                    Attempt::Throttled(DisplayErrorContext(&e).to_string())
                }
                InvokeError::ServiceException(_) => unknown(&e),
                // Others by status: a 429 without the modelled type is still a throttle, a 5xx may
                // have been queued, and every 4xx is a refusal before anything was queued.
                _ if status == 429 => Attempt::Throttled(DisplayErrorContext(&e).to_string()),
                _ if status >= 500 => unknown(&e),
                _ => rejected(&e),
            }
        }
        SdkError::ConstructionFailure(_) => rejected(&e),
        SdkError::DispatchFailure(_) if connection_refused(&e) => rejected(&e),
        _ => unknown(&e),
    }
}

/// Whether the error's cause chain holds a refused connection: the request never left.
fn connection_refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cause {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return true;
        }
        cause = err.source();
    }
    false
}

/// Worker timeouts from Lambda `GetFunctionConfiguration`, read once per function for the life of this
/// value (one container of an essential): a function's timeout rarely changes, and a stale value only
/// shifts when a silent task counts as expired.
#[derive(Debug)]
pub struct FunctionTimeouts {
    client: Client,
    cache: Mutex<HashMap<String, Option<u64>>>,
}

impl FunctionTimeouts {
    /// Timeouts read through `client`.
    pub fn new(client: Client) -> Self {
        FunctionTimeouts {
            client,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Timeouts with a client built from `config`.
    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(config))
    }

    fn cached(&self, function: &str) -> Option<Option<u64>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(function)
            .copied()
    }

    fn remember(&self, function: &str, timeout: Option<u64>) {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(function.to_string(), timeout);
    }
}

#[async_trait]
impl WorkerTimeouts for FunctionTimeouts {
    async fn timeout_secs(&self, function: &str) -> Result<Option<u64>> {
        if let Some(known) = self.cached(function) {
            return Ok(known);
        }
        let output = self
            .client
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .map_err(|e| {
                let retryable = !matches!(&e, SdkError::ServiceError(se)
                    if (400..500).contains(&se.raw().status().as_u16())
                        && se.raw().status().as_u16() != 429);
                Error::Service {
                    service: "Lambda",
                    operation: "GetFunctionConfiguration",
                    retryable,
                    source: DisplayErrorContext(e).to_string().into(),
                }
            })?;
        let timeout = output.timeout().and_then(|t| u64::try_from(t).ok());
        self.remember(function, timeout);
        Ok(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_lambda::config::interceptors::BeforeTransmitInterceptorContextRef;
    use aws_sdk_lambda::config::{ConfigBag, Intercept, RuntimeComponents};
    use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
    use aws_sdk_lambda::operation::invoke::InvokeOutput;
    use aws_sdk_lambda::types::error::ResourceNotFoundException;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use serde_json::json;
    use std::sync::Arc;

    /// One HTTP request as sent: method, URI, invocation-type header, body.
    type Sent = (String, String, Option<String>, Vec<u8>);

    /// The HTTP requests the client put on the wire.
    #[derive(Debug, Default, Clone)]
    struct Wire(Arc<Mutex<Vec<Sent>>>);

    impl Intercept for Wire {
        fn name(&self) -> &'static str {
            "Wire"
        }

        fn read_before_transmit(
            &self,
            context: &BeforeTransmitInterceptorContextRef<'_>,
            _components: &RuntimeComponents,
            _cfg: &mut ConfigBag,
        ) -> std::result::Result<(), aws_sdk_lambda::error::BoxError> {
            let request = context.request();
            self.0.lock().expect("lock").push((
                request.method().to_string(),
                request.uri().to_string(),
                request
                    .headers()
                    .get("x-amz-invocation-type")
                    .map(str::to_string),
                request.body().bytes().unwrap_or_default().to_vec(),
            ));
            Ok(())
        }
    }

    fn quick() -> ThrottleRetry {
        ThrottleRetry {
            max_retries: 2,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    fn throttled() -> HttpResponse {
        HttpResponse::new(
            429.try_into().expect("status"),
            aws_sdk_lambda::primitives::SdkBody::from(
                r#"{"Type":"User","message":"Rate exceeded","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}"#,
            ),
        )
    }

    #[tokio::test]
    async fn invoke_sends_an_event_invocation_with_the_worker_payload() {
        let rule = mock!(Client::invoke)
            .match_requests(|r| {
                r.function_name() == Some("w1")
                    && r.invocation_type() == Some(&InvocationType::Event)
                    && r.payload().map(|b| b.as_ref().to_vec())
                        == serde_json::to_vec(&json!({"task_id": "t1", "attempts": 0})).ok()
            })
            .then_output(|| InvokeOutput::builder().status_code(202).build());
        let wire = Wire::default();
        let seen = wire.clone();
        let client = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&rule], move |b| {
            b.interceptor(seen.clone())
        });
        let outcome = LambdaInvoker::new(&client)
            .invoke("w1", &json!({"task_id": "t1", "attempts": 0}))
            .await
            .expect("invoke");
        assert_eq!(outcome, InvokeOutcome::Accepted);
        let sent = wire.0.lock().expect("lock").clone();
        assert_eq!(sent.len(), 1);
        let (method, path, invocation_type, body) = &sent[0];
        assert_eq!(method, "POST");
        assert!(
            path.ends_with("/2015-03-31/functions/w1/invocations"),
            "{path}"
        );
        assert_eq!(invocation_type.as_deref(), Some("Event"));
        let body: Value = serde_json::from_slice(body).expect("the body is JSON");
        assert_eq!(body, json!({"task_id": "t1", "attempts": 0}));
    }

    #[tokio::test]
    async fn throttles_are_retried_then_accepted() {
        let rule = mock!(Client::invoke)
            .sequence()
            .http_response(throttled)
            .http_response(throttled)
            .output(|| InvokeOutput::builder().status_code(202).build())
            .build();
        let client = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&rule]);
        let outcome = LambdaInvoker::new(&client)
            .with_throttle_retry(quick())
            .invoke("w1", &json!({}))
            .await
            .expect("invoke");
        assert_eq!(outcome, InvokeOutcome::Accepted);
        assert_eq!(rule.num_calls(), 3);
    }

    #[tokio::test]
    async fn throttles_beyond_the_bound_are_rejected() {
        let rule = mock!(Client::invoke)
            .sequence()
            .http_response(throttled)
            .repeatedly()
            .build();
        let client = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&rule]);
        let outcome = LambdaInvoker::new(&client)
            .with_throttle_retry(quick())
            .invoke("w1", &json!({}))
            .await
            .expect("invoke");
        assert!(
            matches!(&outcome, InvokeOutcome::Rejected(m) if m.contains("throttled 3 times")),
            "{outcome:?}"
        );
        assert_eq!(
            rule.num_calls(),
            3,
            "one try and two retries, no SDK retries"
        );
    }

    #[tokio::test]
    async fn a_missing_function_is_rejected_and_a_server_error_is_unknown() {
        let missing = mock!(Client::invoke)
            .match_requests(|r| r.function_name() == Some("gone"))
            .then_error(|| {
                InvokeError::ResourceNotFoundException(
                    ResourceNotFoundException::builder()
                        .message("Function not found")
                        .build(),
                )
            });
        let broken = mock!(Client::invoke)
            .match_requests(|r| r.function_name() == Some("busy"))
            .sequence()
            .http_status(503, None)
            .repeatedly()
            .build();
        let client = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&missing, &broken]);
        let invoker = LambdaInvoker::new(&client);
        let outcome = invoker.invoke("gone", &json!({})).await.expect("invoke");
        assert!(matches!(outcome, InvokeOutcome::Rejected(_)), "{outcome:?}");
        let outcome = invoker.invoke("busy", &json!({})).await.expect("invoke");
        assert!(matches!(outcome, InvokeOutcome::Unknown(_)), "{outcome:?}");
        assert_eq!(
            broken.num_calls(),
            1,
            "a possibly queued event is not resent"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_rejected() {
        // A port that was just free: nothing listens on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let config = aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
            .region(aws_sdk_lambda::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_lambda::config::Credentials::for_tests())
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .build();
        let outcome = LambdaInvoker::new(&Client::from_conf(config))
            .invoke("w1", &json!({}))
            .await
            .expect("invoke");
        assert!(matches!(outcome, InvokeOutcome::Rejected(_)), "{outcome:?}");
    }

    #[tokio::test]
    async fn function_timeouts_are_read_once_per_function() {
        let rule = mock!(Client::get_function_configuration)
            .match_requests(|r| r.function_name() == Some("w1"))
            .sequence()
            .output(|| {
                GetFunctionConfigurationOutput::builder()
                    .timeout(120)
                    .build()
            })
            .repeatedly()
            .build();
        let client = mock_client!(aws_sdk_lambda, RuleMode::MatchAny, [&rule]);
        let timeouts = FunctionTimeouts::new(client);
        for _ in 0..3 {
            assert_eq!(
                timeouts.timeout_secs("w1").await.expect("timeout"),
                Some(120)
            );
        }
        assert_eq!(rule.num_calls(), 1);
    }

    #[test]
    fn backoff_delays_stay_under_their_exponential_bound() {
        let retry = ThrottleRetry::default();
        for n in 0..10 {
            let bound = (retry.base_delay * 2u32.pow(n)).min(retry.max_delay);
            let delay = retry.delay(n);
            assert!(
                delay < bound || delay.is_zero(),
                "retry {n}: {delay:?} vs {bound:?}"
            );
        }
        let spread: std::collections::BTreeSet<u64> =
            (0..20).map(|_| (jitter() * 1e9) as u64).collect();
        assert!(spread.len() > 15, "jitter varies: {spread:?}");
    }
}
