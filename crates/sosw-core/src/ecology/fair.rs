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
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The key of a task whose payload lacks the fairness key's field (or holds `null` there): those tasks
/// share one key, the empty string, and get a fair share together like any other key.
pub const DEFAULT_KEY: &str = "";

/// A labourer's per-key fairness setting (`task_config.labourers.<id>.fairness`):
/// `{"key": "account.id", "max_per_key": 5}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fairness {
    /// Where each task's key is in its payload: field names separated by dots.
    pub key: FairnessKey,
    /// At most this many tasks of one key run at once (default: no cap but the labourer's limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_key: Option<MaxPerKey>,
}

impl Fairness {
    /// The cap per key, if any.
    pub fn cap(&self) -> Option<u64> {
        self.max_per_key.map(|m| u64::from(m.0))
    }
}

/// A per-key cap: at least 1 (a cap of 0 would start nothing; pause the labourer for that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct MaxPerKey(u32);

impl TryFrom<u32> for MaxPerKey {
    type Error = String;

    fn try_from(n: u32) -> Result<Self, Self::Error> {
        if n == 0 {
            return Err(
                "`fairness.max_per_key` must be at least 1 (a cap of 0 would start no task; \
                        set `max_simultaneous_invocations: 0` to pause a labourer)"
                    .into(),
            );
        }
        Ok(MaxPerKey(n))
    }
}

impl From<MaxPerKey> for u32 {
    fn from(m: MaxPerKey) -> u32 {
        m.0
    }
}

/// A field path into a task's payload, e.g. `tenant` or `account.id`: non-empty field names separated
/// by dots. Parsed when the config is read; a path that is empty, has an empty field name (`a..b`,
/// `.a`) or a control character is refused there, naming it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FairnessKey {
    path: String,
    fields: Vec<String>,
}

impl TryFrom<String> for FairnessKey {
    type Error = String;

    fn try_from(path: String) -> Result<Self, Self::Error> {
        let fields: Vec<String> = path.split('.').map(str::to_owned).collect();
        if path.chars().any(char::is_control) || fields.iter().any(String::is_empty) {
            return Err(format!(
                "`fairness.key` {path:?} is not a field path: field names separated by dots, none \
                 empty (e.g. \"tenant\" or \"account.id\")"
            ));
        }
        Ok(FairnessKey { path, fields })
    }
}

impl From<FairnessKey> for String {
    fn from(k: FairnessKey) -> String {
        k.path
    }
}

impl fmt::Display for FairnessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path)
    }
}

impl FairnessKey {
    /// The path as configured.
    pub fn as_str(&self) -> &str {
        &self.path
    }

    /// The key of a task with `payload`: the value at the path, a string as it is and any other value
    /// as its JSON text (`42`, `true`, `{"a":1}`); [`DEFAULT_KEY`] when a field on the way is missing,
    /// the payload is not an object there, or the value is `null`. Never fails: a task without a key
    /// still runs, in the default key's share.
    pub fn key_of(&self, payload: &Value) -> String {
        let mut at = payload;
        for field in &self.fields {
            match at.get(field) {
                Some(next) => at = next,
                None => return DEFAULT_KEY.to_owned(),
            }
        }
        match at {
            Value::Null => DEFAULT_KEY.to_owned(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
}

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
    fn keys_are_read_from_the_payload_and_missing_ones_share_the_default_key() {
        let key: FairnessKey =
            serde_json::from_value(serde_json::json!("account.id")).expect("a path");
        let payload = serde_json::json!({"account": {"id": "acme"}, "n": 1});
        assert_eq!(key.key_of(&payload), "acme");
        assert_eq!(
            key.key_of(&serde_json::json!({"account": {"id": 42}})),
            "42"
        );
        assert_eq!(
            key.key_of(&serde_json::json!({"account": {"id": true}})),
            "true"
        );
        for keyless in [
            serde_json::json!({}),
            serde_json::json!({"account": "flat"}),
            serde_json::json!({"account": {"id": null}}),
            serde_json::json!({"account": [1, 2]}),
            serde_json::json!("text"),
        ] {
            assert_eq!(key.key_of(&keyless), DEFAULT_KEY, "{keyless}");
        }
    }

    #[test]
    fn bad_fairness_settings_are_refused_naming_the_field() {
        for (bad, names) in [
            (serde_json::json!({"key": ""}), "fairness.key"),
            (serde_json::json!({"key": "a..b"}), "fairness.key"),
            (serde_json::json!({"key": ".a"}), "fairness.key"),
            (
                serde_json::json!({"key": "a", "max_per_key": 0}),
                "max_per_key",
            ),
            (serde_json::json!({"key": "a", "cap": 3}), "cap"),
            (serde_json::json!({"max_per_key": 3}), "key"),
        ] {
            let err = serde_json::from_value::<Fairness>(bad.clone()).expect_err("refused");
            assert!(err.to_string().contains(names), "{bad}: {err}");
        }
        let ok: Fairness =
            serde_json::from_value(serde_json::json!({"key": "t", "max_per_key": 4}))
                .expect("valid");
        assert_eq!((ok.key.as_str(), ok.cap()), ("t", Some(4)));
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
