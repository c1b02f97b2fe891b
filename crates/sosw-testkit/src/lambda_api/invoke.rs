//! A fake Lambda Invoke API: `Invoke` and `GetFunctionConfiguration` with AWS's semantics, each
//! function a handler of the test's.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderValue;
use http::{Method, StatusCode};
use percent_encoding::percent_decode_str;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::server::{Request, Response, TestServer, json_response, lock};

const FUNCTIONS: &str = "/2015-03-31/functions/";
const REGION: &str = "us-east-1";
const ACCOUNT: &str = "000000000000";

type HandlerFuture = Pin<Box<dyn Future<Output = Result<Value, FunctionError>> + Send>>;
type Handler = Arc<dyn Fn(Invocation) -> HandlerFuture + Send + Sync>;

/// How the caller asked for the function to run (`X-Amz-Invocation-Type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationType {
    /// Synchronous (the default): the caller gets the function's answer.
    RequestResponse,
    /// Asynchronous: the caller got `202 Accepted` at once; the function runs in the background.
    Event,
}

/// One invocation, as a function's handler gets it.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The function's name, whichever form the caller named it by (name, partial or full ARN).
    pub function: String,
    /// The version or alias, from the name (`name:live`, an ARN's last part) or `?Qualifier=`.
    pub qualifier: Option<String>,
    /// How the caller asked for it to run.
    pub invocation_type: InvocationType,
    /// The payload as sent.
    pub payload: Bytes,
}

impl Invocation {
    /// The payload as JSON (an empty payload is `null`).
    pub fn json(&self) -> serde_json::Result<Value> {
        if self.payload.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.payload)
    }
}

/// A function's error: a synchronous caller gets `200` with `X-Amz-Function-Error: Unhandled` and
/// `{"errorType", "errorMessage"}`, as from a Lambda function that raised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    /// `errorType`.
    pub error_type: String,
    /// `errorMessage`.
    pub error_message: String,
}

impl FunctionError {
    /// An error of type `error_type` with `message`.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> FunctionError {
        FunctionError {
            error_type: error_type.into(),
            error_message: message.into(),
        }
    }
}

/// Configures an [`InvokeApi`] before it starts.
#[derive(Default)]
pub struct InvokeApiBuilder {
    functions: HashMap<String, Handler>,
    any: Option<Handler>,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for InvokeApiBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvokeApiBuilder")
            .field("functions", &self.functions.keys().collect::<Vec<_>>())
            .field("any", &self.any.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

fn boxed<H, F>(handler: H) -> Handler
where
    H: Fn(Invocation) -> F + Send + Sync + 'static,
    F: Future<Output = Result<Value, FunctionError>> + Send + 'static,
{
    Arc::new(move |invocation| Box::pin(handler(invocation)))
}

impl InvokeApiBuilder {
    /// Registers function `name` (a plain name, not an ARN): `handler` answers its invocations, `Ok`
    /// with the payload to return, `Err` with a function error.
    pub fn function<H, F>(mut self, name: &str, handler: H) -> Self
    where
        H: Fn(Invocation) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Value, FunctionError>> + Send + 'static,
    {
        self.functions.insert(name.to_owned(), boxed(handler));
        self
    }

    /// Makes every name that is not registered with [`function`](Self::function) a function too,
    /// answered by `handler` (a receiver that only counts, say). Without it an unknown name is
    /// `404 ResourceNotFoundException`.
    pub fn any_function<H, F>(mut self, handler: H) -> Self
    where
        H: Fn(Invocation) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Value, FunctionError>> + Send + 'static,
    {
        self.any = Some(boxed(handler));
        self
    }

    /// The `Timeout` every function's configuration reports (default 3 s, AWS's default).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Starts the server on a free port of `127.0.0.1`.
    pub async fn start(self) -> io::Result<InvokeApi> {
        let state = Arc::new(State {
            functions: self.functions,
            any: self.any,
            timeout: self.timeout.unwrap_or(Duration::from_secs(3)),
            counts: Mutex::new(HashMap::new()),
            background: Mutex::new(JoinSet::new()),
            running: watch::Sender::new(0),
        });
        let shared = state.clone();
        let server = TestServer::start(move |request| {
            let state = shared.clone();
            async move { state.answer(request).await }
        })
        .await?;
        Ok(InvokeApi { server, state })
    }
}

struct State {
    functions: HashMap<String, Handler>,
    any: Option<Handler>,
    timeout: Duration,
    /// Invocations accepted per function name.
    counts: Mutex<HashMap<String, u64>>,
    /// The `Event` invocations' handlers.
    background: Mutex<JoinSet<()>>,
    /// How many of them are running.
    running: watch::Sender<usize>,
}

/// A fake Lambda Invoke API. Point a Lambda client's endpoint at [`InvokeApi::url`].
///
/// - `POST /2015-03-31/functions/{name}/invocations` runs the function's handler. `{name}` is a name,
///   a partial ARN (`123456789012:function:name`) or a full ARN, each with an optional `:qualifier`;
///   all resolve to the function `name` (the region and account are not checked).
///   `X-Amz-Invocation-Type: Event` answers `202` at once and runs the handler in the background;
///   `RequestResponse` (the default) answers `200` with the handler's value, or with
///   `X-Amz-Function-Error: Unhandled` and `{"errorType", "errorMessage"}` for a function error or a
///   panic; `DryRun` answers `204` without running it.
/// - `GET /2015-03-31/functions/{name}/configuration` answers the function's configuration, with the
///   [timeout](InvokeApiBuilder::timeout).
/// - An unknown function is `404` with `x-amzn-ErrorType: ResourceNotFoundException`.
///
/// Stops when dropped, background handlers included.
pub struct InvokeApi {
    server: TestServer,
    state: Arc<State>,
}

impl std::fmt::Debug for InvokeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvokeApi")
            .field("address", &self.server.address())
            .field("invocations", &self.invocations())
            .finish_non_exhaustive()
    }
}

impl Drop for InvokeApi {
    fn drop(&mut self) {
        lock(&self.state.background).abort_all();
    }
}

impl InvokeApi {
    /// A server to register functions on.
    pub fn builder() -> InvokeApiBuilder {
        InvokeApiBuilder::default()
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.server.address()
    }

    /// `http://127.0.0.1:<port>`, for a Lambda client's endpoint (`AWS_ENDPOINT_URL_LAMBDA`).
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// Invocations accepted so far (all functions; `DryRun` and unknown functions not counted).
    pub fn invocations(&self) -> u64 {
        lock(&self.state.counts).values().sum()
    }

    /// Invocations of function `name` accepted so far, whatever form the caller named it by.
    pub fn invocations_of(&self, name: &str) -> u64 {
        lock(&self.state.counts).get(name).copied().unwrap_or(0)
    }

    /// [`invocations`](Self::invocations), and every count back to zero.
    pub fn take_invocations(&self) -> u64 {
        let mut counts = lock(&self.state.counts);
        let total = counts.values().sum();
        counts.clear();
        total
    }

    /// Waits until no `Event` invocation runs in the background.
    pub async fn idle(&self) {
        let mut running = self.state.running.subscribe();
        let _ = running.wait_for(|n| *n == 0).await;
    }
}

/// The function a path segment names: `(name, qualifier)`.
fn resolve(segment: &str) -> Option<(String, Option<String>)> {
    let decoded = percent_decode_str(segment).decode_utf8().ok()?;
    let parts: Vec<&str> = decoded.split(':').collect();
    let (name, qualifier) = match parts.as_slice() {
        [
            "arn",
            _partition,
            "lambda",
            _region,
            _account,
            "function",
            name,
            rest @ ..,
        ] => (*name, rest),
        [_account, "function", name, rest @ ..] => (*name, rest),
        [name, rest @ ..] => (*name, rest),
        [] => return None,
    };
    let qualifier = match qualifier {
        [] => None,
        [qualifier] => Some((*qualifier).to_owned()),
        _ => return None,
    };
    (!name.is_empty()).then(|| (name.to_owned(), qualifier))
}

impl State {
    async fn answer(&self, request: Request) -> Response {
        let path = request.uri().path();
        let route = path
            .strip_prefix(FUNCTIONS)
            .and_then(|rest| rest.split_once('/'));
        let Some((segment, action)) = route else {
            return error(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                &format!("not emulated: {} {path}", request.method()),
            );
        };
        let Some((name, mut qualifier)) = resolve(segment) else {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                &format!("not a function name or ARN: {segment}"),
            );
        };
        if let Some(query) = request.uri().query()
            && let Some((_, value)) =
                form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == "Qualifier")
        {
            qualifier = Some(value.into_owned());
        }
        let Some(handler) = self.functions.get(&name).or(self.any.as_ref()).cloned() else {
            return error(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                &format!(
                    "Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}{}",
                    qualifier.map(|q| format!(":{q}")).unwrap_or_default()
                ),
            );
        };
        match (request.method(), action) {
            (&Method::POST, "invocations") => self.invoke(handler, name, qualifier, &request).await,
            (&Method::GET, "configuration") => self.configuration(&name, qualifier),
            (method, _) => error(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                &format!("not emulated: {method} {path}"),
            ),
        }
    }

    async fn invoke(
        &self,
        handler: Handler,
        function: String,
        qualifier: Option<String>,
        request: &Request,
    ) -> Response {
        let invocation_type = match request
            .headers()
            .get("x-amz-invocation-type")
            .map(HeaderValue::to_str)
        {
            None | Some(Ok("RequestResponse")) => InvocationType::RequestResponse,
            Some(Ok("Event")) => InvocationType::Event,
            Some(Ok("DryRun")) => return empty(StatusCode::NO_CONTENT),
            Some(other) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameterValueException",
                    &format!("unknown X-Amz-Invocation-Type {other:?}"),
                );
            }
        };
        *lock(&self.counts).entry(function.clone()).or_default() += 1;
        let version = qualifier.clone().unwrap_or_else(|| "$LATEST".to_owned());
        let invocation = Invocation {
            function,
            qualifier,
            invocation_type,
            payload: request.body().clone(),
        };
        if invocation_type == InvocationType::Event {
            self.running.send_modify(|n| *n += 1);
            let running = self.running.clone();
            let mut background = lock(&self.background);
            // Forget the finished ones, so a long run does not pile them up.
            while background.try_join_next().is_some() {}
            background.spawn(async move {
                // A panic ends this task only; the count goes down either way.
                let finished = tokio::spawn(handler(invocation)).await;
                drop(finished);
                running.send_modify(|n| *n -= 1);
            });
            return empty(StatusCode::ACCEPTED);
        }
        // Run in a task of its own, so a panicking handler is a function error, not a dropped
        // connection.
        let outcome = match tokio::spawn(handler(invocation)).await {
            Ok(outcome) => outcome,
            Err(e) => Err(FunctionError::new("Runtime.Panic", e.to_string())),
        };
        let (body, function_error) = match outcome {
            Ok(value) => (value, None),
            Err(e) => (
                json!({"errorType": e.error_type, "errorMessage": e.error_message}),
                Some("Unhandled"),
            ),
        };
        let mut response = json_response(200, &body);
        let headers = response.headers_mut();
        if let Ok(version) = HeaderValue::try_from(version) {
            headers.insert("x-amz-executed-version", version);
        }
        if let Some(function_error) = function_error {
            headers.insert(
                "x-amz-function-error",
                HeaderValue::from_static(function_error),
            );
        }
        response
    }

    fn configuration(&self, name: &str, qualifier: Option<String>) -> Response {
        let version = qualifier.unwrap_or_else(|| "$LATEST".to_owned());
        json_response(
            200,
            &json!({
                "FunctionName": name,
                "FunctionArn": format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}:{version}"),
                "Runtime": "provided.al2023",
                "Handler": "bootstrap",
                "Timeout": self.timeout.as_secs(),
                "MemorySize": 128,
                "Version": version,
                "State": "Active",
                "LastUpdateStatus": "Successful",
                "PackageType": "Zip",
            }),
        )
    }
}

/// An AWS error: `x-amzn-ErrorType` and `{"Type": "User", "message"}`.
fn error(status: StatusCode, error_type: &'static str, message: &str) -> Response {
    let mut response = json_response(
        status.as_u16(),
        &json!({"Type": "User", "message": message}),
    );
    response
        .headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_static(error_type));
    response
}

fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Bytes::new());
    *response.status_mut() = status;
    response
}
