//! What every sosw Lambda has in common (sosw 0.7's `Processor`): its config, read once per container
//! by function name; stats counted per invocation and summed into `total_*` for the container's life;
//! structured logs; and errors that reach Lambda as `Retryable` / `NonRetryable` diagnostics.
//!
//! A [`Processor`] is the body of one function: it gets the event and the [`Invocation`] (the deadline,
//! the request id, the function's ARN and the invocation's [`Stats`]). `sosw_lambda::service::ProcessorService`
//! builds the invocation from the Lambda context and wraps the processor as a Lambda handler, and
//! `sosw_lambda::service::serve` runs it on `lambda_runtime`; this crate knows nothing of Lambda.

use std::collections::{BTreeMap, BTreeSet};

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};
use serde_json::Value;
use std::fmt;

use crate::config::{ConfigSource, load_essential_config};
use crate::error::{Error, Result};

/// The environment variable Lambda sets to the function's name.
pub const FUNCTION_NAME_VAR: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// Prefix of the lifetime sums (`total_<counter>`), as in sosw 0.7.
pub const TOTAL_PREFIX: &str = "total_";

/// The running function's name (`AWS_LAMBDA_FUNCTION_NAME`), or `default` outside Lambda.
pub fn function_name_or(default: &str) -> String {
    std::env::var(FUNCTION_NAME_VAR)
        .ok()
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

/// Reads the config of the function `function_name` as a `C`, layered as sosw 0.7 does
/// (`sosw_essential_config` → `defaults` → `<function_name>_config` → `overrides`, see
/// [`load_essential_config`]). Call it once per container, not per invocation.
pub async fn load_config<C, S>(
    source: &S,
    function_name: &str,
    defaults: Value,
    overrides: Option<Value>,
) -> Result<C>
where
    C: DeserializeOwned,
    S: ConfigSource + ?Sized,
{
    let config = load_essential_config(source, function_name, defaults, overrides).await?;
    tracing::debug!(function = function_name, "config loaded");
    Ok(config)
}

/// Counters of one invocation (sosw 0.7's `stats`, a `defaultdict(int)`): a missing counter is 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    counters: BTreeMap<String, u64>,
}

impl Stats {
    /// No counters.
    pub fn new() -> Self {
        Stats::default()
    }

    /// Adds 1 to `name`.
    pub fn inc(&mut self, name: &str) {
        self.add(name, 1);
    }

    /// Adds `n` to `name`.
    pub fn add(&mut self, name: &str, n: u64) {
        let counter = self.counters.entry(name.to_string()).or_default();
        *counter = counter.saturating_add(n);
    }

    /// The counter `name` (0 if never counted).
    pub fn get(&self, name: &str) -> u64 {
        self.counters.get(name).copied().unwrap_or(0)
    }

    /// Every counter that was counted, by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.counters.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }

    /// Adds every counter of `other` to this one.
    pub fn merge(&mut self, other: &Stats) {
        for (name, n) in other.iter() {
            self.add(name, n);
        }
    }

    /// The counters as a JSON object (what a worker sends as `stats`).
    pub fn to_json_map(&self) -> serde_json::Map<String, Value> {
        self.iter()
            .map(|(k, v)| (k.to_string(), Value::from(v)))
            .collect()
    }
}

impl Serialize for Stats {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.counters.serialize(s)
    }
}

/// Counters kept for the life of a container: sosw 0.7's `reset_stats`.
///
/// After each invocation, [`LifetimeStats::absorb`] adds every counter `c` into `total_c`, except the
/// names in `lifetime_stats_params` (config), which keep their own name and simply keep counting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifetimeStats {
    sums: Stats,
    lifetime_params: BTreeSet<String>,
}

impl LifetimeStats {
    /// Lifetime stats where the counters named in `lifetime_params` are never reset.
    pub fn new(lifetime_params: impl IntoIterator<Item = String>) -> Self {
        LifetimeStats {
            sums: Stats::new(),
            lifetime_params: lifetime_params.into_iter().collect(),
        }
    }

    /// Folds one invocation's counters in (the end of an invocation).
    pub fn absorb(&mut self, invocation: &Stats) {
        for (name, n) in invocation.iter() {
            if self.lifetime_params.contains(name) || name.starts_with(TOTAL_PREFIX) {
                self.sums.add(name, n);
            } else {
                self.sums.add(&format!("{TOTAL_PREFIX}{name}"), n);
            }
        }
    }

    /// The sums so far.
    pub fn sums(&self) -> &Stats {
        &self.sums
    }
}

/// The time an invocation gets when it carries no deadline (a direct call, a test): 15 minutes,
/// Lambda's longest timeout.
pub const NO_DEADLINE_BUDGET: Duration = Duration::from_secs(15 * 60);

/// One invocation as a [`Processor`] sees it: when it must be done, who it is, and what it counted.
///
/// Every processor gets the same context, so an essential that must stop in time (the scheduler hands
/// the rest of a job on before the deadline, the orchestrator refills slots until it) needs no handler
/// of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// When the invocation is cut off (Lambda's deadline, or now + [`NO_DEADLINE_BUDGET`]).
    pub deadline: DateTime<Utc>,
    /// The request id (Lambda's `aws_request_id`; empty outside Lambda).
    pub request_id: String,
    /// The ARN the function was invoked as (empty outside Lambda); a scheduler's sibling is invoked
    /// as the same ARN.
    pub function_arn: String,
    /// The invocation's counters, summed into `total_*` for the container's life afterwards.
    pub stats: Stats,
}

impl Invocation {
    /// An invocation cut off at `deadline`, with no request id, no ARN and no counters.
    pub fn new(deadline: DateTime<Utc>) -> Self {
        Invocation {
            deadline,
            request_id: String::new(),
            function_arn: String::new(),
            stats: Stats::new(),
        }
    }

    /// An invocation whose deadline is `deadline_ms` (Unix milliseconds, as Lambda gives it), or
    /// `now` + [`NO_DEADLINE_BUDGET`] when there is none (`0`) or it is out of range.
    pub fn from_deadline_millis(deadline_ms: u64, now: DateTime<Utc>) -> Self {
        let given = i64::try_from(deadline_ms)
            .ok()
            .filter(|millis| *millis > 0)
            .and_then(|millis| Utc.timestamp_millis_opt(millis).single());
        Invocation::new(given.unwrap_or_else(|| {
            now + chrono::Duration::from_std(NO_DEADLINE_BUDGET).unwrap_or(chrono::Duration::MAX)
        }))
    }

    /// The same invocation with request id `request_id`.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = request_id.into();
        self
    }

    /// The same invocation invoked as `function_arn`.
    pub fn with_function_arn(mut self, function_arn: impl Into<String>) -> Self {
        self.function_arn = function_arn.into();
        self
    }
}

/// An error as Lambda sees it: a message and whether running the same event again may succeed.
/// On Lambda it becomes a diagnostic with `errorType` `Retryable` or `NonRetryable`.
#[derive(Debug)]
pub struct HandlerError {
    retryable: bool,
    message: String,
}

impl HandlerError {
    /// An error worth retrying (a throttled store, a timeout).
    pub fn retryable(message: impl Into<String>) -> Self {
        HandlerError {
            retryable: true,
            message: message.into(),
        }
    }

    /// An error that the same event will always hit (a malformed payload).
    pub fn non_retryable(message: impl Into<String>) -> Self {
        HandlerError {
            retryable: false,
            message: message.into(),
        }
    }

    /// Whether running the same event again may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The Lambda `errorType`: `Retryable` or `NonRetryable`.
    pub fn error_type(&self) -> &'static str {
        if self.retryable {
            "Retryable"
        } else {
            "NonRetryable"
        }
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.error_type(), self.message)
    }
}

impl std::error::Error for HandlerError {}

impl From<Error> for HandlerError {
    fn from(err: Error) -> Self {
        HandlerError {
            retryable: err.is_retryable(),
            message: err.with_causes(),
        }
    }
}

/// The body of one Lambda function.
#[async_trait]
pub trait Processor: Send + Sync {
    /// The event it accepts. An event that does not deserialize is a `NonRetryable` error.
    type Event: DeserializeOwned + Send;
    /// What it returns to the caller.
    type Output: Serialize + Send;

    /// Handles one event before `invocation.deadline`, counting what it does in
    /// `invocation.stats`.
    async fn process(
        &self,
        event: Self::Event,
        invocation: &mut Invocation,
    ) -> Result<Self::Output>;
}

#[async_trait]
impl<P: Processor + ?Sized> Processor for std::sync::Arc<P> {
    type Event = P::Event;
    type Output = P::Output;

    async fn process(
        &self,
        event: Self::Event,
        invocation: &mut Invocation,
    ) -> Result<Self::Output> {
        (**self).process(event, invocation).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StaticConfigSource;
    use serde::Deserialize;
    use serde_json::json;
    #[test]
    fn lifetime_stats_sum_into_totals_like_reset_stats() {
        let mut lifetime = LifetimeStats::new(["kept".to_string()]);
        for calls in [2, 3] {
            let mut s = Stats::new();
            s.add("rows", calls);
            s.inc("kept");
            lifetime.absorb(&s);
        }
        assert_eq!(lifetime.sums().get("total_rows"), 5);
        assert_eq!(
            lifetime.sums().get("rows"),
            0,
            "per-invocation counters reset"
        );
        assert_eq!(
            lifetime.sums().get("kept"),
            2,
            "lifetime params keep their name"
        );
        assert_eq!(lifetime.sums().get("total_kept"), 0);
    }

    #[test]
    fn stats_count_and_serialise_as_a_map() {
        let mut s = Stats::new();
        s.inc("a");
        s.add("a", 2);
        s.add("b", u64::MAX);
        s.inc("b");
        assert_eq!(s.get("a"), 3);
        assert_eq!(s.get("b"), u64::MAX, "saturates");
        assert_eq!(s.get("missing"), 0);
        let v = serde_json::to_value(&s).expect("serialises");
        assert_eq!(v["a"], 3);
    }

    #[test]
    fn an_invocation_takes_the_given_deadline_or_lambdas_longest_timeout() {
        let now = Utc
            .timestamp_opt(1_700_000_000, 0)
            .single()
            .unwrap_or_default();
        let cases: [(u64, i64); 4] = [
            (1_700_000_060_500, 1_700_000_060_500),
            (1, 1),
            (0, 1_700_000_900_000),
            (u64::MAX, 1_700_000_900_000),
        ];
        for (given, expected) in cases {
            let invocation = Invocation::from_deadline_millis(given, now);
            assert_eq!(invocation.deadline.timestamp_millis(), expected, "{given}");
            assert!(invocation.stats.is_empty() && invocation.request_id.is_empty());
        }
    }

    #[tokio::test]
    async fn config_is_loaded_by_function_name_with_layers() {
        #[derive(Deserialize)]
        struct C {
            x: u32,
            y: u32,
        }
        let source = StaticConfigSource::new()
            .with("sosw_essential_config", json!({"x": 1, "y": 1}))
            .with("my_worker_config", json!({"y": 2}));
        let c: C = load_config(&source, "my_worker", json!({}), None)
            .await
            .expect("loads");
        assert_eq!((c.x, c.y), (1, 2));
    }
}
