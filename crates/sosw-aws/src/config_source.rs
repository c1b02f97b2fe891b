//! [`ConfigSource`] over sosw 0.7's DynamoDB `config` table.
//!
//! The table has hash key `env` (S) and range key `config_name` (S); each row's `config_value` (S)
//! holds a JSON object as text. sosw 0.7 read `env = production` from the table `config`; both are
//! configurable here.
//!
//! A document is one `GetItem` (sosw 0.7 used `DescribeTable` and a `Query`), so the function's role
//! needs `dynamodb:GetItem` on the table; sosw 0.7's example roles grant only `Query` and
//! `DescribeTable`.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType,
};
use serde_json::Value;

use sosw_core::config::ConfigSource;
use sosw_core::error::{Error, Result};
use sosw_core::task::json_kind;

/// The config table's name in sosw 0.7.
pub const DEFAULT_CONFIG_TABLE: &str = "config";

/// The `env` sosw 0.7's essentials read.
pub const DEFAULT_CONFIG_ENV: &str = "production";

const ENV: &str = "env";
const CONFIG_NAME: &str = "config_name";
const CONFIG_VALUE: &str = "config_value";

/// How long [`create_config_table`] waits for a new table to become active.
const CREATE_WAIT: Duration = Duration::from_secs(120);

/// Config documents in sosw 0.7's DynamoDB `config` table: one `GetItem` per document.
#[derive(Debug, Clone)]
pub struct DynamoConfigSource {
    client: Client,
    table: String,
    env: String,
}

impl DynamoConfigSource {
    /// A source reading table `config`, env `production`.
    pub fn new(client: Client) -> Self {
        DynamoConfigSource {
            client,
            table: DEFAULT_CONFIG_TABLE.to_string(),
            env: DEFAULT_CONFIG_ENV.to_string(),
        }
    }

    /// This source reading table `table` instead.
    pub fn with_table(mut self, table: impl Into<String>) -> Self {
        self.table = table.into();
        self
    }

    /// This source reading rows of env `env` instead.
    pub fn with_env(mut self, env: impl Into<String>) -> Self {
        self.env = env.into();
        self
    }

    /// The table read.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The env read.
    pub fn env(&self) -> &str {
        &self.env
    }

    /// Writes document `name` (a JSON object) as JSON text, replacing any existing row. For tooling
    /// and tests; essentials only read.
    pub async fn put_config(&self, name: &str, value: &Value) -> Result<()> {
        if !value.is_object() {
            return Err(Error::invalid(
                "config document",
                format!("`{name}` must be a JSON object, found {}", json_kind(value)),
            ));
        }
        let text = serde_json::to_string(value)
            .map_err(|err| Error::invalid("config document", err.to_string()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item(ENV, AttributeValue::S(self.env.clone()))
            .item(CONFIG_NAME, AttributeValue::S(name.to_string()))
            .item(CONFIG_VALUE, AttributeValue::S(text))
            .send()
            .await
            .map_err(|err| sdk_error("put config", err))?;
        Ok(())
    }

    /// How errors name a row: table, env and config name.
    fn row_name(&self, name: &str) -> String {
        format!(
            "{} row (env `{}`, config_name `{name}`)",
            self.table, self.env
        )
    }
}

#[async_trait]
impl ConfigSource for DynamoConfigSource {
    async fn get_config(&self, name: &str) -> Result<Option<Value>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ENV, AttributeValue::S(self.env.clone()))
            .key(CONFIG_NAME, AttributeValue::S(name.to_string()))
            // One read per document per container: a consistent read costs little and sees the
            // latest write.
            .consistent_read(true)
            .send()
            .await
            .map_err(|err| sdk_error("get config", err))?;
        output
            .item()
            .map(|item| config_from_row(item, &self.row_name(name)))
            .transpose()
    }
}

/// The JSON object in a row's `config_value`.
fn config_from_row(item: &HashMap<String, AttributeValue>, row: &str) -> Result<Value> {
    let invalid = |message: String| Error::Config {
        document: row.to_string(),
        path: CONFIG_VALUE.to_string(),
        message,
    };
    let text = match item.get(CONFIG_VALUE) {
        Some(AttributeValue::S(text)) => text,
        Some(_) => {
            return Err(invalid(
                "must be a string attribute (S) holding JSON".into(),
            ));
        }
        None => return Err(invalid("is missing; the row holds no config".into())),
    };
    let value: Value = serde_json::from_str(text).map_err(|err| {
        invalid(format!(
            "is not valid JSON (line {} column {}): {err}",
            err.line(),
            err.column()
        ))
    })?;
    if !value.is_object() {
        return Err(invalid(format!(
            "must hold a JSON object, found {}",
            json_kind(&value)
        )));
    }
    Ok(value)
}

/// Creates a config table `name` with sosw 0.7's key schema, on demand (PAY_PER_REQUEST), and waits
/// until it is active. An existing table is left as it is.
pub async fn create_config_table(client: &Client, name: &str) -> Result<()> {
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(string_attribute(ENV)?)
        .attribute_definitions(string_attribute(CONFIG_NAME)?)
        .key_schema(key(ENV, KeyType::Hash)?)
        .key_schema(key(CONFIG_NAME, KeyType::Range)?)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(err) => return Err(sdk_error("create config table", err)),
    }
    client
        .wait_until_table_exists()
        .table_name(name)
        .wait(CREATE_WAIT)
        .await
        .map_err(|err| Error::store("DynamoDB", "create config table", true, err))?;
    Ok(())
}

fn string_attribute(name: &str) -> Result<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|err| Error::store("DynamoDB", "create config table", false, err))
}

fn key(name: &str, key_type: KeyType) -> Result<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|err| Error::store("DynamoDB", "create config table", false, err))
}

/// Maps an SDK error at the edge: the service error itself when there is one (its message names the
/// cause), and whether a later retry can succeed.
fn sdk_error<E>(operation: &'static str, err: SdkError<E>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let retryable = is_retryable(&err);
    match err {
        SdkError::ServiceError(service) => {
            Error::store("DynamoDB", operation, retryable, service.into_err())
        }
        other => Error::store("DynamoDB", operation, retryable, other),
    }
}

fn is_retryable<E: ProvideErrorMetadata>(err: &SdkError<E>) -> bool {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => matches!(
            service.err().code(),
            Some(
                "ThrottlingException"
                    | "ProvisionedThroughputExceededException"
                    | "RequestLimitExceeded"
                    | "InternalServerError"
                    | "ServiceUnavailable"
            )
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ROW: &str = "config row (env `production`, config_name `x_config`)";

    fn row(value: AttributeValue) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (ENV.to_string(), AttributeValue::S("production".into())),
            (
                CONFIG_NAME.to_string(),
                AttributeValue::S("x_config".into()),
            ),
            (CONFIG_VALUE.to_string(), value),
        ])
    }

    #[test]
    fn a_row_with_a_json_object_is_read() {
        let item = row(AttributeValue::S(
            r#"{"task_config": {"max_attempts": 2}}"#.into(),
        ));
        let value = config_from_row(&item, ROW).expect("valid row");
        assert_eq!(value, json!({"task_config": {"max_attempts": 2}}));
    }

    #[test]
    fn bad_rows_are_config_errors_naming_the_row() {
        let cases = [
            (Some(AttributeValue::S("[1, 2]".into())), "found an array"),
            (Some(AttributeValue::S("\"text\"".into())), "found a string"),
            (
                Some(AttributeValue::S("{nope".into())),
                "not valid JSON (line 1 column 2)",
            ),
            (Some(AttributeValue::N("1".into())), "string attribute (S)"),
            (None, "is missing"),
        ];
        for (value, expected) in cases {
            let mut item = row(AttributeValue::Null(true));
            match value {
                Some(value) => item.insert(CONFIG_VALUE.to_string(), value),
                None => item.remove(CONFIG_VALUE),
            };
            match config_from_row(&item, ROW) {
                Err(Error::Config {
                    document,
                    path,
                    message,
                }) => {
                    assert_eq!(document, ROW);
                    assert_eq!(path, CONFIG_VALUE);
                    assert!(message.contains(expected), "{message}");
                }
                other => panic!("expected a config error for {expected}, got {other:?}"),
            }
        }
    }

    #[test]
    fn builder_defaults_are_sosw_07_table_and_env() {
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .build();
        let source = DynamoConfigSource::new(Client::from_conf(config));
        assert_eq!((source.table(), source.env()), ("config", "production"));
        let source = source.with_table("autotest_config").with_env("dev");
        assert_eq!((source.table(), source.env()), ("autotest_config", "dev"));
        assert_eq!(
            source.row_name("a_config"),
            "autotest_config row (env `dev`, config_name `a_config`)"
        );
    }
}
