//! The scheduler's config (`sosw_scheduler_config`).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::processor::{ProcessorConfig, essential_config_deserialize};
use super::task::TaskConfig;
use crate::error::{Error, Result};
use crate::job::JobSchema;

/// Default [`SchedulerConfig::enqueue_batch_size`].
pub const DEFAULT_ENQUEUE_BATCH_SIZE: usize = 500;

/// Default [`SchedulerConfig::max_task_payload_bytes`]: 200 KiB, half of DynamoDB's item limit.
pub const DEFAULT_MAX_TASK_PAYLOAD_BYTES: usize = 200 * 1024;

/// Default [`SchedulerConfig::spool_min_tasks`].
pub const DEFAULT_SPOOL_MIN_TASKS: usize = 1000;

/// The scheduler's config: sosw 0.7's Scheduler keys plus the [`ProcessorConfig`] root keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// The task manager's config (`task_config`; default [`TaskConfig::default`]).
    pub task_config: TaskConfig,

    /// Key prefix of the queue files in the bucket (`s3_prefix`; default `sosw/scheduler`).
    pub s3_prefix: String,

    /// Queue (spool) file name; a key-safe form of the job id is inserted before the extension
    /// (`queue_file`; default `tasks_queue.txt`, so a job's spool is
    /// `<s3_prefix>/tasks_queue_<job>.txt`). sosw 0.7 inserted the Lambda request id.
    pub queue_file: String,

    /// Bucket of the queue files and of task payloads too large for the task table (`queue_bucket`).
    /// Default none: without it nothing is spooled and an oversized payload is an error. sosw 0.7
    /// defaulted to the placeholder `autotest-bucket`.
    pub queue_bucket: Option<String>,

    /// Seconds before the Lambda timeout at which the scheduler stops writing tasks and hands the rest
    /// on (`shutdown_period`; default 60).
    pub shutdown_period: u64,

    /// sosw 0.7's rows taken from the queue file at a time (`rows_to_process`; default 50). Accepted
    /// and unused: tasks are written [`SchedulerConfig::enqueue_batch_size`] at a time.
    pub rows_to_process: u32,

    /// Tasks handed to the store per enqueue call, and between two job progress records
    /// (`enqueue_batch_size`, new; default 500, at least 1). DynamoDB writes them 25 per
    /// `BatchWriteItem`; a crash re-checks at most one such batch.
    #[serde(deserialize_with = "at_least_one")]
    pub enqueue_batch_size: usize,

    /// Task writes per second at most, for tables with provisioned capacity (`max_writes_per_second`,
    /// new; default none: as fast as the store takes them). sosw 0.7 paced by the table's provisioned
    /// write capacity instead.
    #[serde(deserialize_with = "positive_rate")]
    pub max_writes_per_second: Option<f64>,

    /// The largest task payload kept in the task row, in bytes of compact JSON
    /// (`max_task_payload_bytes`, new; default 204800, 200 KiB). A bigger one is stored in
    /// `queue_bucket` and the task carries a pointer (see `sosw::blob::payload_ref`).
    pub max_task_payload_bytes: usize,

    /// Jobs of more tasks than this are spooled to `queue_bucket` (`spool_min_tasks`, new; default
    /// 1000). Smaller jobs are written straight from memory and, if cut short, resumed by chunking the
    /// recorded job again.
    pub spool_min_tasks: usize,

    /// The job schema for jobs without `job_schema_name` (`job_schema`; default no chunkable
    /// attributes). See [`SchedulerConfig::job_schema_for`].
    pub job_schema: JobSchema,

    /// Named job schemas, selected by a job's `job_schema_name` (`job_schema_variants`; default none).
    pub job_schema_variants: BTreeMap<String, JobSchema>,

    /// sosw 0.7's seconds of overhead per task write, subtracted from its write pacing
    /// (`task_operational_overhead_for_ddb`; default 0.03). Accepted and unused: pacing by
    /// [`SchedulerConfig::max_writes_per_second`] measures the real time writes take.
    pub task_operational_overhead_for_ddb: f64,

    /// sosw 0.7's extra `period` patterns, as regular expressions (`custom_period_patterns`; default
    /// none). Accepted and unused: custom periods are registered in code with their handler
    /// ([`crate::job::PeriodRegistry::register`]), not found by method name.
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
            enqueue_batch_size: DEFAULT_ENQUEUE_BATCH_SIZE,
            max_writes_per_second: None,
            max_task_payload_bytes: DEFAULT_MAX_TASK_PAYLOAD_BYTES,
            spool_min_tasks: DEFAULT_SPOOL_MIN_TASKS,
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

/// A count that must be at least 1.
fn at_least_one<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = usize::deserialize(d)?;
    if n == 0 {
        return Err(serde::de::Error::custom("must be at least 1"));
    }
    Ok(n)
}

/// An optional rate that must be a positive finite number.
fn positive_rate<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let rate = Option::<f64>::deserialize(d)?;
    match rate {
        Some(r) if !(r.is_finite() && r > 0.0) => Err(serde::de::Error::custom(format!(
            "must be a positive number of writes per second, found {r}"
        ))),
        other => Ok(other),
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
    use serde_json::{Value, json};

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
        assert!(config.job_schema.is_empty());
        assert_eq!(config.enqueue_batch_size, 500);
        assert_eq!(config.max_writes_per_second, None);
        assert_eq!(config.max_task_payload_bytes, 200 * 1024);
        assert_eq!(config.spool_min_tasks, 1000);
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
            serde_json::to_value(&config.job_schema).expect("serializes"),
            json!({"chunkable_attrs": [["section", {}], ["store", {}], ["product", {}]]}),
            "written back in sosw 0.7's shape; the options object is ignored, as in sosw 0.7"
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
    fn job_schema_errors_name_the_key_path() {
        let (path, message) =
            config_error(json!({"job_schema": {"chunkable_attrs": ["word", "word"]}}));
        assert_eq!(path, "job_schema.chunkable_attrs[1]");
        assert!(message.contains("listed twice"), "{message}");
        let (path, message) =
            config_error(json!({"job_schema_variants": {"x": {"chunkable_attr": []}}}));
        assert_eq!(path, "job_schema_variants.x.chunkable_attr");
        assert!(message.contains("`chunkable_attrs`"), "{message}");
    }

    #[test]
    fn write_settings_reject_zero_batches_and_non_positive_rates() {
        let config = parse(json!({"enqueue_batch_size": 100, "max_writes_per_second": 12.5}))
            .expect("valid write settings");
        assert_eq!(config.enqueue_batch_size, 100);
        assert_eq!(config.max_writes_per_second, Some(12.5));
        assert_eq!(
            config_error(json!({"enqueue_batch_size": 0})).0,
            "enqueue_batch_size"
        );
        for rate in [json!(0), json!(-1.0)] {
            let (path, message) = config_error(json!({"max_writes_per_second": rate}));
            assert_eq!(path, "max_writes_per_second");
            assert!(message.contains("positive"), "{message}");
        }
    }

    #[test]
    fn siblings_config_accepts_sosw_07_keys() {
        let config =
            parse(json!({"siblings_config": {"init_clients": ["lambda"], "auto_spawning": true}}))
                .expect("parses");
        assert!(config.siblings_config.auto_spawning);
    }
}
