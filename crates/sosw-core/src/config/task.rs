//! `task_config`: sosw 0.7's TaskManager config, shared by every essential.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::divert::{self, Derived, KeyFilter};
use super::parse::key_error;
use crate::error::{Error, Result};
use crate::store::TableNames;
use crate::task::greenfield::{INVOCATION_DELTA, TASK_STEP};
use crate::task::{DEFAULT_MAX_ATTEMPTS, Labourer, Statistic};

/// Default for labourers without their own `max_simultaneous_invocations`.
///
/// sosw 0.7 had two candidates: the TaskManager's `max_simultaneous_invocations` (1), which its
/// `register_labourers` actually applied, and the Orchestrator's `default_simultaneous_invocations` (2),
/// which nothing read (bug B5). 1 keeps the behaviour of existing deployments.
pub const DEFAULT_MAX_SIMULTANEOUS_INVOCATIONS: u32 = 1;

/// Prefix of the `max_attempts_<labourer_id>` key family.
const MAX_ATTEMPTS_PREFIX: &str = "max_attempts_";

/// Keys sosw 0.7's TaskManager accepted that configure nothing here (clients are built by code, test
/// mode is not a config flag). They are accepted and ignored.
const IGNORED_KEYS: &[&str] = &[
    "init_clients",
    "test",
    "ecology_client_config",
    "lifetime_stats_params",
    "dead_sns_topic",
    "logging_level",
];

/// The task manager's config (sosw 0.7's TaskManager config, the `task_config` key of every essential).
///
/// Every key has a default, so `{}` is a valid config (with no labourers). Besides the fields below it
/// accepts:
/// * `max_attempts_<labourer_id>`: per-labourer `max_attempts` (sosw 0.7), collected into
///   [`TaskConfig::max_attempts_per_labourer`]; the labourer must be configured under `labourers`;
/// * sosw 0.7's `init_clients`, `test`, `ecology_client_config`, `lifetime_stats_params`,
///   `dead_sns_topic` and `logging_level`, ignored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields, default)]
pub struct TaskConfig {
    /// The labourers by id (`labourers`; default none). The id is the map key and is copied into
    /// [`Labourer::id`]; an `id` inside the settings must equal the key. Sorted by id.
    #[serde(deserialize_with = "labourers_by_id")]
    pub labourers: BTreeMap<String, Labourer>,

    /// The tasks table (`dynamo_db_config`).
    pub dynamo_db_config: DynamoDbConfig,

    /// Closed (archived) tasks table (`sosw_closed_tasks_table`; default `sosw_closed_tasks`).
    pub sosw_closed_tasks_table: String,

    /// GSI of the closed table on `labourer_id_task_status` + `closed_at`
    /// (`sosw_closed_tasks_labourer_status_index`; default `labourer_task_status_with_time`).
    pub sosw_closed_tasks_labourer_status_index: String,

    /// Retry table (`sosw_retry_tasks_table`; default `sosw_retry_tasks`).
    pub sosw_retry_tasks_table: String,

    /// LSI of the retry table on `desired_launch_time` (`sosw_retry_tasks_greenfield_index`; default
    /// `labourer_id_greenfield`, sosw 0.7's name).
    pub sosw_retry_tasks_greenfield_index: String,

    /// Offset added to the invocation time in `greenfield` (`greenfield_invocation_delta`). Accepted
    /// only with sosw 0.7's value, 31557600: the tables must stay readable by both implementations.
    #[serde(deserialize_with = "sosw_invocation_delta")]
    pub greenfield_invocation_delta: i64,

    /// Distance between consecutive queued greenfields (`greenfield_task_step`). Accepted only with
    /// sosw 0.7's value, 1000.
    #[serde(deserialize_with = "sosw_task_step")]
    pub greenfield_task_step: i64,

    /// Invocations allowed before a task is declared dead (`max_attempts`; default 3).
    pub max_attempts: u32,

    /// `max_attempts_<labourer_id>` keys, by labourer id (default none). A labourer's own
    /// `max_attempts` wins over this, this wins over `max_attempts`.
    #[serde(skip)]
    pub max_attempts_per_labourer: BTreeMap<String, u32>,

    /// `max_simultaneous_invocations` for labourers that set none (`max_simultaneous_invocations`;
    /// default 1, see [`DEFAULT_MAX_SIMULTANEOUS_INVOCATIONS`]).
    pub max_simultaneous_invocations: u32,

    /// How many recently closed tasks the average duration is computed from
    /// (`max_closed_to_analyse_for_duration`; default 10).
    pub max_closed_to_analyse_for_duration: u32,

    /// The ecology manager's config (`ecology_config`).
    pub ecology_config: EcologyConfig,

    /// Prefix of every table name, not of index names (`table_prefix`, new in this implementation;
    /// default empty). `autotest_` gives sosw 0.7's test tables.
    pub table_prefix: String,
}

impl Default for TaskConfig {
    fn default() -> Self {
        let names = TableNames::default();
        TaskConfig {
            labourers: BTreeMap::new(),
            dynamo_db_config: DynamoDbConfig::default(),
            sosw_closed_tasks_table: names.closed,
            sosw_closed_tasks_labourer_status_index: names.closed_status_index,
            sosw_retry_tasks_table: names.retry,
            sosw_retry_tasks_greenfield_index: names.retry_launch_index,
            greenfield_invocation_delta: INVOCATION_DELTA,
            greenfield_task_step: TASK_STEP,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            max_attempts_per_labourer: BTreeMap::new(),
            max_simultaneous_invocations: DEFAULT_MAX_SIMULTANEOUS_INVOCATIONS,
            max_closed_to_analyse_for_duration: 10,
            ecology_config: EcologyConfig::default(),
            table_prefix: String::new(),
        }
    }
}

impl TaskConfig {
    /// The table and index names: the configured names, with `table_prefix` before each table name.
    pub fn table_names(&self) -> TableNames {
        let prefixed = |name: &str| format!("{}{name}", self.table_prefix);
        TableNames {
            tasks: prefixed(&self.dynamo_db_config.table_name),
            tasks_greenfield_index: self.dynamo_db_config.index_greenfield.clone(),
            closed: prefixed(&self.sosw_closed_tasks_table),
            closed_status_index: self.sosw_closed_tasks_labourer_status_index.clone(),
            retry: prefixed(&self.sosw_retry_tasks_table),
            retry_launch_index: self.sosw_retry_tasks_greenfield_index.clone(),
            // sosw 0.7 has no job table, hence no config key for its name.
            jobs: prefixed(&TableNames::default().jobs),
            // Nor an ecology table.
            ecology: prefixed(&TableNames::default().ecology),
        }
    }

    /// The labourer `id`, resolved as by [`TaskConfig::labourers_resolved`].
    pub fn labourer(&self, id: &str) -> Result<Labourer> {
        self.labourers
            .get(id)
            .map(|settings| self.resolve(id, settings))
            .ok_or_else(|| Error::UnknownLabourer(id.to_string()))
    }

    /// The labourer `id` as [`TaskConfig::labourer`] resolves it, or, when it is not configured, a
    /// labourer with every setting at the task config's defaults (for a task whose labourer was removed
    /// from the config since it was queued).
    pub fn labourer_or_default(&self, id: &str) -> Labourer {
        let settings = self
            .labourers
            .get(id)
            .cloned()
            .unwrap_or_else(|| Labourer::new(id));
        self.resolve(id, &settings)
    }

    /// Every labourer, sorted by id, with the task config's fallbacks applied: `max_attempts` is the
    /// labourer's own, else `max_attempts_<id>`, else `max_attempts`; `max_simultaneous_invocations` is
    /// the labourer's own (0 pauses it), else the task config's.
    pub fn labourers_resolved(&self) -> Vec<Labourer> {
        self.labourers
            .iter()
            .map(|(id, settings)| self.resolve(id, settings))
            .collect()
    }

    fn resolve(&self, id: &str, settings: &Labourer) -> Labourer {
        let mut labourer = settings.clone();
        labourer.id = id.to_string();
        let per_labourer = self.max_attempts_per_labourer.get(id).copied();
        labourer.max_attempts = Some(crate::task::fate::resolve_max_attempts(
            settings.max_attempts,
            per_labourer,
            self.max_attempts,
        ));
        labourer.max_simultaneous_invocations = Some(
            settings
                .max_simultaneous_invocations
                .unwrap_or(self.max_simultaneous_invocations),
        );
        labourer
    }

    /// Every `max_attempts_<id>` must name a configured labourer: a typo would silently do nothing.
    fn check_max_attempts_labourers<E: de::Error>(&self) -> Result<(), E> {
        let unknown = self
            .max_attempts_per_labourer
            .keys()
            .find(|id| !self.labourers.contains_key(*id));
        match unknown {
            None => Ok(()),
            Some(id) => {
                let known: Vec<&str> = self.labourers.keys().map(String::as_str).collect();
                let message = format!(
                    "sets `max_attempts` for labourer `{id}`, which is not configured under \
                     `labourers` (configured: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                );
                Err(key_error(&format!("{MAX_ATTEMPTS_PREFIX}{id}"), message))
            }
        }
    }
}

impl<'de> Derived<'de> for TaskConfig {
    fn derived<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // The inherent, derived `deserialize` (remote = "Self"), not the trait method below.
        TaskConfig::deserialize(deserializer)
    }
}

impl<'de> Deserialize<'de> for TaskConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (mut config, extra) = divert::deserialize::<_, TaskConfig, _>(
            deserializer,
            TaskKeys::default(),
            "an object with task config keys",
        )?;
        config.max_attempts_per_labourer = extra.max_attempts;
        config.check_max_attempts_labourers()?;
        Ok(config)
    }
}

/// Takes the `max_attempts_<id>` family and the ignored legacy keys out of `task_config`.
#[derive(Default)]
struct TaskKeys {
    max_attempts: BTreeMap<String, u32>,
}

impl<'de> KeyFilter<'de> for TaskKeys {
    const KEYS: &'static [&'static str] = IGNORED_KEYS;

    fn take<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        if let Some(id) = key.strip_prefix(MAX_ATTEMPTS_PREFIX) {
            self.max_attempts.insert(id.to_string(), map.next_value()?);
            return Ok(true);
        }
        if IGNORED_KEYS.contains(&key) {
            map.next_value::<IgnoredAny>()?;
            return Ok(true);
        }
        Ok(false)
    }
}

/// The tasks table (sosw 0.7's `dynamo_db_config` of the TaskManager).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DynamoDbConfig {
    /// Tasks table name (`table_name`; default `sosw_tasks`).
    pub table_name: String,

    /// GSI of the tasks table on `labourer_id` + `greenfield` (`index_greenfield`; default
    /// `sosw_tasks_greenfield`).
    pub index_greenfield: String,

    /// sosw 0.7's attribute types (`row_mapper`). Accepted and ignored: the item shape is fixed.
    pub row_mapper: Option<BTreeMap<String, String>>,

    /// sosw 0.7's required attributes (`required_fields`). Accepted and ignored: the task fields are
    /// always required.
    pub required_fields: Option<Vec<String>>,

    /// sosw 0.7's attribute renames (`field_names`). Only identity mappings (`"task_id": "task_id"`) are
    /// accepted: renamed attributes are not supported.
    #[serde(deserialize_with = "identity_field_names")]
    pub field_names: Option<BTreeMap<String, String>>,

    /// sosw 0.7's hash key name (`hash_key`). Accepted and ignored: it is always `task_id`.
    pub hash_key: Option<String>,
}

impl Default for DynamoDbConfig {
    fn default() -> Self {
        let names = TableNames::default();
        DynamoDbConfig {
            table_name: names.tasks,
            index_greenfield: names.tasks_greenfield_index,
            row_mapper: None,
            required_fields: None,
            field_names: None,
            hash_key: None,
        }
    }
}

/// The ecology manager's config (sosw 0.7's `ecology_config`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EcologyConfig {
    /// Values for the keys a health metric's `details` leave out (`default_metric_values`).
    pub default_metric_values: MetricDefaults,

    /// sosw 0.7's `init_clients`: accepted and ignored.
    #[serde(rename = "init_clients")]
    _init_clients: IgnoredAny,
}

/// Defaults of a health metric query (sosw 0.7's `ecology_config.default_metric_values`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricDefaults {
    /// CloudWatch period in seconds (`Period`; default 60).
    #[serde(rename = "Period")]
    pub period: u32,

    /// The statistic (`Statistics`, a list of exactly one; default `["Average"]`).
    #[serde(rename = "Statistics", deserialize_with = "one_statistic")]
    pub statistics: Vec<Statistic>,

    /// How far back to look, in seconds (`MetricAggregationTimeSlice`; default 300).
    #[serde(rename = "MetricAggregationTimeSlice")]
    pub aggregation_time_slice: u32,
}

impl Default for MetricDefaults {
    fn default() -> Self {
        MetricDefaults {
            period: 60,
            statistics: vec![Statistic::Average],
            aggregation_time_slice: 300,
        }
    }
}

fn one_statistic<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Statistic>, D::Error> {
    let statistics = Vec::<Statistic>::deserialize(d)?;
    if statistics.len() == 1 {
        Ok(statistics)
    } else {
        Err(de::Error::custom(format!(
            "exactly one statistic is aggregated per metric, found {}",
            statistics.len()
        )))
    }
}

fn sosw_invocation_delta<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    sosw_constant(d, INVOCATION_DELTA)
}

fn sosw_task_step<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    sosw_constant(d, TASK_STEP)
}

fn sosw_constant<'de, D: Deserializer<'de>>(d: D, expected: i64) -> Result<i64, D::Error> {
    let value = i64::deserialize(d)?;
    if value == expected {
        return Ok(value);
    }
    Err(de::Error::custom(format!(
        "must be {expected}, sosw 0.7's value, found {value}: the greenfield encoding of the tasks \
         table depends on it, and the tables must stay readable by both sosw 0.7 and this \
         implementation; remove the key or set it to {expected}"
    )))
}

fn identity_field_names<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    let names = Option::<BTreeMap<String, String>>::deserialize(d)?;
    let renamed = names
        .iter()
        .flatten()
        .find(|(field, stored)| field != stored);
    match renamed {
        None => Ok(names),
        Some((field, stored)) => Err(key_error(
            field,
            format!(
                "renaming task attributes is not supported (`{field}` stored as `{stored}`): \
                 the tasks table must use sosw 0.7's attribute names"
            ),
        )),
    }
}

fn labourers_by_id<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Labourer>, D::Error> {
    d.deserialize_map(LabourersVisitor)
}

struct LabourersVisitor;

impl<'de> Visitor<'de> for LabourersVisitor {
    type Value = BTreeMap<String, Labourer>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of labourer settings by labourer id")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut labourers = BTreeMap::new();
        while let Some(id) = map.next_key::<String>()? {
            // Checked inside the value's deserialization so the error path ends at the labourer.
            let labourer = map.next_value_seed(LabourerWithId(&id))?;
            labourers.insert(id, labourer);
        }
        Ok(labourers)
    }
}

/// Deserializes one labourer's settings and fills its id from the map key.
struct LabourerWithId<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for LabourerWithId<'_> {
    type Value = Labourer;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Labourer, D::Error> {
        let id = self.0;
        if id.trim().is_empty() {
            return Err(de::Error::custom(
                "a labourer id (the key) must not be empty",
            ));
        }
        let mut labourer = Labourer::deserialize(d)?;
        if !labourer.id.is_empty() && labourer.id != id {
            return Err(key_error(
                "id",
                format!(
                    "is `{}` but the labourer is configured under `{id}`; remove `id` or make it \
                     equal to the key",
                    labourer.id
                ),
            ));
        }
        labourer.id = id.to_string();
        Ok(labourer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_config;
    use serde_json::{Value, json};

    fn parse(value: Value) -> Result<TaskConfig> {
        parse_config("test_config", value)
    }

    fn config_error(value: Value) -> (String, String) {
        match parse(value) {
            Err(Error::Config { path, message, .. }) => (path, message),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn empty_config_has_sosw_07_defaults() {
        let config = parse(json!({})).expect("empty config parses");
        assert_eq!(config, TaskConfig::default());
        assert!(config.labourers.is_empty());
        assert_eq!(config.dynamo_db_config.table_name, "sosw_tasks");
        assert_eq!(
            config.dynamo_db_config.index_greenfield,
            "sosw_tasks_greenfield"
        );
        assert_eq!(config.sosw_closed_tasks_table, "sosw_closed_tasks");
        assert_eq!(
            config.sosw_closed_tasks_labourer_status_index,
            "labourer_task_status_with_time"
        );
        assert_eq!(config.sosw_retry_tasks_table, "sosw_retry_tasks");
        assert_eq!(
            config.sosw_retry_tasks_greenfield_index,
            "labourer_id_greenfield"
        );
        assert_eq!(config.greenfield_invocation_delta, 31_557_600);
        assert_eq!(config.greenfield_task_step, 1000);
        assert_eq!(config.max_attempts, 3);
        assert_eq!(config.max_simultaneous_invocations, 1);
        assert_eq!(config.max_closed_to_analyse_for_duration, 10);
        assert_eq!(config.table_prefix, "");
        let metrics = &config.ecology_config.default_metric_values;
        assert_eq!((metrics.period, metrics.aggregation_time_slice), (60, 300));
        assert_eq!(metrics.statistics, vec![Statistic::Average]);
        assert_eq!(config.table_names(), TableNames::default());
    }

    #[test]
    fn sosw_07_task_manager_default_config_parses() {
        let config = parse(json!({
            "init_clients": ["DynamoDb", "lambda", "Ecology"],
            "dynamo_db_config": {
                "table_name": "sosw_tasks",
                "index_greenfield": "sosw_tasks_greenfield",
                "row_mapper": {
                    "task_id": "S", "labourer_id": "S", "created_at": "N", "completed_at": "N",
                    "greenfield": "N", "attempts": "N", "closed_at": "N", "desired_launch_time": "N",
                    "arn": "S", "payload": "S"
                },
                "required_fields": ["task_id", "labourer_id", "created_at", "greenfield"],
                "field_names": {}
            },
            "greenfield_invocation_delta": 31557600,
            "greenfield_task_step": 1000,
            "labourers": {},
            "max_attempts": 3,
            "max_closed_to_analyse_for_duration": 10,
            "sosw_closed_tasks_table": "sosw_closed_tasks",
            "sosw_closed_tasks_labourer_status_index": "labourer_task_status_with_time",
            "sosw_retry_tasks_table": "sosw_retry_tasks",
            "sosw_retry_tasks_greenfield_index": "labourer_id_greenfield",
            "ecology_config": {
                "init_clients": ["cloudwatch"],
                "default_metric_values": {
                    "Period": 60, "Statistics": ["Average"], "MetricAggregationTimeSlice": 300
                }
            },
            "ecology_client_config": {},
            "test": false
        }))
        .expect("sosw 0.7's own defaults parse");
        assert_eq!(config.table_names(), TableNames::default());
        assert_eq!(
            config.dynamo_db_config.required_fields.map(|f| f.len()),
            Some(4)
        );
    }

    #[test]
    fn table_prefix_applies_to_tables_not_indexes() {
        let config = parse(json!({
            "table_prefix": "autotest_",
            "dynamo_db_config": {"table_name": "tasks", "index_greenfield": "tasks_gf"},
            "sosw_retry_tasks_table": "retries"
        }))
        .expect("parses");
        let names = config.table_names();
        assert_eq!(names.tasks, "autotest_tasks");
        assert_eq!(names.tasks_greenfield_index, "tasks_gf");
        assert_eq!(names.retry, "autotest_retries");
        assert_eq!(names.closed, "autotest_sosw_closed_tasks");
        assert_eq!(names.closed_status_index, "labourer_task_status_with_time");
    }

    #[test]
    fn labourer_ids_come_from_the_keys() {
        let config = parse(json!({"labourers": {"w1": {"arn": "arn:w1"}, "w2": {"id": "w2"}}}))
            .expect("parses");
        assert_eq!(config.labourers["w1"].id, "w1");
        assert_eq!(config.labourers["w2"].id, "w2");
        assert_eq!(config.labourer("w1").expect("known").function(), "arn:w1");
    }

    #[test]
    fn a_labourer_id_that_differs_from_its_key_is_an_error() {
        let (path, message) = config_error(json!({"labourers": {"w1": {"id": "w2"}}}));
        assert_eq!(path, "labourers.w1.id");
        assert!(
            message.contains("`w2`") && message.contains("`w1`"),
            "{message}"
        );
    }

    #[test]
    fn unknown_labourer_keys_name_the_full_path_and_the_nearest_key() {
        let (path, message) = config_error(json!({
            "labourers": {"w1": {"max_simultanious_invocations": 2}}
        }));
        assert_eq!(path, "labourers.w1.max_simultanious_invocations");
        assert_eq!(
            message,
            "unknown key `labourers.w1.max_simultanious_invocations`; did you mean \
             `max_simultaneous_invocations`?"
        );
    }

    #[test]
    fn unknown_task_config_keys_get_suggestions_including_legacy_keys() {
        let (path, message) = config_error(json!({"max_atempts": 2}));
        assert_eq!(path, "max_atempts");
        assert!(
            message.ends_with("did you mean `max_attempts`?"),
            "{message}"
        );
        let (_, message) = config_error(json!({"init_client": []}));
        assert!(
            message.ends_with("did you mean `init_clients`?"),
            "{message}"
        );
    }

    #[test]
    fn max_attempts_falls_back_from_labourer_to_family_to_config_to_three() {
        let config = parse(json!({
            "labourers": {"own": {"max_attempts": 9}, "family": {}, "plain": {}},
            "max_attempts_own": 7,
            "max_attempts_family": 5,
            "max_attempts": 4
        }))
        .expect("parses");
        assert_eq!(config.max_attempts_per_labourer.get("family"), Some(&5));
        let attempts = |id: &str| config.labourer(id).expect("known").max_attempts;
        assert_eq!(attempts("own"), Some(9));
        assert_eq!(attempts("family"), Some(5));
        assert_eq!(attempts("plain"), Some(4));
        let defaulted = parse(json!({"labourers": {"x": {}}})).expect("parses");
        assert_eq!(
            defaulted.labourer("x").expect("known").max_attempts,
            Some(DEFAULT_MAX_ATTEMPTS)
        );
    }

    #[test]
    fn max_attempts_for_an_unknown_labourer_is_an_error() {
        let (path, message) = config_error(json!({"labourers": {"w1": {}}, "max_attempts_w9": 2}));
        assert_eq!(path, "max_attempts_w9");
        assert!(
            message.contains("`w9`") && message.contains("w1"),
            "{message}"
        );
    }

    #[test]
    fn max_attempts_family_values_are_type_checked_with_their_path() {
        let (path, message) =
            config_error(json!({"labourers": {"w1": {}}, "max_attempts_w1": "x"}));
        assert_eq!(path, "max_attempts_w1");
        assert!(
            message.contains("expected a non-negative integer"),
            "{message}"
        );
    }

    #[test]
    fn max_simultaneous_invocations_falls_back_but_zero_pauses() {
        let config = parse(json!({
            "labourers": {"set": {"max_simultaneous_invocations": 5}, "paused": {"max_simultaneous_invocations": 0}, "unset": {}},
            "max_simultaneous_invocations": 3
        }))
        .expect("parses");
        let resolved = config.labourers_resolved();
        let ids: Vec<&str> = resolved.iter().map(|l| l.id.as_str()).collect();
        assert_eq!(ids, ["paused", "set", "unset"]);
        let limits: Vec<Option<u32>> = resolved
            .iter()
            .map(|l| l.max_simultaneous_invocations)
            .collect();
        assert_eq!(limits, [Some(0), Some(5), Some(3)]);
        assert!(resolved[0].is_paused());
    }

    #[test]
    fn unknown_labourer_lookup_is_an_unknown_labourer_error() {
        let err = TaskConfig::default()
            .labourer("nope")
            .expect_err("not configured");
        assert!(
            matches!(err, Error::UnknownLabourer(ref id) if id == "nope"),
            "{err}"
        );
    }

    #[test]
    fn greenfield_constants_other_than_sosw_07_are_rejected() {
        for key in ["greenfield_invocation_delta", "greenfield_task_step"] {
            let (path, message) = config_error(json!({ key: 86400 }));
            assert_eq!(path, key);
            assert!(message.contains("readable by both"), "{message}");
        }
    }

    #[test]
    fn identity_field_names_are_accepted_and_renames_are_not_supported() {
        parse(json!({"dynamo_db_config": {"field_names": {"task_id": "task_id"}}}))
            .expect("identity mapping is accepted");
        let (path, message) =
            config_error(json!({"dynamo_db_config": {"field_names": {"task_id": "id"}}}));
        assert_eq!(path, "dynamo_db_config.field_names.task_id");
        assert!(message.contains("not supported"), "{message}");
    }

    #[test]
    fn legacy_dynamo_keys_are_accepted() {
        let config = parse(json!({"dynamo_db_config": {
            "hash_key": "task_id", "row_mapper": {"task_id": "S"}, "required_fields": ["task_id"]
        }}))
        .expect("parses");
        assert_eq!(config.dynamo_db_config.hash_key.as_deref(), Some("task_id"));
    }

    #[test]
    fn metric_defaults_need_exactly_one_statistic() {
        let (path, message) = config_error(json!({
            "ecology_config": {"default_metric_values": {"Statistics": ["Average", "Maximum"]}}
        }));
        assert_eq!(path, "ecology_config.default_metric_values.Statistics");
        assert!(message.contains("exactly one"), "{message}");
        let config = parse(json!({"ecology_config": {"default_metric_values": {"Period": 30}}}))
            .expect("partial defaults parse");
        assert_eq!(config.ecology_config.default_metric_values.period, 30);
        assert_eq!(
            config
                .ecology_config
                .default_metric_values
                .aggregation_time_slice,
            300
        );
    }

    #[test]
    fn wrong_types_name_the_path_and_the_expected_type() {
        let cases = [
            (
                json!({"max_attempts": "3"}),
                "max_attempts",
                "expected a non-negative integer",
            ),
            (
                json!({"labourers": []}),
                "labourers",
                "expected an object of labourer settings",
            ),
            (
                json!({"labourers": {"w": {"arn": 5}}}),
                "labourers.w.arn",
                "expected a string",
            ),
            (
                json!({"table_prefix": null}),
                "table_prefix",
                "expected a string",
            ),
            (json!([]), ".", "expected an object with task config keys"),
        ];
        for (value, expected_path, expected_message) in cases {
            let (path, message) = config_error(value);
            assert_eq!(path, expected_path);
            assert!(message.contains(expected_message), "{path}: {message}");
        }
    }
}
