//! Where a subcommand's config and tasks are: the state file or AWS.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sosw::config::{ConfigSource, FileConfigSource, TaskConfig};
use sosw::embedded::SqliteTaskStore;
use sosw::store::{JobStore, LabourerControl, TaskStore};

use super::defaults::builtin_config_source;
use super::{CliError, CliResult, Global};
use sosw::lambda::aws::{Clients, config_source as table_config_source, sdk_config};
use sosw::lambda::settings::{ORCHESTRATOR_FUNCTION, Settings};

/// The task and job store of a subcommand.
pub struct Backend {
    /// The tasks.
    pub tasks: Arc<dyn TaskStore>,
    /// The job records.
    pub jobs: Arc<dyn JobStore>,
    /// The paused labourers: the state file, or on AWS the config table.
    pub control: Arc<dyn LabourerControl>,
    /// What it is, for messages: the state file or `AWS`.
    pub name: String,
    /// How far `sosw queue` and the dashboard count (smaller on AWS, where a count costs read units).
    pub count_caps: sosw::query::CountCaps,
}

/// The config documents: `--config <dir>`, else the DynamoDB config table with `--aws`, else the
/// built-in local configs.
pub async fn config_source(global: &Global) -> CliResult<Arc<dyn ConfigSource>> {
    if let Some(dir) = &global.config {
        return Ok(Arc::new(config_dir(dir)?));
    }
    if global.aws {
        let clients = Clients::new(sdk_config().await);
        let settings = Settings::from_env(ORCHESTRATOR_FUNCTION)?;
        return Ok(Arc::new(table_config_source(&clients, &settings)));
    }
    Ok(Arc::new(builtin_config_source()?))
}

/// Where the built-in configs were copied from: their relative paths resolve against it, as if they
/// were read from there.
const BUILTIN_CONFIG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/configs/local");

/// The directory relative paths of the local config resolve against: the `--config` directory, the
/// built-in configs' own, or none (the current directory) with `--aws`.
pub fn config_base_dir(global: &Global) -> Option<PathBuf> {
    match &global.config {
        Some(dir) => Some(std::path::absolute(dir).unwrap_or_else(|_| dir.clone())),
        None if global.aws => None,
        None => Some(PathBuf::from(BUILTIN_CONFIG_DIR)),
    }
}

/// A config directory that exists.
pub fn config_dir(dir: &Path) -> CliResult<FileConfigSource> {
    if !dir.is_dir() {
        return Err(CliError::new(format!(
            "the config directory `{}` does not exist; pass --config <dir> with the config documents \
             (`sosw_essential_config.json`, ...), e.g. examples/configs/local",
            dir.display()
        )));
    }
    Ok(FileConfigSource::new(dir))
}

/// The store to read: the DynamoDB tables `task_config` names with `--aws` (in the layout `SOSW_LAYOUT`
/// names, as the essentials read it), else the state file, which
/// must exist unless `create` is set.
pub async fn backend(
    global: &Global,
    task_config: &TaskConfig,
    create: bool,
) -> CliResult<Backend> {
    if global.aws {
        let settings = Settings::from_env(ORCHESTRATOR_FUNCTION)?;
        let clients = Clients::new(sdk_config().await).with_layout(settings.layout.clone());
        let store = sosw::lambda::aws::deployment_store(&clients, task_config)?;
        return Ok(Backend {
            tasks: store.clone(),
            jobs: store,
            control: Arc::new(table_config_source(&clients, &settings)),
            name: "AWS".into(),
            count_caps: sosw::query::CountCaps::aws(),
        });
    }
    let store = Arc::new(open_state(&global.state, create)?);
    Ok(Backend {
        tasks: store.clone(),
        jobs: store.clone(),
        control: store,
        name: global.state.display().to_string(),
        count_caps: sosw::query::CountCaps::LOCAL,
    })
}

/// Opens the state file; a missing one is created only when `create` is set.
pub fn open_state(path: &Path, create: bool) -> CliResult<SqliteTaskStore> {
    if !create && !path.exists() {
        return Err(CliError::new(format!(
            "there is no state file `{}`: run `sosw local run <job.json>` or `sosw submit <job.json>` \
             first, or point --state (SOSW_STATE) at an existing one",
            path.display()
        )));
    }
    SqliteTaskStore::open(path).map_err(|err| {
        CliError::new(format!(
            "cannot open the state file `{}`: {err}; pass --state <file.sqlite> to use another",
            path.display()
        ))
    })
}
