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
use sosw_core::store::{LabourerControl, PausedLabourer};
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

/// The config row holding the labourers `sosw pause` paused (`sosw_core::store::LabourerControl`).
///
/// Its `config_value` is `{}` (a valid, empty config document for any reader of config rows); the
/// pauses are in the map attribute `paused`: labourer id to the time it was paused (N, Unix seconds).
/// Each pause and resume is one `UpdateItem` of one map entry, so concurrent pauses of different
/// labourers never overwrite each other; the orchestrator reads the row with one consistent `GetItem`
/// per round, a call its role already makes on this table for its config.
pub const PAUSED_LABOURERS_ROW: &str = "sosw_paused_labourers";

/// The map attribute of [`PAUSED_LABOURERS_ROW`].
const PAUSED: &str = "paused";

impl DynamoConfigSource {
    async fn update_pause(
        &self,
        operation: &'static str,
        expression: &str,
        condition: Option<&str>,
        labourer_id: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<bool> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(ENV, AttributeValue::S(self.env.clone()))
            .key(
                CONFIG_NAME,
                AttributeValue::S(PAUSED_LABOURERS_ROW.to_string()),
            )
            .update_expression(expression)
            .expression_attribute_names("#paused", PAUSED);
        if expression.contains("#lab") || condition.is_some_and(|c| c.contains("#lab")) {
            request = request.expression_attribute_names("#lab", labourer_id);
        }
        if expression.contains("#value") {
            request = request.expression_attribute_names("#value", CONFIG_VALUE);
        }
        if let Some(condition) = condition {
            request = request.condition_expression(condition);
        }
        for (name, value) in values {
            request = request.expression_attribute_values(name, value);
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(sdk_error(operation, err)),
        }
    }
}

#[async_trait]
impl LabourerControl for DynamoConfigSource {
    async fn pause_labourer(&self, labourer_id: &str, now: i64) -> Result<bool> {
        let set = "SET #paused.#lab = :at";
        let only_new = "attribute_exists(#paused) AND attribute_not_exists(#paused.#lab)";
        let at = || vec![(":at", AttributeValue::N(now.to_string()))];
        if self
            .update_pause("pause labourer", set, Some(only_new), labourer_id, at())
            .await?
        {
            return Ok(true);
        }
        if self.is_paused_here(labourer_id).await? {
            return Ok(false);
        }
        // No row (or no map) yet: create an empty one, keeping any a concurrent pause made.
        self.update_pause(
            "pause labourer",
            "SET #paused = if_not_exists(#paused, :empty), #value = if_not_exists(#value, :doc)",
            None,
            labourer_id,
            vec![
                (":empty", AttributeValue::M(HashMap::new())),
                (":doc", AttributeValue::S("{}".into())),
            ],
        )
        .await?;
        self.update_pause("pause labourer", set, Some(only_new), labourer_id, at())
            .await
    }

    async fn resume_labourer(&self, labourer_id: &str) -> Result<bool> {
        self.update_pause(
            "resume labourer",
            "REMOVE #paused.#lab",
            Some("attribute_exists(#paused.#lab)"),
            labourer_id,
            Vec::new(),
        )
        .await
    }

    async fn paused_labourers(&self) -> Result<Vec<PausedLabourer>> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(ENV, AttributeValue::S(self.env.clone()))
            .key(
                CONFIG_NAME,
                AttributeValue::S(PAUSED_LABOURERS_ROW.to_string()),
            )
            .consistent_read(true)
            .send()
            .await;
        let output = match output {
            Ok(output) => output,
            // No config table, no pause: nothing can have been paused in it (and no essential reads
            // its config from it).
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_not_found_exception()) =>
            {
                return Ok(Vec::new());
            }
            Err(err) => return Err(sdk_error("paused labourers", err)),
        };
        let Some(item) = output.item() else {
            return Ok(Vec::new());
        };
        let Some(paused) = item.get(PAUSED) else {
            return Ok(Vec::new());
        };
        let invalid = |message: String| Error::Config {
            document: self.row_name(PAUSED_LABOURERS_ROW),
            path: PAUSED.to_string(),
            message,
        };
        let map = paused
            .as_m()
            .map_err(|_| invalid("must be a map (M) of labourer id to Unix seconds".into()))?;
        let mut out = Vec::with_capacity(map.len());
        for (labourer_id, at) in map {
            let paused_at = at
                .as_n()
                .ok()
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "`{labourer_id}` must map to a number (N) of Unix seconds"
                    ))
                })?;
            out.push(PausedLabourer {
                labourer_id: labourer_id.clone(),
                paused_at,
            });
        }
        out.sort_by(|a, b| a.labourer_id.cmp(&b.labourer_id));
        Ok(out)
    }
}

impl DynamoConfigSource {
    async fn is_paused_here(&self, labourer_id: &str) -> Result<bool> {
        Ok(self
            .paused_labourers()
            .await?
            .iter()
            .any(|p| p.labourer_id == labourer_id))
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
