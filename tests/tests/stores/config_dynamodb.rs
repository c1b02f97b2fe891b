//! `DynamoConfigSource` against DynamoDB Local (skipped when `SOSW_DYNAMODB_ENDPOINT` is unset).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::json;
use sosw::Error;
use sosw::aws::config_source::{DynamoConfigSource, create_config_table};
use sosw::config::{ConfigSource, OrchestratorConfig, load_essential_config};
use sosw_integration_tests::{dynamodb_client, unique_prefix};

/// A fresh config table, deleted on `cleanup`.
async fn config_table(client: &Client) -> String {
    let table = format!("{}config", unique_prefix());
    create_config_table(client, &table)
        .await
        .expect("config table is created");
    table
}

async fn cleanup(client: &Client, table: &str) {
    let _ = client.delete_table().table_name(table).send().await;
}

#[tokio::test]
async fn documents_round_trip_and_missing_rows_are_none() {
    let Some(client) = dynamodb_client().await else {
        return;
    };
    let table = config_table(&client).await;
    create_config_table(&client, &table)
        .await
        .expect("creating an existing table is a no-op");
    let source = DynamoConfigSource::new(client.clone()).with_table(&table);

    assert_eq!(
        source
            .get_config("sosw_orchestrator_config")
            .await
            .expect("reads"),
        None
    );
    let document =
        json!({"task_config": {"labourers": {"w1": {"max_simultaneous_invocations": 2}}}});
    source
        .put_config("sosw_orchestrator_config", &document)
        .await
        .expect("writes");
    let read = source
        .get_config("sosw_orchestrator_config")
        .await
        .expect("reads");
    assert_eq!(read, Some(document));

    let dev = source.clone().with_env("dev");
    assert_eq!(
        dev.get_config("sosw_orchestrator_config")
            .await
            .expect("reads"),
        None,
        "env separates rows"
    );
    cleanup(&client, &table).await;
}

#[tokio::test]
async fn rows_are_stored_as_sosw_07_writes_them() {
    let Some(client) = dynamodb_client().await else {
        return;
    };
    let table = config_table(&client).await;
    let source = DynamoConfigSource::new(client.clone()).with_table(&table);
    source
        .put_config("sosw_scavenger_config", &json!({"retry_tasks_limit": 5}))
        .await
        .expect("writes");
    let item = client
        .get_item()
        .table_name(&table)
        .key("env", AttributeValue::S("production".into()))
        .key(
            "config_name",
            AttributeValue::S("sosw_scavenger_config".into()),
        )
        .send()
        .await
        .expect("raw read")
        .item
        .expect("row exists");
    let text = item
        .get("config_value")
        .and_then(|v| v.as_s().ok())
        .expect("config_value is S");
    let stored: serde_json::Value = serde_json::from_str(text).expect("JSON text");
    assert_eq!(stored, json!({"retry_tasks_limit": 5}));
    cleanup(&client, &table).await;
}

#[tokio::test]
async fn a_row_that_is_not_a_json_object_is_a_config_error_naming_the_row() {
    let Some(client) = dynamodb_client().await else {
        return;
    };
    let table = config_table(&client).await;
    client
        .put_item()
        .table_name(&table)
        .item("env", AttributeValue::S("production".into()))
        .item("config_name", AttributeValue::S("odd_config".into()))
        .item("config_value", AttributeValue::S("[1, 2]".into()))
        .send()
        .await
        .expect("raw write");
    let source = DynamoConfigSource::new(client.clone()).with_table(&table);
    match source.get_config("odd_config").await {
        Err(Error::Config {
            document, message, ..
        }) => {
            assert!(
                document.contains(&table) && document.contains("odd_config"),
                "{document}"
            );
            assert!(message.contains("found an array"), "{message}");
        }
        other => panic!("expected a config error, got {other:?}"),
    }
    cleanup(&client, &table).await;
}

#[tokio::test]
async fn a_missing_table_is_a_non_retryable_store_error() {
    let Some(client) = dynamodb_client().await else {
        return;
    };
    let source = DynamoConfigSource::new(client).with_table(format!("{}absent", unique_prefix()));
    let err = source.get_config("any_config").await.expect_err("no table");
    assert!(
        matches!(
            err,
            Error::Store {
                store: "DynamoDB",
                operation: "get config",
                ..
            }
        ),
        "{err}"
    );
    assert!(!err.is_retryable(), "{err}");
}

#[tokio::test]
async fn essential_config_layers_load_from_the_table() {
    let Some(client) = dynamodb_client().await else {
        return;
    };
    let table = config_table(&client).await;
    let source = DynamoConfigSource::new(client.clone()).with_table(&table);
    source
        .put_config(
            "sosw_essential_config",
            &json!({"task_config": {"labourers": {"w1": {}}, "max_attempts": 4}}),
        )
        .await
        .expect("writes shared config");
    source
        .put_config(
            "sosw_orchestrator_config",
            &json!({"task_config": {"max_attempts_w1": 6}}),
        )
        .await
        .expect("writes function config");
    let config: OrchestratorConfig =
        load_essential_config(&source, "sosw_orchestrator", json!({}), None)
            .await
            .expect("loads");
    let w1 = config.task_config.labourer("w1").expect("configured");
    assert_eq!(w1.max_attempts, Some(6));
    assert_eq!(config.task_config.max_attempts, 4);
    cleanup(&client, &table).await;
}
