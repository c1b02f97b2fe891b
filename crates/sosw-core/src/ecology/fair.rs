//! Per-key fairness: a labourer's free slots shared among the keys with queued work.
//!
//! A job schema may name a key taken from each task's payload (a tenant, a customer, an API account).
//! Without it a labourer's queue is one line in greenfield order, and one key's 100,000-task backlog
//! submitted first makes every other key wait for all of it. With it, each round the orchestrator asks
//! [`fair_starts`] how many tasks of each key to start: the labourer's limit is divided max-min fairly
//! (water-filling) among the keys that have work, each key's share capped by its demand (what it has
//! running plus queued) and by the optional per-key cap, and a key gets the part of its share it is not
//! already using.

use std::collections::BTreeMap;

/// One key's position in a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyLoad {
    /// Its tasks running now.
    pub running: u64,
    /// Its tasks queued (available to start now).
    pub queued: u64,
}

/// How many tasks of each key to start now, so that running tasks approach a max-min fair share of
/// `limit` among the keys in `loads`, with at most `per_key_cap` running per key. Keys with nothing to
/// start are left out. The total started never exceeds `limit` minus everything running.
///
/// Max-min fair: no key can get more without taking from a key that has less. Shares are whole slots;
/// the slots left after the equal division go to the keys with the least running first, then in key
/// order, so the result is deterministic.
pub fn fair_starts(
    loads: &BTreeMap<String, KeyLoad>,
    limit: u64,
    per_key_cap: Option<u64>,
) -> BTreeMap<String, u64> {
    let running_total: u64 = loads.values().map(|l| l.running).sum();
    let mut free = limit.saturating_sub(running_total);
    let cap = per_key_cap.unwrap_or(u64::MAX);
    // Each key's target, starting from what it already runs (never taken away: running tasks finish).
    let mut target: BTreeMap<&str, u64> =
        loads.iter().map(|(k, l)| (k.as_str(), l.running)).collect();
    let demand = |key: &str| {
        let l = loads[key];
        (l.running + l.queued).min(cap.max(l.running))
    };
    // Water-filling one level at a time: raise the lowest targets together.
    while free > 0 {
        let hungry: Vec<&str> = target
            .iter()
            .filter(|(k, t)| **t < demand(k))
            .map(|(k, _)| *k)
            .collect();
        if hungry.is_empty() {
            break;
        }
        let level = hungry.iter().map(|k| target[k]).min().unwrap_or(0);
        let mut lowest: Vec<&str> = hungry
            .iter()
            .copied()
            .filter(|k| target[k] == level)
            .collect();
        // How far the lowest can rise together: to the next level, or to the smallest demand among them.
        let next_level = hungry
            .iter()
            .map(|k| target[k])
            .filter(|t| *t > level)
            .min()
            .unwrap_or(u64::MAX);
        let ceiling = lowest
            .iter()
            .map(|k| demand(k))
            .min()
            .unwrap_or(level)
            .min(next_level);
        let rise = ceiling - level;
        let n = lowest.len() as u64;
        if rise.saturating_mul(n) <= free {
            for k in &lowest {
                *target.get_mut(k).expect("a key of the map") += rise;
            }
            free -= rise * n;
        } else {
            // Not enough for everyone at this level: equal whole parts, then one each in key order.
            let each = free / n;
            let mut rest = free % n;
            lowest.sort_unstable();
            for k in &lowest {
                let extra = u64::from(rest > 0);
                rest -= extra;
                *target.get_mut(k).expect("a key of the map") += each + extra;
            }
            free = 0;
        }
    }
    target
        .into_iter()
        .filter_map(|(k, t)| {
            let start = t.saturating_sub(loads[k].running);
            (start > 0).then(|| (k.to_string(), start))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loads(entries: &[(&str, u64, u64)]) -> BTreeMap<String, KeyLoad> {
        entries
            .iter()
            .map(|(k, running, queued)| {
                (
                    k.to_string(),
                    KeyLoad {
                        running: *running,
                        queued: *queued,
                    },
                )
            })
            .collect()
    }

    fn starts(result: &BTreeMap<String, u64>) -> Vec<(&str, u64)> {
        result.iter().map(|(k, n)| (k.as_str(), *n)).collect()
    }

    #[test]
    fn equal_shares_when_every_key_has_plenty() {
        let result = fair_starts(
            &loads(&[("a", 0, 1000), ("b", 0, 1000), ("c", 0, 1000)]),
            9,
            None,
        );
        assert_eq!(starts(&result), [("a", 3), ("b", 3), ("c", 3)]);
    }

    #[test]
    fn a_small_key_takes_only_its_demand_and_the_rest_goes_to_the_others() {
        let result = fair_starts(&loads(&[("hot", 0, 100_000), ("small", 0, 2)]), 10, None);
        assert_eq!(starts(&result), [("hot", 8), ("small", 2)]);
    }

    #[test]
    fn running_tasks_count_towards_the_share_and_are_never_taken_away() {
        // The hot key already runs 8 of 10: the new key gets the 2 free slots, not a share of 5.
        let result = fair_starts(&loads(&[("hot", 8, 100), ("new", 0, 100)]), 10, None);
        assert_eq!(starts(&result), [("new", 2)]);
        // A full labourer starts nothing.
        assert!(fair_starts(&loads(&[("hot", 10, 100), ("new", 0, 5)]), 10, None).is_empty());
    }

    #[test]
    fn the_per_key_cap_holds_even_with_free_slots() {
        let result = fair_starts(&loads(&[("a", 1, 100), ("b", 0, 100)]), 20, Some(3));
        assert_eq!(starts(&result), [("a", 2), ("b", 3)]);
    }

    #[test]
    fn leftover_slots_go_in_key_order_and_the_total_never_exceeds_the_free_slots() {
        let result = fair_starts(&loads(&[("a", 0, 10), ("b", 0, 10), ("c", 0, 10)]), 7, None);
        assert_eq!(starts(&result), [("a", 3), ("b", 2), ("c", 2)]);
        for limit in 0..40 {
            let l = loads(&[("a", 2, 7), ("b", 0, 1), ("c", 5, 30), ("d", 0, 0)]);
            let total: u64 = fair_starts(&l, limit, Some(9)).values().sum();
            assert!(total <= limit.saturating_sub(7), "limit {limit}: {total}");
        }
    }

    /// The fairness target on a virtual clock: one key with 100,000 tasks and ten keys with 100
    /// each, submitted together (the hot key first), 20 slots, tasks of one tick. Every small key must
    /// finish within the first 5% of the time the hot key's backlog takes. In greenfield order (one line)
    /// they would finish only after the hot key's last task.
    #[test]
    fn small_keys_finish_within_the_first_five_percent_of_the_hot_keys_backlog() {
        let mut queued: BTreeMap<String, u64> = BTreeMap::new();
        queued.insert("hot".into(), 100_000);
        for i in 0..10 {
            queued.insert(format!("small-{i}"), 100);
        }
        let limit = 20;
        let mut tick = 0u64;
        let mut small_done_at = 0u64;
        while queued.values().any(|q| *q > 0) {
            tick += 1;
            let l: BTreeMap<String, KeyLoad> = queued
                .iter()
                .filter(|(_, q)| **q > 0)
                .map(|(k, q)| {
                    (
                        k.clone(),
                        KeyLoad {
                            running: 0,
                            queued: *q,
                        },
                    )
                })
                .collect();
            let started = fair_starts(&l, limit, None);
            assert_eq!(
                started.values().sum::<u64>(),
                limit.min(l.values().map(|x| x.queued).sum())
            );
            for (k, n) in started {
                *queued.get_mut(&k).expect("a queued key") -= n;
            }
            if small_done_at == 0 && queued.iter().all(|(k, q)| k == "hot" || *q == 0) {
                small_done_at = tick;
            }
        }
        let share = small_done_at as f64 / tick as f64;
        assert!(
            share <= 0.05,
            "small keys done at tick {small_done_at} of {tick} ({share:.4})"
        );
    }
}
