//! The binaries as real processes against a small Lambda Runtime API server (the endpoints a Lambda
//! container's runtime talks to), which also answers the config table's `GetItem` with "no row":
//! start to first answered invocation, success and error diagnostics.
//!
//! `bundles_answer_an_invocation` runs every `bootstrap` under `SOSW_BUNDLE_DIR`
//! (`<dir>/<function>/bootstrap`, the unzipped Lambda bundles `scripts/package.sh` staged) and prints
//! each one's cold start; without the variable it runs the essentials built for this test the same way.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sosw_testkit::lambda_api::{Answer, Request, Response, RuntimeApi, http, json_response};
use tokio::process::Command;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// How long a process gets for each answer.
const WAIT: Duration = Duration::from_secs(60);

/// The server's answer to everything but the Runtime API: a DynamoDB `GetItem` of a config row
/// (`x-amz-target` set) finds no row; anything else is `404`.
async fn not_the_runtime_api(request: Request) -> Response {
    if !request.headers().contains_key("x-amz-target") {
        return json_response(404, &json!({"message": "not found"}));
    }
    let mut response = json_response(200, &json!({}));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    response
}

/// What a process did: its answers, the time from its start to the first, and its stdout lines.
struct Run {
    answers: Vec<Answer>,
    cold_start: Duration,
    stdout: Vec<String>,
}

/// Runs binary `exe` as function `function` against a server handing out `events`, until it has
/// answered every one; returns the answers and the time from process start to the first.
async fn run_binary(
    exe: &str,
    function: &str,
    events: Vec<Value>,
) -> Result<(Vec<Answer>, Duration), Box<dyn std::error::Error>> {
    let run = run_process(exe, function, events).await?;
    Ok((run.answers, run.cold_start))
}

/// [`run_binary`], keeping what the process printed.
async fn run_process(
    exe: &str,
    function: &str,
    events: Vec<Value>,
) -> Result<Run, Box<dyn std::error::Error>> {
    let api = RuntimeApi::builder(function)
        .fallback(not_the_runtime_api)
        .start()
        .await?;
    let address = api.address().to_string();
    let pending: Vec<_> = events.iter().map(|event| api.queue(event)).collect();
    let started = Instant::now();
    let mut child = Command::new(exe)
        .env("AWS_LAMBDA_RUNTIME_API", &address)
        .env("AWS_LAMBDA_FUNCTION_NAME", function)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_ENDPOINT_URL", format!("http://{address}"))
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("RUST_LOG", "warn")
        .env_remove("AWS_PROFILE")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut answers = Vec::new();
    let mut first = None;
    let mut failure = None;
    for pending in pending {
        let request_id = pending.request_id().to_owned();
        tokio::select! {
            answer = tokio::time::timeout(WAIT, pending.answer()) => match answer {
                Ok(Some(answer)) => {
                    first.get_or_insert_with(|| started.elapsed());
                    answers.push(answer);
                }
                _ => {
                    failure = Some(format!("no answer to {request_id} within {WAIT:?}"));
                    break;
                }
            },
            error = api.init_error() => {
                failure = Some(format!(
                    "init error {}: {}",
                    error.error_type,
                    String::from_utf8_lossy(&error.body)
                ));
                break;
            }
        }
    }
    child.start_kill()?;
    let output = child.wait_with_output().await?;
    if let Some(failure) = failure {
        return Err(failure.into());
    }
    Ok(Run {
        answers,
        cold_start: first.unwrap_or_default(),
        stdout: String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
    })
}

/// An answer's body as JSON (`null` if it is not JSON).
fn body(answer: &Answer) -> Value {
    answer.json().unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_scavenger_binary_answers_an_invocation_through_the_runtime_api() -> TestResult {
    let exe = env!("CARGO_BIN_EXE_sosw_scavenger");
    let (answers, cold_start) =
        run_binary(exe, "sosw_scavenger", vec![json!({"source": "aws.events"})]).await?;
    let [answer] = answers.as_slice() else {
        return Err(format!("expected one answer, got {answers:?}").into());
    };
    let body = body(answer);
    assert_eq!(answer.request_id, "req-1", "{body}");
    assert!(answer.is_response(), "{answer:?}");
    assert_eq!(
        body["labourers"],
        json!({}),
        "no labourers configured: {body}"
    );
    assert!(body["now"].as_i64().is_some_and(|now| now > 0), "{body}");
    println!("sosw_scavenger: process start to first answered invocation: {cold_start:?}");
    Ok(())
}

#[tokio::test]
async fn the_worker_assistant_binary_reports_a_malformed_event_as_non_retryable() -> TestResult {
    let exe = env!("CARGO_BIN_EXE_sosw_worker_assistant");
    let events = vec![json!({"task_id": "t1"}), json!(["not", "a", "report"])];
    let (answers, cold_start) = run_binary(exe, "sosw_worker_assistant", events).await?;
    assert_eq!(answers.len(), 2, "{answers:?}");
    for answer in &answers {
        assert_eq!(
            answer.error_type.as_deref(),
            Some("NonRetryable"),
            "{answer:?}"
        );
        assert_eq!(body(answer)["errorType"], "NonRetryable", "{answer:?}");
    }
    assert!(
        body(&answers[0])["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("action")),
        "{:?}",
        answers[0]
    );
    println!("sosw_worker_assistant: process start to first answered invocation: {cold_start:?}");
    Ok(())
}

/// What a bundle must answer to its first event.
struct BundleCase {
    function: &'static str,
    event: Value,
    /// `response` or `error`.
    answer: &'static str,
    /// A JSON pointer into the answer and the value it must find there.
    check: (&'static str, Value),
    /// Whether the answer comes with an EMF metrics line for this function on stdout.
    emf: bool,
}

fn bundle_cases() -> Vec<BundleCase> {
    let case = |function, event, answer, key, value| BundleCase {
        function,
        event,
        answer,
        check: (key, value),
        // The essentials that answer with a report print its metrics.
        emf: answer == "response" && function_is_essential(function),
    };
    vec![
        case(
            "sosw_scheduler",
            json!({"job": "not a job"}),
            "error",
            "/errorType",
            json!("NonRetryable"),
        ),
        case(
            "sosw_orchestrator",
            json!({"source": "aws.events"}),
            "response",
            "/labourers",
            json!({}),
        ),
        case(
            "sosw_scavenger",
            json!({"source": "aws.events"}),
            "response",
            "/labourers",
            json!({}),
        ),
        case(
            "sosw_worker_assistant",
            json!({"task_id": "t1"}),
            "error",
            "/errorType",
            json!("NonRetryable"),
        ),
        case(
            "sosw_tutorial_pull_tweeter_hashtags",
            json!({"date_list": ["2026-11-01"], "topics": ["cars"], "words": ["rust"]}),
            "response",
            "/counts/0/word",
            json!("rust"),
        ),
        case(
            "sosw_tutorial_flaky_hashtags",
            json!({"words": ["racing"]}),
            "error",
            "/errorType",
            json!("Retryable"),
        ),
    ]
}

fn function_is_essential(function: &str) -> bool {
    !function.starts_with("sosw_tutorial_")
}

/// Whether `stdout` has an EMF line of `function`: `_aws.CloudWatchMetrics` with a namespace, and the
/// `function` dimension set to it.
fn has_emf_line(stdout: &[String], function: &str) -> bool {
    stdout
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .any(|doc| {
            doc["function"] == function
                && doc["_aws"]["CloudWatchMetrics"][0]["Namespace"].is_string()
                && doc["_aws"]["Timestamp"].is_i64()
        })
}

/// `(function, bootstrap)` of every bundle to run: under `SOSW_BUNDLE_DIR`, else this test's own
/// essentials.
fn bundles() -> Result<Vec<(String, std::path::PathBuf)>, Box<dyn std::error::Error>> {
    let Some(dir) = std::env::var_os("SOSW_BUNDLE_DIR") else {
        return Ok([
            ("sosw_scheduler", env!("CARGO_BIN_EXE_sosw_scheduler")),
            ("sosw_orchestrator", env!("CARGO_BIN_EXE_sosw_orchestrator")),
            ("sosw_scavenger", env!("CARGO_BIN_EXE_sosw_scavenger")),
            (
                "sosw_worker_assistant",
                env!("CARGO_BIN_EXE_sosw_worker_assistant"),
            ),
        ]
        .into_iter()
        .map(|(f, exe)| (f.to_string(), exe.into()))
        .collect());
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let bootstrap = path.join("bootstrap");
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if bootstrap.is_file() {
            found.push((name.to_string(), bootstrap));
        }
    }
    found.sort();
    if found.is_empty() {
        return Err(format!(
            "no <function>/bootstrap under SOSW_BUNDLE_DIR={}",
            dir.display()
        )
        .into());
    }
    Ok(found)
}

#[tokio::test]
async fn bundles_answer_an_invocation() -> TestResult {
    let cases = bundle_cases();
    let mut failures = Vec::new();
    for (function, bootstrap) in bundles()? {
        let Some(case) = cases.iter().find(|c| c.function == function) else {
            failures.push(format!(
                "{function}: no test case for this bundle; add one to bundle_cases()"
            ));
            continue;
        };
        let exe = bootstrap.to_string_lossy().into_owned();
        let run = match run_process(&exe, &function, vec![case.event.clone()]).await {
            Ok(run) => run,
            Err(err) => {
                failures.push(format!("{function}: did not answer: {err}"));
                continue;
            }
        };
        let [answer] = run.answers.as_slice() else {
            failures.push(format!(
                "{function}: expected one answer, got {:?}",
                run.answers
            ));
            continue;
        };
        let (key, want) = &case.check;
        let (kind, body) = (
            if answer.is_response() {
                "response"
            } else {
                "error"
            },
            body(answer),
        );
        if kind != case.answer || body.pointer(key) != Some(want) {
            failures.push(format!(
                "{function}: expected {} with {key} = {want}, got {kind}: {body}",
                case.answer
            ));
            continue;
        }
        if case.emf && !has_emf_line(&run.stdout, &function) {
            failures.push(format!(
                "{function}: no EMF metrics line on stdout: {:?}",
                run.stdout
            ));
            continue;
        }
        println!("cold start {function}: {} ms", run.cold_start.as_millis());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}
