//! A sosw worker with a table of its own, as sosw 0.7's documented worker (`self.dynamo_db_client.put(row)`):
//! each task counts the words of a text and writes one row per word. The table comes from the worker's
//! config row, in sosw 0.7's shape:
//!
//! ```json
//! {"dynamo_db_config": {"table_name": "word_counts", "required_fields": ["word", "text_id"],
//!  "field_names": {"count": "word_count"}}}
//! ```
//!
//! The table has hash key `word` (S) and range key `text_id` (S). Build a bundle with
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

/// One task's work: a row per word of the text, and the number of distinct words as a stat.
async fn words(task: Text, ctx: WorkerContext) -> Result<Value, WorkError> {
    let config = table_config(ctx.config())?;
    let db = DB.get_or_init(|| DynamoDbClient::from_env(config)).await;
    let counts = count_words(&task.text);
    for (word, count) in &counts {
        let row = WordCount {
            word: word.clone(),
            text_id: task.text_id.clone(),
            count: *count,
        };
        // A retried task writes the same rows again: overwriting keeps it idempotent.
        db.put(&row, true)
            .await
            .map_err(|e| WorkError::retryable(e.to_string()))?;
    }
    // A running total per word across texts, in the row with `text_id` "*". `count` is a DynamoDB
    // reserved word: the client puts every attribute name behind a placeholder.
    for (word, count) in &counts {
        db.update(
            &json!({"word": word, "text_id": "*"}),
            &Update::new().increment("count", *count),
        )
        .await
        .map_err(|e| WorkError::retryable(e.to_string()))?;
    }
    ctx.add("distinct_words", counts.len() as u64);
    Ok(json!({ "words": counts.len() }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    sosw::worker::run(worker_fn(words)).await
}

#[cfg(test)]
mod tests {
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
}
