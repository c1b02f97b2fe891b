//! Where config documents come from ([`ConfigSource`]) and how an essential's documents are layered
//! ([`load_essential_config`]).
//!
//! Adapters: [`FileConfigSource`] (a directory of JSON files), [`StaticConfigSource`] (in memory) and
//! `DynamoConfigSource` in `sosw_aws::config_source` (sosw 0.7's `config` table).

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::merge::deep_merge;
use super::parse::parse_config;
use crate::error::{Error, Result};
use crate::task::json_kind;

/// Name of the document shared by every essential.
pub const ESSENTIAL_CONFIG_NAME: &str = "sosw_essential_config";

/// Named JSON config documents (sosw 0.7's `get_config(name)`).
#[async_trait]
pub trait ConfigSource: Send + Sync {
    /// The document `name`, or `None` when there is none.
    async fn get_config(&self, name: &str) -> Result<Option<Value>>;
}

/// Loads an essential's config with sosw 0.7's layering and reads it as a `T`.
///
/// The documents are deep-merged ([`deep_merge`]) in sosw 0.7's `Essential.init_config` order, each
/// later one winning:
/// 1. `sosw_essential_config` from `source` (shared by all essentials), if present;
/// 2. `defaults`, at the place of sosw 0.7's `DEFAULT_CONFIG` (pass `json!({})` for none);
/// 3. `<function_name>_config` from `source`, if present;
/// 4. `overrides` (sosw 0.7's `custom_config`), if given.
///
/// Each document must be a JSON object. The merged document is then read as a `T`; errors are
/// [`Error::Config`] naming the key path and the document that supplied the offending value.
///
/// Where this deliberately differs from sosw 0.7:
/// * the built-in defaults are `T`'s serde defaults, filled in *after* the merge, so
///   `sosw_essential_config` can set any key (in sosw 0.7 `DEFAULT_CONFIG` overrode it, so it could
///   not change a defaulted key); only the explicit `defaults` document sits between the two;
/// * lists are replaced by the later document instead of merged as unordered sets (bug B18);
/// * the function config is read once, by the essential, instead of once per client, and both documents
///   are read concurrently;
/// * a missing document is skipped, but an unreadable one is an error (sosw 0.7 fell back to `{}`).
pub async fn load_essential_config<T, S>(
    source: &S,
    function_name: &str,
    defaults: Value,
    overrides: Option<Value>,
) -> Result<T>
where
    T: DeserializeOwned,
    S: ConfigSource + ?Sized,
{
    let function_document = format!("{function_name}_config");
    // Both documents at once: one round trip of a cold start instead of two.
    let (shared, own) = futures::future::try_join(
        source.get_config(ESSENTIAL_CONFIG_NAME),
        source.get_config(&function_document),
    )
    .await?;
    let mut layers = Vec::with_capacity(4);
    if let Some(shared) = shared {
        layers.push((ESSENTIAL_CONFIG_NAME.to_string(), shared));
    }
    layers.push(("built-in defaults".to_string(), defaults));
    if let Some(own) = own {
        layers.push((function_document.clone(), own));
    }
    if let Some(overrides) = overrides {
        layers.push(("overrides".to_string(), overrides));
    }
    let merged = merge_layers(&layers)?;
    parse_config(&function_document, merged).map_err(|err| blame(err, &layers))
}

fn merge_layers(layers: &[(String, Value)]) -> Result<Value> {
    let mut merged = Value::Object(Default::default());
    for (document, value) in layers {
        if !value.is_object() {
            return Err(not_an_object(document, value));
        }
        deep_merge(&mut merged, value.clone());
    }
    Ok(merged)
}

fn not_an_object(document: &str, value: &Value) -> Error {
    Error::Config {
        document: document.to_string(),
        path: ".".to_string(),
        message: format!(
            "a config document must be a JSON object, found {}",
            json_kind(value)
        ),
    }
}

/// Names the document whose value is at fault: the last layer (the one that won the merge) holding
/// the error's path, or, for a missing key, its nearest present parent.
fn blame(err: Error, layers: &[(String, Value)]) -> Error {
    let Error::Config {
        document,
        path,
        message,
    } = err
    else {
        return err;
    };
    let segments = path_segments(&path);
    let culprit = (1..=segments.len()).rev().find_map(|depth| {
        layers
            .iter()
            .rev()
            .find(|(_, value)| lookup(value, &segments[..depth]).is_some())
    });
    let document = match culprit {
        Some((name, _)) => name.clone(),
        None => format!("{document} (merged)"),
    };
    Error::Config {
        document,
        path,
        message,
    }
}

/// `a.b[2].c` → `["a", "b", "2", "c"]`.
fn path_segments(path: &str) -> Vec<&str> {
    if path == "." {
        return Vec::new();
    }
    path.split(['.', '[', ']'])
        .filter(|s| !s.is_empty())
        .collect()
}

fn lookup<'v>(value: &'v Value, segments: &[&str]) -> Option<&'v Value> {
    segments
        .iter()
        .try_fold(value, |value, segment| match value {
            Value::Object(map) => map.get(*segment),
            Value::Array(list) => segment.parse::<usize>().ok().and_then(|i| list.get(i)),
            _ => None,
        })
}

/// Config documents as `<name>.json` files in a directory. A missing file is a missing document.
#[derive(Debug, Clone)]
pub struct FileConfigSource {
    dir: PathBuf,
}

impl FileConfigSource {
    /// A source reading `<dir>/<name>.json`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileConfigSource { dir: dir.into() }
    }

    /// The directory read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of document `name`; names are plain file stems, never paths.
    fn file_of(&self, name: &str) -> Result<PathBuf> {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && !name.contains(['/', '\\'])
            && !name.contains('\0');
        if !plain {
            return Err(Error::invalid(
                "config name",
                format!(
                    "`{name}` is not a plain document name (no path separators, no leading dot)"
                ),
            ));
        }
        Ok(self.dir.join(format!("{name}.json")))
    }
}

#[async_trait]
impl ConfigSource for FileConfigSource {
    async fn get_config(&self, name: &str) -> Result<Option<Value>> {
        let file = self.file_of(name)?;
        // Config files are small and read once per process: a blocking read costs less than a hop to
        // a blocking thread.
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::Io {
                    path: file.display().to_string(),
                    source,
                });
            }
        };
        let document = file.display().to_string();
        let value: Value = serde_json::from_str(&text).map_err(|err| Error::Config {
            document: document.clone(),
            path: ".".to_string(),
            message: format!(
                "invalid JSON at line {} column {}: {err}",
                err.line(),
                err.column()
            ),
        })?;
        if !value.is_object() {
            return Err(not_an_object(&document, &value));
        }
        Ok(Some(value))
    }
}

/// Config documents held in memory, for tests and local mode.
#[derive(Debug, Clone, Default)]
pub struct StaticConfigSource {
    documents: BTreeMap<String, Value>,
}

impl StaticConfigSource {
    /// An empty source.
    pub fn new() -> Self {
        Self::default()
    }

    /// This source with document `name` set to `value`.
    pub fn with(mut self, name: impl Into<String>, value: Value) -> Self {
        self.insert(name, value);
        self
    }

    /// Sets document `name` to `value`.
    pub fn insert(&mut self, name: impl Into<String>, value: Value) {
        self.documents.insert(name.into(), value);
    }
}

#[async_trait]
impl ConfigSource for StaticConfigSource {
    async fn get_config(&self, name: &str) -> Result<Option<Value>> {
        Ok(self.documents.get(name).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{OrchestratorConfig, SchedulerConfig};
    use serde_json::json;

    fn config_error(err: Error) -> (String, String, String) {
        match err {
            Error::Config {
                document,
                path,
                message,
            } => (document, path, message),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn layers_apply_in_sosw_07_order() {
        let source = StaticConfigSource::new()
            .with(
                ESSENTIAL_CONFIG_NAME,
                json!({"task_config": {"max_attempts": 1, "max_closed_to_analyse_for_duration": 1,
                                       "table_prefix": "essential_", "labourers": {"w1": {}}}}),
            )
            .with(
                "sosw_orchestrator_config",
                json!({"task_config": {"max_closed_to_analyse_for_duration": 3, "table_prefix": "function_",
                                       "labourers": {"w2": {}}}}),
            );
        let defaults =
            json!({"task_config": {"max_attempts": 2, "max_closed_to_analyse_for_duration": 2}});
        let overrides = json!({"task_config": {"table_prefix": "override_"}});
        let config: OrchestratorConfig =
            load_essential_config(&source, "sosw_orchestrator", defaults, Some(overrides))
                .await
                .expect("loads");
        let task = &config.task_config;
        assert_eq!(
            task.max_attempts, 2,
            "defaults override the essential config"
        );
        assert_eq!(
            task.max_closed_to_analyse_for_duration, 3,
            "the function config overrides defaults"
        );
        assert_eq!(task.table_prefix, "override_", "overrides win");
        let ids: Vec<&str> = task.labourers.keys().map(String::as_str).collect();
        assert_eq!(ids, ["w1", "w2"], "objects merge across documents");
    }

    #[tokio::test]
    async fn the_essential_config_can_set_a_key_with_a_built_in_default() {
        let source = StaticConfigSource::new().with(
            ESSENTIAL_CONFIG_NAME,
            json!({"invocation_number_coefficient": {"2": 0.1}}),
        );
        let config: OrchestratorConfig =
            load_essential_config(&source, "sosw_orchestrator", json!({}), None)
                .await
                .expect("loads");
        assert_eq!(config.invocation_number_coefficient.moderate, 0.1);
        assert_eq!(config.invocation_number_coefficient.high, 1.0);
    }

    #[tokio::test]
    async fn lists_from_a_later_document_replace_earlier_ones() {
        let source = StaticConfigSource::new()
            .with(
                ESSENTIAL_CONFIG_NAME,
                json!({"job_schema": {"chunkable_attrs": ["a", "b", "c"]}}),
            )
            .with(
                "sosw_scheduler_config",
                json!({"job_schema": {"chunkable_attrs": ["c", "a"]}}),
            );
        let config: SchedulerConfig =
            load_essential_config(&source, "sosw_scheduler", json!({}), None)
                .await
                .expect("loads");
        assert_eq!(config.job_schema.attr_names(), ["c", "a"]);
    }

    #[tokio::test]
    async fn no_documents_gives_the_built_in_defaults() {
        let config: OrchestratorConfig = load_essential_config(
            &StaticConfigSource::new(),
            "sosw_orchestrator",
            json!({}),
            None,
        )
        .await
        .expect("loads");
        assert_eq!(config, OrchestratorConfig::default());
    }

    #[tokio::test]
    async fn a_document_that_is_not_an_object_is_named() {
        let source = StaticConfigSource::new().with("sosw_orchestrator_config", json!(["x"]));
        let err = load_essential_config::<OrchestratorConfig, _>(
            &source,
            "sosw_orchestrator",
            json!({}),
            None,
        )
        .await
        .expect_err("a list is not a config");
        let (document, path, message) = config_error(err);
        assert_eq!(
            (document.as_str(), path.as_str()),
            ("sosw_orchestrator_config", ".")
        );
        assert!(
            message.contains("must be a JSON object, found an array"),
            "{message}"
        );

        let err = load_essential_config::<OrchestratorConfig, _>(
            &StaticConfigSource::new(),
            "sosw_orchestrator",
            json!({}),
            Some(json!(3)),
        )
        .await
        .expect_err("a number is not a config");
        assert_eq!(config_error(err).0, "overrides");
    }

    #[tokio::test]
    async fn errors_name_the_document_that_supplied_the_bad_value() {
        let source = StaticConfigSource::new()
            .with(
                ESSENTIAL_CONFIG_NAME,
                json!({"task_config": {"labourers": {"w1": {"arn": "a"}}}}),
            )
            .with(
                "sosw_orchestrator_config",
                json!({"task_config": {"max_attempts": 2}}),
            );
        let cases = [
            (
                json!({"task_config": {"labourers": {"w1": {"arnn": "b"}}}}),
                "sosw_orchestrator_config",
                "task_config.labourers.w1.arnn",
            ),
            (
                json!({"task_config": {"max_attempts": "x"}}),
                "sosw_orchestrator_config",
                "task_config.max_attempts",
            ),
        ];
        for (function_config, expected_document, expected_path) in cases {
            let source = source
                .clone()
                .with("sosw_orchestrator_config", function_config);
            let result = load_essential_config::<OrchestratorConfig, _>(
                &source,
                "sosw_orchestrator",
                json!({}),
                None,
            )
            .await;
            let (document, path, _) = config_error(result.expect_err("invalid"));
            assert_eq!(
                (document.as_str(), path.as_str()),
                (expected_document, expected_path)
            );
        }
        let bad_shared = source.with(
            ESSENTIAL_CONFIG_NAME,
            json!({"task_config": {"labourers": {"w1": {"health": "x"}}}}),
        );
        let err = load_essential_config::<OrchestratorConfig, _>(
            &bad_shared,
            "sosw_orchestrator",
            json!({}),
            None,
        )
        .await
        .expect_err("invalid shared config");
        assert_eq!(config_error(err).0, ESSENTIAL_CONFIG_NAME);
    }

    #[test]
    fn lookup_follows_objects_and_list_indexes() {
        let value = json!({"a": {"b": [{"c": 1}]}});
        assert_eq!(lookup(&value, &path_segments("a.b[0].c")), Some(&json!(1)));
        assert_eq!(lookup(&value, &path_segments("a.x")), None);
        assert_eq!(lookup(&value, &path_segments(".")), Some(&value));
    }

    /// A fresh directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("sosw-config-{tag}-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[tokio::test]
    async fn file_source_reads_json_files_and_misses_are_none() {
        let dir = TempDir::new("read");
        std::fs::write(
            dir.0.join("sosw_orchestrator_config.json"),
            r#"{"task_config": {}}"#,
        )
        .expect("write");
        let source = FileConfigSource::new(&dir.0);
        let found = source
            .get_config("sosw_orchestrator_config")
            .await
            .expect("reads");
        assert_eq!(found, Some(json!({"task_config": {}})));
        assert_eq!(
            source
                .get_config("sosw_scavenger_config")
                .await
                .expect("reads"),
            None
        );
    }

    #[tokio::test]
    async fn file_source_reports_invalid_json_with_file_line_and_column() {
        let dir = TempDir::new("invalid");
        std::fs::write(dir.0.join("broken.json"), "{\n  \"a\": 1,\n  \"b\": \n}").expect("write");
        let err = FileConfigSource::new(&dir.0)
            .get_config("broken")
            .await
            .expect_err("invalid JSON");
        let (document, _, message) = config_error(err);
        assert!(document.ends_with("broken.json"), "{document}");
        assert!(message.contains("line 4 column 1"), "{message}");
    }

    #[tokio::test]
    async fn file_source_rejects_non_objects_and_path_like_names() {
        let dir = TempDir::new("names");
        std::fs::write(dir.0.join("list.json"), "[1]").expect("write");
        let source = FileConfigSource::new(&dir.0);
        let (_, _, message) = config_error(source.get_config("list").await.expect_err("a list"));
        assert!(message.contains("found an array"), "{message}");
        for name in ["../etc/passwd", "a/b", "", ".hidden"] {
            let err = source.get_config(name).await.expect_err("not a plain name");
            assert!(
                matches!(
                    err,
                    Error::Invalid {
                        what: "config name",
                        ..
                    }
                ),
                "{name}: {err}"
            );
        }
    }
}
