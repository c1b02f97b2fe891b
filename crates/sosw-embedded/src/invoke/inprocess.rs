//! In-process workers registered by function name: the invoker of local mode and of tests.
//!
//! [`InProcessInvoker::invoke`] spawns the handler on the tokio runtime and returns
//! [`InvokeOutcome::Accepted`] at once, as Lambda's `Event` invocation does. A function with no handler
//! is [`InvokeOutcome::Rejected`]. The handler reports its own outcome (through the store or the worker
//! assistant, as a Lambda worker does); a handler that panics or never reports leaves its task invoked,
//! and the task expires and is retried like a crashed Lambda's.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::tracker::Tracker;
use sosw_core::error::Result;
use sosw_core::invoke::{InvokeOutcome, Invoker};

/// A worker that runs inside this process.
#[async_trait]
pub trait LocalHandler: Send + Sync + 'static {
    /// Runs one task. `payload` is the worker payload of sosw 0.7 (see
    /// [`Task::worker_payload`](sosw_core::task::Task::worker_payload)).
    async fn handle(&self, payload: Value);
}

/// A [`LocalHandler`] made from an async closure: see [`handler_fn`].
pub struct FnHandler<F>(F);

/// Wraps `f` (`Fn(Value) -> impl Future<Output = ()>`) as a [`LocalHandler`].
pub fn handler_fn<F, Fut>(f: F) -> FnHandler<F>
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    FnHandler(f)
}

#[async_trait]
impl<F, Fut> LocalHandler for FnHandler<F>
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    async fn handle(&self, payload: Value) {
        (self.0)(payload).await;
    }
}

/// Invokes [`LocalHandler`]s registered by function name.
#[derive(Clone, Default)]
pub struct InProcessInvoker {
    handlers: HashMap<String, Arc<dyn LocalHandler>>,
    tracker: Tracker,
}

impl fmt::Debug for InProcessInvoker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&str> = self.functions().collect();
        names.sort_unstable();
        f.debug_struct("InProcessInvoker")
            .field("functions", &names)
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl InProcessInvoker {
    /// An invoker with no handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `handler` for `function` (a labourer id or function name), replacing any earlier one.
    pub fn register(self, function: impl Into<String>, handler: impl LocalHandler) -> Self {
        self.register_shared(function, Arc::new(handler))
    }

    /// Registers a shared handler for `function`, replacing any earlier one.
    pub fn register_shared(
        mut self,
        function: impl Into<String>,
        handler: Arc<dyn LocalHandler>,
    ) -> Self {
        self.handlers.insert(function.into(), handler);
        self
    }

    /// The registered function names.
    pub fn functions(&self) -> impl Iterator<Item = &str> {
        self.handlers.keys().map(String::as_str)
    }

    /// Handlers running now.
    pub fn in_flight(&self) -> usize {
        self.tracker.running()
    }

    /// Waits until no handler runs.
    pub async fn wait_idle(&self) {
        self.tracker.wait_idle().await;
    }

    /// Notifies `ended` each time a handler ends (after its outcome is reported), so a caller can
    /// refill the freed slot at once.
    pub fn notify_ended(&self, ended: Arc<tokio::sync::Notify>) {
        self.tracker.notify_ended(ended);
    }

    /// The handler of `function`: by exact name, else by the function name inside a Lambda ARN
    /// (`arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]`), so a labourer configured
    /// with its production ARN runs locally unchanged.
    fn handler(&self, function: &str) -> Option<&Arc<dyn LocalHandler>> {
        self.handlers
            .get(function)
            .or_else(|| arn_function_name(function).and_then(|name| self.handlers.get(name)))
    }
}

/// `<name>` of `arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]`.
pub(crate) fn arn_function_name(function: &str) -> Option<&str> {
    let (_, rest) = function.split_once(":function:")?;
    rest.split(':').next().filter(|name| !name.is_empty())
}

#[async_trait]
impl Invoker for InProcessInvoker {
    async fn invoke(&self, function: &str, payload: &Value) -> Result<InvokeOutcome> {
        let Some(handler) = self.handler(function) else {
            return Ok(InvokeOutcome::Rejected(format!(
                "no in-process handler is registered for `{function}`"
            )));
        };
        let handler = Arc::clone(handler);
        let payload = payload.clone();
        let job = self.tracker.start();
        tokio::spawn(async move {
            let _job = job;
            handler.handle(payload).await;
        });
        Ok(InvokeOutcome::Accepted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;
    use std::time::Duration;

    fn recording(seen: &Arc<Mutex<Vec<Value>>>) -> impl LocalHandler {
        let seen = Arc::clone(seen);
        handler_fn(move |payload| {
            let seen = Arc::clone(&seen);
            async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                seen.lock().expect("lock").push(payload);
            }
        })
    }

    #[tokio::test(start_paused = true)]
    async fn invoke_returns_before_the_handler_finishes_and_wait_idle_waits_for_it() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let invoker = InProcessInvoker::new().register("w1", recording(&seen));
        let outcome = invoker
            .invoke("w1", &json!({"task_id": "t1"}))
            .await
            .expect("invoke");
        assert_eq!(outcome, InvokeOutcome::Accepted);
        assert_eq!(invoker.in_flight(), 1);
        assert!(
            seen.lock().expect("lock").is_empty(),
            "handler still asleep"
        );
        invoker.wait_idle().await;
        assert_eq!(invoker.in_flight(), 0);
        assert_eq!(*seen.lock().expect("lock"), vec![json!({"task_id": "t1"})]);
    }

    #[tokio::test]
    async fn an_unregistered_function_is_rejected() {
        let invoker = InProcessInvoker::new();
        let outcome = invoker.invoke("nope", &json!({})).await.expect("invoke");
        assert!(
            matches!(&outcome, InvokeOutcome::Rejected(m) if m.contains("`nope`")),
            "{outcome:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_lambda_arn_finds_the_handler_registered_under_its_function_name() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let invoker = InProcessInvoker::new().register("w1", recording(&seen));
        let arn = "arn:aws:lambda:us-west-2:000000000000:function:w1:live";
        let outcome = invoker.invoke(arn, &json!({})).await.expect("invoke");
        assert_eq!(outcome, InvokeOutcome::Accepted);
        invoker.wait_idle().await;
        assert_eq!(seen.lock().expect("lock").len(), 1);
        assert_eq!(arn_function_name("w1"), None);
    }

    #[tokio::test]
    async fn a_panicking_handler_still_ends_its_job() {
        let invoker = InProcessInvoker::new().register(
            "boom",
            handler_fn(|_payload| async { panic!("worker bug") }),
        );
        let outcome = invoker.invoke("boom", &json!({})).await.expect("invoke");
        assert_eq!(outcome, InvokeOutcome::Accepted);
        tokio::time::timeout(Duration::from_secs(5), invoker.wait_idle())
            .await
            .expect("the panicked job no longer counts");
    }
}
