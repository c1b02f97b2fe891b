//! The `Clock` port: every essential asks it for "now", so tests and simulations can pin time.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeZone, Utc};

/// Where an essential gets the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// The current time in whole Unix seconds, the unit of greenfields and `completed_at`.
    fn now_secs(&self) -> i64 {
        self.now().timestamp()
    }

    /// The current time in fractional Unix seconds, the unit of sosw 0.7's `created_at`.
    fn now_f64(&self) -> f64 {
        let now = self.now();
        now.timestamp() as f64 + f64::from(now.timestamp_subsec_micros()) / 1e6
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to: for tests and the virtual-time simulation.
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicI64,
}

impl ManualClock {
    /// A clock stopped at `secs` Unix seconds.
    pub fn at_secs(secs: i64) -> Self {
        ManualClock {
            millis: AtomicI64::new(secs.saturating_mul(1000)),
        }
    }

    /// Moves the clock forward (or back, with a negative value) by `secs` seconds.
    pub fn advance_secs(&self, secs: i64) {
        self.millis
            .fetch_add(secs.saturating_mul(1000), Ordering::SeqCst);
    }

    /// Moves the clock by `millis` milliseconds.
    pub fn advance_millis(&self, millis: i64) {
        self.millis.fetch_add(millis, Ordering::SeqCst);
    }

    /// Sets the clock to `secs` Unix seconds.
    pub fn set_secs(&self, secs: i64) {
        self.millis
            .store(secs.saturating_mul(1000), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        let millis = self.millis.load(Ordering::SeqCst);
        Utc.timestamp_millis_opt(millis)
            .single()
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::at_secs(1_700_000_000);
        assert_eq!(clock.now_secs(), 1_700_000_000);
        clock.advance_millis(1500);
        assert_eq!(clock.now_secs(), 1_700_000_001);
        assert!((clock.now_f64() - 1_700_000_001.5).abs() < 1e-6);
        clock.set_secs(5);
        assert_eq!(clock.now_secs(), 5);
    }
}
