//! The serving half of the partition model: forwards to DynamoDB Local, throttles by partition.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde_json::{Map, Value, json};

use super::model::{
    Budgets, Direction, KeySchema, Partition, PartitionLimits, PartitionStats, item_partitions,
    item_size, query_partition, write_units,
};
use crate::lambda_api::{Bytes, Request, Response, TestServer, Upstream, json_response};

const TARGET_PREFIX: &str = "DynamoDB_20120810.";

#[derive(Debug)]
struct State {
    budgets: Budgets,
    schemas: HashMap<String, KeySchema>,
    started: Instant,
}

/// A running partition proxy; it stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct PartitionProxy {
    url: String,
    state: Arc<Mutex<State>>,
    _server: Arc<TestServer>,
}

impl PartitionProxy {
    /// Starts a proxy to DynamoDB Local at `upstream` (`http://host:port`) on a free loopback port,
    /// enforcing `limits` per partition key.
    pub async fn start(upstream: &str, limits: PartitionLimits) -> std::io::Result<PartitionProxy> {
        let upstream = Upstream::new(upstream).map_err(std::io::Error::other)?;
        let state = Arc::new(Mutex::new(State {
            budgets: Budgets::new(limits),
            schemas: HashMap::new(),
            started: Instant::now(),
        }));
        let shared = state.clone();
        let server = TestServer::start(move |request| {
            let (state, upstream) = (shared.clone(), upstream.clone());
            async move { handle(request, &upstream, &state).await }
        })
        .await?;
        Ok(PartitionProxy {
            url: server.url(),
            state,
            _server: Arc::new(server),
        })
    }

    /// Where clients send their DynamoDB requests.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// What every partition saw so far, busiest first.
    pub fn stats(&self) -> Vec<PartitionStats> {
        lock(&self.state).budgets.stats()
    }

    /// The limits this proxy enforces per partition key.
    pub fn limits(&self) -> PartitionLimits {
        lock(&self.state).budgets.limits()
    }

    /// Requests (or batch items) turned away so far.
    pub fn throttled(&self) -> u64 {
        self.stats().iter().map(|s| s.throttled).sum()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn now(state: &Mutex<State>) -> f64 {
    lock(state).started.elapsed().as_secs_f64()
}

/// What one forwarded write will charge.
struct Charges(Vec<(Partition, f64)>);

async fn handle(request: Request, upstream: &Upstream, state: &Mutex<State>) -> Response {
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .and_then(|t| t.strip_prefix(TARGET_PREFIX))
        .unwrap_or("")
        .to_owned();
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(request.body()) else {
        return send(upstream, request).await;
    };
    let outcome = match operation.as_str() {
        "PutItem" | "UpdateItem" | "DeleteItem" => {
            single_write(&operation, &request, &body, upstream, state).await
        }
        "BatchWriteItem" => return batch_write(&request, body, upstream, state).await,
        "TransactWriteItems" => transact_write(&request, &body, upstream, state).await,
        "GetItem" | "Query" | "Scan" | "BatchGetItem" => {
            return read(&operation, request, body, upstream, state).await;
        }
        _ => Ok(()),
    };
    match outcome {
        Ok(()) => send(upstream, request).await,
        Err(refusal) => refusal,
    }
}

async fn send(upstream: &Upstream, request: Request) -> Response {
    match upstream.send(request).await {
        Ok(answer) => answer,
        Err(e) => json_response(502, &json!({"message": format!("DynamoDB Local: {e}")})),
    }
}

/// The key schema of `table`, asked of DynamoDB Local once.
async fn schema(
    table: &str,
    template: &Request,
    upstream: &Upstream,
    state: &Mutex<State>,
) -> Option<KeySchema> {
    if let Some(schema) = lock(state).schemas.get(table) {
        return Some(schema.clone());
    }
    let answer = call(
        template,
        "DescribeTable",
        &json!({"TableName": table}),
        upstream,
    )
    .await?;
    let schema = KeySchema::from_description(answer.get("Table")?)?;
    lock(state)
        .schemas
        .insert(table.to_string(), schema.clone());
    Some(schema)
}

/// A request like `template` (method, path, headers) with another body.
fn rebuild(template: &Request, body: Bytes) -> Request {
    let mut request = Request::new(body);
    *request.method_mut() = template.method().clone();
    *request.uri_mut() = template.uri().clone();
    *request.version_mut() = template.version();
    *request.headers_mut() = template.headers().clone();
    request
}

/// One call of the proxy's own to DynamoDB Local, with the client's headers (DynamoDB Local does not
/// check signatures); `None` if it fails.
async fn call(
    template: &Request,
    operation: &str,
    body: &Value,
    upstream: &Upstream,
) -> Option<Value> {
    let mut request = rebuild(template, Bytes::from(body.to_string()));
    request.headers_mut().insert(
        "x-amz-target",
        format!("{TARGET_PREFIX}{operation}").parse().ok()?,
    );
    let answer = upstream.send(request).await.ok()?;
    if !answer.status().is_success() {
        return None;
    }
    serde_json::from_slice(answer.body()).ok()
}

/// The item at `key` in `table` now, if any.
async fn old_item(
    table: &str,
    key: &Value,
    template: &Request,
    upstream: &Upstream,
) -> Option<Map<String, Value>> {
    let answer = call(
        template,
        "GetItem",
        &json!({"TableName": table, "Key": key, "ConsistentRead": true}),
        upstream,
    )
    .await?;
    answer.get("Item")?.as_object().cloned()
}

/// What a put, update or delete of one item in `table` costs, and where.
async fn item_charges(
    table: &str,
    new_item: Option<&Map<String, Value>>,
    key: Option<&Value>,
    template: &Request,
    upstream: &Upstream,
    state: &Mutex<State>,
    factor: f64,
) -> Charges {
    let Some(schema) = schema(table, template, upstream, state).await else {
        return Charges(vec![]);
    };
    let old = match key {
        Some(key) => old_item(table, key, template, upstream).await,
        None => None,
    };
    let size = new_item
        .map(item_size)
        .into_iter()
        .chain(old.as_ref().map(item_size))
        .max()
        .unwrap_or(1);
    let units = write_units(size) * factor;
    let mut partitions: Vec<Partition> = new_item
        .map(|i| item_partitions(table, &schema, i))
        .unwrap_or_default();
    if let Some(old) = &old {
        partitions.extend(item_partitions(table, &schema, old));
    } else if let Some(Value::Object(key)) = key {
        partitions.extend(item_partitions(table, &schema, key));
    }
    partitions.sort();
    partitions.dedup();
    Charges(partitions.into_iter().map(|p| (p, units)).collect())
}

async fn single_write(
    operation: &str,
    template: &Request,
    body: &Map<String, Value>,
    upstream: &Upstream,
    state: &Mutex<State>,
) -> Result<(), Response> {
    let Some(table) = body.get("TableName").and_then(Value::as_str) else {
        return Ok(());
    };
    let item = body.get("Item").and_then(Value::as_object);
    // A put is charged to the new item's partitions only (no read of the one it replaces).
    let key = if operation == "PutItem" {
        None
    } else {
        body.get("Key")
    };
    let charges = item_charges(table, item, key, template, upstream, state, 1.0).await;
    admit(&charges, Direction::Write, state).map_err(|over| throttled(&over, Direction::Write))
}

fn admit(
    charges: &Charges,
    direction: Direction,
    state: &Mutex<State>,
) -> Result<(), Vec<Partition>> {
    let now = now(state);
    lock(state).budgets.admit(&charges.0, direction, now)
}

/// DynamoDB's answer to a request over a partition's budget.
fn throttled(over: &[Partition], direction: Direction) -> Response {
    let reasons: Vec<Value> = over
        .iter()
        .map(|p| {
            let (resource, kind) = match &p.index {
                Some(index) => (format!("{}/index/{index}", arn(&p.table)), "Index"),
                None => (arn(&p.table), "Table"),
            };
            let op = match direction {
                Direction::Read => "Read",
                Direction::Write => "Write",
            };
            json!({"reason": format!("{kind}{op}KeyRangeThroughputExceeded"), "resource": resource})
        })
        .collect();
    let mut answer = json_response(
        400,
        &json!({
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "Throughput exceeds the current capacity for one or more partition keys (sosw partition model)",
            "ThrottlingReasons": reasons,
        }),
    );
    answer.headers_mut().insert(
        "content-type",
        "application/x-amz-json-1.0"
            .parse()
            .expect("a valid header value"),
    );
    answer
}

fn arn(table: &str) -> String {
    format!("arn:aws:dynamodb:us-east-1:000000000000:table/{table}")
}

async fn batch_write(
    template: &Request,
    mut body: Map<String, Value>,
    upstream: &Upstream,
    state: &Mutex<State>,
) -> Response {
    let Some(Value::Object(requests)) = body.remove("RequestItems") else {
        return send(upstream, rebuild(template, template.body().clone())).await;
    };
    let mut admitted: Map<String, Value> = Map::new();
    let mut refused: Map<String, Value> = Map::new();
    let mut last_over = vec![];
    for (table, items) in requests {
        for entry in items.as_array().cloned().unwrap_or_default() {
            let put = entry.pointer("/PutRequest/Item").and_then(Value::as_object);
            let key = entry.pointer("/DeleteRequest/Key");
            let charges = item_charges(&table, put, key, template, upstream, state, 1.0).await;
            let target = match admit(&charges, Direction::Write, state) {
                Ok(()) => &mut admitted,
                Err(over) => {
                    last_over = over;
                    &mut refused
                }
            };
            if let Value::Array(list) = target
                .entry(table.clone())
                .or_insert_with(|| Value::Array(vec![]))
            {
                list.push(entry);
            }
        }
    }
    if admitted.is_empty() {
        return throttled(&last_over, Direction::Write);
    }
    body.insert("RequestItems".into(), Value::Object(admitted));
    let request = rebuild(template, Bytes::from(Value::Object(body).to_string()));
    let answer = send(upstream, request).await;
    if refused.is_empty() || !answer.status().is_success() {
        return answer;
    }
    // Add the refused items to whatever DynamoDB Local left unprocessed.
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(answer.body()) else {
        return answer;
    };
    let unprocessed = fields
        .entry("UnprocessedItems")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(unprocessed) = unprocessed {
        for (table, items) in refused {
            if let Value::Array(list) = unprocessed
                .entry(table)
                .or_insert_with(|| Value::Array(vec![]))
            {
                list.extend(items.as_array().cloned().unwrap_or_default());
            }
        }
    }
    let mut merged = json_response(200, &Value::Object(fields));
    merged.headers_mut().insert(
        "content-type",
        "application/x-amz-json-1.0"
            .parse()
            .expect("a valid header value"),
    );
    merged
}

async fn transact_write(
    template: &Request,
    body: &Map<String, Value>,
    upstream: &Upstream,
    state: &Mutex<State>,
) -> Result<(), Response> {
    let items = body
        .get("TransactItems")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut all = vec![];
    let mut per_item = vec![];
    for entry in &items {
        let Some((kind, op)) = entry.as_object().and_then(|o| o.iter().next()) else {
            per_item.push(vec![]);
            continue;
        };
        let Some(table) = op.get("TableName").and_then(Value::as_str) else {
            per_item.push(vec![]);
            continue;
        };
        let item = op.get("Item").and_then(Value::as_object);
        let key = if kind == "Put" { None } else { op.get("Key") };
        // A condition check reads; the rest write, at twice the units in a transaction.
        let factor = if kind == "ConditionCheck" { 0.0 } else { 2.0 };
        let charges = item_charges(table, item, key, template, upstream, state, factor).await;
        per_item.push(charges.0.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>());
        all.extend(charges.0.into_iter().filter(|(_, units)| *units > 0.0));
    }
    match admit(&Charges(all), Direction::Write, state) {
        Ok(()) => Ok(()),
        Err(over) => {
            let reasons: Vec<Value> = per_item
                .iter()
                .map(|parts| {
                    if parts.iter().any(|p| over.contains(p)) {
                        json!({"Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity of your table or index."})
                    } else {
                        json!({"Code": "None"})
                    }
                })
                .collect();
            let mut answer = json_response(
                400,
                &json!({
                    "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                    "message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
                    "CancellationReasons": reasons,
                }),
            );
            answer.headers_mut().insert(
                "content-type",
                "application/x-amz-json-1.0"
                    .parse()
                    .expect("a valid header value"),
            );
            Err(answer)
        }
    }
}

/// A read: refused if a partition it reads has no budget left, else forwarded (asking for the units
/// consumed) and charged with what DynamoDB Local reports.
async fn read(
    operation: &str,
    template: Request,
    mut body: Map<String, Value>,
    upstream: &Upstream,
    state: &Mutex<State>,
) -> Response {
    let mut partitions: Vec<Partition> = vec![];
    match operation {
        "GetItem" | "Query" | "Scan" => {
            if let Some(table) = body
                .get("TableName")
                .and_then(Value::as_str)
                .map(str::to_string)
                && let Some(schema) = schema(&table, &template, upstream, state).await
            {
                let partition = match operation {
                    "GetItem" => body
                        .get("Key")
                        .and_then(Value::as_object)
                        .and_then(|k| item_partitions(&table, &schema, k).into_iter().next()),
                    "Query" => query_partition(&table, &schema, &Value::Object(body.clone())),
                    // A scan reads every partition: it is charged to one pseudo key of its own.
                    _ => Some(Partition {
                        table: table.clone(),
                        index: body
                            .get("IndexName")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        key: "(scan)".into(),
                    }),
                };
                partitions.extend(partition);
            }
        }
        _ => {
            if let Some(Value::Object(requests)) = body.get("RequestItems").cloned() {
                for (table, request) in requests {
                    let Some(schema) = schema(&table, &template, upstream, state).await else {
                        continue;
                    };
                    for key in request
                        .get("Keys")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        if let Some(k) = key.as_object() {
                            partitions
                                .extend(item_partitions(&table, &schema, k).into_iter().take(1));
                        }
                    }
                }
            }
        }
    }
    {
        let now = now(state);
        let mut guard = lock(state);
        let over: Vec<Partition> = partitions
            .iter()
            .filter(|p| !guard.budgets.has_budget(p, Direction::Read, now))
            .cloned()
            .collect();
        if !over.is_empty() {
            return throttled(&over, Direction::Read);
        }
    }
    let asked = body.contains_key("ReturnConsumedCapacity");
    if !asked {
        body.insert("ReturnConsumedCapacity".into(), "TOTAL".into());
    }
    let mut request = template;
    *request.body_mut() = Bytes::from(Value::Object(body).to_string());
    let answer = send(upstream, request).await;
    if answer.status().is_success()
        && !partitions.is_empty()
        && let Ok(value) = serde_json::from_slice::<Value>(answer.body())
    {
        let consumed = match value.get("ConsumedCapacity") {
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(|c| c.get("CapacityUnits").and_then(Value::as_f64))
                .sum(),
            Some(c) => c
                .get("CapacityUnits")
                .and_then(Value::as_f64)
                .unwrap_or(0.0),
            None => 0.0,
        };
        let each = consumed / partitions.len() as f64;
        let now = now(state);
        let mut guard = lock(state);
        for p in &partitions {
            guard.budgets.charge(p, Direction::Read, each, now);
        }
    }
    answer
}
