//! The scheduler's config (`sosw_scheduler_config`).

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::processor::{ProcessorConfig, essential_config_deserialize};
use super::task::TaskConfig;
use crate::error::{Error, Result};

/// The scheduler's config: sosw 0.7's Scheduler keys plus the [`ProcessorConfig`] root keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// The task manager's config (`task_config`; default [`TaskConfig::default`]).
    pub task_config: TaskConfig,

    /// Key prefix of the queue files in the bucket (`s3_prefix`; default `sosw/scheduler`).
    pub s3_prefix: String,

    /// Queue file name; the request id is inserted before the extension (`queue_file`; default
    /// `tasks_queue.txt`).
    pub queue_file: String,

    /// Bucket of the queue files (`queue_bucket`). Default none: required when the queue is spooled to
    /// S3. sosw 0.7 defaulted to the placeholder `autotest-bucket`.
    pub queue_bucket: Option<String>,

    /// Seconds before the Lambda timeout at which the scheduler stops writing tasks and hands the rest
    /// on (`shutdown_period`; default 60).
    pub shutdown_period: u64,

    /// Rows taken from the queue file at a time (`rows_to_process`; default 50).
    pub rows_to_process: u32,

    /// The job schema for jobs without `job_schema_name` (`job_schema`; default no chunkable
    /// attributes). See [`SchedulerConfig::job_schema_for`].
    pub job_schema: JobSchema,

    /// Named job schemas, selected by a job's `job_schema_name` (`job_schema_variants`; default none).
    pub job_schema_variants: BTreeMap<String, JobSchema>,

    /// Seconds of overhead per task write, subtracted from the write pacing
    /// (`task_operational_overhead_for_ddb`; default 0.03).
    pub task_operational_overhead_for_ddb: f64,

    /// Extra `period` patterns, as regular expressions (`custom_period_patterns`; default none).
    pub custom_period_patterns: Vec<String>,

    /// The siblings manager's config (`siblings_config`).
    pub siblings_config: SiblingsConfig,

    /// The root keys every essential accepts.
    #[serde(skip)]
    pub processor: ProcessorConfig,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            task_config: TaskConfig::default(),
            s3_prefix: "sosw/scheduler".to_string(),
            queue_file: "tasks_queue.txt".to_string(),
            queue_bucket: None,
            shutdown_period: 60,
            rows_to_process: 50,
            job_schema: JobSchema::default(),
            job_schema_variants: BTreeMap::new(),
            task_operational_overhead_for_ddb: 0.03,
            custom_period_patterns: Vec::new(),
            siblings_config: SiblingsConfig::default(),
            processor: ProcessorConfig::default(),
        }
    }
}

essential_config_deserialize!(SchedulerConfig, "an object with scheduler config keys");

impl SchedulerConfig {
    /// The schema for a job: the variant `name` if given (an error if it is not configured); else the
    /// `default` variant if configured (as sosw 0.7); else `job_schema`. sosw 0.7 always used the
    /// `default` variant, so a `job_schema` alone had no effect there (bug B11).
    pub fn job_schema_for(&self, name: Option<&str>) -> Result<&JobSchema> {
        match name {
            Some(name) => self.job_schema_variants.get(name).ok_or_else(|| {
                let known: Vec<&str> = self
                    .job_schema_variants
                    .keys()
                    .map(String::as_str)
                    .collect();
                Error::invalid(
                    "job",
                    format!(
                        "`job_schema_name` is `{name}`, which is not under the scheduler's \
                         `job_schema_variants` (configured: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                )
            }),
            None => Ok(self
                .job_schema_variants
                .get("default")
                .unwrap_or(&self.job_schema)),
        }
    }
}

/// How jobs are chunked into tasks (sosw 0.7's `job_schema`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobSchema {
    /// The attributes to chunk by, outermost first (`chunkable_attrs`; default none). Each is
    /// `[name, {}]` as in sosw 0.7, or just the name.
    pub chunkable_attrs: Vec<ChunkableAttr>,
}

impl JobSchema {
    /// The chunkable attribute names, in order.
    pub fn attr_names(&self) -> Vec<&str> {
        self.chunkable_attrs
            .iter()
            .map(|a| a.name.as_str())
            .collect()
    }
}

/// One chunkable attribute: a singular name (`section`; jobs use the plural, `sections`) and sosw 0.7's
/// options object, which nothing reads.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkableAttr {
    /// Singular attribute name. Must not end in `s`: the plural is the name plus `s`.
    pub name: String,
    /// The second element of sosw 0.7's `[name, {}]` pair, kept as given.
    pub options: Map<String, Value>,
}

impl ChunkableAttr {
    fn new<E: de::Error>(name: String, options: Map<String, Value>) -> Result<Self, E> {
        if name.is_empty() || name.ends_with('s') {
            return Err(E::custom(format!(
                "a chunkable attribute is a non-empty singular name not ending in `s` (jobs use \
                 the name plus `s`), found `{name}`"
            )));
        }
        Ok(ChunkableAttr { name, options })
    }
}

impl<'de> Deserialize<'de> for ChunkableAttr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ChunkableAttrVisitor)
    }
}

struct ChunkableAttrVisitor;

impl<'de> Visitor<'de> for ChunkableAttrVisitor {
    type Value = ChunkableAttr;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an attribute name or a [name, {}] pair")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<ChunkableAttr, E> {
        ChunkableAttr::new(name.to_string(), Map::new())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ChunkableAttr, A::Error> {
        let name: String = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let options: Option<Map<String, Value>> = seq.next_element()?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(3, &self));
        }
        ChunkableAttr::new(name, options.unwrap_or_default())
    }
}

/// The siblings manager's config (sosw 0.7's `siblings_config`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiblingsConfig {
    /// Whether to hand the rest of a queue file on to a sibling even when no scheduled rule targets
    /// the function (`auto_spawning`; default false).
    pub auto_spawning: bool,

    /// sosw 0.7's `init_clients`: accepted and ignored.
    #[serde(rename = "init_clients")]
    _init_clients: IgnoredAny,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_config;
    use serde_json::json;

    fn parse(value: Value) -> Result<SchedulerConfig> {
        parse_config("sosw_scheduler_config", value)
    }

    fn config_error(value: Value) -> (String, String) {
        match parse(value) {
            Err(Error::Config { path, message, .. }) => (path, message),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_sosw_07_except_the_placeholder_bucket() {
        let config = parse(json!({})).expect("empty config parses");
        assert_eq!(config.s3_prefix, "sosw/scheduler");
        assert_eq!(config.queue_file, "tasks_queue.txt");
        assert_eq!(config.queue_bucket, None);
        assert_eq!(config.shutdown_period, 60);
        assert_eq!(config.rows_to_process, 50);
        assert!(config.job_schema.chunkable_attrs.is_empty());
        assert!(config.job_schema_variants.is_empty());
        assert_eq!(config.task_operational_overhead_for_ddb, 0.03);
        assert!(config.custom_period_patterns.is_empty());
        assert!(!config.siblings_config.auto_spawning);
        assert_eq!(config, SchedulerConfig::default());
    }

    #[test]
    fn sosw_07_example_scheduler_config_parses() {
        // examples/essentials/.config/sosw_scheduler_config.json of sosw 0.7, with config_updater's
        // labourer merged in.
        let config = parse(json!({
            "init_clients": ["Task", "s3", "Sns", "Siblings"],
            "dynamo_db_config": {"table_name": "sosw_tasks"},
            "job_schema": {"chunkable_attrs": [["topic", {}], ["word", {}]]},
            "queue_bucket": "sosw-s3-000000000000",
            "task_config": {
                "labourers": {
                    "sosw_tutorial_pull_tweeter_hashtags": {
                        "arn": "arn:aws:lambda:us-west-2:000000000000:function:sosw_tutorial_pull_tweeter_hashtags",
                        "max_simultaneous_invocations": 3
                    }
                }
            }
        }))
        .expect("the sosw 0.7 example parses");
        assert_eq!(config.job_schema.attr_names(), ["topic", "word"]);
        assert_eq!(config.queue_bucket.as_deref(), Some("sosw-s3-000000000000"));
        let labourer = config
            .task_config
            .labourer("sosw_tutorial_pull_tweeter_hashtags")
            .expect("configured");
        assert_eq!(labourer.max_simultaneous_invocations, Some(3));
    }

    #[test]
    fn chunkable_attrs_accept_pairs_and_names_and_keep_their_order() {
        let config = parse(json!({"job_schema": {"chunkable_attrs": [
            ["section", {"note": 1}], "store", ["product"]
        ]}}))
        .expect("parses");
        assert_eq!(
            config.job_schema.attr_names(),
            ["section", "store", "product"]
        );
        assert_eq!(
            config.job_schema.chunkable_attrs[0].options["note"],
            json!(1)
        );
    }

    #[test]
    fn bad_chunkable_attrs_name_their_index() {
        let cases = [
            (json!(["sections", {}]), "not ending in `s`"),
            (json!([]), "an attribute name or a [name, {}] pair"),
            (
                json!(["a", {}, 3]),
                "an attribute name or a [name, {}] pair",
            ),
            (json!(5), "an attribute name or a [name, {}] pair"),
        ];
        for (attr, expected) in cases {
            let (path, message) =
                config_error(json!({"job_schema": {"chunkable_attrs": ["word", attr]}}));
            assert_eq!(path, "job_schema.chunkable_attrs[1]");
            assert!(message.contains(expected), "{message}");
        }
    }

    #[test]
    fn job_schema_selection_prefers_named_then_default_variant_then_job_schema() {
        let config = parse(json!({
            "job_schema": {"chunkable_attrs": ["plain"]},
            "job_schema_variants": {"other": {"chunkable_attrs": ["other"]}}
        }))
        .expect("parses");
        let names = |name| config.job_schema_for(name).expect("known").attr_names();
        assert_eq!(names(None), ["plain"]);
        assert_eq!(names(Some("other")), ["other"]);
        assert!(config.job_schema_for(Some("missing")).is_err());

        let with_default = parse(json!({
            "job_schema": {"chunkable_attrs": ["plain"]},
            "job_schema_variants": {"default": {"chunkable_attrs": ["variant"]}}
        }))
        .expect("parses");
        assert_eq!(
            with_default
                .job_schema_for(None)
                .expect("default")
                .attr_names(),
            ["variant"]
        );
    }

    #[test]
    fn siblings_config_accepts_sosw_07_keys() {
        let config =
            parse(json!({"siblings_config": {"init_clients": ["lambda"], "auto_spawning": true}}))
                .expect("parses");
        assert!(config.siblings_config.auto_spawning);
    }
}
