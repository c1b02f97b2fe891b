//! A rate limit every orchestrator can share: "at most `tasks` invocations in any `period`", kept as a
//! small, bounded log that fits in one store item and is updated with a conditional write.
//!
//! The orchestrator's rate limit used to be a list of invocation times in one process's memory: two
//! orchestrators, or a cold container, each allowed the full rate. Sharing it through the store needs
//! a state that stays small whatever the rate, so the log keeps at most [`SLOTS`] entries: invocations
//! are counted in slots of `period / SLOTS`, and each slot is stamped with its **end**, so an
//! invocation is remembered at least as long as it really counts (a little longer at worst). The
//! allowance is therefore never more than the exact sliding window would give: in any window of
//! `period`, at most `tasks` invocations, however many orchestrators share the log, as long as each
//! one [takes](RateLog::take) under a conditional write (read, take, write if nobody wrote since;
//! on conflict, read again).

use serde::{Deserialize, Serialize};

/// How many slots a log keeps at most.
pub const SLOTS: i64 = 60;

/// The shared log of one rate limit. Serializes to a few hundred bytes at most.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLog {
    /// `(slot end in ms, invocations counted in the slot)`, oldest first.
    pub slots: Vec<(i64, u64)>,
}

impl RateLog {
    /// Grants up to `wanted` invocations at `now_ms` under "at most `tasks` per `period_ms`" and
    /// records them. Returns how many were granted.
    pub fn take(&mut self, tasks: u64, period_ms: i64, now_ms: i64, wanted: u64) -> u64 {
        let period_ms = period_ms.max(1);
        // Forget slots whose every invocation is older than a period.
        self.slots.retain(|(end, _)| *end > now_ms - period_ms);
        let used: u64 = self.slots.iter().map(|(_, n)| n).sum();
        let granted = wanted.min(tasks.saturating_sub(used));
        if granted > 0 {
            let width = (period_ms / SLOTS).max(1);
            // The end of the slot `now_ms` falls in: remembered until a period after that end.
            let end = (now_ms.div_euclid(width) + 1) * width;
            match self.slots.last_mut() {
                Some((last, n)) if *last == end => *n += granted,
                _ => self.slots.push((end, granted)),
            }
        }
        granted
    }

    /// Takes back up to `count` invocations granted at `taken_at_ms` and never used, from the slot that
    /// grant went into (granting fewer after the fact never breaks the limit). Returns how many were
    /// taken back: none if that slot is gone (it no longer counts anyway).
    pub fn give_back(&mut self, period_ms: i64, taken_at_ms: i64, count: u64) -> u64 {
        let width = (period_ms.max(1) / SLOTS).max(1);
        let end = (taken_at_ms.div_euclid(width) + 1) * width;
        let Some(index) = self.slots.iter().position(|(e, _)| *e == end) else {
            return 0;
        };
        let slot = &mut self.slots[index];
        let back = count.min(slot.1);
        slot.1 -= back;
        if slot.1 == 0 {
            self.slots.remove(index);
        }
        back
    }

    /// Whether the log counts nothing at all.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Invocations the log counts at `now_ms` in the last `period_ms`.
    pub fn used(&self, period_ms: i64, now_ms: i64) -> u64 {
        self.slots
            .iter()
            .filter(|(end, _)| *end > now_ms - period_ms.max(1))
            .map(|(_, n)| n)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_up_to_the_limit_then_nothing_until_a_period_has_passed() {
        let mut log = RateLog::default();
        assert_eq!(log.take(10, 60_000, 0, 4), 4);
        assert_eq!(log.take(10, 60_000, 1_000, 20), 6);
        assert_eq!(log.take(10, 60_000, 59_000, 1), 0);
        // The first grants' slot ended at 1 s: they count until 61 s.
        assert_eq!(log.take(10, 60_000, 60_500, 5), 0);
        assert_eq!(log.take(10, 60_000, 61_000, 5), 4);
        assert_eq!(log.take(10, 60_000, 62_000, 5), 5);
    }

    #[test]
    fn unused_grants_given_back_are_granted_again() {
        let mut log = RateLog::default();
        assert_eq!(log.take(10, 60_000, 500, 10), 10);
        assert_eq!(log.give_back(60_000, 500, 4), 4);
        assert_eq!(log.used(60_000, 600), 6);
        assert_eq!(log.take(10, 60_000, 700, 10), 4);
        assert_eq!(
            log.give_back(60_000, 700, 50),
            10,
            "at most what the slot holds"
        );
        assert!(log.is_empty());
        assert_eq!(log.give_back(60_000, 30_000, 1), 0, "no such slot");
    }

    #[test]
    fn the_log_stays_small_whatever_the_rate() {
        let mut log = RateLog::default();
        for ms in (0..600_000).step_by(10) {
            log.take(1_000_000, 60_000, ms, 3);
        }
        assert!(log.slots.len() as i64 <= SLOTS + 1, "{}", log.slots.len());
        let json = serde_json::to_string(&log).expect("serializes");
        assert!(json.len() < 2_000, "{} bytes", json.len());
    }

    /// Several orchestrators taking from one log at random times never exceed the limit in any window
    /// of the period, checked against the exact times of every grant.
    #[test]
    fn no_window_of_the_period_ever_holds_more_than_the_limit() {
        let (tasks, period) = (50u64, 10_000i64);
        let mut log = RateLog::default();
        let mut grants: Vec<(i64, u64)> = vec![];
        let mut seed = 12345u64;
        let mut now = 0i64;
        for _ in 0..20_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            now += (seed >> 33) as i64 % 97;
            let wanted = (seed >> 20) % 7;
            let granted = log.take(tasks, period, now, wanted);
            if granted > 0 {
                grants.push((now, granted));
            }
        }
        // Every window [t, t + period) starting at a grant.
        for (i, (start, _)) in grants.iter().enumerate() {
            let in_window: u64 = grants[i..]
                .iter()
                .take_while(|(t, _)| *t < start + period)
                .map(|(_, n)| n)
                .sum();
            assert!(in_window <= tasks, "{in_window} in the window from {start}");
        }
        let total: u64 = grants.iter().map(|(_, n)| n).sum();
        // And it is not needlessly strict: over the run, near the full rate.
        let full_rate = (now as f64 / period as f64) * tasks as f64;
        assert!(total as f64 > 0.8 * full_rate, "{total} of {full_rate:.0}");
    }

    #[test]
    fn it_round_trips_through_json_as_a_store_item_holds_it() {
        let mut log = RateLog::default();
        log.take(5, 1_000, 10, 2);
        let back: RateLog = serde_json::from_str(&serde_json::to_string(&log).expect("serializes"))
            .expect("parses");
        assert_eq!(back, log);
        assert_eq!(back.used(1_000, 10), 2);
    }
}
