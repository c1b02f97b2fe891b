//! What DynamoDB Local cannot show: throttled calls are resent with backoff, and give up with an error
//! naming the table and key. Everything else is tested against DynamoDB Local (`stores::dynamo_db_client`).

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ErrorMetadata;
use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
use aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException;
use aws_smithy_mocks::{RuleMode, mock, mock_client};
use serde_json::json;

use super::{DynamoDbClient, DynamoDbConfig};
use crate::dynamodb::BatchRetry;

fn throttled() -> PutItemError {
    PutItemError::ProvisionedThroughputExceededException(
        ProvisionedThroughputExceededException::builder()
            .message("slow down")
            .meta(
                ErrorMetadata::builder()
                    .code("ProvisionedThroughputExceededException")
                    .message("slow down")
                    .build(),
            )
            .build(),
    )
}

/// The SDK's own retries off, so every resend counted is this client's.
fn no_sdk_retries(conf: aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder {
    conf.retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
}

fn client(c: Client) -> DynamoDbClient {
    DynamoDbClient::new(
        c,
        DynamoDbConfig {
            table_name: "words".into(),
            hash_key: Some("word".into()),
            ..DynamoDbConfig::default()
        },
    )
    .with_retry(BatchRetry {
        max_retries: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
    })
}

#[tokio::test]
async fn throttled_puts_are_resent_until_they_succeed() {
    let first = mock!(Client::put_item).then_error(throttled);
    let second = mock!(Client::put_item).then_error(throttled);
    let ok = mock!(Client::put_item).then_output(|| PutItemOutput::builder().build());
    let db = client(mock_client!(
        aws_sdk_dynamodb,
        RuleMode::Sequential,
        [&first, &second, &ok],
        no_sdk_retries
    ));
    let written = db
        .put(&json!({"word": "hello"}), true)
        .await
        .expect("written after two throttled answers");
    assert!(written);
    assert_eq!(db.get_stats().get("dynamo_throttled_retries"), Some(&2));
    assert_eq!(ok.num_calls(), 1);
}

#[tokio::test]
async fn a_put_throttled_beyond_its_retries_names_the_table_and_key() {
    let always = mock!(Client::put_item)
        .sequence()
        .error(throttled)
        .times(10)
        .build();
    let db = client(mock_client!(
        aws_sdk_dynamodb,
        RuleMode::Sequential,
        [&always],
        no_sdk_retries
    ));
    let err = db
        .put(&json!({"word": "hello"}), true)
        .await
        .expect_err("gives up");
    let msg = format!(
        "{err}: {}",
        std::error::Error::source(&err)
            .map(ToString::to_string)
            .unwrap_or_default()
    );
    assert!(
        msg.contains("`words`")
            && msg.contains("word: \"hello\"")
            && msg.contains("ProvisionedThroughputExceeded"),
        "{msg}"
    );
    assert!(err.is_retryable(), "throttling may pass later");
    assert_eq!(always.num_calls(), 4, "the first call and three resends");
}
