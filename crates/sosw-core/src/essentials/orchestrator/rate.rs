//! Per-labourer rate limits, counted in memory by one orchestrator across its runs.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::task::RateLimit;

/// Invocation times per labourer, in milliseconds, kept for the longest configured period.
#[derive(Debug, Default)]
pub(super) struct RateLimiter {
    sent: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl RateLimiter {
    /// How many of `wanted` invocations `limit` allows for `labourer_id` at `now_ms`.
    pub(super) fn allowance(
        &self,
        labourer_id: &str,
        limit: Option<RateLimit>,
        now_ms: i64,
        wanted: u64,
    ) -> u64 {
        let Some(limit) = limit else {
            return wanted;
        };
        let mut sent = self.lock();
        let times = sent.entry(labourer_id.to_string()).or_default();
        let window_start = now_ms.saturating_sub(period_ms(limit));
        while times.front().is_some_and(|t| *t <= window_start) {
            times.pop_front();
        }
        let used = times.len() as u64;
        wanted.min(u64::from(limit.tasks).saturating_sub(used))
    }

    /// Counts `count` invocations of `labourer_id` at `now_ms`, if it has a limit.
    pub(super) fn record(
        &self,
        labourer_id: &str,
        limit: Option<RateLimit>,
        now_ms: i64,
        count: u64,
    ) {
        if limit.is_none() || count == 0 {
            return;
        }
        let mut sent = self.lock();
        let times = sent.entry(labourer_id.to_string()).or_default();
        times.extend(std::iter::repeat_n(now_ms, count as usize));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, VecDeque<i64>>> {
        // Every update leaves the map consistent, so a poisoned lock is still usable.
        self.sent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn period_ms(limit: RateLimit) -> i64 {
    i64::try_from(limit.period_secs)
        .unwrap_or(i64::MAX)
        .saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_slides() {
        let limiter = RateLimiter::default();
        let limit = Some(RateLimit {
            tasks: 5,
            period_secs: 10,
        });
        assert_eq!(limiter.allowance("w", limit, 0, 100), 5);
        limiter.record("w", limit, 0, 3);
        assert_eq!(limiter.allowance("w", limit, 5_000, 100), 2);
        limiter.record("w", limit, 5_000, 2);
        assert_eq!(limiter.allowance("w", limit, 9_999, 100), 0);
        assert_eq!(
            limiter.allowance("w", limit, 10_000, 100),
            3,
            "the first 3 left the window"
        );
        assert_eq!(limiter.allowance("w", limit, 15_000, 1), 1);
        assert_eq!(limiter.allowance("other", limit, 0, 4), 4);
        assert_eq!(limiter.allowance("w", None, 0, 7), 7, "no limit");
    }
}
