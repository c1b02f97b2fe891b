//! The sample config documents in `examples/configs` load through `FileConfigSource` and the layering,
//! and mean what their README says.

use std::path::PathBuf;

use serde_json::json;
use sosw::config::{
    ConfigSource, ESSENTIAL_CONFIG_NAME, FileConfigSource, OrchestratorConfig, ScavengerConfig,
    SchedulerConfig, WorkerAssistantConfig, load_essential_config,
};
use sosw::task::RetryPolicy;

const ESSENTIALS: [&str; 4] = [
    "sosw_orchestrator",
    "sosw_scavenger",
    "sosw_scheduler",
    "sosw_worker_assistant",
];

fn examples() -> FileConfigSource {
    FileConfigSource::new(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/configs"))
}

#[tokio::test]
async fn every_sample_document_is_a_known_config_name() {
    let source = examples();
    let entries = std::fs::read_dir(source.dir()).expect("examples/configs is readable");
    let mut names = Vec::new();
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .expect("utf-8 name");
            names.push(stem.to_string());
        }
    }
    names.sort();
    let mut expected: Vec<String> = ESSENTIALS.iter().map(|e| format!("{e}_config")).collect();
    expected.push(ESSENTIAL_CONFIG_NAME.to_string());
    expected.sort();
    assert_eq!(names, expected);
    for name in &names {
        let document = source.get_config(name).await.expect("valid JSON object");
        assert!(document.is_some(), "{name} is read");
    }
}

#[tokio::test]
async fn the_orchestrator_sees_the_shared_labourers_resolved() {
    let config: OrchestratorConfig =
        load_essential_config(&examples(), "sosw_orchestrator", json!({}), None)
            .await
            .expect("sample orchestrator config loads");
    let labourers = config.task_config.labourers_resolved();
    let ids: Vec<&str> = labourers.iter().map(|l| l.id.as_str()).collect();
    assert_eq!(
        ids,
        ["sosw_hello_worker", "sosw_tutorial_pull_tweeter_hashtags"]
    );
    let hello = &labourers[0];
    assert_eq!(hello.max_simultaneous_invocations, Some(10));
    assert_eq!(hello.max_attempts, Some(3));
    // The rows are shared with Python sosw 0.7.47's essentials, which reject `duration`, `cooldown` and
    // `retry` (B3): the sample leaves them out (local/ shows them), so sosw 0.7's fixed window applies.
    assert_eq!(hello.expiry_window(), 1200);
    assert_eq!(hello.retry_policy(), RetryPolicy::default());
    let tutorial = &labourers[1];
    assert_eq!(tutorial.max_attempts, Some(5), "max_attempts_<id> applies");
    assert_eq!(tutorial.health_metrics.len(), 1);
    assert_eq!(config.invocation_number_coefficient.for_status(3), 0.75);
}

#[tokio::test]
async fn the_scavenger_and_worker_assistant_samples_load() {
    let scavenger: ScavengerConfig =
        load_essential_config(&examples(), "sosw_scavenger", json!({}), None)
            .await
            .expect("sample scavenger config loads");
    assert_eq!(scavenger.retry_tasks_limit, 20);
    assert_eq!(
        scavenger.sns_config.recipient.as_deref(),
        Some("arn:aws:sns:us-west-2:000000000000:sosw_dead_tasks")
    );
    assert_eq!(scavenger.task_config.labourers.len(), 2);

    let assistant: WorkerAssistantConfig =
        load_essential_config(&examples(), "sosw_worker_assistant", json!({}), None)
            .await
            .expect("sample worker assistant config loads");
    assert_eq!(assistant.task_config.table_names().tasks, "sosw_tasks");
}

#[tokio::test]
async fn the_scheduler_sample_keeps_chunkable_attrs_in_order() {
    let config: SchedulerConfig =
        load_essential_config(&examples(), "sosw_scheduler", json!({}), None)
            .await
            .expect("sample scheduler config loads");
    assert_eq!(config.queue_bucket.as_deref(), Some("sosw-s3-000000000000"));
    let default = config.job_schema_for(None).expect("default schema");
    assert_eq!(default.attr_names(), ["topic", "word"]);
    let retail = config
        .job_schema_for(Some("retail"))
        .expect("retail schema");
    assert_eq!(retail.attr_names(), ["section", "store", "product"]);
}

#[tokio::test]
async fn overrides_win_over_the_sample_documents() {
    let overrides = json!({"task_config": {"table_prefix": "autotest_", "max_attempts": 7}});
    let config: OrchestratorConfig =
        load_essential_config(&examples(), "sosw_orchestrator", json!({}), Some(overrides))
            .await
            .expect("loads with overrides");
    assert_eq!(
        config.task_config.table_names().tasks,
        "autotest_sosw_tasks"
    );
    let hello = config
        .task_config
        .labourer("sosw_hello_worker")
        .expect("configured");
    assert_eq!(hello.max_attempts, Some(7));
}
