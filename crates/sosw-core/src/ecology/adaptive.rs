//! The adaptive concurrency controller: a labourer's limit follows what its downstream can take.
//!
//! sosw 0.7 maps a health status (0-4, from fixed thresholds) to a fraction of a hand-set maximum. That
//! reacts a minute late (CloudWatch), never finds the capacity between the fractions, and keeps
//! invoking into an outage at status 2 or more. This controller instead learns the limit from the
//! outcomes of the labourer's own invocations, once per observation window (a few seconds of the
//! continuous orchestrator), and keeps the health status as an upper bound.
//!
//! The rules (reasoned in docs/ecology.md):
//! * **Congestion** (throttled outcomes above a small tolerance): the limit drops to a fraction of the
//!   concurrency that was running when the throttles came, which is the best estimate of the
//!   downstream's capacity, or of the current limit if that is lower. One decrease per congestion
//!   event: the window after a decrease is a hold, in which neither a decrease nor an increase happens
//!   (outcomes of invocations made before the decrease still arrive then).
//! * **No congestion, limit in use**: below the slow-start threshold the limit doubles (after a start or
//!   an outage the capacity is unknown, and waiting minutes to find it wastes it); above it, the limit
//!   grows by a fixed step per window (additive increase, the gentle probe that finds a capacity that
//!   grew). A limit that is not used (no backlog) does not grow.
//! * **Circuit breaker**: when almost nothing succeeds for `trip_after` windows (a downstream outage,
//!   not a capacity drop: a drop still lets some succeed), the breaker opens and the labourer gets
//!   nothing for `open_secs`, then `probes` invocations (half open). If they succeed the breaker closes
//!   and the limit restarts in slow start towards the bound; if not it opens again.
//! * **Bounds**: the limit never exceeds `max_simultaneous_invocations` times the coefficient of the
//!   labourer's health status (sosw 0.7's thresholds, now a ceiling), and never falls below
//!   `min_limit` while the breaker is closed.
//!
//! [`Controller::observe`] is pure: state in, state out. The state serializes so that it can live in
//! the store and be shared by every orchestrator and cold start.

use serde::{Deserialize, Serialize};

/// The controller's tuning. The defaults are the ones the simulation in docs/ecology.md measures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdaptiveConfig {
    /// Length of an observation window, in seconds: the limit changes at most once per window.
    pub window_secs: f64,
    /// Throttled outcomes tolerated in a window before it counts as congestion, as a fraction of the
    /// window's outcomes (at least one throttle is always needed).
    pub tolerance: f64,
    /// After congestion the limit becomes this fraction of the concurrency that was running.
    pub backoff: f64,
    /// The additive increase per window above the slow-start threshold.
    pub increase: f64,
    /// The smallest limit while the breaker is closed.
    pub min_limit: f64,
    /// A window whose success ratio (successes over outcomes) is below this is "bad"...
    pub trip_ratio: f64,
    /// ...and this many bad windows in a row open the breaker.
    pub trip_after: u32,
    /// A window needs at least this many outcomes to count towards tripping.
    pub trip_min_outcomes: u64,
    /// How long the breaker stays open before probing, in seconds.
    pub open_secs: f64,
    /// How many invocations probe a half-open breaker.
    pub probes: u32,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        AdaptiveConfig {
            window_secs: 5.0,
            tolerance: 0.01,
            backoff: 0.95,
            increase: 0.5,
            min_limit: 1.0,
            trip_ratio: 0.1,
            trip_after: 2,
            trip_min_outcomes: 3,
            open_secs: 20.0,
            probes: 3,
        }
    }
}

impl AdaptiveConfig {
    /// Checks that every value is in its range; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("window_secs", self.window_secs),
            ("increase", self.increase),
            ("min_limit", self.min_limit),
            ("open_secs", self.open_secs),
        ];
        for (name, value) in positive {
            if !(value.is_finite() && value > 0.0) {
                return Err(format!("`{name}` must be a positive number, not {value}"));
            }
        }
        let fractions = [
            ("tolerance", self.tolerance),
            ("backoff", self.backoff),
            ("trip_ratio", self.trip_ratio),
        ];
        for (name, value) in fractions {
            if !(value.is_finite() && (0.0..1.0).contains(&value)) {
                return Err(format!(
                    "`{name}` must be at least 0 and below 1, not {value}"
                ));
            }
        }
        if self.trip_after == 0 {
            return Err("`trip_after` must be at least 1".into());
        }
        if self.probes == 0 {
            return Err("`probes` must be at least 1".into());
        }
        Ok(())
    }
}

/// How the orchestrator sets a labourer's concurrency: a labourer's `ecology` setting,
/// `{"policy": "thresholds"}` (sosw 0.7's, the default) or `{"policy": "adaptive", ...}` with any
/// [`AdaptiveConfig`] field (`{"policy": "adaptive", "window_secs": 5, "backoff": 0.9}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value", into = "serde_json::Value")]
pub enum EcologyPolicy {
    /// sosw 0.7: `max_simultaneous_invocations` times the coefficient of the health status.
    #[default]
    Thresholds,
    /// The adaptive controller, under the thresholds' result as its ceiling.
    Adaptive(AdaptiveConfig),
}

impl TryFrom<serde_json::Value> for EcologyPolicy {
    type Error = String;

    fn try_from(value: serde_json::Value) -> Result<Self, String> {
        let serde_json::Value::Object(mut fields) = value else {
            return Err(format!(
                "`ecology` must be an object like {{\"policy\": \"adaptive\"}}, not {value}"
            ));
        };
        let policy = match fields.remove("policy") {
            Some(serde_json::Value::String(policy)) => policy,
            Some(other) => return Err(format!("`ecology.policy` must be a string, not {other}")),
            None => {
                return Err("`ecology` needs a `policy`: \"thresholds\" or \"adaptive\"".to_owned());
            }
        };
        match policy.as_str() {
            "thresholds" if fields.is_empty() => Ok(EcologyPolicy::Thresholds),
            "thresholds" => Err(format!(
                "`ecology` with policy \"thresholds\" takes no other setting; found {}",
                fields.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
            "adaptive" => {
                let config: AdaptiveConfig =
                    serde_json::from_value(serde_json::Value::Object(fields))
                        .map_err(|e| format!("`ecology` (adaptive): {e}"))?;
                config
                    .validate()
                    .map_err(|e| format!("`ecology` (adaptive): {e}"))?;
                Ok(EcologyPolicy::Adaptive(config))
            }
            other => Err(format!(
                "unknown `ecology.policy` \"{other}\": \"thresholds\" or \"adaptive\""
            )),
        }
    }
}

impl From<EcologyPolicy> for serde_json::Value {
    fn from(policy: EcologyPolicy) -> Self {
        match policy {
            EcologyPolicy::Thresholds => serde_json::json!({"policy": "thresholds"}),
            EcologyPolicy::Adaptive(config) => {
                let mut value = serde_json::to_value(config).unwrap_or_default();
                if let serde_json::Value::Object(fields) = &mut value {
                    fields.insert("policy".into(), "adaptive".into());
                }
                value
            }
        }
    }
}

/// What one observation window saw for one labourer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Invocations that ended well.
    pub succeeded: u64,
    /// Invocations the downstream (or Lambda) turned away: a worker's *throttled* outcome, an invoke
    /// throttle. These are the congestion signal.
    pub throttled: u64,
    /// Invocations that failed otherwise (errors, expiries). They count against the breaker, not as
    /// congestion: a worker bug is not a capacity signal.
    pub failed: u64,
    /// The labourer's running invocations at the end of the window.
    pub running: u64,
    /// Whether the labourer had queued work the limit held back during the window (the limit was in
    /// use). Without it the limit does not grow.
    pub limited: bool,
}

impl Observation {
    fn outcomes(&self) -> u64 {
        self.succeeded + self.throttled + self.failed
    }
}

/// The breaker's position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "breaker", rename_all = "snake_case")]
pub enum Breaker {
    /// Invocations flow under the limit.
    Closed,
    /// Nothing is invoked until `until` (seconds on the controller's clock).
    Open {
        /// When probing may start.
        until: f64,
    },
    /// A few probes are in flight; their outcomes decide.
    HalfOpen,
}

/// A labourer's controller state: small, serializable, kept in the store between orchestrator runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControllerState {
    /// The current limit (fractional; [`ControllerState::allowed`] rounds it down).
    pub limit: f64,
    /// Below this the limit doubles per window; above it, it grows additively. `None`: no
    /// threshold yet (a new labourer, or after an outage), slow start up to the ceiling.
    pub slow_start_threshold: Option<f64>,
    /// The breaker.
    #[serde(flatten)]
    pub breaker: Breaker,
    /// Bad windows in a row.
    pub bad_windows: u32,
    /// After a decrease, no change until this time (seconds on the controller's clock): outcomes of
    /// invocations made before the decrease still arrive in that time.
    pub hold_until: Option<f64>,
}

impl ControllerState {
    /// The state of a labourer never seen before: closed, in slow start from `min_limit`.
    pub fn new(config: &AdaptiveConfig) -> Self {
        ControllerState {
            limit: config.min_limit,
            slow_start_threshold: None,
            breaker: Breaker::Closed,
            bad_windows: 0,
            hold_until: None,
        }
    }

    fn holding(&self, now: f64) -> bool {
        self.hold_until.is_some_and(|until| now < until)
    }

    /// How many invocations may run at once now, at `now` seconds: 0 while the breaker is open, the
    /// probes while it is half open, else the limit rounded down.
    pub fn allowed(&self, config: &AdaptiveConfig, now: f64) -> u64 {
        match self.breaker {
            Breaker::Open { until } if now < until => 0,
            Breaker::Open { .. } | Breaker::HalfOpen => u64::from(config.probes),
            Breaker::Closed => self.limit.floor().max(0.0) as u64,
        }
    }
}

/// The controller: [`AdaptiveConfig`] plus the rules. Stateless itself; see [`ControllerState`].
#[derive(Debug, Clone, Default)]
pub struct Controller {
    config: AdaptiveConfig,
}

impl Controller {
    /// A controller with `config` (check it with [`AdaptiveConfig::validate`] first).
    pub fn new(config: AdaptiveConfig) -> Self {
        Controller { config }
    }

    /// The tuning.
    pub fn config(&self) -> &AdaptiveConfig {
        &self.config
    }

    /// Whether `observation` shows congestion: throttles above the tolerance.
    pub fn congested(&self, observation: &Observation) -> bool {
        observation.throttled > 0
            && observation.throttled as f64 > self.config.tolerance * observation.outcomes() as f64
    }

    /// Whether the orchestrator should call [`Controller::observe`] now, before its window is over:
    /// the window so far (`partial`) is congested and the state is not holding, or the breaker is half
    /// open and its probes have answered. Backing off at the first sign of congestion, instead of at
    /// the end of the window, is what keeps the requests beyond capacity low; increases still wait for
    /// whole windows. Deciding on the probes as soon as they answer keeps a half-open breaker to
    /// `probes` invocations per open period when probes fail fast.
    pub fn should_observe_now(
        &self,
        state: &ControllerState,
        partial: &Observation,
        now: f64,
    ) -> bool {
        match state.breaker {
            Breaker::Closed => !state.holding(now) && self.congested(partial),
            // The probes answered: decide at once, so no more than `probes` are sent per open period
            // (an orchestrator refills freed slots every round, and failed probes free theirs fast).
            Breaker::HalfOpen => partial.outcomes() >= u64::from(self.config.probes),
            Breaker::Open { .. } => false,
        }
    }

    /// The state after a window that saw `observation`, ending at `now` seconds, with the limit capped
    /// at `ceiling` (the labourer's maximum times its health coefficient; 0 stops it).
    pub fn observe(
        &self,
        state: &ControllerState,
        observation: &Observation,
        ceiling: f64,
        now: f64,
    ) -> ControllerState {
        let c = &self.config;
        let mut next = state.clone();
        let outcomes = observation.outcomes();
        match state.breaker {
            Breaker::Open { until } => {
                if now >= until {
                    next.breaker = Breaker::HalfOpen;
                }
                return next;
            }
            Breaker::HalfOpen => {
                if outcomes == 0 {
                    // The probes have not answered yet.
                    return next;
                }
                if observation.succeeded > 0 && success_ratio(observation) >= 0.5 {
                    next.breaker = Breaker::Closed;
                    next.limit = f64::from(c.probes).max(c.min_limit);
                    // The capacity after an outage is unknown: slow start all the way to the ceiling
                    // until the first congestion says where it is.
                    next.slow_start_threshold = None;
                    next.bad_windows = 0;
                    next.hold_until = None;
                } else {
                    next.breaker = Breaker::Open {
                        until: now + c.open_secs,
                    };
                }
                return next.capped(ceiling, c);
            }
            Breaker::Closed => {}
        }

        // The breaker: a window in which almost nothing succeeded.
        if outcomes >= c.trip_min_outcomes && success_ratio(observation) < c.trip_ratio {
            next.bad_windows += 1;
            if next.bad_windows >= c.trip_after {
                next.breaker = Breaker::Open {
                    until: now + c.open_secs,
                };
                next.bad_windows = 0;
                next.hold_until = None;
                return next;
            }
        } else if outcomes > 0 {
            next.bad_windows = 0;
        }

        if state.holding(now) {
            // No decision on outcomes of invocations made before the last decrease.
        } else if self.congested(observation) {
            // What was running when the throttles came is what the downstream could take.
            let measured = (observation.running as f64).max(c.min_limit);
            next.limit = (state.limit.min(measured) * c.backoff).max(c.min_limit);
            next.slow_start_threshold = Some(next.limit);
            next.hold_until = Some(now + c.window_secs);
        } else if observation.limited {
            next.limit = match state.slow_start_threshold {
                Some(threshold) if state.limit >= threshold => state.limit + c.increase,
                Some(threshold) => (state.limit * 2.0).min(threshold),
                None => state.limit * 2.0,
            };
        }
        next.capped(ceiling, c)
    }
}

impl ControllerState {
    fn capped(mut self, ceiling: f64, config: &AdaptiveConfig) -> Self {
        let ceiling = ceiling.max(0.0);
        self.limit = self.limit.min(ceiling).max(config.min_limit.min(ceiling));
        self
    }
}

fn success_ratio(observation: &Observation) -> f64 {
    match observation.outcomes() {
        0 => 1.0,
        n => observation.succeeded as f64 / n as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn controller() -> Controller {
        Controller::new(AdaptiveConfig::default())
    }

    fn busy(succeeded: u64, throttled: u64, running: u64) -> Observation {
        Observation {
            succeeded,
            throttled,
            failed: 0,
            running,
            limited: true,
        }
    }

    #[test]
    fn the_policy_parses_validates_and_round_trips() {
        use serde_json::json;
        let parse = |v: serde_json::Value| serde_json::from_value::<EcologyPolicy>(v);
        assert_eq!(
            parse(json!({"policy": "thresholds"})).expect("parses"),
            EcologyPolicy::Thresholds
        );
        let adaptive = parse(json!({"policy": "adaptive", "backoff": 0.9})).expect("parses");
        let EcologyPolicy::Adaptive(config) = &adaptive else {
            panic!("adaptive: {adaptive:?}");
        };
        assert_eq!(config.backoff, 0.9);
        assert_eq!(config.window_secs, AdaptiveConfig::default().window_secs);
        let back = serde_json::to_value(adaptive.clone()).expect("serializes");
        assert_eq!(parse(back).expect("parses again"), adaptive);
        for (bad, says) in [
            (json!({"policy": "adaptive", "backoff": 1.5}), "backoff"),
            (json!({"policy": "adaptive", "speed": 3}), "speed"),
            (json!({"policy": "magic"}), "magic"),
            (json!({"backoff": 0.5}), "needs a `policy`"),
            (json!({"policy": "thresholds", "backoff": 0.5}), "backoff"),
            (json!("adaptive"), "must be an object"),
        ] {
            let err = parse(bad.clone()).expect_err("refused").to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn slow_start_doubles_until_the_ceiling() {
        let c = controller();
        let mut state = ControllerState::new(c.config());
        let mut limits = vec![];
        for window in 0..8 {
            state = c.observe(&state, &busy(10, 0, 10), 50.0, f64::from(window) * 5.0);
            limits.push(state.limit);
        }
        assert_eq!(limits, [2.0, 4.0, 8.0, 16.0, 32.0, 50.0, 50.0, 50.0]);
    }

    #[test]
    fn an_unused_limit_does_not_grow() {
        let c = controller();
        let state = ControllerState {
            limit: 10.0,
            ..ControllerState::new(c.config())
        };
        let idle = Observation {
            limited: false,
            ..busy(3, 0, 3)
        };
        assert_eq!(c.observe(&state, &idle, 100.0, 5.0).limit, 10.0);
    }

    #[test]
    fn congestion_drops_to_a_fraction_of_what_ran_then_holds_one_window() {
        let c = controller();
        let state = ControllerState {
            limit: 80.0,
            ..ControllerState::new(c.config())
        };
        // Capacity fell to about 24: that is what was running when 60 were turned away.
        let after = c.observe(&state, &busy(40, 60, 24), 100.0, 5.0);
        let backoff = c.config().backoff;
        assert!((after.limit - 24.0 * backoff).abs() < 1e-9, "{after:?}");
        assert_eq!(after.hold_until, Some(10.0));
        assert_eq!(after.slow_start_threshold, Some(after.limit));
        // The next window still reports throttles from invocations made before the drop: no change.
        let held = c.observe(&after, &busy(20, 30, 21), 100.0, 8.0);
        assert_eq!(held.limit, after.limit);
        assert!(!c.should_observe_now(&held, &busy(1, 9, 21), 9.0));
        // Then additive increase, one per window.
        let grown = c.observe(&held, &busy(21, 0, 21), 100.0, 15.0);
        assert_eq!(grown.limit, after.limit + c.config().increase);
    }

    #[test]
    fn a_throttle_within_the_tolerance_is_not_congestion() {
        let c = Controller::new(AdaptiveConfig {
            tolerance: 0.05,
            ..AdaptiveConfig::default()
        });
        let state = ControllerState {
            limit: 40.0,
            slow_start_threshold: Some(40.0),
            ..ControllerState::new(c.config())
        };
        let next = c.observe(&state, &busy(99, 1, 40), 100.0, 5.0);
        assert_eq!(next.limit, 40.0 + c.config().increase);
    }

    #[test]
    fn an_outage_opens_the_breaker_then_probes_close_it() {
        let c = controller();
        let mut state = ControllerState {
            limit: 50.0,
            slow_start_threshold: Some(50.0),
            ..ControllerState::new(c.config())
        };
        let down = Observation {
            succeeded: 0,
            throttled: 0,
            failed: 50,
            running: 0,
            limited: true,
        };
        state = c.observe(&state, &down, 100.0, 5.0);
        assert_eq!(
            state.breaker,
            Breaker::Closed,
            "one bad window is not enough"
        );
        state = c.observe(&state, &down, 100.0, 10.0);
        assert_eq!(state.breaker, Breaker::Open { until: 30.0 });
        assert_eq!(state.allowed(c.config(), 20.0), 0);
        // Still open before `until`; half open after.
        state = c.observe(&state, &Observation::default(), 100.0, 25.0);
        assert_eq!(state.breaker, Breaker::Open { until: 30.0 });
        state = c.observe(&state, &Observation::default(), 100.0, 30.0);
        assert_eq!(state.breaker, Breaker::HalfOpen);
        assert_eq!(state.allowed(c.config(), 30.0), 3);
        // Probes that fail reopen it, decided as soon as they all answered (not at the window's end).
        let probes_fail = Observation {
            failed: 3,
            ..Observation::default()
        };
        let two_answered = Observation {
            failed: 2,
            ..Observation::default()
        };
        assert!(!c.should_observe_now(&state, &two_answered, 31.0));
        assert!(c.should_observe_now(&state, &probes_fail, 31.0));
        state = c.observe(&state, &probes_fail, 100.0, 35.0);
        assert!(
            !c.should_observe_now(&state, &probes_fail, 36.0),
            "an open breaker waits for `until`"
        );
        assert_eq!(state.breaker, Breaker::Open { until: 55.0 });
        state = c.observe(&state, &Observation::default(), 100.0, 55.0);
        // Probes that succeed close it, in slow start from the probes.
        state = c.observe(&state, &busy(3, 0, 3), 100.0, 60.0);
        assert_eq!(state.breaker, Breaker::Closed);
        assert_eq!(state.limit, 3.0);
        state = c.observe(&state, &busy(3, 0, 3), 100.0, 65.0);
        assert_eq!(state.limit, 6.0);
    }

    #[test]
    fn a_capacity_drop_is_congestion_not_an_outage() {
        let c = controller();
        let state = ControllerState {
            limit: 80.0,
            slow_start_threshold: Some(80.0),
            ..ControllerState::new(c.config())
        };
        // Most new starts are turned away, but what was already running still succeeds.
        let next = c.observe(&state, &busy(40, 100, 24), 100.0, 5.0);
        assert_eq!(next.breaker, Breaker::Closed);
        assert_eq!(next.bad_windows, 0);
    }

    #[test]
    fn the_health_ceiling_caps_the_limit_and_zero_stops_it() {
        let c = controller();
        let state = ControllerState {
            limit: 80.0,
            slow_start_threshold: Some(80.0),
            ..ControllerState::new(c.config())
        };
        assert_eq!(c.observe(&state, &busy(80, 0, 80), 40.0, 5.0).limit, 40.0);
        let stopped = c.observe(&state, &busy(80, 0, 80), 0.0, 5.0);
        assert_eq!(stopped.allowed(c.config(), 5.0), 0);
    }

    #[test]
    fn the_state_round_trips_through_json_as_the_store_keeps_it() {
        let state = ControllerState {
            limit: 12.5,
            slow_start_threshold: Some(12.5),
            breaker: Breaker::Open { until: 99.0 },
            bad_windows: 1,
            hold_until: Some(101.0),
        };
        let json = serde_json::to_value(&state).expect("serializes");
        assert_eq!(json["breaker"], "open");
        assert_eq!(json["until"], 99.0);
        let back: ControllerState = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, state);
    }

    #[test]
    fn invalid_tuning_names_the_field() {
        let bad = AdaptiveConfig {
            backoff: 1.5,
            ..AdaptiveConfig::default()
        };
        let message = bad.validate().expect_err("rejected");
        assert!(message.contains("`backoff`"), "{message}");
        assert!(AdaptiveConfig::default().validate().is_ok());
    }
}
