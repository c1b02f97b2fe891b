//! The AWS wiring: config rows read from the table and env the environment names, with the real
//! DynamoDB client over a mocked transport, and the essentials built from them.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::get_item::{GetItemInput, GetItemOutput};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use serde_json::json;
use sosw::lambda::settings::{
    CONFIG_ENV_VAR, CONFIG_TABLE_VAR, SCHEDULER_FUNCTION, WORKER_ASSISTANT_FUNCTION,
};
use sosw::lambda::{Settings, aws};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn sdk() -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .build()
}

fn settings(essential: &str) -> sosw::Result<Settings> {
    Settings::from_lookup(essential, |name| match name {
        CONFIG_TABLE_VAR => Some("dev_config".to_string()),
        CONFIG_ENV_VAR => Some("staging".to_string()),
        _ => None,
    })
}

fn key_is(req: &GetItemInput, name: &str, value: &str) -> bool {
    req.key()
        .and_then(|key| key.get(name))
        .is_some_and(|v| v == &AttributeValue::S(value.to_string()))
}

/// `GetItem` of row `config_name` in `dev_config` / `staging`, answering `document` (or no row).
fn row(config_name: &'static str, document: Option<serde_json::Value>) -> Rule {
    mock!(Client::get_item)
        .match_requests(move |req| {
            req.table_name() == Some("dev_config")
                && key_is(req, "env", "staging")
                && key_is(req, "config_name", config_name)
        })
        .then_output(move || {
            let item = document.as_ref().map(|doc| {
                [
                    ("env".to_string(), AttributeValue::S("staging".into())),
                    (
                        "config_name".to_string(),
                        AttributeValue::S(config_name.into()),
                    ),
                    (
                        "config_value".to_string(),
                        AttributeValue::S(doc.to_string()),
                    ),
                ]
                .into_iter()
                .collect()
            });
            GetItemOutput::builder().set_item(item).build()
        })
}

#[tokio::test]
async fn the_worker_assistant_reads_its_row_from_the_table_and_env_the_environment_names()
-> TestResult {
    let common = row(
        "sosw_essential_config",
        Some(json!({"task_config": {"table_prefix": "dev_"}})),
    );
    let own = row(
        "sosw_worker_assistant_config",
        Some(json!({"archive_completed": false, "task_config": {"max_attempts": 5}})),
    );
    let dynamodb = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&common, &own]);
    let clients = aws::Clients::new(sdk()).with_dynamodb(dynamodb);
    let service =
        aws::load_worker_assistant(&clients, &settings(WORKER_ASSISTANT_FUNCTION)?).await?;
    assert_eq!((common.num_calls(), own.num_calls()), (1, 1));
    let config = service.processor().config();
    assert!(!config.archive_completed);
    assert_eq!(config.task_config.max_attempts, 5);
    assert_eq!(
        config.task_config.table_names().tasks,
        "dev_sosw_tasks",
        "layered over the common row"
    );
    Ok(())
}

#[tokio::test]
async fn a_missing_row_gives_the_defaults_and_a_bad_row_is_an_error_naming_it() -> TestResult {
    let common = row("sosw_essential_config", None);
    let own = row("sosw_scheduler_config", None);
    let dynamodb = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&common, &own]);
    let clients = aws::Clients::new(sdk()).with_dynamodb(dynamodb);
    let service = aws::load_scheduler(&clients, &settings(SCHEDULER_FUNCTION)?).await?;
    assert_eq!(service.processor().config().shutdown_period, 60);

    let common = row("sosw_essential_config", None);
    let own = row(
        "sosw_scheduler_config",
        Some(json!({"shutdown_period": "soon"})),
    );
    let dynamodb = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&common, &own]);
    let clients = aws::Clients::new(sdk()).with_dynamodb(dynamodb);
    let err = aws::load_scheduler(&clients, &settings(SCHEDULER_FUNCTION)?)
        .await
        .err()
        .ok_or("a bad config must fail")?;
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("shutdown_period"), "{err}");
    Ok(())
}
