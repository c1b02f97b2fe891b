//! A sosw worker in about 20 lines: greets whoever the task names. On Lambda, `main` is all it takes:
//! sosw reads the function's config, runs each task and reports the outcome to the worker assistant.
//! Build a bundle with `cargo lambda build --release -p hello-worker`, or see docs/deploy.md.

use serde::Deserialize;
use serde_json::{Value, json};
use sosw::worker::{WorkError, WorkerContext, worker_fn};

/// One task's payload (sosw adds the task's own fields, which land in the [`WorkerContext`]).
#[derive(Deserialize)]
struct Hello {
    name: String,
}

/// One task's work: a greeting, and a stat the worker assistant writes as `stat_greeted`.
async fn hello(task: Hello, ctx: WorkerContext) -> Result<Value, WorkError> {
    if task.name.is_empty() {
        return Err(WorkError::non_retryable("nobody to greet"));
    }
    ctx.add("greeted", 1);
    Ok(json!({ "greeting": format!("hello, {}", task.name) }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    sosw::worker::run(worker_fn(hello)).await
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use serde_json::json;
    use sosw::essentials::worker_assistant::{AssistantAction, AssistantRequest};
    use sosw::worker::{Reporter, WorkerRunner, worker_fn};

    use super::hello;

    /// Keeps every report instead of invoking the worker assistant.
    #[derive(Default)]
    struct Recorded(Mutex<Vec<AssistantRequest>>);

    #[async_trait]
    impl Reporter for Recorded {
        async fn report(&self, request: &AssistantRequest) -> sosw::Result<()> {
            self.0.lock().expect("not poisoned").push(request.clone());
            Ok(())
        }
    }

    /// Runs `payload` through the worker as one Lambda invocation of a task's second attempt would.
    async fn invoke(payload: serde_json::Value) -> (bool, Vec<AssistantRequest>) {
        let reports = Arc::new(Recorded::default());
        let runner = WorkerRunner::new(worker_fn(hello), reports.clone());
        let mut event = json!({
            "task_id": "hello-1", "labourer_id": "hello_worker", "created_at": 1_700_000_000.0,
            "greenfield": 1_700_000_300, "attempts": 1,
        });
        if let (Some(event), Some(payload)) = (event.as_object_mut(), payload.as_object()) {
            event.extend(payload.clone());
        }
        let handled = runner.handle_payload(event, None, "request-1").await;
        let reports = reports.0.lock().expect("not poisoned").clone();
        (handled.is_ok(), reports)
    }

    #[tokio::test]
    async fn a_greeting_is_reported_completed_with_its_stat_and_result() {
        let (ok, reports) = invoke(json!({"name": "sosw"})).await;
        assert!(ok);
        assert_eq!(reports.len(), 1, "{reports:?}");
        let report = &reports[0];
        assert_eq!(report.action, AssistantAction::MarkTaskAsCompleted);
        assert_eq!(report.task_id.as_str(), "hello-1");
        assert_eq!(report.attempt, Some(2));
        assert_eq!(report.stats.get("greeted"), Some(&json!(1)));
        assert_eq!(report.result.get("greeting"), Some(&json!("hello, sosw")));
    }

    #[tokio::test]
    async fn nobody_to_greet_fails_for_good_and_says_why() {
        let (ok, reports) = invoke(json!({"name": ""})).await;
        assert!(
            !ok,
            "the invocation fails too, so Lambda's error metrics show it"
        );
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0].action, AssistantAction::MarkTaskAsFailed);
        assert_eq!(reports[0].retryable, Some(false));
        assert_eq!(
            reports[0].result.get("error"),
            Some(&json!("nobody to greet"))
        );
    }

    #[tokio::test]
    async fn a_payload_without_a_name_is_not_retried() {
        let (ok, reports) = invoke(json!({"nam": "typo"})).await;
        assert!(!ok);
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0].retryable, Some(false));
    }
}
