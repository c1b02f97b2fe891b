//! The worker assistant's config (`sosw_worker_assistant_config`).

use serde::Deserialize;

use super::processor::{ProcessorConfig, essential_config_deserialize};
use super::scavenger::SnsConfig;
use super::task::TaskConfig;

/// The worker assistant's config: `task_config` plus the [`ProcessorConfig`] root keys.
///
/// sosw 0.7's WorkerAssistant wrote to the root `dynamo_db_config.table_name`; it is accepted when it
/// agrees with `task_config.dynamo_db_config` (see [`ProcessorConfig::dynamo_db_config`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields, default)]
pub struct WorkerAssistantConfig {
    /// The task manager's config (`task_config`; default [`TaskConfig::default`]).
    pub task_config: TaskConfig,

    /// Whether a completion report moves the task to the closed table at once
    /// (`archive_completed`, new here; default `true`). With `false` the task stays in `sosw_tasks`
    /// with `completed_at` until the scavenger archives it, as in sosw 0.7. The default closes the task
    /// in the same invocation that records it: the row leaves the queue's index at once, and a job's
    /// last task finishes the job without waiting up to a minute for the scavenger.
    pub archive_completed: bool,

    /// Where dead-task alerts and job-finished messages for requesters that are not topic ARNs go
    /// (`sns_config`, new here for the worker assistant; default none: they are logged).
    pub sns_config: SnsConfig,

    /// The root keys every essential accepts.
    #[serde(skip)]
    pub processor: ProcessorConfig,
}

impl Default for WorkerAssistantConfig {
    fn default() -> Self {
        WorkerAssistantConfig {
            task_config: TaskConfig::default(),
            archive_completed: true,
            sns_config: SnsConfig::default(),
            processor: ProcessorConfig::default(),
        }
    }
}

essential_config_deserialize!(
    WorkerAssistantConfig,
    "an object with worker assistant config keys"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_config;
    use crate::error::Error;
    use serde_json::json;

    #[test]
    fn sosw_07_worker_assistant_defaults_parse() {
        let config: WorkerAssistantConfig = parse_config(
            "sosw_worker_assistant_config",
            json!({
                "init_clients": ["DynamoDb"],
                "dynamo_db_config": {
                    "table_name": "sosw_tasks",
                    "row_mapper": {"task_id": "S", "labourer_id": "S", "stats": "M", "result": "S"},
                    "required_fields": ["task_id"]
                },
                "task_config": {}
            }),
        )
        .expect("parses");
        assert_eq!(config.task_config.table_names().tasks, "sosw_tasks");
        assert!(config.processor.dynamo_db_config.is_some());
    }

    #[test]
    fn a_root_tasks_table_that_disagrees_with_task_config_is_an_error() {
        let err = parse_config::<WorkerAssistantConfig>(
            "sosw_worker_assistant_config",
            json!({"dynamo_db_config": {"table_name": "my_tasks"}}),
        )
        .expect_err("tables disagree");
        match err {
            Error::Config { path, message, .. } => {
                assert_eq!(path, "dynamo_db_config.table_name");
                assert!(
                    message.contains("`my_tasks`") && message.contains("`sosw_tasks`"),
                    "{message}"
                );
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn a_root_tasks_table_equal_to_task_config_is_accepted() {
        let config: WorkerAssistantConfig = parse_config(
            "sosw_worker_assistant_config",
            json!({
                "dynamo_db_config": {"table_name": "my_tasks"},
                "task_config": {"dynamo_db_config": {"table_name": "my_tasks"}}
            }),
        )
        .expect("tables agree");
        assert_eq!(config.task_config.table_names().tasks, "my_tasks");
    }
}
