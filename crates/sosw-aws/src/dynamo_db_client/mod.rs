//! `DynamoDbClient`: a typed DynamoDB client for workers, configured like sosw 0.7's (`dynamo_db_config`:
//! `table_name`, `row_mapper`, `required_fields`, `field_names`), with serde types where sosw 0.7 had row
//! mappers.
//!
//! Rows are any `Serialize` / `DeserializeOwned` type: a string stays a string and a number a number
//! (sosw 0.7 guessed `"-5"` as text and `"true"` as a boolean, B21). Conditions, queries, scans and
//! updates are values ([`Condition`], [`Query`], [`Scan`], [`Update`]) rendered with every attribute
//! name behind a placeholder, so reserved words (`name`, `status`, `size`, ...) always work. Every page
//! of a query or scan is followed; throttled calls are retried with exponential backoff and jitter
//! ([`DynamoDbClient::with_retry`]); unprocessed keys of a batch read are resent the same way. Errors
//! name the table and the key.
//!
//! sosw 0.7's B21 and what this client does instead:
//! * `sleep_db` (paced by the table's capacity, read from the wrong table) is not ported: throttling
//!   answers are retried with backoff, whatever the table's capacity mode;
//! * `required_fields` is enforced, on every write and every read;
//! * no type guessing: the row's serde type decides (`row_mapper`, when given, is checked against what
//!   is written);
//! * [`DynamoDbClient::transact_write`] sends up to 100 items in one atomic call and refuses more
//!   (sosw 0.7 split them into calls of 10, so a "transaction" was not atomic);
//! * every attribute name in an expression is a placeholder (sosw 0.7 left names in filters and
//!   `REMOVE` clauses bare).
//!
//! Construction makes no request (sosw 0.7 called `DescribeTable` in its constructor, B16); the table's
//! keys are described once, when first needed.
//!
//! ```no_run
//! # async fn demo() -> sosw_core::Result<()> {
//! use serde::{Deserialize, Serialize};
//! use sosw_aws::dynamo_db_client::{DynamoDbClient, DynamoDbConfig, Query, RangeCondition};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Row {
//!     word: String,
//!     count: u32,
//! }
//!
//! let config: DynamoDbConfig = serde_json::from_value(serde_json::json!({
//!     "table_name": "words", "required_fields": ["word"]
//! }))
//! .expect("a valid config");
//! let db = DynamoDbClient::from_env(config).await;
//! db.put(&Row { word: "hello".into(), count: 1 }, true).await?;
//! let rows: Vec<Row> = db
//!     .get_by_query(&Query::new("word", "hello").range("count", RangeCondition::Ge(1.into())))
//!     .await?;
//! # let _ = rows;
//! # Ok(())
//! # }
//! ```

mod requests;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::Mutex;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, KeySchemaElement, KeyType, KeysAndAttributes, Put, Select,
    TransactWriteItem,
};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use futures::Stream;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::dynamodb::BatchRetry;
use crate::dynamodb::expr::Placeholders;
use sosw_core::{Error, Result};

pub use requests::{Condition, Op, Query, RangeCondition, Scan, Update};

/// One raw item.
type Item = HashMap<String, AttributeValue>;

/// Most items of one `TransactWriteItems` call.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// Most keys of one `BatchGetItem` call.
const BATCH_GET_KEYS: usize = 100;

/// Error codes of a throttled call: rejected before anything was written, so resending is safe.
const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
];

/// sosw 0.7's `dynamo_db_config`. Its other keys (`region_name`, `index_name`, `hash_key`,
/// `dont_json_loads_results`) are accepted too; a key sosw 0.7 never had is refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamoDbConfig {
    /// The table.
    pub table_name: String,
    /// sosw 0.7's field types (`S`, `N`, `M`, `BOOL`, `L`, `SS`, `NS`, `B`, `BS`, `NULL`). Rows are
    /// typed by serde here; when given, a written attribute of another type is refused.
    #[serde(default)]
    pub row_mapper: BTreeMap<String, String>,
    /// Fields every row must have (non-null), on write and on read.
    #[serde(default)]
    pub required_fields: Vec<String>,
    /// Renames: the row's field name to the table's attribute name, applied both ways and in every
    /// key, condition and update.
    #[serde(default)]
    pub field_names: BTreeMap<String, String>,
    /// The table's hash key; described from the table when not given.
    #[serde(default)]
    pub hash_key: Option<String>,
    /// The index scans use when the [`Scan`] names none.
    #[serde(default)]
    pub index_name: Option<String>,
    /// The region, overriding the environment's ([`DynamoDbClient::from_env`]).
    #[serde(default)]
    pub region_name: Option<String>,
    /// Accepted for sosw 0.7 rows and ignored: nothing is JSON-decoded by guess here (a field that
    /// holds JSON text is a `String`, or use a nested type, which is stored as a map).
    #[serde(default)]
    pub dont_json_loads_results: bool,
}

/// A table's or an index's provisioned capacity (0/0 for on-demand tables, as DynamoDB reports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    /// Read capacity units.
    pub read: i64,
    /// Write capacity units.
    pub write: i64,
}

/// One secondary index of the table ([`DynamoDbClient::get_table_indexes`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableIndex {
    /// Its hash key.
    pub hash_key: String,
    /// Its range key, if any.
    pub range_key: Option<String>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection: String,
    /// Whether it is a local secondary index.
    pub local: bool,
    /// Its capacity, else the table's (as sosw 0.7 reported it).
    pub capacity: Option<Capacity>,
}

/// One item of [`DynamoDbClient::transact_write`]: made by [`DynamoDbClient::make_put_transaction_item`]
/// or [`DynamoDbClient::make_delete_transaction_item`].
#[derive(Debug, Clone)]
pub struct TransactionItem(TransactWriteItem);

/// The table's keys, described once.
#[derive(Debug, Clone)]
struct TableKeys {
    hash: String,
    range: Option<String>,
}

/// A typed DynamoDB client over one table (see the module docs).
#[derive(Debug)]
pub struct DynamoDbClient {
    client: Client,
    config: DynamoDbConfig,
    retry: BatchRetry,
    keys: OnceCell<TableKeys>,
    stats: Mutex<BTreeMap<String, u64>>,
}

impl DynamoDbClient {
    /// A client of `config.table_name` through `client`. Makes no request.
    pub fn new(client: Client, config: DynamoDbConfig) -> Self {
        DynamoDbClient {
            client,
            config,
            retry: BatchRetry::default(),
            keys: OnceCell::new(),
            stats: Mutex::new(BTreeMap::new()),
        }
    }

    /// A client built from the environment's SDK config ([`crate::http::load_sdk_config`]), in
    /// `config.region_name` when it is set.
    pub async fn from_env(config: DynamoDbConfig) -> Self {
        let sdk = crate::http::load_sdk_config().await;
        let mut builder = aws_sdk_dynamodb::config::Builder::from(&sdk);
        if let Some(region) = &config.region_name {
            builder = builder.region(aws_sdk_dynamodb::config::Region::new(region.clone()));
        }
        DynamoDbClient::new(Client::from_conf(builder.build()), config)
    }

    /// The same client with another policy for throttled calls and unprocessed batch keys (default:
    /// 8 resends, 50 ms doubling up to 5 s, with jitter).
    pub fn with_retry(mut self, retry: BatchRetry) -> Self {
        self.retry = retry;
        self
    }

    /// The table.
    pub fn table_name(&self) -> &str {
        &self.config.table_name
    }

    /// The config in use.
    pub fn config(&self) -> &DynamoDbConfig {
        &self.config
    }

    // ---- rows -------------------------------------------------------------------------------

    /// Writes `row` (sosw 0.7's `put`). With `overwrite` false (sosw 0.7's `create`) an existing item
    /// with the same key is left alone and `false` returned. `true` when written.
    pub async fn put<T: Serialize>(&self, row: &T, overwrite: bool) -> Result<bool> {
        let item = self.row_to_item(row)?;
        let key = self.key_text(&item);
        let mut request = self
            .client
            .put_item()
            .table_name(self.table_name())
            .set_item(Some(item));
        if !overwrite {
            let hash = self.hash_key().await?;
            let mut p = Placeholders::default();
            let condition = format!("attribute_not_exists({})", p.name(&hash));
            request = request
                .condition_expression(condition)
                .set_expression_attribute_names(p.names_opt());
        }
        self.count("dynamo_put_queries");
        match self.send(|| request.clone().send()).await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(self.error("put", &key, e)),
        }
    }

    /// The item with `keys` (a value serializing to the key attributes), if any.
    pub async fn get<K: Serialize, T: DeserializeOwned>(&self, keys: &K) -> Result<Option<T>> {
        let key = self.keys_to_item(keys)?;
        let text = self.key_text(&key);
        let request = self
            .client
            .get_item()
            .table_name(self.table_name())
            .set_key(Some(key));
        self.count("dynamo_get_queries");
        let out = self
            .send(|| request.clone().send())
            .await
            .map_err(|e| self.error("get", &text, e))?;
        out.item.map(|item| self.item_to_row(item)).transpose()
    }

    /// The items `query` selects (sosw 0.7's `get_by_query`), every page followed, up to its limit.
    pub async fn get_by_query<T: DeserializeOwned>(&self, query: &Query) -> Result<Vec<T>> {
        let mut rows = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let remaining = query.limit.map(|l| l.saturating_sub(rows.len()));
            if remaining == Some(0) {
                break;
            }
            let request = self.query_request(query, None, start.take(), remaining)?;
            self.count("dynamo_get_queries");
            let out = self
                .send(|| request.clone().send())
                .await
                .map_err(|e| self.error("query", &query_text(query), e))?;
            for item in out.items.unwrap_or_default() {
                if query.limit.is_some_and(|l| rows.len() >= l) {
                    break;
                }
                rows.push(self.item_to_row(item)?);
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(rows)
    }

    /// How many items `query` selects (sosw 0.7's `return_count=True`), every page counted; the
    /// query's limit does not apply.
    pub async fn count_by_query(&self, query: &Query) -> Result<u64> {
        let mut total = 0u64;
        let mut start: Option<Item> = None;
        loop {
            let request = self.query_request(query, Some(Select::Count), start.take(), None)?;
            self.count("dynamo_get_queries");
            let out = self
                .send(|| request.clone().send())
                .await
                .map_err(|e| self.error("query", &query_text(query), e))?;
            total += u64::try_from(out.count).unwrap_or(0);
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(total),
            }
        }
    }

    /// Every item `scan` selects (sosw 0.7's `get_by_scan`).
    pub async fn get_by_scan<T: DeserializeOwned>(&self, scan: &Scan) -> Result<Vec<T>> {
        use futures::TryStreamExt;
        let pages: Vec<Vec<T>> = self.get_by_scan_pages(scan).try_collect().await?;
        Ok(pages.into_iter().flatten().collect())
    }

    /// The items `scan` selects, one page at a time as DynamoDB returns them (sosw 0.7's
    /// `get_by_scan_generator`): for tables too large to hold at once.
    pub fn get_by_scan_pages<'a, T: DeserializeOwned + 'a>(
        &'a self,
        scan: &'a Scan,
    ) -> impl Stream<Item = Result<Vec<T>>> + 'a {
        futures::stream::try_unfold(Some(None), move |state: Option<Option<Item>>| async move {
            let Some(start) = state else {
                return Ok(None);
            };
            let out = self.scan_page(scan, start).await?;
            let rows = out
                .items
                .unwrap_or_default()
                .into_iter()
                .map(|item| self.item_to_row(item))
                .collect::<Result<Vec<T>>>()?;
            let next = match out.last_evaluated_key {
                Some(key) if !key.is_empty() => Some(Some(key)),
                _ => None,
            };
            Ok(Some((rows, next)))
        })
    }

    /// The items with these keys (sosw 0.7's `batch_get_items_one_table`), in no particular order;
    /// missing keys are left out. Sent 100 keys per call; unprocessed keys are resent with backoff, and
    /// any still unprocessed after the last resend is an error naming one of them.
    pub async fn batch_get_items_one_table<K: Serialize, T: DeserializeOwned>(
        &self,
        keys: &[K],
    ) -> Result<Vec<T>> {
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        let mut unique = Vec::new();
        for k in keys {
            let item = self.keys_to_item(k)?;
            if seen.insert(self.key_text(&item)) {
                unique.push(item);
            }
        }
        for chunk in unique.chunks(BATCH_GET_KEYS) {
            let mut pending: Vec<Item> = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                let first = self.key_text(&pending[0]);
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(pending))
                    .build()
                    .map_err(|e| self.error_text("batch get", &first, e.to_string()))?;
                let call = self
                    .client
                    .batch_get_item()
                    .request_items(self.table_name(), request);
                self.count("dynamo_batch_get_queries");
                let out = self
                    .send(|| call.clone().send())
                    .await
                    .map_err(|e| self.error("batch get", &first, e))?;
                let mut responses = out.responses.unwrap_or_default();
                for item in responses.remove(self.table_name()).unwrap_or_default() {
                    items.push(self.item_to_row(item)?);
                }
                pending = out
                    .unprocessed_keys
                    .unwrap_or_default()
                    .remove(self.table_name())
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if pending.is_empty() {
                    break;
                }
                if attempt >= self.retry.max_retries {
                    return Err(self.error_text(
                        "batch get",
                        &self.key_text(&pending[0]),
                        format!(
                            "{} keys still unprocessed after {} resends",
                            pending.len(),
                            self.retry.max_retries
                        ),
                    ));
                }
                tokio::time::sleep(self.retry.delay(attempt)).await;
                attempt += 1;
            }
        }
        Ok(items)
    }

    /// Updates the item with `keys` (sosw 0.7's `update`): creates it if it is missing, unless the
    /// update's condition says otherwise. `false` when the condition failed (nothing written).
    pub async fn update<K: Serialize>(&self, keys: &K, update: &Update) -> Result<bool> {
        self.update_item(keys, update, false).await
    }

    /// Updates the item with `keys` only if it exists (sosw 0.7's `patch`), and the update's condition
    /// holds. `false` when it is missing or the condition failed (nothing written).
    pub async fn patch<K: Serialize>(&self, keys: &K, update: &Update) -> Result<bool> {
        self.update_item(keys, update, true).await
    }

    /// Deletes the item with `keys`; deleting a missing item is not an error.
    pub async fn delete<K: Serialize>(&self, keys: &K) -> Result<()> {
        let key = self.keys_to_item(keys)?;
        let text = self.key_text(&key);
        let request = self
            .client
            .delete_item()
            .table_name(self.table_name())
            .set_key(Some(key));
        self.count("dynamo_delete_queries");
        self.send(|| request.clone().send())
            .await
            .map_err(|e| self.error("delete", &text, e))?;
        Ok(())
    }

    /// A put of `row` for [`DynamoDbClient::transact_write`].
    pub fn make_put_transaction_item<T: Serialize>(&self, row: &T) -> Result<TransactionItem> {
        let item = self.row_to_item(row)?;
        let key = self.key_text(&item);
        let put = Put::builder()
            .table_name(self.table_name())
            .set_item(Some(item))
            .build()
            .map_err(|e| self.error_text("transaction put", &key, e.to_string()))?;
        Ok(TransactionItem(
            TransactWriteItem::builder().put(put).build(),
        ))
    }

    /// A delete of the item with `keys` for [`DynamoDbClient::transact_write`].
    pub fn make_delete_transaction_item<K: Serialize>(&self, keys: &K) -> Result<TransactionItem> {
        let key = self.keys_to_item(keys)?;
        let text = self.key_text(&key);
        let delete = Delete::builder()
            .table_name(self.table_name())
            .set_key(Some(key))
            .build()
            .map_err(|e| self.error_text("transaction delete", &text, e.to_string()))?;
        Ok(TransactionItem(
            TransactWriteItem::builder().delete(delete).build(),
        ))
    }

    /// Writes `items` in one atomic `TransactWriteItems` call: all or none. At most
    /// [`MAX_TRANSACTION_ITEMS`]; more is refused before anything is sent (sosw 0.7 split them into
    /// calls of 10, so its transactions were not atomic, B21). Conflicting transactions and throttling
    /// are retried with backoff.
    pub async fn transact_write(&self, items: Vec<TransactionItem>) -> Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        if items.len() > MAX_TRANSACTION_ITEMS {
            return Err(Error::invalid(
                "DynamoDB transaction",
                format!(
                    "table `{}`: {} items, but one transaction holds at most {MAX_TRANSACTION_ITEMS}",
                    self.table_name(),
                    items.len()
                ),
            ));
        }
        let request = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items.into_iter().map(|i| i.0).collect()));
        self.count("dynamo_transact_write_operations");
        let mut attempt = 0;
        loop {
            match request.clone().send().await {
                Ok(_) => return Ok(()),
                Err(e) if attempt < self.retry.max_retries && transaction_may_retry(&e) => {
                    tokio::time::sleep(self.retry.delay(attempt)).await;
                    attempt += 1;
                    self.count("dynamo_throttled_retries");
                }
                Err(e) => {
                    let reasons = cancellation_reasons(&e);
                    return Err(self.error_text(
                        "transact write",
                        "(transaction)",
                        format!("{}{reasons}", describe(&e)),
                    ));
                }
            }
        }
    }

    // ---- the table ---------------------------------------------------------------------------

    /// The table's hash and range key names (sosw 0.7's `get_table_keys`).
    pub async fn get_table_keys(&self) -> Result<(String, Option<String>)> {
        let keys = self.table_keys().await?;
        Ok((keys.hash, keys.range))
    }

    /// The table's active secondary indexes by name (sosw 0.7's `get_table_indexes`).
    pub async fn get_table_indexes(&self) -> Result<BTreeMap<String, TableIndex>> {
        let table = self.describe().await?;
        let table_capacity = table.provisioned_throughput().map(capacity);
        let mut out = BTreeMap::new();
        for g in table.global_secondary_indexes() {
            if g.index_status().is_some_and(|s| s.as_str() != "ACTIVE") {
                continue;
            }
            let (hash_key, range_key) = schema_keys(g.key_schema());
            let capacity = g.provisioned_throughput().map(capacity).or(table_capacity);
            out.insert(
                g.index_name().unwrap_or_default().to_owned(),
                TableIndex {
                    hash_key,
                    range_key,
                    projection: projection(g.projection()),
                    local: false,
                    capacity,
                },
            );
        }
        for l in table.local_secondary_indexes() {
            let (hash_key, range_key) = schema_keys(l.key_schema());
            out.insert(
                l.index_name().unwrap_or_default().to_owned(),
                TableIndex {
                    hash_key,
                    range_key,
                    projection: projection(l.projection()),
                    local: true,
                    capacity: table_capacity,
                },
            );
        }
        Ok(out)
    }

    /// The table's provisioned capacity (sosw 0.7's `get_capacity`); `None` when DynamoDB reports none.
    pub async fn get_capacity(&self) -> Result<Option<Capacity>> {
        let table = self.describe().await?;
        Ok(table.provisioned_throughput().map(capacity))
    }

    /// Calls made so far, by sosw 0.7's stat names (`dynamo_get_queries`, `dynamo_put_queries`,
    /// `dynamo_update_queries`, `dynamo_scan_queries`, `dynamo_transact_write_operations`, ...) plus
    /// `dynamo_delete_queries`, `dynamo_batch_get_queries` and `dynamo_throttled_retries`.
    pub fn get_stats(&self) -> BTreeMap<String, u64> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Clears the statistics.
    pub fn reset_stats(&self) {
        self.stats.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    // ---- internals ---------------------------------------------------------------------------

    fn count(&self, stat: &str) {
        *self
            .stats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(stat.to_owned())
            .or_insert(0) += 1;
    }

    /// The table attribute of the row field `field`.
    fn db_name(&self, field: &str) -> String {
        self.config
            .field_names
            .get(field)
            .cloned()
            .unwrap_or_else(|| field.to_owned())
    }

    /// The row field of the table attribute `attr`.
    fn field_name(&self, attr: &str) -> String {
        self.config
            .field_names
            .iter()
            .find(|(_, db)| db.as_str() == attr)
            .map(|(field, _)| field.clone())
            .unwrap_or_else(|| attr.to_owned())
    }

    async fn describe(&self) -> Result<aws_sdk_dynamodb::types::TableDescription> {
        let request = self.client.describe_table().table_name(self.table_name());
        let out = self
            .send(|| request.clone().send())
            .await
            .map_err(|e| self.error("describe table", "(table)", e))?;
        out.table.ok_or_else(|| {
            self.error_text("describe table", "(table)", "no table description".into())
        })
    }

    async fn table_keys(&self) -> Result<TableKeys> {
        self.keys
            .get_or_try_init(|| async {
                let table = self.describe().await?;
                let (hash, range) = schema_keys(table.key_schema());
                Ok(TableKeys { hash, range })
            })
            .await
            .cloned()
    }

    /// The hash key attribute: the config's `hash_key`, else described from the table once.
    async fn hash_key(&self) -> Result<String> {
        match &self.config.hash_key {
            Some(hash) => Ok(hash.clone()),
            None => Ok(self.table_keys().await?.hash),
        }
    }

    /// `row` as an item: field names renamed, required fields and `row_mapper` types checked.
    fn row_to_item<T: Serialize>(&self, row: &T) -> Result<Item> {
        let value = serde_json::to_value(row).map_err(|e| {
            Error::invalid(
                "DynamoDB row",
                format!(
                    "table `{}`: the row cannot be serialized: {e}",
                    self.table_name()
                ),
            )
        })?;
        let Value::Object(map) = value else {
            return Err(Error::invalid(
                "DynamoDB row",
                format!(
                    "table `{}`: a row must serialize to an object, not {}",
                    self.table_name(),
                    sosw_core::task::json_kind(&value)
                ),
            ));
        };
        let mut item = Item::new();
        for (field, v) in map {
            if v.is_null() {
                continue;
            }
            let av = requests::attr(&v)?;
            item.insert(self.db_name(&field), av);
        }
        let key = self.key_text(&item);
        for field in &self.config.required_fields {
            if !item.contains_key(&self.db_name(field)) {
                return Err(Error::invalid(
                    "DynamoDB row",
                    format!(
                        "table `{}`, key {key}: the required field `{field}` is missing",
                        self.table_name()
                    ),
                ));
            }
        }
        for (field, want) in &self.config.row_mapper {
            if let Some(av) = item.get(&self.db_name(field))
                && type_letter(av) != want.as_str()
            {
                return Err(Error::invalid(
                    "DynamoDB row",
                    format!(
                        "table `{}`, key {key}: `{field}` is {}, but the row_mapper says {want}",
                        self.table_name(),
                        type_letter(av)
                    ),
                ));
            }
        }
        Ok(item)
    }

    fn keys_to_item<K: Serialize>(&self, keys: &K) -> Result<Item> {
        let value = serde_json::to_value(keys).map_err(|e| {
            Error::invalid(
                "DynamoDB key",
                format!("table `{}`: {e}", self.table_name()),
            )
        })?;
        let Value::Object(map) = value else {
            return Err(Error::invalid(
                "DynamoDB key",
                format!(
                    "table `{}`: keys must serialize to an object of key attributes, not {value}",
                    self.table_name()
                ),
            ));
        };
        map.iter()
            .map(|(k, v)| Ok((self.db_name(k), requests::attr(v)?)))
            .collect()
    }

    /// An item read from the table as a row: required fields checked, names renamed back.
    fn item_to_row<T: DeserializeOwned>(&self, item: Item) -> Result<T> {
        let key = self.key_text(&item);
        for field in &self.config.required_fields {
            if !item.contains_key(&self.db_name(field)) {
                return Err(Error::Decode {
                    what: "row",
                    table: self.table_name().to_owned(),
                    message: format!("key {key}: the required field `{field}` is missing"),
                });
            }
        }
        let renamed: Item = item
            .into_iter()
            .map(|(k, v)| (self.field_name(&k), v))
            .collect();
        serde_dynamo::from_item(renamed).map_err(|e| Error::Decode {
            what: "row",
            table: self.table_name().to_owned(),
            message: format!("key {key}: {e}"),
        })
    }

    /// The key attributes of `item` as text for messages: the table's keys when known, else the
    /// configured hash key, else every attribute of a short item.
    fn key_text(&self, item: &Item) -> String {
        let names: Vec<String> = match self.keys.get() {
            Some(k) => std::iter::once(k.hash.clone())
                .chain(k.range.clone())
                .collect(),
            None => match &self.config.hash_key {
                Some(h) => vec![self.db_name(h)],
                None => {
                    let mut all: Vec<String> = item.keys().cloned().collect();
                    all.sort();
                    all.truncate(2);
                    all
                }
            },
        };
        let parts: Vec<String> = names
            .iter()
            .filter_map(|n| item.get(n).map(|v| format!("{n}: {}", short_value(v))))
            .collect();
        format!("{{{}}}", parts.join(", "))
    }

    fn query_request(
        &self,
        query: &Query,
        select: Option<Select>,
        start: Option<Item>,
        limit: Option<usize>,
    ) -> Result<aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder> {
        let mut p = Placeholders::default();
        let name = |f: &str| self.db_name(f);
        let key_condition = query.key_condition(&mut p, &name)?;
        let filter = query
            .filter
            .as_ref()
            .map(|f| f.render(&mut p, &name))
            .transpose()?;
        Ok(self
            .client
            .query()
            .table_name(self.table_name())
            .set_index_name(query.index_name.clone())
            .key_condition_expression(key_condition)
            .set_filter_expression(filter)
            .set_expression_attribute_names(p.names_opt())
            .set_expression_attribute_values(p.values_opt())
            .scan_index_forward(!query.descending)
            .set_consistent_read(query.consistent_read.then_some(true))
            .set_select(select)
            .set_limit(limit.and_then(|l| i32::try_from(l).ok()))
            .set_exclusive_start_key(start))
    }

    async fn scan_page(
        &self,
        scan: &Scan,
        start: Option<Item>,
    ) -> Result<aws_sdk_dynamodb::operation::scan::ScanOutput> {
        let mut p = Placeholders::default();
        let name = |f: &str| self.db_name(f);
        let filter = scan
            .filter
            .as_ref()
            .map(|f| f.render(&mut p, &name))
            .transpose()?;
        let request = self
            .client
            .scan()
            .table_name(self.table_name())
            .set_index_name(
                scan.index_name
                    .clone()
                    .or_else(|| self.config.index_name.clone()),
            )
            .set_filter_expression(filter)
            .set_expression_attribute_names(p.names_opt())
            .set_expression_attribute_values(p.values_opt())
            .set_consistent_read(scan.consistent_read.then_some(true))
            .set_exclusive_start_key(start);
        self.count("dynamo_scan_queries");
        self.send(|| request.clone().send())
            .await
            .map_err(|e| self.error("scan", "(scan)", e))
    }

    async fn update_item<K: Serialize>(
        &self,
        keys: &K,
        update: &Update,
        must_exist: bool,
    ) -> Result<bool> {
        let key = self.keys_to_item(keys)?;
        let text = self.key_text(&key);
        if update.is_empty() {
            return Err(Error::invalid(
                "DynamoDB update",
                format!(
                    "table `{}`, key {text}: nothing to set, increment or remove",
                    self.table_name()
                ),
            ));
        }
        let mut p = Placeholders::default();
        let name = |f: &str| self.db_name(f);
        let expression = update.expression(&mut p, &name)?;
        let mut conditions = Vec::new();
        if must_exist {
            let hash = self.hash_key().await?;
            conditions.push(format!("attribute_exists({})", p.name(&hash)));
        }
        if let Some(c) = &update.condition {
            conditions.push(format!("({})", c.render(&mut p, &name)?));
        }
        let request = self
            .client
            .update_item()
            .table_name(self.table_name())
            .set_key(Some(key))
            .update_expression(expression)
            .set_condition_expression((!conditions.is_empty()).then(|| conditions.join(" AND ")))
            .set_expression_attribute_names(p.names_opt())
            .set_expression_attribute_values(p.values_opt());
        self.count("dynamo_update_queries");
        match self.send(|| request.clone().send()).await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failure(&e) => Ok(false),
            Err(e) => Err(self.error("update", &text, e)),
        }
    }

    /// Sends with `call`, resending throttled calls with backoff.
    async fn send<T, E, F, Fut>(&self, call: F) -> std::result::Result<T, SdkError<E, HttpResponse>>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = std::result::Result<T, SdkError<E, HttpResponse>>>,
        E: ProvideErrorMetadata,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Err(e) if attempt < self.retry.max_retries && is_throttled(&e) => {
                    self.count("dynamo_throttled_retries");
                    tokio::time::sleep(self.retry.delay(attempt)).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn error<E: ProvideErrorMetadata>(
        &self,
        operation: &'static str,
        key: &str,
        err: SdkError<E, HttpResponse>,
    ) -> Error {
        let retryable = crate::dynamodb::errors::is_retryable(&err);
        crate::dynamodb::errors::store_error(
            operation,
            self.table_name(),
            retryable,
            format!("key {key}: {}", describe(&err)),
        )
    }

    fn error_text(&self, operation: &'static str, key: &str, message: String) -> Error {
        crate::dynamodb::errors::store_error(
            operation,
            self.table_name(),
            false,
            format!("key {key}: {message}"),
        )
    }
}

fn query_text(query: &Query) -> String {
    format!("{{{}: {}}}", query.hash.0, query.hash.1)
}

fn short_value(v: &AttributeValue) -> String {
    match v {
        AttributeValue::S(s) => format!("{s:?}"),
        AttributeValue::N(n) => n.clone(),
        AttributeValue::Bool(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

fn type_letter(v: &AttributeValue) -> &'static str {
    match v {
        AttributeValue::S(_) => "S",
        AttributeValue::N(_) => "N",
        AttributeValue::B(_) => "B",
        AttributeValue::Bool(_) => "BOOL",
        AttributeValue::M(_) => "M",
        AttributeValue::L(_) => "L",
        AttributeValue::Ss(_) => "SS",
        AttributeValue::Ns(_) => "NS",
        AttributeValue::Bs(_) => "BS",
        AttributeValue::Null(_) => "NULL",
        _ => "unknown",
    }
}

fn capacity(t: &aws_sdk_dynamodb::types::ProvisionedThroughputDescription) -> Capacity {
    Capacity {
        read: t.read_capacity_units().unwrap_or(0),
        write: t.write_capacity_units().unwrap_or(0),
    }
}

fn schema_keys(schema: &[KeySchemaElement]) -> (String, Option<String>) {
    let mut hash = String::new();
    let mut range = None;
    for k in schema {
        match k.key_type() {
            KeyType::Hash => hash = k.attribute_name().to_owned(),
            KeyType::Range => range = Some(k.attribute_name().to_owned()),
            _ => {}
        }
    }
    (hash, range)
}

fn projection(p: Option<&aws_sdk_dynamodb::types::Projection>) -> String {
    p.and_then(|p| p.projection_type())
        .map(|t| t.as_str().to_owned())
        .unwrap_or_default()
}

fn describe<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> String {
    match err {
        SdkError::ServiceError(ctx) => format!(
            "{}: {}",
            ctx.err().code().unwrap_or("error"),
            ctx.err().message().unwrap_or("(no message)")
        ),
        other => aws_smithy_types_display(other),
    }
}

fn aws_smithy_types_display<E>(err: &SdkError<E, HttpResponse>) -> String {
    match err {
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(e) => format!("dispatch failure: {e:?}"),
        SdkError::ResponseError(_) => "unreadable response".to_owned(),
        SdkError::ConstructionFailure(_) => "request could not be built".to_owned(),
        _ => "request failed".to_owned(),
    }
}

fn is_throttled<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    matches!(err, SdkError::ServiceError(ctx)
        if ctx.err().code().is_some_and(|c| THROTTLING_CODES.contains(&c)))
}

fn is_condition_failure<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    matches!(err, SdkError::ServiceError(ctx)
        if ctx.err().code() == Some("ConditionalCheckFailedException"))
}

fn transaction_may_retry(
    err: &SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        HttpResponse,
    >,
) -> bool {
    if is_throttled(err) {
        return true;
    }
    let SdkError::ServiceError(ctx) = err else {
        return false;
    };
    match ctx.err() {
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => {
            let codes: Vec<&str> = c
                .cancellation_reasons()
                .iter()
                .filter_map(|r| r.code())
                .filter(|code| *code != "None")
                .collect();
            !codes.is_empty()
                && codes
                    .iter()
                    .all(|code| crate::dynamodb::errors::is_retryable_cancellation(code))
        }
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionInProgressException(_) => true,
        _ => false,
    }
}

fn cancellation_reasons(
    err: &SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
        HttpResponse,
    >,
) -> String {
    let SdkError::ServiceError(ctx) = err else {
        return String::new();
    };
    let aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) = ctx.err() else {
        return String::new();
    };
    let reasons: Vec<String> = c
        .cancellation_reasons()
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            r.code()
                .filter(|code| *code != "None")
                .map(|code| format!("item {i}: {code}"))
        })
        .collect();
    if reasons.is_empty() {
        String::new()
    } else {
        format!(" ({})", reasons.join("; "))
    }
}

#[cfg(test)]
mod tests;
