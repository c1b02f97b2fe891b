//! A virtual-clock simulation of one labourer against a downstream whose capacity changes without
//! telling anyone, under three concurrency policies side by side: sosw 0.7's thresholds, a fixed
//! maximum (what an SQS event source mapping's maximum concurrency is), and the
//! [adaptive controller](super::adaptive).
//!
//! The model, one tick per virtual second:
//! * the downstream serves at most `capacity(t)` requests at once; a request started while it is full
//!   is turned away at once (*throttled*); while the capacity is 0 (an outage) every request fails,
//!   the ones already running included;
//! * the labourer has an endless backlog; its orchestrator fills the slots its policy allows at every
//!   tick (the continuous orchestrator polls more often than that), and each task runs for a
//!   log-normal time around `mean_duration_secs`;
//! * the policy sees what a real orchestrator sees: outcomes as the worker assistant reports them and
//!   its running count (adaptive, every window), or a health metric read once a minute with
//!   CloudWatch's lag (thresholds).
//!
//! Figures: **goodput**, the capacity used by successful requests over the capacity available
//! (capacity-seconds); **beyond capacity**, throttled and failed requests over all requests; and
//! **recovery**, the seconds from the end of the outage until the successful concurrency, averaged
//! over 10 s, is back to 90% of the capacity.
//!
//! Deterministic: the same scenario and seed give the same figures.

use std::collections::{BTreeMap, VecDeque};

use serde_json::json;

use super::adaptive::{AdaptiveConfig, Controller, ControllerState, Observation};
use super::health::metric_status;
use crate::config::InvocationCoefficients;
use crate::task::HealthMetric;

/// What the simulated downstream and labourer look like.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Length of the run, in seconds.
    pub seconds: u32,
    /// The downstream's hidden capacity (concurrent requests), as `(from second, capacity)` steps.
    pub capacity: Vec<(u32, f64)>,
    /// Relative wobble of the capacity around its step value (0.04 = ±4%), changing every 10 s.
    pub wobble: f64,
    /// The labourer's `max_simultaneous_invocations`.
    pub max_simultaneous_invocations: u32,
    /// Mean duration of a successful task, in seconds.
    pub mean_duration_secs: f64,
    /// Seed of the durations and the wobble.
    pub seed: u64,
}

impl Scenario {
    /// The scenario of docs/ecology.md: capacity 80 of a maximum of 100; after 10 minutes a step down
    /// to 30% (24); after 25 minutes a 5-minute outage; from 30 minutes recovery to 80, until 50.
    pub fn step_outage_recovery(seed: u64) -> Self {
        Scenario {
            seconds: 3_000,
            capacity: vec![(0, 80.0), (600, 24.0), (1_500, 0.0), (1_800, 80.0)],
            wobble: 0.04,
            max_simultaneous_invocations: 100,
            mean_duration_secs: 5.0,
            seed,
        }
    }

    fn step_capacity(&self, t: u32) -> f64 {
        self.capacity
            .iter()
            .take_while(|(from, _)| *from <= t)
            .last()
            .map_or(0.0, |(_, c)| *c)
    }

    /// The end of the last outage (a step to 0 followed by a step above 0), if there is one.
    pub fn outage_end(&self) -> Option<u32> {
        self.capacity
            .windows(2)
            .rev()
            .find(|w| w[0].1 == 0.0 && w[1].1 > 0.0)
            .map(|w| w[1].0)
    }
}

/// A concurrency policy.
#[derive(Debug, Clone)]
pub enum Policy {
    /// sosw 0.7: a health metric (errors and throttles per minute, read with a lag) gives a status
    /// through `metric`'s feelings; the limit is the maximum times that status's coefficient.
    Thresholds {
        /// The health metric's feelings and operator (the `details` are not used: the simulation
        /// is the metric source).
        metric: Box<HealthMetric>,
        /// Coefficient per status.
        coefficients: InvocationCoefficients,
        /// How old the newest datapoint is when read, in seconds (CloudWatch's publication lag).
        lag_secs: u32,
    },
    /// Always the maximum.
    Fixed,
    /// The adaptive controller with this tuning, capped at the maximum.
    Adaptive(AdaptiveConfig),
}

impl Policy {
    /// The thresholds policy of docs/ecology.md: errors and throttles summed per minute, status 4
    /// at most 1, 3 at most 5, 2 at most 20 (sosw 0.7's example feelings), sosw 0.7's default
    /// coefficients, read with a one-minute lag.
    pub fn sosw07_thresholds() -> Self {
        let metric: HealthMetric = serde_json::from_value(json!({
            "details": {
                "Namespace": "Simulation",
                "MetricName": "DownstreamErrors",
                "Period": 60,
                "Statistics": ["Sum"]
            },
            "feelings": {"4": 1, "3": 5, "2": 20},
            "feeling_comparison_operator": "le"
        }))
        .expect("the simulation's health metric is valid");
        Policy::Thresholds {
            metric: Box::new(metric),
            coefficients: InvocationCoefficients::default(),
            lag_secs: 60,
        }
    }

    /// The policy's name in tables.
    pub fn name(&self) -> &'static str {
        match self {
            Policy::Thresholds { .. } => "sosw 0.7 thresholds",
            Policy::Fixed => "fixed maximum",
            Policy::Adaptive(_) => "adaptive",
        }
    }
}

/// One point of the trace, every 10 virtual seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seconds from the start.
    pub second: u32,
    /// The downstream's capacity (mean over the 10 s).
    pub capacity: f64,
    /// The policy's limit (mean over the 10 s).
    pub limit: f64,
    /// Successful requests running (mean over the 10 s).
    pub running: f64,
}

/// The figures of one run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The policy's name.
    pub policy: &'static str,
    /// Capacity used by successful requests over capacity available (0-1).
    pub goodput: f64,
    /// Throttled and failed requests over all requests (0-1).
    pub beyond_capacity: f64,
    /// Seconds from the end of the outage back to 90% of capacity; `None` if never (or no outage).
    pub recovery_secs: Option<u32>,
    /// Requests started (throttled ones included).
    pub requests: u64,
    /// Requests that succeeded.
    pub succeeded: u64,
    /// Requests turned away because the downstream was full.
    pub throttled: u64,
    /// Requests that failed in an outage.
    pub failed: u64,
    /// Requests still running when the run ended.
    pub running_at_end: u64,
    /// The trace, every 10 s.
    pub trace: Vec<Sample>,
}

/// Runs `scenario` under `policy`.
pub fn simulate(scenario: &Scenario, policy: &Policy) -> Outcome {
    let mut rng = SplitMix(scenario.seed);
    let max = f64::from(scenario.max_simultaneous_invocations);
    let wobbles: Vec<f64> = (0..=scenario.seconds / 10)
        .map(|_| 1.0 + scenario.wobble * (2.0 * rng.unit() - 1.0))
        .collect();
    let capacity_at = |t: u32| (scenario.step_capacity(t) * wobbles[(t / 10) as usize]).floor();

    let controller = match policy {
        Policy::Adaptive(config) => Some(Controller::new(config.clone())),
        _ => None,
    };
    let mut state = controller
        .as_ref()
        .map(|c| ControllerState::new(c.config()));
    let window = controller.as_ref().map_or(1.0, |c| c.config().window_secs);
    let mut window_start = 0.0;
    // The thresholds policy: errors per minute, and the limit it last set.
    let mut errors_per_minute: BTreeMap<u32, u64> = BTreeMap::new();
    let mut threshold_limit = max;

    // End times of the running (successful so far) requests, in arrival order.
    let mut running: VecDeque<f64> = VecDeque::new();
    let mut window_seen = Observation::default();
    let (mut requests, mut succeeded, mut failed, mut throttled) = (0u64, 0u64, 0u64, 0u64);
    let (mut used, mut available) = (0.0f64, 0.0f64);
    let mut trace = vec![];
    let mut bucket = (0.0, 0.0, 0.0);
    let mut recent_running: VecDeque<(f64, f64)> = VecDeque::new();
    let outage_end = scenario.outage_end();
    let mut recovery_secs = None;

    for t in 0..scenario.seconds {
        let now = f64::from(t);
        let capacity = capacity_at(t);
        // 1. Requests that end now.
        let mut still = VecDeque::with_capacity(running.len());
        for end in running.drain(..) {
            if end <= now {
                if capacity > 0.0 {
                    succeeded += 1;
                    window_seen.succeeded += 1;
                } else {
                    failed += 1;
                    window_seen.failed += 1;
                    *errors_per_minute.entry(t / 60).or_default() += 1;
                }
            } else {
                still.push_back(end);
            }
        }
        running = still;
        if capacity == 0.0 {
            // An outage fails what is running too.
            let lost = running.len() as u64;
            failed += lost;
            window_seen.failed += lost;
            *errors_per_minute.entry(t / 60).or_default() += lost;
            running.clear();
        }

        // 2. The policy's limit now.
        let limit = match (policy, &state, &controller) {
            (Policy::Adaptive(_), Some(state), Some(c)) => state.allowed(c.config(), now) as f64,
            (Policy::Fixed, ..) => max,
            (Policy::Thresholds { .. }, ..) => threshold_limit,
            _ => unreachable!("an adaptive policy always has a controller"),
        };

        // 3. Fill the free slots.
        let free = (limit - running.len() as f64).max(0.0) as u64;
        for _ in 0..free {
            requests += 1;
            if (running.len() as f64) < capacity {
                running.push_back(now + rng.duration(scenario.mean_duration_secs));
            } else {
                throttled += 1;
                window_seen.throttled += 1;
                *errors_per_minute.entry(t / 60).or_default() += 1;
            }
        }
        window_seen.limited = true; // the backlog never ends

        // 4. Figures.
        let ok = running.len() as f64;
        used += ok.min(capacity);
        available += capacity;
        bucket = (bucket.0 + capacity, bucket.1 + limit, bucket.2 + ok);
        if t % 10 == 9 {
            trace.push(Sample {
                second: t - 9,
                capacity: bucket.0 / 10.0,
                limit: bucket.1 / 10.0,
                running: bucket.2 / 10.0,
            });
            bucket = (0.0, 0.0, 0.0);
        }
        recent_running.push_back((ok, capacity));
        if recent_running.len() > 10 {
            recent_running.pop_front();
        }
        if let Some(end) = outage_end
            && recovery_secs.is_none()
            && t >= end
            && recent_running.len() == 10
        {
            let (ok_sum, cap_sum) = recent_running
                .iter()
                .fold((0.0, 0.0), |(a, b), (o, c)| (a + o, b + c));
            if cap_sum > 0.0 && ok_sum >= 0.9 * cap_sum {
                recovery_secs = Some(t - end);
            }
        }

        // 5. The policy learns.
        match (policy, &mut state, &controller) {
            (Policy::Adaptive(_), Some(state), Some(c))
                if now + 1.0 - window_start >= window
                    || c.should_observe_now(state, &window_seen, now + 1.0) =>
            {
                window_seen.running = running.len() as u64;
                *state = c.observe(state, &window_seen, max, now + 1.0);
                window_seen = Observation::default();
                window_start = now + 1.0;
            }
            (
                Policy::Thresholds {
                    metric,
                    coefficients,
                    lag_secs,
                },
                ..,
            ) if (t + 1) % 60 == 0 => {
                // The newest complete minute CloudWatch has published `lag_secs` after it ended.
                let visible = (t + 1).saturating_sub(*lag_secs) / 60;
                let status = match visible.checked_sub(1) {
                    Some(minute) => {
                        let errors = errors_per_minute.get(&minute).copied().unwrap_or(0);
                        metric_status(errors as f64, metric)
                    }
                    None => 4,
                };
                threshold_limit = (max * coefficients.for_status(status)).floor();
            }
            _ => {}
        }
    }

    Outcome {
        policy: policy.name(),
        goodput: if available > 0.0 {
            used / available
        } else {
            0.0
        },
        beyond_capacity: if requests > 0 {
            (throttled + failed) as f64 / requests as f64
        } else {
            0.0
        },
        recovery_secs,
        requests,
        succeeded,
        throttled,
        failed,
        running_at_end: running.len() as u64,
        trace,
    }
}

/// The three policies of docs/ecology.md, in table order.
pub fn policies() -> Vec<Policy> {
    vec![
        Policy::sosw07_thresholds(),
        Policy::Fixed,
        Policy::Adaptive(AdaptiveConfig::default()),
    ]
}

/// A markdown table of `outcomes`.
pub fn table(outcomes: &[Outcome]) -> String {
    let mut out = String::from(
        "| policy | goodput (of capacity) | requests beyond capacity | recovery after the outage | requests | succeeded |\n|---|---:|---:|---:|---:|---:|\n",
    );
    for o in outcomes {
        let recovery = o
            .recovery_secs
            .map_or_else(|| "never".to_string(), |s| format!("{s} s"));
        out.push_str(&format!(
            "| {} | {:.1}% | {:.2}% | {} | {} | {} |\n",
            o.policy,
            o.goodput * 100.0,
            o.beyond_capacity * 100.0,
            recovery,
            o.requests,
            o.succeeded
        ));
    }
    out
}

/// An SVG plot of successful concurrency against capacity over time, one line per outcome.
pub fn svg(outcomes: &[Outcome], seconds: u32, max: f64) -> String {
    const W: f64 = 900.0;
    const H: f64 = 360.0;
    const PAD: f64 = 48.0;
    let x = |s: u32| PAD + f64::from(s) / f64::from(seconds.max(1)) * (W - 2.0 * PAD);
    let y = |v: f64| H - PAD - v / max * (H - 2.0 * PAD);
    let line = |points: Vec<(u32, f64)>, colour: &str, width: f64, dash: &str| {
        let pts: Vec<String> = points
            .iter()
            .map(|(s, v)| format!("{:.1},{:.1}", x(*s), y(*v)))
            .collect();
        format!(
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"{width}\" stroke-dasharray=\"{dash}\" points=\"{}\"/>\n",
            pts.join(" ")
        )
    };
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"{W}\" height=\"{H}\" fill=\"white\"/>\n"
    );
    // Axes and grid.
    for v in (0..=max as u32).step_by(20) {
        let yy = y(f64::from(v));
        out.push_str(&format!(
            "<line x1=\"{PAD}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{v}</text>\n",
            W - PAD,
            PAD - 6.0,
            yy + 4.0
        ));
    }
    for minute in (0..=seconds / 60).step_by(5) {
        let xx = x(minute * 60);
        out.push_str(&format!(
            "<text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{minute} min</text>\n",
            H - PAD + 18.0
        ));
    }
    if let Some(first) = outcomes.first() {
        let capacity = first.trace.iter().map(|s| (s.second, s.capacity)).collect();
        out.push_str(&line(capacity, "#888", 3.0, "6 4"));
    }
    let colours = ["#e07b00", "#c0392b", "#1f5fbf"];
    for (o, colour) in outcomes.iter().zip(colours.iter().cycle()) {
        let running = o.trace.iter().map(|s| (s.second, s.running)).collect();
        out.push_str(&line(running, colour, 1.6, "none"));
    }
    // Legend.
    let mut legend = vec![("capacity (hidden)", "#888")];
    legend.extend(outcomes.iter().map(|o| o.policy).zip(colours));
    for (i, (name, colour)) in legend.iter().enumerate() {
        let lx = PAD + 10.0 + i as f64 * 170.0;
        out.push_str(&format!(
            "<rect x=\"{lx:.1}\" y=\"12\" width=\"14\" height=\"4\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"18\">{name}</text>\n",
            lx + 18.0
        ));
    }
    out.push_str(&format!(
        "<text x=\"14\" y=\"{:.1}\" transform=\"rotate(-90 14 {:.1})\" text-anchor=\"middle\">successful requests running</text>\n</svg>\n",
        H / 2.0,
        H / 2.0
    ));
    out
}

/// SplitMix64: a small, well-known generator, enough for reproducible simulation noise.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A log-normal duration around `mean` (sigma 0.3), at least one second.
    fn duration(&mut self, mean: f64) -> f64 {
        let (u1, u2) = (self.unit().max(1e-12), self.unit());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        (mean * (0.3 * z - 0.045).exp()).max(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_all(seed: u64) -> Vec<Outcome> {
        let scenario = Scenario::step_outage_recovery(seed);
        policies().iter().map(|p| simulate(&scenario, p)).collect()
    }

    /// The targets for the adaptive policy, on several seeds.
    #[test]
    fn adaptive_meets_the_goodput_overshoot_and_recovery_targets() {
        for seed in [1, 2, 3, 42, 2026] {
            let outcomes = run_all(seed);
            let adaptive = &outcomes[2];
            assert!(
                adaptive.goodput >= 0.90,
                "seed {seed}: goodput {:.3}\n{}",
                adaptive.goodput,
                table(&outcomes)
            );
            assert!(
                adaptive.beyond_capacity <= 0.02,
                "seed {seed}: beyond {:.4}\n{}",
                adaptive.beyond_capacity,
                table(&outcomes)
            );
            let recovery = adaptive.recovery_secs.expect("recovers");
            assert!(recovery <= 120, "seed {seed}: recovery {recovery} s");
        }
    }

    #[test]
    fn the_hand_set_policies_turn_away_far_more_than_the_adaptive_one() {
        let outcomes = run_all(7);
        let (thresholds, fixed, adaptive) = (&outcomes[0], &outcomes[1], &outcomes[2]);
        assert!(
            fixed.beyond_capacity > 5.0 * adaptive.beyond_capacity,
            "{}",
            table(&outcomes)
        );
        assert!(
            thresholds.beyond_capacity > 2.0 * adaptive.beyond_capacity,
            "{}",
            table(&outcomes)
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_figures() {
        let (a, b) = (run_all(5), run_all(5));
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.requests, y.requests);
            assert_eq!(x.succeeded, y.succeeded);
            assert_eq!(x.trace, y.trace);
        }
    }

    #[test]
    fn a_fixed_maximum_below_capacity_wastes_it_and_above_it_overloads() {
        let mut scenario = Scenario::step_outage_recovery(1);
        scenario.capacity = vec![(0, 80.0)];
        scenario.wobble = 0.0;
        scenario.max_simultaneous_invocations = 40;
        let under = simulate(&scenario, &Policy::Fixed);
        assert!((under.goodput - 0.5).abs() < 0.02, "{}", under.goodput);
        assert_eq!(
            under.requests,
            under.succeeded + under.throttled + under.failed + under.running_at_end
        );
        assert_eq!(under.throttled + under.failed, 0);
        scenario.max_simultaneous_invocations = 100;
        let over = simulate(&scenario, &Policy::Fixed);
        assert!(over.goodput > 0.98, "{}", over.goodput);
        assert!(over.beyond_capacity > 0.5, "{}", over.beyond_capacity);
    }

    #[test]
    fn the_plot_has_one_line_per_policy_and_the_capacity() {
        let outcomes = run_all(1);
        let plot = svg(&outcomes, 3_000, 100.0);
        assert_eq!(plot.matches("<polyline").count(), 4);
        assert!(plot.starts_with("<svg") && plot.trim_end().ends_with("</svg>"));
    }
}
