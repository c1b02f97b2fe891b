//! Typed configuration with sosw 0.7's layering.
//!
//! Each essential reads one config: [`OrchestratorConfig`], [`ScavengerConfig`], [`SchedulerConfig`],
//! [`WorkerAssistantConfig`]. They share `task_config` ([`TaskConfig`], sosw 0.7's TaskManager config,
//! with the [`Labourer`](crate::task::Labourer)s) and the root keys of [`ProcessorConfig`].
//!
//! * Every sosw 0.7 key is accepted; each field's doc names its key and default. Keys that configure
//!   nothing here (`init_clients`, `test`, ...) are accepted and ignored.
//! * Unknown keys are rejected with the full key path and the nearest valid key; wrong types name the
//!   path and the expected type ([`parse_config`]).
//! * Documents come from a [`ConfigSource`] (files, memory, or sosw 0.7's DynamoDB `config` table in
//!   `sosw_aws::config_source`) and are layered by [`load_essential_config`]:
//!   `sosw_essential_config` → defaults → `<function>_config` → overrides, merged by [`deep_merge`].

mod divert;
mod merge;
mod orchestrator;
mod parse;
mod processor;
mod scavenger;
mod scheduler;
mod source;
mod task;
mod worker_assistant;

pub use merge::deep_merge;
pub use orchestrator::{InvocationCoefficients, OrchestratorConfig};
pub use parse::parse_config;
pub use processor::ProcessorConfig;
pub use scavenger::{ScavengerConfig, SnsConfig};
pub use scheduler::{SchedulerConfig, SiblingsConfig};
pub use source::{
    ConfigSource, ESSENTIAL_CONFIG_NAME, FileConfigSource, StaticConfigSource,
    load_essential_config,
};
pub use task::{
    DEFAULT_MAX_SIMULTANEOUS_INVOCATIONS, DynamoDbConfig, EcologyConfig, MetricDefaults, TaskConfig,
};
pub use worker_assistant::WorkerAssistantConfig;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Every essential config, fed odd values at every key it knows, returns a value or an error.
    #[test]
    fn odd_values_anywhere_are_errors_never_panics() {
        let odd = [
            json!(null),
            json!(true),
            json!(-1),
            json!(1.5),
            json!(u64::MAX),
            json!("text"),
            json!([]),
            json!([[], {}]),
            json!({}),
            json!({"": {"": null}}),
        ];
        let paths: &[&[&str]] = &[
            &[],
            &["task_config"],
            &["task_config", "labourers"],
            &["task_config", "labourers", "w"],
            &["task_config", "labourers", "w", "health_metrics"],
            &["task_config", "dynamo_db_config"],
            &["task_config", "dynamo_db_config", "field_names"],
            &["task_config", "ecology_config", "default_metric_values"],
            &["task_config", "max_attempts_w"],
            &["invocation_number_coefficient"],
            &["job_schema", "chunkable_attrs"],
            &["job_schema_variants"],
            &["sns_config"],
            &["dynamo_db_config"],
            &["lifetime_stats_params"],
        ];
        let mut errors = 0;
        for path in paths {
            for value in &odd {
                let document = nest(path, value.clone());
                errors +=
                    usize::from(parse_config::<OrchestratorConfig>("d", document.clone()).is_err());
                errors +=
                    usize::from(parse_config::<ScavengerConfig>("d", document.clone()).is_err());
                errors +=
                    usize::from(parse_config::<SchedulerConfig>("d", document.clone()).is_err());
                errors +=
                    usize::from(parse_config::<WorkerAssistantConfig>("d", document).is_err());
            }
        }
        assert!(errors > 0, "odd values must be rejected somewhere");
    }

    fn nest(path: &[&str], leaf: Value) -> Value {
        path.iter()
            .rev()
            .fold(leaf, |inner, key| json!({ *key: inner }))
    }
}
