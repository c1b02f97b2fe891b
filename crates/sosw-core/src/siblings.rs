//! SiblingsManager: hand the rest of a job to a fresh invocation of the same function before the
//! deadline (sosw 0.7's `spawn_sibling`), without ever starting an endless chain.
//!
//! Two guards, both checked before every spawn:
//! * **generations**: each sibling's payload carries [`GENERATION_KEY`], one more than its parent's; a
//!   sibling that would exceed the configured maximum is not spawned, even with `force`;
//! * **a schedule** (sosw 0.7's check, skipped with `force` or `auto_spawning`): the EventBridge rule
//!   the function follows must be enabled, so disabling the rule stops the chain. sosw 0.7 scanned
//!   every rule of the account for one targeting the function (reading only the first page, bug B20);
//!   that needs `events:ListRules` on `"*"` and `ListTargetsByRule` on every rule, so the function is
//!   now told its rule's name (`SOSW_SCHEDULE_RULE`) and reads that rule only.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::config::SiblingsConfig;
use crate::error::{Error, Result};
use crate::invoke::{InvokeOutcome, Invoker};
use crate::processor::FUNCTION_NAME_VAR;
use crate::task::json_kind;

/// The payload key that counts generations of siblings (0 or absent for the first invocation).
pub const GENERATION_KEY: &str = "sosw_sibling_generation";

/// Default for the longest chain of siblings.
pub const DEFAULT_MAX_GENERATIONS: u32 = 50;

/// Whether the schedule a function follows is on (sosw 0.7's `any_events_rules_enabled`).
#[async_trait]
pub trait ScheduleRules: Send + Sync {
    /// Whether the schedule of the function `function_arn` (the Lambda context's ARN) is on.
    async fn schedule_enabled(&self, function_arn: &str) -> Result<bool>;
}

/// What [`SiblingsManager::spawn_sibling`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpawnOutcome {
    /// The sibling was invoked with this generation.
    Spawned {
        /// The sibling's generation (1 for the first sibling).
        generation: u32,
    },
    /// Not spawned: the chain is at its maximum length.
    GenerationLimit {
        /// The generation the sibling would have had.
        generation: u32,
        /// The configured maximum.
        max: u32,
    },
    /// Not spawned: the function's schedule rule is off (or not named), and neither `force` nor
    /// `auto_spawning`.
    NoEnabledRule,
    /// Not spawned: the invoke was rejected.
    Rejected(String),
    /// Unknown whether the sibling got the payload (a timeout after sending).
    Unknown(String),
}

/// Spawns continuations of the current function.
pub struct SiblingsManager {
    invoker: Arc<dyn Invoker>,
    rules: Option<Arc<dyn ScheduleRules>>,
    function_name: String,
    auto_spawning: bool,
    max_generations: u32,
}

impl std::fmt::Debug for SiblingsManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiblingsManager")
            .field("function_name", &self.function_name)
            .field("auto_spawning", &self.auto_spawning)
            .field("max_generations", &self.max_generations)
            .finish_non_exhaustive()
    }
}

impl SiblingsManager {
    /// Spawns siblings of `function_name` through `invoker`, checking `rules` (`None`: no rule ever
    /// counts as enabled, so only `force` or `auto_spawning` spawn), with `config`'s `auto_spawning`
    /// and at most [`DEFAULT_MAX_GENERATIONS`] generations.
    pub fn new(
        invoker: Arc<dyn Invoker>,
        rules: Option<Arc<dyn ScheduleRules>>,
        function_name: impl Into<String>,
        config: &SiblingsConfig,
    ) -> Self {
        SiblingsManager {
            invoker,
            rules,
            function_name: function_name.into(),
            auto_spawning: config.auto_spawning,
            max_generations: DEFAULT_MAX_GENERATIONS,
        }
    }

    /// As [`SiblingsManager::new`] for the running function (`AWS_LAMBDA_FUNCTION_NAME`).
    pub fn for_current_function(
        invoker: Arc<dyn Invoker>,
        rules: Option<Arc<dyn ScheduleRules>>,
        config: &SiblingsConfig,
    ) -> Result<Self> {
        let name = std::env::var(FUNCTION_NAME_VAR)
            .ok()
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| {
                Error::invalid(
                    "sibling",
                    format!("{FUNCTION_NAME_VAR} is not set: not running in Lambda"),
                )
            })?;
        Ok(Self::new(invoker, rules, name, config))
    }

    /// Allows chains of at most `max` siblings.
    pub fn with_max_generations(mut self, max: u32) -> Self {
        self.max_generations = max;
        self
    }

    /// Spawns a sibling with `payload` (a JSON object), as the continuation of the invocation that
    /// received `current_event` from `invoked_function_arn` (the Lambda context's ARN). The sibling's
    /// payload gets [`GENERATION_KEY`] = the current generation + 1.
    pub async fn spawn_sibling(
        &self,
        current_event: &Value,
        invoked_function_arn: &str,
        payload: Value,
        force: bool,
    ) -> Result<SpawnOutcome> {
        let Value::Object(mut payload) = payload else {
            return Err(Error::invalid(
                "sibling payload",
                format!("expected a JSON object, got {}", json_kind(&payload)),
            ));
        };
        let generation = generation_of(current_event).saturating_add(1);
        if generation > self.max_generations {
            tracing::error!(function = %self.function_name, generation, max = self.max_generations,
                "sibling not spawned: the chain reached its maximum length");
            return Ok(SpawnOutcome::GenerationLimit {
                generation,
                max: self.max_generations,
            });
        }
        if !force && !self.auto_spawning && !self.scheduled(invoked_function_arn).await? {
            tracing::error!(function = %self.function_name,
                "sibling not spawned: its schedule rule is not enabled (or SOSW_SCHEDULE_RULE is unset)");
            return Ok(SpawnOutcome::NoEnabledRule);
        }
        payload.insert(GENERATION_KEY.to_string(), Value::from(generation));
        let outcome = self
            .invoker
            .invoke(&self.function_name, &Value::Object(payload))
            .await?;
        tracing::info!(function = %self.function_name, generation, outcome = ?outcome, "sibling");
        Ok(match outcome {
            InvokeOutcome::Accepted => SpawnOutcome::Spawned { generation },
            InvokeOutcome::Rejected(why) => SpawnOutcome::Rejected(why),
            InvokeOutcome::Unknown(why) => SpawnOutcome::Unknown(why),
        })
    }

    async fn scheduled(&self, invoked_function_arn: &str) -> Result<bool> {
        match &self.rules {
            Some(rules) => rules.schedule_enabled(invoked_function_arn).await,
            None => Ok(false),
        }
    }
}

/// The generation of the invocation that received `event` (0 without the key).
pub fn generation_of(event: &Value) -> u32 {
    event
        .get(GENERATION_KEY)
        .and_then(Value::as_u64)
        .map_or(0, |g| u32::try_from(g).unwrap_or(u32::MAX))
}

/// Whether it is time to hand over: at most `margin` is left before `deadline` at `now`.
pub fn time_to_hand_over(deadline: DateTime<Utc>, now: DateTime<Utc>, margin: Duration) -> bool {
    (deadline - now)
        .to_std()
        .map_or(true, |left| left <= margin)
}

/// Whether two Lambda function ARNs (or names) name the same function, ignoring a version or alias
/// qualifier: `arn:aws:lambda:r:1:function:f` matches `arn:aws:lambda:r:1:function:f:prod`.
pub fn same_function(a: &str, b: &str) -> bool {
    match (function_key(a), function_key(b)) {
        (Some(a), Some(b)) => a == b,
        // A bare name on one side: compare names only.
        _ => function_name_of(a) == function_name_of(b),
    }
}

/// `(partition, region, account, name)` of a function ARN.
fn function_key(arn: &str) -> Option<(&str, &str, &str, &str)> {
    let parts: Vec<&str> = arn.split(':').collect();
    match parts.as_slice() {
        [
            "arn",
            partition,
            "lambda",
            region,
            account,
            "function",
            name,
            ..,
        ] => Some((partition, region, account, name)),
        _ => None,
    }
}

fn function_name_of(name_or_arn: &str) -> &str {
    function_key(name_or_arn).map_or(name_or_arn, |(_, _, _, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recording {
        calls: Mutex<Vec<(String, Value)>>,
    }

    #[async_trait]
    impl Invoker for Recording {
        async fn invoke(&self, function: &str, payload: &Value) -> Result<InvokeOutcome> {
            self.calls
                .lock()
                .expect("lock")
                .push((function.to_string(), payload.clone()));
            Ok(InvokeOutcome::Accepted)
        }
    }

    struct Rules(bool);

    #[async_trait]
    impl ScheduleRules for Rules {
        async fn schedule_enabled(&self, _arn: &str) -> Result<bool> {
            Ok(self.0)
        }
    }

    const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:sosw_scheduler";

    fn manager(invoker: Arc<Recording>, rule_enabled: bool, auto: bool) -> SiblingsManager {
        let config: SiblingsConfig =
            serde_json::from_value(json!({"auto_spawning": auto})).expect("config");
        SiblingsManager::new(
            invoker,
            Some(Arc::new(Rules(rule_enabled))),
            "sosw_scheduler",
            &config,
        )
    }

    #[tokio::test]
    async fn a_sibling_gets_the_next_generation_and_the_same_function() {
        let inv = Arc::new(Recording::default());
        let m = manager(inv.clone(), true, false);
        let out = m
            .spawn_sibling(
                &json!({"sosw_sibling_generation": 2}),
                ARN,
                json!({"file": "q"}),
                false,
            )
            .await
            .expect("spawns");
        assert_eq!(out, SpawnOutcome::Spawned { generation: 3 });
        let calls = inv.calls.lock().expect("lock").clone();
        assert_eq!(
            calls,
            vec![(
                "sosw_scheduler".to_string(),
                json!({"file": "q", "sosw_sibling_generation": 3})
            )]
        );
    }

    #[tokio::test]
    async fn the_generation_limit_holds_even_when_forced() {
        let inv = Arc::new(Recording::default());
        let m = manager(inv.clone(), true, true).with_max_generations(2);
        let out = m
            .spawn_sibling(&json!({"sosw_sibling_generation": 2}), ARN, json!({}), true)
            .await
            .expect("decides");
        assert_eq!(
            out,
            SpawnOutcome::GenerationLimit {
                generation: 3,
                max: 2
            }
        );
        assert!(inv.calls.lock().expect("lock").is_empty());
    }

    #[tokio::test]
    async fn without_an_enabled_rule_only_force_or_auto_spawning_spawn() {
        let inv = Arc::new(Recording::default());
        let out = manager(inv.clone(), false, false)
            .spawn_sibling(&json!({}), ARN, json!({}), false)
            .await
            .expect("decides");
        assert_eq!(out, SpawnOutcome::NoEnabledRule);
        for (force, auto) in [(true, false), (false, true)] {
            let out = manager(inv.clone(), false, auto)
                .spawn_sibling(&json!({}), ARN, json!({}), force)
                .await
                .expect("spawns");
            assert_eq!(out, SpawnOutcome::Spawned { generation: 1 });
        }
        assert_eq!(inv.calls.lock().expect("lock").len(), 2);
    }

    #[tokio::test]
    async fn a_non_object_payload_is_an_error() {
        let inv = Arc::new(Recording::default());
        let err = manager(inv, true, false)
            .spawn_sibling(&json!({}), ARN, json!([1]), true)
            .await
            .expect_err("array");
        assert!(err.to_string().contains("an array"), "{err}");
    }

    #[test]
    fn arns_match_across_qualifiers_not_across_functions() {
        assert!(same_function(ARN, &format!("{ARN}:prod")));
        assert!(same_function(&format!("{ARN}:7"), ARN));
        assert!(same_function("sosw_scheduler", ARN));
        assert!(!same_function(
            ARN,
            "arn:aws:lambda:us-east-1:123456789012:function:other"
        ));
        assert!(!same_function(
            ARN,
            "arn:aws:lambda:eu-west-1:123456789012:function:sosw_scheduler"
        ));
        assert!(!same_function(
            ARN,
            "arn:aws:sqs:us-east-1:123456789012:sosw_scheduler"
        ));
    }

    #[test]
    fn generations_and_hand_over_times() {
        assert_eq!(generation_of(&json!({})), 0);
        assert_eq!(generation_of(&json!({"sosw_sibling_generation": "x"})), 0);
        assert_eq!(generation_of(&json!({"sosw_sibling_generation": 4})), 4);
        let now = Utc::now();
        let margin = Duration::from_secs(30);
        assert!(time_to_hand_over(
            now + chrono::Duration::seconds(29),
            now,
            margin
        ));
        assert!(!time_to_hand_over(
            now + chrono::Duration::seconds(31),
            now,
            margin
        ));
        assert!(time_to_hand_over(
            now - chrono::Duration::seconds(1),
            now,
            margin
        ));
    }
}
