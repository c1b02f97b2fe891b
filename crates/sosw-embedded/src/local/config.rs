//! The configs of a local run: the four essentials' documents and `sosw_local_config`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::json;

use sosw_core::config::{
    ConfigSource, OrchestratorConfig, ScavengerConfig, SchedulerConfig, WorkerAssistantConfig,
    load_essential_config, parse_config,
};
use sosw_core::error::Result;
use sosw_core::essentials::orchestrator::ORCHESTRATOR_FUNCTION;
use sosw_core::essentials::scavenger::FUNCTION_NAME as SCAVENGER_FUNCTION;
use sosw_core::essentials::worker_assistant::FUNCTION_NAME as ASSISTANT_FUNCTION;

/// The name of the local config document (`sosw_local_config.json` in a config directory).
pub const LOCAL_CONFIG_NAME: &str = "sosw_local_config";

/// The scheduler's function name, whose document is `sosw_scheduler_config`.
const SCHEDULER_FUNCTION: &str = "sosw_scheduler";

/// How labourers run on this machine: the `sosw_local_config` document. New in this implementation;
/// sosw 0.7 had no local mode. Every default is stated on its field.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// In-process workers by labourer id. Default none: a labourer whose id is the name of a registered
    /// worker runs that worker with no simulated work time.
    #[serde(default)]
    pub workers: BTreeMap<String, InProcessWorker>,
    /// `command` labourers by labourer id: a child process per task, the payload on its stdin.
    /// Default none.
    #[serde(default)]
    pub commands: BTreeMap<String, CommandLabourer>,
    /// Pause between the orchestrator's rounds, in milliseconds. Default 100.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// Pause between scavenger runs, in milliseconds. Default 250.
    #[serde(default = "default_scavenge_interval_ms")]
    pub scavenge_interval_ms: u64,
    /// The directory relative paths of `commands` resolve against: the directory the document was
    /// read from. Not a key of the document: whoever loads it sets it (`sosw` sets the `--config`
    /// directory). `None` resolves them against the directory `sosw` runs in.
    #[serde(skip)]
    pub base_dir: Option<PathBuf>,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            workers: BTreeMap::new(),
            commands: BTreeMap::new(),
            poll_interval_ms: default_poll_interval_ms(),
            scavenge_interval_ms: default_scavenge_interval_ms(),
            base_dir: None,
        }
    }
}

fn default_poll_interval_ms() -> u64 {
    100
}

fn default_scavenge_interval_ms() -> u64 {
    250
}

/// A labourer run by a worker compiled into this program.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InProcessWorker {
    /// The registered worker's name (`sosw local workers` lists them).
    pub worker: String,
    /// How long each task pretends to work, in milliseconds (for demos). Default 0.
    #[serde(default)]
    pub work_ms: u64,
}

/// A labourer run as a child process per task: any program that reads the worker payload (one JSON
/// object) on its stdin and exits 0 on success.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandLabourer {
    /// The program and its arguments, e.g. `["python3", "../../workers/hashtags.py"]`. A program given
    /// as a relative path (`./worker.sh`) is relative to the config directory; a bare name (`python3`)
    /// is looked up in `PATH`. The arguments reach the program as they are, and it runs in `dir`.
    pub command: Vec<String>,
    /// The directory the program runs in. Default: the config directory (so relative paths among the
    /// arguments are relative to the config file); a relative `dir` is relative to it too.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Variables added to the inherited environment. Default none.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Kill the process, and every process it started, after this many seconds (a failed attempt).
    /// Default no limit.
    #[serde(default)]
    pub timeout_secs: Option<u64>,
}

/// Every config a local run needs, layered as on AWS: `sosw_essential_config`, then the essential's own
/// `<function>_config`.
#[derive(Debug, Clone)]
pub struct LocalConfigs {
    /// `sosw_scheduler_config`.
    pub scheduler: SchedulerConfig,
    /// `sosw_orchestrator_config`.
    pub orchestrator: OrchestratorConfig,
    /// `sosw_scavenger_config`.
    pub scavenger: ScavengerConfig,
    /// `sosw_worker_assistant_config`.
    pub assistant: WorkerAssistantConfig,
    /// `sosw_local_config` (defaults when absent).
    pub local: LocalConfig,
}

impl LocalConfigs {
    /// Reads and checks every document from `source`. Errors are [`sosw_core::Error::Config`] naming the
    /// document and the key.
    pub async fn load(source: &dyn ConfigSource) -> Result<Self> {
        let local = match source.get_config(LOCAL_CONFIG_NAME).await? {
            Some(document) => parse_config(LOCAL_CONFIG_NAME, document)?,
            None => LocalConfig::default(),
        };
        Ok(LocalConfigs {
            scheduler: load_essential_config(source, SCHEDULER_FUNCTION, json!({}), None).await?,
            orchestrator: load_essential_config(source, ORCHESTRATOR_FUNCTION, json!({}), None)
                .await?,
            scavenger: load_essential_config(source, SCAVENGER_FUNCTION, json!({}), None).await?,
            assistant: load_essential_config(source, ASSISTANT_FUNCTION, json!({}), None).await?,
            local,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sosw_core::config::StaticConfigSource;

    #[tokio::test]
    async fn an_unknown_local_key_names_the_nearest_one() {
        let source = StaticConfigSource::new().with(
            LOCAL_CONFIG_NAME,
            json!({"commands": {"w": {"comand": ["true"]}}}),
        );
        let err = LocalConfigs::load(&source).await.expect_err("typo");
        let text = err.to_string();
        assert!(text.contains("sosw_local_config"), "{text}");
        assert!(text.contains("`command`"), "{text}");
    }

    #[tokio::test]
    async fn no_documents_at_all_give_the_defaults() {
        let configs = LocalConfigs::load(&StaticConfigSource::new())
            .await
            .expect("defaults");
        assert_eq!(configs.local, LocalConfig::default());
        assert_eq!(configs.local.poll_interval_ms, 100);
        assert!(configs.orchestrator.task_config.labourers.is_empty());
    }
}
