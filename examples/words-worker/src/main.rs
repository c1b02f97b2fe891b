//! A sosw worker with a table of its own, as sosw 0.7's documented worker (`self.dynamo_db_client.put(row)`):
//! each task counts the words of a text and writes one row per word, and a summary row per text. The table
//! comes from the worker's config row, in sosw 0.7's shape:
//!
//! ```json
//! {"dynamo_db_config": {"table_name": "word_counts", "required_fields": ["word", "text_id"],
//!  "field_names": {"count": "word_count"}}}
//! ```
//!
//! The table has hash key `word` (S) and range key `text_id` (S). The tests run [`record`] on DynamoDB
//! Local when `SOSW_DYNAMODB_ENDPOINT` is set (`make test` sets it). Build a bundle with
//! `cargo lambda build --release -p words-worker`, or see docs/deploy.md.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sosw::dynamo_db::{DynamoDbClient, DynamoDbConfig, Update};
use sosw::worker::{WorkError, WorkerContext, worker_fn};
use tokio::sync::OnceCell;

/// One task's payload.
#[derive(Deserialize)]
struct Text {
    text_id: String,
    text: String,
}

/// One row of the worker's table.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct WordCount {
    word: String,
    text_id: String,
    count: u64,
}

/// The table's client: built once per container, from the first task's config.
static DB: OnceCell<DynamoDbClient> = OnceCell::const_new();

/// The `dynamo_db_config` of the worker's config row.
fn table_config(config: &serde_json::Map<String, Value>) -> Result<DynamoDbConfig, WorkError> {
    let raw = config.get("dynamo_db_config").cloned().ok_or_else(|| {
        WorkError::non_retryable("the worker's config row has no `dynamo_db_config`")
    })?;
    serde_json::from_value(raw)
        .map_err(|e| WorkError::non_retryable(format!("invalid `dynamo_db_config`: {e}")))
}

/// Counts of each word of `text`, lower-cased.
fn count_words(text: &str) -> BTreeMap<String, u64> {
    let mut counts = BTreeMap::new();
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        *counts.entry(word.to_lowercase()).or_insert(0) += 1;
    }
    counts
}

/// Writes one row per word of `task` (its count in that text) and the text's summary row (`word` "*":
/// how many distinct words it has). A retried task writes the same rows again: `put` with overwrite
/// and `update` with `set` keep it idempotent. Returns the counts.
async fn record(db: &DynamoDbClient, task: &Text) -> sosw::Result<BTreeMap<String, u64>> {
    let counts = count_words(&task.text);
    for (word, count) in &counts {
        let row = WordCount {
            word: word.clone(),
            text_id: task.text_id.clone(),
            count: *count,
        };
        db.put(&row, true).await?;
    }
    // `count` and `status` are DynamoDB reserved words: the client puts every attribute name behind a
    // placeholder, so they need no care here.
    db.update(
        &json!({"word": SUMMARY, "text_id": task.text_id}),
        &Update::new()
            .set("count", counts.len() as u64)
            .set("status", "counted"),
    )
    .await?;
    Ok(counts)
}

/// The `word` of each text's summary row.
const SUMMARY: &str = "*";

/// One task's work: [`record`], with the number of distinct words as a stat.
async fn words(task: Text, ctx: WorkerContext) -> Result<Value, WorkError> {
    let config = table_config(ctx.config())?;
    let db = DB.get_or_init(|| DynamoDbClient::from_env(config)).await;
    // A `sosw::Error` keeps its retryability through `?` (a missing required field is not retried).
    let counts = record(db, &task).await?;
    ctx.add("distinct_words", counts.len() as u64);
    Ok(json!({ "words": counts.len() }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    sosw::worker::run(worker_fn(words)).await
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::types::AttributeValue;
    use sosw::dynamo_db::{Query, Scan};

    use super::*;

    #[test]
    fn words_are_counted_lower_case() {
        let counts = count_words("The cat, the hat.");
        assert_eq!(counts.get("the"), Some(&2));
        assert_eq!(counts.get("cat"), Some(&1));
        assert_eq!(counts.len(), 3);
    }

    #[test]
    fn the_table_comes_from_a_sosw_07_config_row() {
        let row = json!({"dynamo_db_config": {"table_name": "word_counts",
            "row_mapper": {"word": "S", "text_id": "S", "count": "N"},
            "required_fields": ["word", "text_id"], "field_names": {"count": "word_count"}}});
        let config = table_config(row.as_object().expect("object")).expect("parses");
        assert_eq!(config.table_name, "word_counts");
        assert_eq!(
            config.field_names.get("count").map(String::as_str),
            Some("word_count")
        );
        let missing = table_config(&serde_json::Map::new()).expect_err("no table");
        assert!(!missing.is_retryable());
        let typo = json!({"dynamo_db_config": {"tablename": "x"}});
        assert!(table_config(typo.as_object().expect("object")).is_err());
    }

    /// The DynamoDB Local endpoint, or `None` to skip (a failure when `SOSW_REQUIRE_EMULATORS=1`).
    fn endpoint() -> Option<String> {
        match std::env::var("SOSW_DYNAMODB_ENDPOINT") {
            Ok(url) if !url.trim().is_empty() => Some(url),
            _ => {
                assert!(
                    std::env::var("SOSW_REQUIRE_EMULATORS").as_deref() != Ok("1"),
                    "SOSW_DYNAMODB_ENDPOINT is not set but SOSW_REQUIRE_EMULATORS=1"
                );
                eprintln!("skipped: SOSW_DYNAMODB_ENDPOINT is not set");
                None
            }
        }
    }

    /// A fresh `word` / `text_id` table on DynamoDB Local and a client over it, configured as the module
    /// docs show.
    async fn table(endpoint: &str) -> (aws_sdk_dynamodb::Client, DynamoDbClient) {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        };
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .test_credentials()
            .load()
            .await;
        let raw = aws_sdk_dynamodb::Client::new(&sdk);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let name = format!("word_counts_{}_{nanos}", std::process::id());
        let mut create = raw
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest);
        for (attr, key) in [("word", KeyType::Hash), ("text_id", KeyType::Range)] {
            create = create
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(attr)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .expect("attribute"),
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(attr)
                        .key_type(key)
                        .build()
                        .expect("key"),
                );
        }
        create
            .send()
            .await
            .expect("table created on DynamoDB Local");
        let row = json!({"dynamo_db_config": {"table_name": name,
            "required_fields": ["word", "text_id"], "field_names": {"count": "word_count"}}});
        let config = table_config(row.as_object().expect("object")).expect("parses");
        (raw.clone(), DynamoDbClient::new(raw, config))
    }

    #[tokio::test]
    async fn texts_are_recorded_in_the_workers_table_on_dynamodb_local() {
        let Some(endpoint) = endpoint() else {
            return;
        };
        let (raw, db) = table(&endpoint).await;
        let first = Text {
            text_id: "t1".into(),
            text: "The cat, the hat.".into(),
        };
        let second = Text {
            text_id: "t2".into(),
            text: "the end".into(),
        };
        record(&db, &first).await.expect("recorded");
        record(&db, &first)
            .await
            .expect("a retried task is recorded again");
        record(&db, &second).await.expect("recorded");

        let the: Vec<WordCount> = db
            .get_by_query(&Query::new("word", "the"))
            .await
            .expect("query");
        assert_eq!(
            the,
            vec![
                WordCount {
                    word: "the".into(),
                    text_id: "t1".into(),
                    count: 2
                },
                WordCount {
                    word: "the".into(),
                    text_id: "t2".into(),
                    count: 1
                },
            ],
            "one row per text, unchanged by the retry"
        );
        let summary: Option<WordCount> = db
            .get(&json!({"word": SUMMARY, "text_id": "t1"}))
            .await
            .expect("get");
        assert_eq!(summary.map(|s| s.count), Some(3), "distinct words of t1");

        let stored = raw
            .get_item()
            .table_name(db.table_name())
            .key("word", AttributeValue::S("cat".into()))
            .key("text_id", AttributeValue::S("t1".into()))
            .send()
            .await
            .expect("raw get")
            .item
            .expect("the row of `cat`");
        assert_eq!(
            stored.get("word_count"),
            Some(&AttributeValue::N("1".into())),
            "`count` is stored as `word_count` (field_names)"
        );
        let all: Vec<WordCount> = db.get_by_scan(&Scan::new()).await.expect("scan");
        assert_eq!(
            all.len(),
            3 + 2 + 2,
            "t1: the, cat, hat; t2: the, end; two summaries"
        );
        raw.delete_table()
            .table_name(db.table_name())
            .send()
            .await
            .expect("table deleted");
    }
}
