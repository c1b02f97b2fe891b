//! How long a task waits before it runs again: the delay of a [`RetryPolicy`].
//!
//! * [`RetryPolicy::Exponential`] (the default): full jitter, `random(0, min(cap, base * 2^(attempts-1)))`
//!   seconds. Spreading retries uniformly over the whole window is what keeps a burst of failures (a
//!   dependency down for a minute) from coming back as the same burst.
//! * [`RetryPolicy::Linear`]: sosw 0.7's Scavenger, `worker timeout * attempts` seconds, no jitter.
//!
//! The randomness comes from a [`Jitter`] the caller owns, so tests seed it and check exact delays.

use std::time::{SystemTime, UNIX_EPOCH};

use super::greenfield::DEFAULT_DURATION;
use super::{Labourer, RetryPolicy};

/// A small, seedable source of uniform random numbers for retry jitter (SplitMix64).
///
/// Not for cryptography: it only has to spread retries. Seed it with [`Jitter::seeded`] in tests and
/// [`Jitter::from_entropy`] in production.
#[derive(Debug, Clone)]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// A generator that always yields the same sequence for the same seed.
    pub fn seeded(seed: u64) -> Self {
        Jitter { state: seed }
    }

    /// A generator seeded from the clock and the process id, different in every container.
    pub fn from_entropy() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        Jitter::seeded(nanos ^ (u64::from(std::process::id()) << 32))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform value in `0..=max`.
    pub fn up_to(&mut self, max: u64) -> u64 {
        if max == u64::MAX {
            return self.next_u64();
        }
        // Multiply-shift maps 64 random bits onto the range without the skew of a plain modulo.
        ((u128::from(self.next_u64()) * (u128::from(max) + 1)) >> 64) as u64
    }
}

impl RetryPolicy {
    /// The largest delay this policy can give after `attempts` invocations of a task whose worker has
    /// a timeout of `timeout_secs`. `attempts` below 1 counts as 1.
    pub fn max_delay_secs(&self, attempts: u32, timeout_secs: u64) -> u64 {
        let attempts = attempts.max(1);
        match *self {
            RetryPolicy::Exponential {
                base_secs,
                cap_secs,
            } => {
                // 2^(attempts-1), saturating long before it could overflow the multiplication.
                let factor = 1u64.checked_shl(attempts - 1).unwrap_or(u64::MAX);
                base_secs.saturating_mul(factor).min(cap_secs)
            }
            RetryPolicy::Linear => timeout_secs.saturating_mul(u64::from(attempts)),
        }
    }

    /// The delay before the next run of a task that has been invoked `attempts` times, for a worker with
    /// a timeout of `timeout_secs`: uniform in `0..=max_delay_secs` for the exponential policy, exactly
    /// `max_delay_secs` for the linear one.
    pub fn delay_secs(&self, attempts: u32, timeout_secs: u64, jitter: &mut Jitter) -> u64 {
        let max = self.max_delay_secs(attempts, timeout_secs);
        match self {
            RetryPolicy::Exponential { .. } => jitter.up_to(max),
            RetryPolicy::Linear => max,
        }
    }
}

/// The worker timeout the linear policy multiplies: the labourer's real timeout (`max_duration`), else
/// its configured `duration`, else 900 s (sosw 0.7 used the Lambda timeout).
pub fn worker_timeout_secs(labourer: &Labourer) -> u64 {
    labourer
        .max_duration
        .or(labourer.duration)
        .unwrap_or(DEFAULT_DURATION)
}

/// When a task of `labourer` that has been invoked `attempts` times should run again, if it failed or
/// expired at `now` (Unix seconds): `now` plus the labourer's retry delay.
pub fn desired_launch_time(
    labourer: &Labourer,
    attempts: u32,
    now: i64,
    jitter: &mut Jitter,
) -> i64 {
    let delay = labourer
        .retry_policy()
        .delay_secs(attempts, worker_timeout_secs(labourer), jitter);
    now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exponential(base_secs: u64, cap_secs: u64) -> RetryPolicy {
        RetryPolicy::Exponential {
            base_secs,
            cap_secs,
        }
    }

    #[test]
    fn exponential_window_doubles_per_attempt_up_to_the_cap() {
        let p = exponential(30, 200);
        let windows: Vec<u64> = (1..=5).map(|a| p.max_delay_secs(a, 900)).collect();
        assert_eq!(windows, [30, 60, 120, 200, 200]);
        assert_eq!(p.max_delay_secs(0, 900), 30, "no attempts counts as one");
        assert_eq!(p.max_delay_secs(u32::MAX, 900), 200, "no overflow");
    }

    #[test]
    fn linear_is_sosw_07s_timeout_times_attempts() {
        let mut jitter = Jitter::seeded(1);
        assert_eq!(RetryPolicy::Linear.delay_secs(1, 900, &mut jitter), 900);
        assert_eq!(RetryPolicy::Linear.delay_secs(2, 60, &mut jitter), 120);
        assert_eq!(RetryPolicy::Linear.delay_secs(3, 60, &mut jitter), 180);
    }

    #[test]
    fn full_jitter_stays_in_the_window_and_spreads_over_it() {
        let p = exponential(30, 3600);
        let mut jitter = Jitter::seeded(7);
        let delays: Vec<u64> = (0..2000)
            .map(|_| p.delay_secs(3, 900, &mut jitter))
            .collect();
        assert!(
            delays.iter().all(|&d| d <= 120),
            "window for attempt 3 is 120 s"
        );
        assert!(
            delays.contains(&0) && delays.contains(&120),
            "both ends reachable"
        );
        let mean = delays.iter().sum::<u64>() as f64 / delays.len() as f64;
        assert!(
            (50.0..70.0).contains(&mean),
            "uniform mean near 60, got {mean}"
        );
    }

    #[test]
    fn a_seed_fixes_the_sequence() {
        let p = RetryPolicy::default();
        let draw = |seed| {
            let mut j = Jitter::seeded(seed);
            (1..=6)
                .map(|a| p.delay_secs(a, 900, &mut j))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(42), draw(42));
        assert_ne!(draw(42), draw(43));
    }

    #[test]
    fn desired_launch_time_uses_the_labourers_policy_and_timeout() {
        let mut lab = Labourer::new("w");
        lab.retry = Some(RetryPolicy::Linear);
        lab.max_duration = Some(60);
        lab.duration = Some(30);
        let mut jitter = Jitter::seeded(0);
        assert_eq!(
            desired_launch_time(&lab, 2, 1_000, &mut jitter),
            1_120,
            "the real timeout wins"
        );
        lab.max_duration = None;
        assert_eq!(desired_launch_time(&lab, 2, 1_000, &mut jitter), 1_060);
        lab.duration = None;
        assert_eq!(desired_launch_time(&lab, 1, 1_000, &mut jitter), 1_900);
    }

    #[test]
    fn up_to_covers_edge_ranges() {
        let mut j = Jitter::seeded(3);
        assert_eq!(j.up_to(0), 0);
        assert!((0..100).all(|_| j.up_to(1) <= 1));
        let _ = j.up_to(u64::MAX);
    }
}
