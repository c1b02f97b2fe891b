//! The binaries as real processes against a small Lambda Runtime API server (the endpoints a Lambda
//! container's runtime talks to), which also answers the config table's `GetItem` with "no row":
//! start to first answered invocation, success and error diagnostics.
//!
//! `bundles_answer_an_invocation` runs every `bootstrap` under `SOSW_BUNDLE_DIR`
//! (`<dir>/<function>/bootstrap`, the unzipped Lambda bundles `scripts/package.sh` staged) and prints
//! each one's cold start; without the variable it runs the essentials built for this test the same way.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::Command;
use tokio::sync::mpsc;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const RUNTIME: &str = "/2018-06-01/runtime";

/// One HTTP request as the server read it.
struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A reply: status, extra headers, JSON body.
type Reply = (u16, Vec<(String, String)>, Value);

/// What the runtime posted back: the path (`.../response` or `.../error`) and the JSON body.
type Posted = (String, Value);

struct Server {
    events: Mutex<VecDeque<Value>>,
    posted: mpsc::UnboundedSender<Posted>,
    function: String,
    handed_out: Mutex<usize>,
}

impl Server {
    /// The reply to `request`, or `None` to hold the connection (a `next` with no event left).
    fn answer(&self, request: &Request) -> Option<Reply> {
        if request.header("x-amz-target").is_some() {
            // DynamoDB `GetItem` of a config row: no such row.
            return Some((200, Vec::new(), json!({})));
        }
        if request.method == "GET" && request.path == format!("{RUNTIME}/invocation/next") {
            let event = self.events.lock().ok()?.pop_front()?;
            let sequence = {
                let mut n = self.handed_out.lock().ok()?;
                *n += 1;
                *n
            };
            let deadline = SystemTime::now()
                .checked_add(Duration::from_secs(60))
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_millis())
                .unwrap_or_default();
            let headers = vec![
                (
                    "lambda-runtime-aws-request-id".into(),
                    format!("req-{sequence}"),
                ),
                ("lambda-runtime-deadline-ms".into(), deadline.to_string()),
                (
                    "lambda-runtime-invoked-function-arn".into(),
                    format!(
                        "arn:aws:lambda:us-east-1:000000000000:function:{}",
                        self.function
                    ),
                ),
            ];
            return Some((200, headers, event));
        }
        if request.method == "POST" && request.path.starts_with(&format!("{RUNTIME}/")) {
            let body = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
            let _ = self.posted.send((request.path.clone(), body));
            return Some((202, Vec::new(), json!({"status": "OK"})));
        }
        Some((404, Vec::new(), json!({"message": "not found"})))
    }
}

async fn read_request(reader: &mut BufReader<OwnedReadHalf>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).await.ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let mut request = Request {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if request
        .header("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        request.body = read_chunked(reader).await?;
    } else {
        let length = request
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await.ok()?;
        request.body = body;
    }
    Some(request)
}

async fn read_chunked(reader: &mut BufReader<OwnedReadHalf>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).await.ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        if size == 0 {
            let mut trailer = String::new();
            while reader.read_line(&mut trailer).await.ok()? > 0 && !trailer.trim().is_empty() {
                trailer.clear();
            }
            return Some(body);
        }
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).await.ok()?;
        chunk.truncate(size);
        body.extend(chunk);
    }
}

async fn serve_connection(stream: TcpStream, server: Arc<Server>) {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    while let Some(request) = read_request(&mut reader).await {
        let Some((status, headers, body)) = server.answer(&request) else {
            // Long poll with nothing to hand out: hold until the process is stopped.
            std::future::pending::<()>().await;
            return;
        };
        let body = body.to_string();
        let mut head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        );
        if request.header("x-amz-target").is_some() {
            head = head.replace("application/json", "application/x-amz-json-1.0");
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        if writer.write_all(head.as_bytes()).await.is_err()
            || writer.write_all(body.as_bytes()).await.is_err()
        {
            return;
        }
    }
}

/// Starts the server with `events` to hand out; returns its address and what the runtime posts.
async fn start_server(
    function: &str,
    events: Vec<Value>,
) -> std::io::Result<(String, mpsc::UnboundedReceiver<Posted>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    let (posted, received) = mpsc::unbounded_channel();
    let server = Arc::new(Server {
        events: Mutex::new(events.into()),
        posted,
        function: function.to_string(),
        handed_out: Mutex::new(0),
    });
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_connection(stream, server.clone()));
        }
    });
    Ok((address, received))
}

/// What a process did: its answers, the time from its start to the first, and its stdout lines.
struct Run {
    posted: Vec<Posted>,
    cold_start: Duration,
    stdout: Vec<String>,
}

/// Runs binary `exe` as function `function` against a server handing out `events`, until it has
/// posted `events.len()` answers; returns them and the time from process start to the first.
async fn run_binary(
    exe: &str,
    function: &str,
    events: Vec<Value>,
) -> Result<(Vec<Posted>, Duration), Box<dyn std::error::Error>> {
    let run = run_process(exe, function, events).await?;
    Ok((run.posted, run.cold_start))
}

/// [`run_binary`], keeping what the process printed.
async fn run_process(
    exe: &str,
    function: &str,
    events: Vec<Value>,
) -> Result<Run, Box<dyn std::error::Error>> {
    let expected = events.len();
    let (address, mut received) = start_server(function, events).await?;
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
    let mut posted = Vec::new();
    let mut first = None;
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        while posted.len() < expected {
            match received.recv().await {
                Some(answer) => {
                    first.get_or_insert_with(|| started.elapsed());
                    posted.push(answer);
                }
                None => break,
            }
        }
    })
    .await;
    child.start_kill()?;
    let output = child.wait_with_output().await?;
    outcome?;
    Ok(Run {
        posted,
        cold_start: first.unwrap_or_default(),
        stdout: String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
    })
}

#[tokio::test]
async fn the_scavenger_binary_answers_an_invocation_through_the_runtime_api() -> TestResult {
    let exe = env!("CARGO_BIN_EXE_sosw_scavenger");
    let (posted, cold_start) =
        run_binary(exe, "sosw_scavenger", vec![json!({"source": "aws.events"})]).await?;
    let [(path, body)] = posted.as_slice() else {
        return Err(format!("expected one answer, got {posted:?}").into());
    };
    assert_eq!(
        path,
        &format!("{RUNTIME}/invocation/req-1/response"),
        "{body}"
    );
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
    let (posted, cold_start) = run_binary(exe, "sosw_worker_assistant", events).await?;
    assert_eq!(posted.len(), 2, "{posted:?}");
    for (path, body) in &posted {
        assert!(path.ends_with("/error"), "{path}: {body}");
        assert_eq!(body["errorType"], "NonRetryable", "{body}");
    }
    assert!(
        posted[0].1["errorMessage"]
            .as_str()
            .is_some_and(|m| m.contains("action")),
        "{:?}",
        posted[0]
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
        let [(path, body)] = run.posted.as_slice() else {
            failures.push(format!(
                "{function}: expected one answer, got {:?}",
                run.posted
            ));
            continue;
        };
        let (key, want) = &case.check;
        if !path.ends_with(&format!("/{}", case.answer)) || body.pointer(key) != Some(want) {
            failures.push(format!(
                "{function}: expected {} with {key} = {want}, got {path}: {body}",
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
