//! Keys every sosw 0.7 Processor accepted at the root of its config, shared by the essentials' configs.

use serde::de::{IgnoredAny, MapAccess};
use serde_json::Value;

use super::divert::KeyFilter;
use super::parse::key_error;
use super::task::{DynamoDbConfig, TaskConfig};

/// The root keys every essential accepts besides its own (sosw 0.7's Processor and Essential keys).
///
/// `init_clients`, `test` and `logging_level` are accepted and ignored: clients are built by code, test
/// mode is not a config flag (sosw 0.7 ignored an explicit `test` anyway, bug B1), and the log level
/// comes from the environment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessorConfig {
    /// A root `dynamo_db_config` (default none). sosw 0.7's WorkerAssistant wrote to its
    /// `table_name`, and its TaskManager let `task_config.dynamo_db_config` override it. Here the
    /// tasks table comes from `task_config` only, so a root `table_name` or `index_greenfield` must
    /// equal `task_config`'s (defaults included); its other keys are ignored.
    pub dynamo_db_config: Option<DynamoDbConfig>,

    /// The MetaHandler's config (`meta_handler_config`; default none), kept as given: the meta table
    /// is not written by this version.
    pub meta_handler_config: Option<Value>,

    /// SNS topic name for a processor's dying message (`dead_sns_topic`; default none, sosw 0.7 used
    /// `SoswWorkerErrors`).
    pub dead_sns_topic: Option<String>,

    /// Stats that are not reset between invocations (`lifetime_stats_params`; default none).
    pub lifetime_stats_params: Vec<String>,
}

/// Root keys taken by [`ProcessorConfig`].
const PROCESSOR_KEYS: &[&str] = &[
    "dynamo_db_config",
    "meta_handler_config",
    "dead_sns_topic",
    "lifetime_stats_params",
    "init_clients",
    "test",
    "logging_level",
];

impl<'de> KeyFilter<'de> for ProcessorConfig {
    const KEYS: &'static [&'static str] = PROCESSOR_KEYS;

    fn take<A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
        match key {
            "dynamo_db_config" => self.dynamo_db_config = Some(map.next_value()?),
            "meta_handler_config" => self.meta_handler_config = Some(map.next_value()?),
            "dead_sns_topic" => self.dead_sns_topic = Some(map.next_value()?),
            "lifetime_stats_params" => self.lifetime_stats_params = map.next_value()?,
            "init_clients" | "test" | "logging_level" => {
                map.next_value::<IgnoredAny>()?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

impl ProcessorConfig {
    /// A root `dynamo_db_config` that names other tasks table than `task_config` would split the
    /// essentials between two tables, so it is an error rather than a silent choice.
    pub(crate) fn check_against<E: serde::de::Error>(&self, task: &TaskConfig) -> Result<(), E> {
        let Some(root) = &self.dynamo_db_config else {
            return Ok(());
        };
        let pairs = [
            (
                "table_name",
                &root.table_name,
                &task.dynamo_db_config.table_name,
            ),
            (
                "index_greenfield",
                &root.index_greenfield,
                &task.dynamo_db_config.index_greenfield,
            ),
        ];
        for (key, root_value, task_value) in pairs {
            if root_value != task_value {
                return Err(key_error(
                    &format!("dynamo_db_config.{key}"),
                    format!(
                        "is `{root_value}` but `task_config.dynamo_db_config.{key}` is \
                         `{task_value}`; set the tasks table under `task_config` and remove the \
                         root `dynamo_db_config` (or make them equal)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Implements `Deserialize` for an essential's config struct derived with
/// `#[serde(remote = "Self", deny_unknown_fields)]` that has `task_config: TaskConfig` and a
/// `#[serde(skip)] processor: ProcessorConfig`: the root keys of [`ProcessorConfig`] go there.
macro_rules! essential_config_deserialize {
    ($config:ident, $expecting:literal) => {
        impl<'de> $crate::config::divert::Derived<'de> for $config {
            fn derived<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                // The inherent, derived `deserialize` (remote = "Self"), not the trait method.
                $config::deserialize(deserializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $config {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let (mut config, processor) = $crate::config::divert::deserialize::<_, $config, _>(
                    deserializer,
                    $crate::config::ProcessorConfig::default(),
                    $expecting,
                )?;
                processor.check_against(&config.task_config)?;
                config.processor = processor;
                Ok(config)
            }
        }
    };
}

pub(crate) use essential_config_deserialize;
