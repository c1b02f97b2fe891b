//! A fake Lambda Runtime API: what a function's bootstrap (a `lambda_runtime` loop) talks to.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::Method;
use http::header::{CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

use super::server::{Request, Response, TestServer, json_response, lock};

const INVOCATION: &str = "/2018-06-01/runtime/invocation/";
const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const INIT_ERROR: &str = "/2018-06-01/runtime/init/error";
/// The header a runtime names its error type in (the body's `errorType` wins).
const ERROR_TYPE_HEADER: &str = "lambda-runtime-function-error-type";

type Fallback =
    Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Response> + Send>> + Send + Sync>;

/// What the runtime posted for one invocation: its response or its error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The invocation's `Lambda-Runtime-Aws-Request-Id`.
    pub request_id: String,
    /// `None` for a response (`.../response`); for an error (`.../error`), the body's `errorType`,
    /// else the `Lambda-Runtime-Function-Error-Type` header, else `Unhandled`.
    pub error_type: Option<String>,
    /// The body as posted: the response payload, or `{"errorType", "errorMessage"}`.
    pub body: Bytes,
}

impl Answer {
    /// Whether the runtime posted a response (not an error).
    pub fn is_response(&self) -> bool {
        self.error_type.is_none()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Result<Value> {
        serde_json::from_slice(&self.body)
    }
}

/// What the runtime posted to `/runtime/init/error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitError {
    /// The body's `errorType`, else the `Lambda-Runtime-Function-Error-Type` header.
    pub error_type: String,
    /// The body as posted.
    pub body: Bytes,
}

/// A queued event's answer, to await with [`PendingAnswer::answer`].
#[derive(Debug)]
pub struct PendingAnswer {
    request_id: String,
    answer: oneshot::Receiver<Answer>,
}

impl PendingAnswer {
    /// The request id the event is handed out with.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Waits for the runtime's response or error to this event; `None` if the server was dropped
    /// first. Wrap it in a timeout: a runtime that never polls never answers.
    pub async fn answer(self) -> Option<Answer> {
        self.answer.await.ok()
    }
}

struct Queued {
    request_id: String,
    event: Bytes,
    answer: oneshot::Sender<Answer>,
}

struct State {
    function_arn: String,
    deadline: Duration,
    queue: mpsc::UnboundedSender<Queued>,
    /// Taken by one `next` poll at a time; a poll waits here while nothing is queued.
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<Queued>>,
    /// Handed out, not answered yet: request id → where its answer goes.
    in_flight: Mutex<HashMap<String, oneshot::Sender<Answer>>>,
    init_error: watch::Sender<Option<InitError>>,
    fallback: Option<Fallback>,
}

/// Configures a [`RuntimeApi`] before it starts.
pub struct RuntimeApiBuilder {
    function: String,
    deadline: Duration,
    fallback: Option<Fallback>,
}

impl std::fmt::Debug for RuntimeApiBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApiBuilder")
            .field("function", &self.function)
            .field("deadline", &self.deadline)
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl RuntimeApiBuilder {
    /// How far in the future each event's `Lambda-Runtime-Deadline-Ms` lies (default 60 s).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Answers every request that is not a Runtime API call with `handler` (by default `404`): a
    /// process under test that sends its other AWS calls to the same address
    /// (`AWS_ENDPOINT_URL=http://<address>`) gets them answered here.
    pub fn fallback<H, F>(mut self, handler: H) -> Self
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = Response> + Send + 'static,
    {
        self.fallback = Some(Arc::new(move |request| Box::pin(handler(request))));
        self
    }

    /// Starts the server on a free port of `127.0.0.1`.
    pub async fn start(self) -> io::Result<RuntimeApi> {
        let (queue, events) = mpsc::unbounded_channel();
        let state = Arc::new(State {
            function_arn: format!(
                "arn:aws:lambda:us-east-1:000000000000:function:{}",
                self.function
            ),
            deadline: self.deadline,
            queue,
            events: tokio::sync::Mutex::new(events),
            in_flight: Mutex::new(HashMap::new()),
            init_error: watch::Sender::new(None),
            fallback: self.fallback,
        });
        let shared = state.clone();
        let server = TestServer::start(move |request| {
            let state = shared.clone();
            async move { state.answer(request).await }
        })
        .await?;
        Ok(RuntimeApi {
            server,
            state,
            sequence: AtomicU64::new(0),
        })
    }
}

/// A fake Lambda Runtime API for one function: a test queues events, a runtime polls them with
/// `GET /2018-06-01/runtime/invocation/next` and posts each answer to `.../invocation/{id}/response`
/// or `.../invocation/{id}/error`; the test awaits them. A poll with nothing queued is held open until
/// an event is queued. Stops when dropped.
///
/// A held poll whose client goes away (the process was killed) is dropped when the server notices the
/// closed connection; an event queued in that instant can still go to it and get no answer. Start
/// one `RuntimeApi` per runtime process, as a Lambda sandbox has its own.
///
/// Each event is handed out with `Lambda-Runtime-Aws-Request-Id` (`req-1`, `req-2`, … in queueing
/// order), `Lambda-Runtime-Deadline-Ms` and `Lambda-Runtime-Invoked-Function-Arn` (the function's ARN
/// in `us-east-1`, account `000000000000`). Start the process under test with
/// `AWS_LAMBDA_RUNTIME_API` set to [`RuntimeApi::address`].
///
/// ```
/// use serde_json::json;
/// use sosw_testkit::lambda_api::RuntimeApi;
///
/// # async fn example() -> std::io::Result<()> {
/// let api = RuntimeApi::start("sosw_scavenger").await?;
/// let pending = api.queue(&json!({"source": "aws.events"}));
/// // Spawn the bootstrap with AWS_LAMBDA_RUNTIME_API = api.address(), then:
/// let answer = pending.answer().await;
/// # Ok(())
/// # }
/// ```
pub struct RuntimeApi {
    server: TestServer,
    state: Arc<State>,
    sequence: AtomicU64,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApi")
            .field("address", &self.server.address())
            .field("function_arn", &self.state.function_arn)
            .finish_non_exhaustive()
    }
}

impl RuntimeApi {
    /// A server for `function` to configure before it starts.
    pub fn builder(function: &str) -> RuntimeApiBuilder {
        RuntimeApiBuilder {
            function: function.to_owned(),
            deadline: Duration::from_secs(60),
            fallback: None,
        }
    }

    /// Starts a server for `function` with the defaults of [`RuntimeApi::builder`].
    pub async fn start(function: &str) -> io::Result<RuntimeApi> {
        Self::builder(function).start().await
    }

    /// `127.0.0.1:<port>`, the form `AWS_LAMBDA_RUNTIME_API` takes (`to_string()` it).
    pub fn address(&self) -> SocketAddr {
        self.server.address()
    }

    /// Queues `event` (serialized as JSON) for the next poll; returns where its answer arrives.
    pub fn queue(&self, event: &Value) -> PendingAnswer {
        self.queue_bytes(Bytes::from(event.to_string()))
    }

    /// Queues a raw event body, JSON or not.
    pub fn queue_bytes(&self, event: impl Into<Bytes>) -> PendingAnswer {
        let request_id = format!("req-{}", self.sequence.fetch_add(1, Ordering::SeqCst) + 1);
        let (sender, answer) = oneshot::channel();
        // The receiver lives in `state` as long as `self`: sending cannot fail.
        let _ = self.state.queue.send(Queued {
            request_id: request_id.clone(),
            event: event.into(),
            answer: sender,
        });
        PendingAnswer { request_id, answer }
    }

    /// Waits until the runtime posts to `/runtime/init/error` (it failed before its first poll), and
    /// returns what it posted; at once if it already has.
    pub async fn init_error(&self) -> InitError {
        let mut posted = self.state.init_error.subscribe();
        loop {
            if let Some(error) = posted.borrow_and_update().clone() {
                return error;
            }
            if posted.changed().await.is_err() {
                // Cannot happen: the sender lives in `state` as long as `self`.
                std::future::pending::<()>().await;
            }
        }
    }
}

impl State {
    async fn answer(&self, request: Request) -> Response {
        let path = request.uri().path();
        if request.method() == Method::GET && path == NEXT {
            return self.next().await;
        }
        if request.method() == Method::POST {
            if path == INIT_ERROR {
                let (error_type, body) = error_type(&request);
                self.init_error
                    .send_replace(Some(InitError { error_type, body }));
                return accepted();
            }
            if let Some((request_id, kind)) = path
                .strip_prefix(INVOCATION)
                .and_then(|rest| rest.split_once('/'))
                && (kind == "response" || kind == "error")
            {
                return self.post(request_id, kind == "error", &request);
            }
        }
        match &self.fallback {
            Some(fallback) => fallback(request).await,
            None => json_response(
                404,
                &json!({"errorType": "NotFound", "errorMessage": format!("not a Runtime API call: {} {path}", request.method())}),
            ),
        }
    }

    /// `GET .../invocation/next`: the next queued event, waiting for one.
    async fn next(&self) -> Response {
        let queued = {
            let mut events = self.events.lock().await;
            events.recv().await
        };
        let Some(queued) = queued else {
            return json_response(500, &json!({"errorMessage": "the server is stopping"}));
        };
        let deadline = SystemTime::now()
            .checked_add(self.deadline)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis())
            .unwrap_or_default();
        lock(&self.in_flight).insert(queued.request_id.clone(), queued.answer);
        let mut response = Response::new(queued.event);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in [
            ("lambda-runtime-aws-request-id", queued.request_id),
            ("lambda-runtime-deadline-ms", deadline.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                self.function_arn.clone(),
            ),
        ] {
            if let Ok(value) = HeaderValue::try_from(value) {
                headers.insert(name, value);
            }
        }
        response
    }

    /// `POST .../invocation/{id}/response` or `.../error`.
    fn post(&self, request_id: &str, is_error: bool, request: &Request) -> Response {
        let Some(sender) = lock(&self.in_flight).remove(request_id) else {
            return json_response(
                400,
                &json!({"errorType": "InvalidRequestID", "errorMessage": format!("no invocation {request_id} is waiting for an answer")}),
            );
        };
        let (error_type, body) = if is_error {
            let (error_type, body) = error_type(request);
            (Some(error_type), body)
        } else {
            (None, request.body().clone())
        };
        let _ = sender.send(Answer {
            request_id: request_id.to_owned(),
            error_type,
            body,
        });
        accepted()
    }
}

/// An error post's type (the body's `errorType`, else the header, else `Unhandled`) and body.
fn error_type(request: &Request) -> (String, Bytes) {
    let from_body = serde_json::from_slice::<Value>(request.body())
        .ok()
        .and_then(|body| body["errorType"].as_str().map(str::to_owned));
    let from_header = || {
        request
            .headers()
            .get(ERROR_TYPE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let error_type = from_body
        .or_else(from_header)
        .unwrap_or_else(|| "Unhandled".to_owned());
    (error_type, request.body().clone())
}

fn accepted() -> Response {
    json_response(202, &json!({"status": "OK"}))
}
