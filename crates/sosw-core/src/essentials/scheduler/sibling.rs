//! [`SiblingContinuation`]: the scheduler's [`Continuation`] on Lambda, through the
//! [`SiblingsManager`].

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::Continuation;
use crate::error::{Error, Result};
use crate::siblings::{SiblingsManager, SpawnOutcome};

/// Spawns the continuation of one scheduler invocation as a sibling Lambda (same function, `Event`
/// invocation), with the [`SiblingsManager`]'s guards: the generation limit, and an enabled schedule
/// rule unless `force` or `auto_spawning`.
///
/// Built per invocation, since the generation comes from the invocation's event:
/// `scheduler.clone().with_continuation(Arc::new(SiblingContinuation::new(..)))`.
#[derive(Debug)]
pub struct SiblingContinuation {
    siblings: Arc<SiblingsManager>,
    current_event: Value,
    invoked_function_arn: String,
    force: bool,
}

impl SiblingContinuation {
    /// The continuation of the invocation that received `current_event` as `invoked_function_arn` (the
    /// Lambda context's ARN). `force` skips the schedule-rule check (sosw 0.7's `force=True`).
    pub fn new(
        siblings: Arc<SiblingsManager>,
        current_event: Value,
        invoked_function_arn: impl Into<String>,
        force: bool,
    ) -> Self {
        SiblingContinuation {
            siblings,
            current_event,
            invoked_function_arn: invoked_function_arn.into(),
            force,
        }
    }
}

#[async_trait]
impl Continuation for SiblingContinuation {
    /// Succeeds only when the sibling was accepted. Otherwise the scheduler run fails after the spool
    /// is handed on, so Lambda's retry of the same event (or a resubmission) continues the job: an
    /// unknown outcome is retryable, a refusal (generation limit, no rule, rejected invoke) is not.
    async fn spawn(&self, payload: Value) -> Result<()> {
        let outcome = self
            .siblings
            .spawn_sibling(
                &self.current_event,
                &self.invoked_function_arn,
                payload,
                self.force,
            )
            .await?;
        let (retryable, why) = match outcome {
            SpawnOutcome::Spawned { .. } => return Ok(()),
            SpawnOutcome::Unknown(why) => (true, why),
            SpawnOutcome::Rejected(why) => (false, why),
            other => (false, format!("{other:?}")),
        };
        Err(Error::store(
            "Lambda",
            "spawn scheduler sibling",
            retryable,
            format!("the continuation was not started: {why}; submit the job again to continue it"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde_json::json;

    use super::*;
    use crate::config::SiblingsConfig;
    use crate::invoke::{InvokeOutcome, Invoker};
    use crate::siblings::GENERATION_KEY;

    const ARN: &str = "arn:aws:lambda:us-east-1:000000000000:function:sosw_scheduler";

    struct Recording {
        answer: InvokeOutcome,
        calls: Mutex<Vec<(String, Value)>>,
    }

    #[async_trait]
    impl Invoker for Recording {
        async fn invoke(&self, function: &str, payload: &Value) -> Result<InvokeOutcome> {
            self.calls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((function.to_owned(), payload.clone()));
            Ok(self.answer.clone())
        }
    }

    fn continuation(answer: InvokeOutcome, event: Value) -> (SiblingContinuation, Arc<Recording>) {
        let invoker = Arc::new(Recording {
            answer,
            calls: Mutex::new(Vec::new()),
        });
        let config = SiblingsConfig::default();
        let siblings = SiblingsManager::new(invoker.clone(), None, "sosw_scheduler", &config)
            .with_max_generations(3);
        let continuation = SiblingContinuation::new(Arc::new(siblings), event, ARN, true);
        (continuation, invoker)
    }

    #[tokio::test]
    async fn the_continuation_invokes_the_scheduler_itself_one_generation_on() -> Result<()> {
        let (continuation, invoker) = continuation(InvokeOutcome::Accepted, json!({"job": {}}));
        let payload = super::super::continuation_payload("j1", "w", Some("k"));
        continuation.spawn(payload.clone()).await?;
        let calls = invoker
            .calls
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut expected = payload;
        if let Some(fields) = expected.as_object_mut() {
            fields.insert(GENERATION_KEY.into(), json!(1));
        }
        assert_eq!(calls, [("sosw_scheduler".to_owned(), expected)]);
        Ok(())
    }

    #[tokio::test]
    async fn a_sibling_not_started_is_an_error_retryable_only_when_unknown() {
        let payload = json!({"sosw_continuation": true, "job_id": "j"});
        let (unknown, _) = continuation(InvokeOutcome::Unknown("timeout".into()), json!({}));
        let err = unknown.spawn(payload.clone()).await.expect_err("unknown");
        assert!(err.is_retryable(), "{err}");
        let (rejected, _) = continuation(InvokeOutcome::Rejected("gone".into()), json!({}));
        let err = rejected.spawn(payload.clone()).await.expect_err("rejected");
        assert!(
            !err.is_retryable() && err.to_string().contains("gone"),
            "{err}"
        );
        let deep = json!({GENERATION_KEY: 3});
        let (limited, invoker) = continuation(InvokeOutcome::Accepted, deep);
        assert!(
            limited.spawn(payload).await.is_err(),
            "the chain is at its limit"
        );
        assert!(
            invoker
                .calls
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty()
        );
    }
}
