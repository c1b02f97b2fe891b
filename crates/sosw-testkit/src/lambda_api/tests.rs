//! Tests of the fake Lambda APIs against the real clients: the AWS SDK's Lambda client against [`InvokeApi`], a
//! real `lambda_runtime` loop against [`RuntimeApi`] (in a child process: it reads its configuration
//! from the environment), and the long poll, init error and fallback through [`Upstream`].

use std::time::Duration;

use crate::lambda_api::{
    Bytes, FunctionError, InvokeApi, Request, RuntimeApi, Upstream, http, json_response,
};
use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde_json::{Value, json};
use tokio::sync::mpsc;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

const WAIT: Duration = Duration::from_secs(30);

fn lambda_client(url: &str) -> aws_sdk_lambda::Client {
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(url)
        .build();
    aws_sdk_lambda::Client::from_conf(config)
}

/// A server with `echo` (answers `{"echo": payload}`, fails on `{"fail": type}`), whose invocations
/// are also sent to the returned channel.
async fn echo_api() -> std::io::Result<(
    InvokeApi,
    mpsc::UnboundedReceiver<(String, Option<String>, Value)>,
)> {
    let (seen, received) = mpsc::unbounded_channel();
    let api = InvokeApi::builder()
        .function("echo", move |invocation| {
            let seen = seen.clone();
            async move {
                let event = invocation
                    .json()
                    .map_err(|e| FunctionError::new("Malformed", e.to_string()))?;
                let _ = seen.send((
                    invocation.function.clone(),
                    invocation.qualifier.clone(),
                    event.clone(),
                ));
                match event["fail"].as_str() {
                    Some(error_type) => Err(FunctionError::new(error_type, "asked to fail")),
                    None => Ok(json!({"echo": event})),
                }
            }
        })
        .timeout(Duration::from_secs(900))
        .start()
        .await?;
    Ok((api, received))
}

#[tokio::test]
async fn request_response_answers_200_with_the_functions_value() -> TestResult {
    let (api, mut seen) = echo_api().await?;
    let lambda = lambda_client(&api.url());
    let output = lambda
        .invoke()
        .function_name("echo")
        .payload(Blob::new(br#"{"n": 1}"#.to_vec()))
        .send()
        .await?;
    assert_eq!(output.status_code(), 200);
    assert_eq!(output.function_error(), None);
    assert_eq!(output.executed_version(), Some("$LATEST"));
    let payload: Value = serde_json::from_slice(output.payload().ok_or("no payload")?.as_ref())?;
    assert_eq!(payload, json!({"echo": {"n": 1}}));
    assert_eq!(
        seen.recv().await,
        Some(("echo".into(), None, json!({"n": 1})))
    );
    assert_eq!((api.invocations(), api.invocations_of("echo")), (1, 1));
    Ok(())
}

#[tokio::test]
async fn event_answers_202_at_once_and_runs_in_the_background() -> TestResult {
    let (release, released) = mpsc::unbounded_channel::<()>();
    let (ran, mut runs) = mpsc::unbounded_channel();
    let released = std::sync::Arc::new(tokio::sync::Mutex::new(released));
    let api = InvokeApi::builder()
        .function("slow", move |invocation| {
            let (released, ran) = (released.clone(), ran.clone());
            async move {
                // Runs until the test lets it finish: the caller's 202 cannot have waited for it.
                released.lock().await.recv().await;
                let _ = ran.send(invocation.json().ok());
                Ok(Value::Null)
            }
        })
        .start()
        .await?;
    let lambda = lambda_client(&api.url());
    let output = tokio::time::timeout(
        WAIT,
        lambda
            .invoke()
            .function_name("slow")
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(br#"{"task_id": "t1"}"#.to_vec()))
            .send(),
    )
    .await??;
    assert_eq!(output.status_code(), 202);
    assert!(output.payload().is_none_or(|p| p.as_ref().is_empty()));
    assert_eq!(api.invocations_of("slow"), 1);
    release.send(())?;
    let event = tokio::time::timeout(WAIT, runs.recv()).await?;
    assert_eq!(event, Some(Some(json!({"task_id": "t1"}))));
    tokio::time::timeout(WAIT, api.idle()).await?;
    assert_eq!(api.take_invocations(), 1);
    assert_eq!(api.invocations(), 0);
    Ok(())
}

#[tokio::test]
async fn a_function_error_is_200_with_the_unhandled_header() -> TestResult {
    let (api, _seen) = echo_api().await?;
    let output = lambda_client(&api.url())
        .invoke()
        .function_name("echo")
        .payload(Blob::new(br#"{"fail": "Retryable"}"#.to_vec()))
        .send()
        .await?;
    assert_eq!(output.status_code(), 200);
    assert_eq!(output.function_error(), Some("Unhandled"));
    let payload: Value = serde_json::from_slice(output.payload().ok_or("no payload")?.as_ref())?;
    assert_eq!(
        payload,
        json!({"errorType": "Retryable", "errorMessage": "asked to fail"})
    );
    Ok(())
}

#[tokio::test]
async fn arns_and_qualifiers_resolve_to_the_same_function() -> TestResult {
    let (api, mut seen) = echo_api().await?;
    let lambda = lambda_client(&api.url());
    let names = [
        (
            "arn:aws:lambda:us-east-1:123456789012:function:echo:live",
            Some("live"),
        ),
        ("arn:aws:lambda:eu-west-1:123456789012:function:echo", None),
        ("123456789012:function:echo:7", Some("7")),
        ("echo:$LATEST", Some("$LATEST")),
    ];
    for (name, qualifier) in names {
        let output = lambda
            .invoke()
            .function_name(name)
            .payload(Blob::new(b"{}".to_vec()))
            .send()
            .await?;
        assert_eq!(output.status_code(), 200, "{name}");
        assert_eq!(
            output.executed_version(),
            Some(qualifier.unwrap_or("$LATEST")),
            "{name}"
        );
        let (function, got, _) = seen.recv().await.ok_or("the handler did not run")?;
        assert_eq!(
            (function.as_str(), got.as_deref()),
            ("echo", qualifier),
            "{name}"
        );
    }
    // The `Qualifier` parameter.
    lambda
        .invoke()
        .function_name("echo")
        .qualifier("blue")
        .send()
        .await?;
    let (_, qualifier, event) = seen.recv().await.ok_or("the handler did not run")?;
    assert_eq!((qualifier.as_deref(), event), (Some("blue"), Value::Null));
    assert_eq!(api.invocations_of("echo"), 5);

    let configuration = lambda
        .get_function_configuration()
        .function_name("arn:aws:lambda:us-east-1:123456789012:function:echo")
        .send()
        .await?;
    assert_eq!(configuration.function_name(), Some("echo"));
    assert_eq!(configuration.timeout(), Some(900));
    Ok(())
}

#[tokio::test]
async fn an_unknown_function_is_404_resource_not_found() -> TestResult {
    let (api, _seen) = echo_api().await?;
    let lambda = lambda_client(&api.url());
    for invocation_type in [InvocationType::RequestResponse, InvocationType::Event] {
        let err = lambda
            .invoke()
            .function_name("arn:aws:lambda:us-east-1:123456789012:function:nope")
            .invocation_type(invocation_type.clone())
            .send()
            .await
            .err()
            .ok_or("invoking an unknown function succeeded")?;
        assert_eq!(
            err.raw_response().map(|r| r.status().as_u16()),
            Some(404),
            "{invocation_type:?}"
        );
        assert!(
            err.into_service_error().is_resource_not_found_exception(),
            "{invocation_type:?}"
        );
    }
    let err = lambda
        .get_function_configuration()
        .function_name("nope")
        .send()
        .await
        .err()
        .ok_or("the configuration of an unknown function")?;
    assert!(err.into_service_error().is_resource_not_found_exception());
    assert_eq!(api.invocations(), 0);
    Ok(())
}

#[tokio::test]
async fn any_function_answers_and_counts_every_name() -> TestResult {
    let api = InvokeApi::builder()
        .any_function(|_| async { Ok(Value::Null) })
        .start()
        .await?;
    let lambda = lambda_client(&api.url());
    for name in [
        "a",
        "b",
        "arn:aws:lambda:us-east-1:123456789012:function:a:1",
    ] {
        let output = lambda
            .invoke()
            .function_name(name)
            .invocation_type(InvocationType::Event)
            .send()
            .await?;
        assert_eq!(output.status_code(), 202);
    }
    assert_eq!((api.invocations_of("a"), api.invocations_of("b")), (2, 1));
    assert_eq!(api.take_invocations(), 3);
    Ok(())
}

/// The child process of [`a_lambda_runtime_loop_answers_through_the_runtime_api`]: a real
/// `lambda_runtime` loop, when the parent started it (passes at once otherwise).
#[tokio::test]
async fn lambda_runtime_child() -> TestResult {
    if std::env::var_os("SOSW_TESTKIT_LAMBDA_RUNTIME_CHILD").is_none() {
        return Ok(());
    }
    let handler =
        lambda_runtime::service_fn(|event: lambda_runtime::LambdaEvent<Value>| async move {
            match event.payload["fail"].as_str() {
                Some(error_type) => Err(lambda_runtime::Diagnostic {
                    error_type: error_type.to_owned(),
                    error_message: "asked to fail".to_owned(),
                }),
                None => Ok(json!({
                    "echo": event.payload,
                    "request_id": event.context.request_id,
                    "arn": event.context.invoked_function_arn,
                })),
            }
        });
    lambda_runtime::run(handler)
        .await
        .map_err(|e| e.to_string().into())
}

#[tokio::test]
async fn a_lambda_runtime_loop_answers_through_the_runtime_api() -> TestResult {
    let api = RuntimeApi::start("echo").await?;
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args([
            "lambda_api::tests::lambda_runtime_child",
            "--exact",
            "--nocapture",
        ])
        .env("SOSW_TESTKIT_LAMBDA_RUNTIME_CHILD", "1")
        .env("AWS_LAMBDA_RUNTIME_API", api.address().to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "echo")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    // Queued after the runtime started: its first poll may be held open until then.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ok = api.queue(&json!({"n": 1}));
    let failing = api.queue(&json!({"fail": "Boom"}));
    assert_eq!((ok.request_id(), failing.request_id()), ("req-1", "req-2"));

    let answer = tokio::time::timeout(WAIT, ok.answer())
        .await?
        .ok_or("no answer")?;
    assert!(answer.is_response(), "{answer:?}");
    assert_eq!(answer.request_id, "req-1");
    assert_eq!(
        answer.json()?,
        json!({"echo": {"n": 1}, "request_id": "req-1",
               "arn": "arn:aws:lambda:us-east-1:000000000000:function:echo"})
    );

    let answer = tokio::time::timeout(WAIT, failing.answer())
        .await?
        .ok_or("no answer")?;
    assert_eq!(answer.request_id, "req-2");
    assert_eq!(answer.error_type.as_deref(), Some("Boom"), "{answer:?}");
    assert_eq!(answer.json()?["errorMessage"], "asked to fail");
    child.start_kill()?;
    child.wait().await?;
    Ok(())
}

fn request(method: http::Method, path: &str, body: &'static [u8]) -> Result<Request, http::Error> {
    http::Request::builder()
        .method(method)
        .uri(path)
        .body(Bytes::from_static(body))
}

#[tokio::test]
async fn the_next_poll_is_held_open_until_an_event_is_queued() -> TestResult {
    let api = RuntimeApi::builder("held")
        .deadline(Duration::from_secs(900))
        .start()
        .await?;
    let upstream = Upstream::new(&format!("http://{}", api.address()))?;
    let next = request(
        http::Method::GET,
        "/2018-06-01/runtime/invocation/next",
        b"",
    )?;
    let poll = tokio::spawn({
        let upstream = upstream.clone();
        async move { upstream.send(next).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "a poll with nothing queued answered");
    let pending = api.queue_bytes(&b"not json"[..]);
    let event = tokio::time::timeout(WAIT, poll).await???;
    assert_eq!(event.status(), 200);
    assert_eq!(event.body(), &Bytes::from_static(b"not json"));
    let header = |name: &str| {
        event
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(
        header("lambda-runtime-aws-request-id").as_deref(),
        Some("req-1")
    );
    assert_eq!(
        header("lambda-runtime-invoked-function-arn").as_deref(),
        Some("arn:aws:lambda:us-east-1:000000000000:function:held")
    );
    let deadline: u128 = header("lambda-runtime-deadline-ms")
        .ok_or("no deadline")?
        .parse()?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    assert!(deadline > now.as_millis() + 800_000, "{deadline}");

    // An error without a JSON body: the header names its type.
    let mut error = request(
        http::Method::POST,
        "/2018-06-01/runtime/invocation/req-1/error",
        b"oops",
    )?;
    error.headers_mut().insert(
        "lambda-runtime-function-error-type",
        http::HeaderValue::from_static("Runtime.ExitError"),
    );
    assert_eq!(upstream.send(error).await?.status(), 202);
    let answer = pending.answer().await.ok_or("no answer")?;
    assert_eq!(answer.error_type.as_deref(), Some("Runtime.ExitError"));

    // Answered once only; an unknown id is refused.
    let again = request(
        http::Method::POST,
        "/2018-06-01/runtime/invocation/req-1/response",
        b"{}",
    )?;
    assert_eq!(upstream.send(again).await?.status(), 400);
    Ok(())
}

#[tokio::test]
async fn init_errors_and_other_calls_reach_the_test() -> TestResult {
    let api = RuntimeApi::builder("broken")
        .fallback(|request| async move {
            let target = request.headers().contains_key("x-amz-target");
            json_response(if target { 200 } else { 418 }, &json!({}))
        })
        .start()
        .await?;
    let upstream = Upstream::new(&format!("http://{}", api.address()))?;
    let init = request(
        http::Method::POST,
        "/2018-06-01/runtime/init/error",
        br#"{"errorType": "Runtime.ConfigError", "errorMessage": "no table"}"#,
    )?;
    assert_eq!(upstream.send(init).await?.status(), 202);
    let error = tokio::time::timeout(WAIT, api.init_error()).await?;
    assert_eq!(error.error_type, "Runtime.ConfigError");

    let mut get_item = request(http::Method::POST, "/", b"{}")?;
    get_item.headers_mut().insert(
        "x-amz-target",
        http::HeaderValue::from_static("DynamoDB_20120810.GetItem"),
    );
    assert_eq!(upstream.send(get_item).await?.status(), 200);
    let other = request(http::Method::GET, "/elsewhere", b"")?;
    assert_eq!(upstream.send(other).await?.status(), 418);
    Ok(())
}
