//! Property tests: isolation covers the cartesian product exactly once, and no JSON makes parsing or
//! chunking panic.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use serde_json::{Map, Value, json};

use super::{Chunker, Job, JobSchema, PeriodRegistry};
use crate::error::Error;

const ATTRS: [&str; 3] = ["section", "store", "product"];

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 25).expect("a valid date")
}

// ---- Isolation coverage ----

/// Where a level's flag sits: in the root job, or in every object holding that level's values.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Place {
    Root,
    Nested,
}

#[derive(Debug, Clone)]
struct LevelSpec {
    names: Vec<String>,
    isolate: Option<(Place, Value)>,
    max_per_batch: Option<(Place, usize)>,
}

#[derive(Debug, Clone)]
struct IsolatingJob {
    levels: Vec<LevelSpec>,
    last_as_list: bool,
    period: Option<(u32, bool)>,
}

fn level_spec(level: usize) -> impl Strategy<Value = LevelSpec> {
    let prefix = ["s", "t", "p"][level];
    let place = if level == 0 {
        Just(Place::Root).boxed()
    } else {
        prop_oneof![Just(Place::Root), Just(Place::Nested)].boxed()
    };
    let truthy = select(vec![json!(true), json!(1), json!("yes"), json!("False")]);
    (
        subsequence((0..6).collect::<Vec<_>>(), 1..=4).prop_shuffle(),
        proptest::option::weighted(0.5, (place.clone(), truthy)),
        proptest::option::weighted(0.3, (place, 1usize..=4)),
    )
        .prop_map(move |(ids, isolate, max_per_batch)| LevelSpec {
            names: ids.into_iter().map(|i| format!("{prefix}{i}")).collect(),
            isolate,
            max_per_batch,
        })
}

fn isolating_job() -> impl Strategy<Value = IsolatingJob> {
    (1usize..=3)
        .prop_flat_map(|n| {
            (
                (0..n).map(level_spec).collect::<Vec<_>>(),
                any::<bool>(),
                proptest::option::of((1u32..=3, any::<bool>())),
            )
        })
        .prop_map(|(levels, last_as_list, period)| IsolatingJob {
            levels,
            last_as_list,
            period,
        })
}

impl IsolatingJob {
    fn flags_at(&self, level: usize, place: Place) -> Map<String, Value> {
        let mut flags = Map::new();
        for (i, spec) in self.levels.iter().enumerate() {
            let hosts = |p: Place| match p {
                Place::Root => place == Place::Root,
                Place::Nested => place == Place::Nested && i == level,
            };
            if let Some((p, value)) = &spec.isolate
                && hosts(*p)
            {
                flags.insert(format!("isolate_{}s", ATTRS[i]), value.clone());
            }
            if let Some((p, size)) = spec.max_per_batch
                && hosts(p)
            {
                flags.insert(format!("max_{}s_per_batch", ATTRS[i]), json!(size));
            }
        }
        flags
    }

    /// The object holding level `level`'s values (and that level's nested flags).
    fn holder(&self, level: usize) -> Map<String, Value> {
        let mut object = if level == 0 {
            self.flags_at(0, Place::Root)
        } else {
            self.flags_at(level, Place::Nested)
        };
        object.insert(format!("{}s", ATTRS[level]), self.values(level));
        object
    }

    fn values(&self, level: usize) -> Value {
        let names = &self.levels[level].names;
        if level + 1 < self.levels.len() {
            let object = names
                .iter()
                .map(|n| (n.clone(), Value::Object(self.holder(level + 1))));
            Value::Object(object.collect())
        } else if self.last_as_list {
            Value::Array(names.iter().map(|n| json!(n)).collect())
        } else {
            Value::Object(names.iter().map(|n| (n.clone(), Value::Null)).collect())
        }
    }

    fn job(&self) -> Map<String, Value> {
        let mut job = self.holder(0);
        if let Some((days, isolate)) = self.period {
            job.insert("period".into(), json!(format!("last_{days}_days")));
            job.insert("isolate_days".into(), json!(isolate));
        }
        job
    }

    /// The deepest level with an isolation flag or a batch size, if any.
    fn deepest_flagged(&self) -> Option<usize> {
        self.levels
            .iter()
            .rposition(|l| l.isolate.is_some() || l.max_per_batch.is_some())
    }

    fn dates(&self) -> Vec<Value> {
        let periods = PeriodRegistry::default();
        let days = self.period.map_or(0, |(days, _)| days);
        let dates = periods
            .date_strings(&format!("last_{days}_days"), today())
            .expect("a valid period");
        dates.into_iter().map(Value::String).collect()
    }
}

/// Every combination a task stands for: its date (when days are isolated) and one value per chunked level.
fn combinations(task: &Map<String, Value>, levels: usize, with_date: bool) -> Vec<Vec<Value>> {
    let mut combos: Vec<Vec<Value>> = vec![Vec::new()];
    let date_dim = with_date.then(|| task.get("date_list").cloned().unwrap_or(Value::Null));
    let dims = date_dim.into_iter().chain(
        ATTRS[..levels]
            .iter()
            .map(|a| task.get(&format!("{a}s")).cloned().unwrap_or(Value::Null)),
    );
    for dim in dims {
        let values = dim.as_array().cloned().unwrap_or_default();
        combos = combos
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push(v.clone());
                    next
                })
            })
            .collect();
    }
    combos
}

fn expected_combinations(job: &IsolatingJob, levels: usize, with_date: bool) -> Vec<Vec<Value>> {
    let date_dim = with_date.then(|| job.dates());
    let dims = date_dim.into_iter().chain(
        job.levels[..levels]
            .iter()
            .map(|l| l.names.iter().map(|n| json!(n)).collect()),
    );
    let mut combos: Vec<Vec<Value>> = vec![Vec::new()];
    for values in dims {
        combos = combos
            .into_iter()
            .flat_map(|prefix| {
                values.iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push(v.clone());
                    next
                })
            })
            .collect();
    }
    combos
}

/// Every string and key anywhere in `value`.
fn words(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| words(v, out)),
        Value::Object(object) => {
            for (k, v) in object {
                out.push(k.clone());
                words(v, out);
            }
        }
        _ => {}
    }
}

fn check_isolating_job(spec: &IsolatingJob) -> Result<(), TestCaseError> {
    let attrs = &ATTRS[..spec.levels.len()];
    let schema = JobSchema::new(attrs.iter().copied()).expect("a valid schema");
    let periods = PeriodRegistry::default();
    let tasks = Chunker::new(&schema, &periods)
        .chunk_body("L", &spec.job(), today())
        .map_err(|e| TestCaseError::fail(format!("chunking failed: {e}")))?;

    let isolate_days = spec.period.is_some_and(|(_, isolate)| isolate);
    let chunked = spec.deepest_flagged().map_or(0, |k| k + 1);
    let mut covered: BTreeMap<String, usize> = BTreeMap::new();
    for task in &tasks {
        for combo in combinations(task, chunked, isolate_days) {
            *covered.entry(Value::Array(combo).to_string()).or_default() += 1;
        }
        // Above the deepest flagged level every task holds one value; at the last level at most a batch.
        for (level, spec_level) in spec.levels[..chunked].iter().enumerate() {
            let len = task
                .get(&format!("{}s", ATTRS[level]))
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let last = level + 1 == spec.levels.len();
            let limit = if last {
                spec_level.max_per_batch.map_or(1, |(_, b)| b)
            } else {
                1
            };
            prop_assert!(
                len >= 1 && len <= limit,
                "level {level} holds {len} values: {task:?}"
            );
        }
    }
    let expected = expected_combinations(spec, chunked, isolate_days);
    prop_assert_eq!(covered.len(), expected.len(), "tasks: {:?}", tasks);
    for combo in expected {
        let key = Value::Array(combo).to_string();
        prop_assert_eq!(covered.get(&key), Some(&1), "{} in {:?}", key, tasks);
    }

    let mut seen = Vec::new();
    tasks
        .iter()
        .for_each(|t| words(&Value::Object(t.clone()), &mut seen));
    for name in spec.levels.iter().flat_map(|l| &l.names) {
        prop_assert!(seen.contains(name), "{name} is in no task: {tasks:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn isolation_covers_the_cartesian_product_exactly_once(spec in isolating_job()) {
        check_isolating_job(&spec)?;
    }
}

// ---- No panics on any JSON ----

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(vec![
            "sections", "section", "stores", "store", "products", "isolate_sections", "isolate_section",
            "isolate_stores", "isolate_products", "max_sections_per_batch", "max_stores_per_batch",
            "max_products_per_batch", "max_section_per_batch", "period", "isolate_days", "lambda_name",
            "labourer_id", "job", "job_id", "job_schema_name", "date_list", "s1", "s2", "a",
        ])
        .prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-3i64..5).prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        select(vec![
            "last_2_days",
            "today",
            "last_week",
            "3_days_back",
            "previous_1_days",
            "last_0_days",
            "last_99999_days",
            "w",
            "arn:aws:lambda:r:1:function:w",
            "",
            "2",
            "True",
            "{\"lambda_name\": \"w\"}",
        ])
        .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(6, 96, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..6)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

fn chunk_anything(body: &Map<String, Value>) -> Result<(), TestCaseError> {
    let schema = JobSchema::new(ATTRS).expect("a valid schema");
    let periods = PeriodRegistry::default();
    let chunker = Chunker::new(&schema, &periods).with_max_tasks(10_000);
    match chunker.chunk_body("w", body, today()) {
        Ok(tasks) => {
            for task in &tasks {
                prop_assert_eq!(task.get("labourer_id"), Some(&json!("w")));
            }
        }
        Err(Error::InvalidJob { path, message }) => {
            prop_assert!(!path.is_empty() && !message.is_empty());
        }
        Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn parsing_and_chunking_never_panic_on_any_json(value in any_json()) {
        for event in [value.clone(), Value::String(value.to_string())] {
            match Job::from_event(&event) {
                Ok(job) => chunk_anything(job.body())?,
                Err(Error::InvalidJob { path, .. }) => prop_assert!(!path.is_empty()),
                Err(other) => prop_assert!(false, "unexpected error kind: {other}"),
            }
        }
        if let Value::Object(body) = &value {
            chunk_anything(body)?;
        }
    }

    #[test]
    fn schemas_from_any_json_never_panic(value in any_json()) {
        for config in [value.clone(), json!({"chunkable_attrs": value})] {
            match JobSchema::from_config(&config) {
                Ok(schema) => prop_assert!(schema.chunkable_attrs().iter().all(|a| !a.ends_with('s'))),
                Err(err) => prop_assert!(matches!(err, Error::Invalid { what: "job schema", .. }), "{err}"),
            }
        }
    }

    #[test]
    fn periods_never_panic(period in any::<String>(), days in any::<i32>()) {
        let periods = PeriodRegistry::default();
        let today = NaiveDate::from_num_days_from_ce_opt(days).unwrap_or(NaiveDate::MIN);
        let n = days.unsigned_abs().to_string();
        let candidates = ["last_N_days", "N_days_back", "previous_N_days", "last_week", "yesterday"]
            .map(|pattern| pattern.replace('N', &n));
        for candidate in std::iter::once(period).chain(candidates) {
            match periods.dates(&candidate, today) {
                Ok(dates) => prop_assert!(dates.len() <= super::MAX_PERIOD_DAYS as usize),
                Err(err) => prop_assert!(matches!(err, Error::InvalidJob { .. }), "{err}"),
            }
        }
    }
}
