//! What `sosw` knows without being told: the built-in local configs and the example workers.

use serde_json::Value;
use sosw::config::StaticConfigSource;
use sosw::local::WorkerRegistry;
use sosw_tutorial::hashtags::{
    FLAKY_HASHTAGS_LABOURER, FlakyHashtagWorker, HASHTAGS_LABOURER, HashtagWorker,
};

use super::{CliError, CliResult};

/// The built-in config documents: a copy of `examples/configs/local`, compiled in so that
/// `sosw local run` works from any directory.
const BUILTIN: [(&str, &str); 3] = [
    (
        "sosw_essential_config",
        include_str!("../../../examples/configs/local/sosw_essential_config.json"),
    ),
    (
        "sosw_scheduler_config",
        include_str!("../../../examples/configs/local/sosw_scheduler_config.json"),
    ),
    (
        "sosw_local_config",
        include_str!("../../../examples/configs/local/sosw_local_config.json"),
    ),
];

/// The built-in config documents as a config source.
pub fn builtin_config_source() -> CliResult<StaticConfigSource> {
    let mut source = StaticConfigSource::new();
    for (name, text) in BUILTIN {
        let value: Value = serde_json::from_str(text).map_err(|err| {
            CliError::new(format!(
                "the built-in config `{name}` is not valid JSON ({err}); pass --config <dir>"
            ))
        })?;
        source.insert(name, value);
    }
    Ok(source)
}

/// The workers this program runs in-process, by name: the tutorial workers of `sosw-tutorial`.
pub fn worker_registry() -> WorkerRegistry {
    WorkerRegistry::new()
        .register(HASHTAGS_LABOURER, HashtagWorker::new)
        .register(FLAKY_HASHTAGS_LABOURER, FlakyHashtagWorker::new)
}
