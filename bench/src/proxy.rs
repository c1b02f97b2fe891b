//! A counting proxy in front of DynamoDB Local. Every request is forwarded unchanged except that
//! data operations ask for `ReturnConsumedCapacity: INDEXES`, so the answer says how many capacity units
//! the table and each index consumed; the answer goes back to the client byte for byte.
//!
//! Requests and units are tallied per *phase*; the process under measurement names the phase with
//! `POST /__bench/phase/<name>` (so set-up requests are not counted).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{Value, json};
use sosw_testkit::lambda_api::{Bytes, Request, Response, TestServer, Upstream, json_response};

/// Operations that write items.
const WRITES: &[&str] = &[
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "BatchWriteItem",
    "TransactWriteItems",
];
/// Read operations AWS charges at least one 4 KB unit even when they return nothing.
const MINIMUM_ONE_UNIT: &[&str] = &["GetItem", "Query", "Scan"];
/// Operations that read items.
const READS: &[&str] = &[
    "GetItem",
    "BatchGetItem",
    "Query",
    "Scan",
    "TransactGetItems",
];

/// What one phase sent to DynamoDB.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Tally {
    /// Every request, control-plane ones (DescribeTable) included.
    pub requests: u64,
    /// Requests of the write operations.
    pub write_requests: u64,
    /// Requests of the read operations.
    pub read_requests: u64,
    /// Write capacity units DynamoDB Local reported (tables and indexes).
    pub write_units: f64,
    /// Read capacity units DynamoDB Local reported (tables and indexes).
    pub read_units: f64,
    /// The write units of `TransactWriteItems` (included in `write_units`). DynamoDB Local charges a
    /// transactional write twice, in the table and in every index, as AWS prices them: a transaction of
    /// one put and one delete on tables with one index each reports 8 units, the same two plain writes 4.
    pub transact_units: f64,
    /// Requests answered with an error (a failed condition costs a write unit on AWS, none here).
    pub errors: u64,
    /// The part of `read_units` DynamoDB Local did not report: AWS charges a read that returns
    /// nothing (an empty `Query` or `Scan`, a `GetItem` of a missing key) one 4 KB unit (0.5 read
    /// units eventually consistent, 1 strongly consistent); DynamoDB Local reports 0 for it. The
    /// tally adds that minimum so the figures are AWS's.
    pub empty_read_units: f64,
    /// Requests per operation.
    pub operations: BTreeMap<String, u64>,
    /// Read units per read operation (the minimum for empty reads included).
    pub read_units_by_operation: BTreeMap<String, f64>,
    /// Write units per write operation (tables and indexes).
    pub write_units_by_operation: BTreeMap<String, f64>,
    /// Write units per table (its indexes included), by the table's name from its `sosw_` on (the
    /// bench's prefix left out, so runs compare).
    pub write_units_by_table: BTreeMap<String, f64>,
}

impl Tally {
    /// Tallies one request: `operation`, whether it asked for a strongly consistent read, and its
    /// answer.
    fn add(&mut self, operation: &str, consistent: bool, answer: &Response) {
        self.requests += 1;
        *self.operations.entry(operation.to_owned()).or_default() += 1;
        let is_write = WRITES.contains(&operation);
        if is_write {
            self.write_requests += 1;
        } else if READS.contains(&operation) {
            self.read_requests += 1;
        }
        if answer.status() != 200 {
            self.errors += 1;
            return;
        }
        let Ok(body) = serde_json::from_slice::<Value>(answer.body()) else {
            return;
        };
        let consumed = consumed_capacity(&body);
        let reported: f64 = consumed
            .iter()
            .map(|c| c["CapacityUnits"].as_f64().unwrap_or(0.0))
            .sum();
        if !is_write && reported == 0.0 && MINIMUM_ONE_UNIT.contains(&operation) {
            let minimum = if consistent { 1.0 } else { 0.5 };
            self.empty_read_units += minimum;
            self.read_units += minimum;
            *self
                .read_units_by_operation
                .entry(operation.to_owned())
                .or_default() += minimum;
        }
        for c in consumed {
            let units = c["CapacityUnits"].as_f64().unwrap_or(0.0);
            if is_write {
                self.write_units += units;
                *self
                    .write_units_by_table
                    .entry(table_kind(c["TableName"].as_str().unwrap_or("?")).to_owned())
                    .or_default() += units;
                *self
                    .write_units_by_operation
                    .entry(operation.to_owned())
                    .or_default() += units;
                if operation == "TransactWriteItems" {
                    self.transact_units += units;
                }
            } else {
                self.read_units += units;
                *self
                    .read_units_by_operation
                    .entry(operation.to_owned())
                    .or_default() += units;
            }
        }
    }
}

#[derive(Debug, Default)]
struct State {
    phase: String,
    tallies: HashMap<String, Tally>,
    /// Added before each forwarded request: a network round trip DynamoDB Local on loopback lacks.
    latency: std::time::Duration,
}

/// The running proxy; it stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Proxy {
    /// Where clients send their DynamoDB requests.
    pub url: String,
    state: Arc<Mutex<State>>,
    _server: Arc<TestServer>,
}

impl Proxy {
    /// Starts a proxy to DynamoDB Local at `upstream` (`http://host:port`) on a free loopback port.
    pub async fn start(upstream: &str) -> std::io::Result<Proxy> {
        let upstream = Upstream::new(upstream).map_err(std::io::Error::other)?;
        let state = Arc::new(Mutex::new(State {
            phase: "idle".into(),
            ..State::default()
        }));
        let shared = state.clone();
        let server = TestServer::start(move |request| {
            let (state, upstream) = (shared.clone(), upstream.clone());
            async move { forward(request, &upstream, &state).await }
        })
        .await?;
        Ok(Proxy {
            url: server.url(),
            state,
            _server: Arc::new(server),
        })
    }

    /// Holds every DynamoDB request for `latency` before forwarding it (zero: none), as a network
    /// round trip to AWS would; phase changes are not held.
    pub fn set_latency(&self, latency: std::time::Duration) {
        lock(&self.state).latency = latency;
    }

    /// The tallies so far, by phase, and a fresh start.
    pub fn take(&self) -> HashMap<String, Tally> {
        let mut state = lock(&self.state);
        state.phase = "idle".into();
        std::mem::take(&mut state.tallies)
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

/// Answers one request: a phase change, or a forwarded DynamoDB call (`502` if DynamoDB Local did
/// not answer; not tallied).
async fn forward(request: Request, upstream: &Upstream, state: &Mutex<State>) -> Response {
    let path = request.uri().path();
    if let Some(phase) = path.strip_prefix("/__bench/phase/")
        && request.method() == "POST"
    {
        lock(state).phase = phase.to_owned();
        return json_response(200, &json!({}));
    }
    let operation = request
        .headers()
        .get("x-amz-target")
        .and_then(|t| t.to_str().ok())
        .and_then(|t| t.split('.').nth(1))
        .unwrap_or("")
        .to_owned();
    let (parts, mut body) = request.into_parts();
    let mut consistent = false;
    let mut traced = None;
    if (WRITES.contains(&operation.as_str()) || READS.contains(&operation.as_str()))
        && let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(&body)
    {
        consistent = fields.get("ConsistentRead") == Some(&Value::Bool(true));
        if READS.contains(&operation.as_str()) && std::env::var_os(TRACE_READS).is_some() {
            traced = Some(read_target(&fields));
        }
        fields.insert("ReturnConsumedCapacity".into(), "INDEXES".into());
        if let Ok(rewritten) = serde_json::to_vec(&fields) {
            body = Bytes::from(rewritten);
        }
    }
    let latency = lock(state).latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let answer = match upstream.send(Request::from_parts(parts, body)).await {
        Ok(answer) => answer,
        Err(e) => return json_response(502, &json!({"message": format!("DynamoDB Local: {e}")})),
    };
    let mut state = lock(state);
    let phase = state.phase.clone();
    if let Some(target) = traced {
        eprintln!(
            "read {phase} {operation}{} {target} units={}",
            if consistent { " consistent" } else { "" },
            reported_read_units(&answer)
        );
    }
    state
        .tallies
        .entry(phase)
        .or_default()
        .add(&operation, consistent, &answer);
    answer
}

/// Set (to anything) to have the proxy print one line per read request to stderr: the phase, the
/// operation, whether it was consistent, the table and key it read, and the units DynamoDB Local
/// reported (0 for a read that returned nothing, which AWS bills at its minimum).
pub const TRACE_READS: &str = "BENCH_TRACE_READS";

/// The table and the key values a read names, for the trace.
fn read_target(fields: &serde_json::Map<String, Value>) -> String {
    let table = fields
        .get("TableName")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let values = fields
        .get("ExpressionAttributeValues")
        .or_else(|| fields.get("Key"))
        .map(|v| v.to_string())
        .unwrap_or_default();
    let limit = fields
        .get("Limit")
        .map(|l| format!(" limit={l}"))
        .unwrap_or_default();
    format!("{table} {values}{limit}")
}

/// A table's name from its `sosw_` on (`bench1_sosw_jobs` is `sosw_jobs`), else as it is.
fn table_kind(name: &str) -> &str {
    name.find("sosw_").map_or(name, |at| &name[at..])
}

/// The `ConsumedCapacity` entries of an answer's body (one per table or index touched).
fn consumed_capacity(body: &Value) -> Vec<Value> {
    match &body["ConsumedCapacity"] {
        Value::Array(items) => items.clone(),
        Value::Null => Vec::new(),
        one => vec![one.clone()],
    }
}

/// The capacity units an answer reports, in all.
fn reported_read_units(answer: &Response) -> f64 {
    serde_json::from_slice::<Value>(answer.body())
        .map(|body| {
            consumed_capacity(&body)
                .iter()
                .map(|c| c["CapacityUnits"].as_f64().unwrap_or(0.0))
                .sum()
        })
        .unwrap_or(0.0)
}

/// Tells the counting proxy at `control` (its URL) which phase the next requests belong to.
pub async fn set_phase(
    control: &str,
    name: &str,
) -> Result<(), sosw_testkit::lambda_api::UpstreamError> {
    let request = sosw_testkit::lambda_api::http::Request::post(format!("/__bench/phase/{name}"))
        .body(Bytes::new())?;
    Upstream::new(control)?.send(request).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: serde_json::Value) -> Response {
        json_response(status, &body)
    }

    #[test]
    fn transaction_units_are_counted_once_and_told_apart() {
        let mut t = Tally::default();
        let consumed = serde_json::json!({"ConsumedCapacity": [
            {"TableName": "x1_sosw_tasks", "CapacityUnits": 2.0, "Table": {"CapacityUnits": 1.0}},
            {"TableName": "x1_sosw_jobs", "CapacityUnits": 3.0, "Table": {"CapacityUnits": 2.0}},
        ]});
        t.add("TransactWriteItems", false, &answer(200, consumed));
        assert_eq!((t.requests, t.write_requests), (1, 1));
        t.add(
            "PutItem",
            false,
            &answer(
                200,
                serde_json::json!({"ConsumedCapacity": {"CapacityUnits": 2.0}}),
            ),
        );
        assert_eq!((t.write_units, t.transact_units), (7.0, 5.0));
        assert_eq!(
            t.write_units_by_operation,
            BTreeMap::from([
                ("PutItem".to_owned(), 2.0),
                ("TransactWriteItems".to_owned(), 5.0)
            ])
        );
        // The put names no table: it is counted as `?`.
        assert_eq!(
            t.write_units_by_table,
            BTreeMap::from([
                ("?".to_owned(), 2.0),
                ("sosw_jobs".to_owned(), 3.0),
                ("sosw_tasks".to_owned(), 2.0)
            ])
        );
    }

    #[test]
    fn reads_errors_and_control_plane_calls_are_told_apart() {
        let mut t = Tally::default();
        let one = serde_json::json!({"ConsumedCapacity": {"CapacityUnits": 0.5}});
        t.add("Query", false, &answer(200, one));
        t.add("UpdateItem", false, &answer(400, serde_json::json!({})));
        t.add("DescribeTable", false, &answer(200, serde_json::json!({})));
        assert_eq!(
            (t.requests, t.read_requests, t.write_requests, t.errors),
            (3, 1, 1, 1)
        );
        assert_eq!((t.read_units, t.write_units), (0.5, 0.0));
    }

    #[test]
    fn an_empty_read_is_charged_aws_s_minimum() {
        let mut t = Tally::default();
        let nothing = serde_json::json!({"Count": 0, "ConsumedCapacity": {"CapacityUnits": 0.0}});
        t.add("Query", false, &answer(200, nothing.clone()));
        t.add("GetItem", true, &answer(200, nothing.clone()));
        t.add(
            "Query",
            true,
            &answer(
                200,
                serde_json::json!({"ConsumedCapacity": {"CapacityUnits": 2.0}}),
            ),
        );
        // A batch is left as reported (AWS charges each key; the keys are not tallied here); a
        // write that reports nothing is not a read.
        t.add("BatchGetItem", false, &answer(200, nothing.clone()));
        t.add("PutItem", false, &answer(200, nothing));
        assert_eq!(
            t.empty_read_units, 1.5,
            "0.5 eventually consistent, 1 strongly"
        );
        assert_eq!(t.read_units, 3.5);
        assert_eq!(
            t.read_units_by_operation,
            BTreeMap::from([
                ("BatchGetItem".to_owned(), 0.0),
                ("GetItem".to_owned(), 1.0),
                ("Query".to_owned(), 2.5)
            ])
        );
    }
}
