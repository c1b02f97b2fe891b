//! The accounting half of the partition model: which partition keys a DynamoDB request touches, how
//! many capacity units each costs, and whether the key's budget allows it. Pure: no I/O, time passed in.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};

/// DynamoDB's limits per partition key, per second.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartitionLimits {
    /// Write units per second per partition key (DynamoDB: 1,000).
    pub write_units_per_sec: f64,
    /// Read units per second per partition key (DynamoDB: 3,000).
    pub read_units_per_sec: f64,
}

impl PartitionLimits {
    /// These limits divided by `factor` (the scaled model of a sustained run: a rate measured under
    /// limits divided by `factor` stands for `factor` times that rate under these).
    pub fn scaled_down(self, factor: f64) -> PartitionLimits {
        PartitionLimits {
            write_units_per_sec: self.write_units_per_sec / factor,
            read_units_per_sec: self.read_units_per_sec / factor,
        }
    }
}

impl Default for PartitionLimits {
    fn default() -> Self {
        PartitionLimits {
            write_units_per_sec: 1_000.0,
            read_units_per_sec: 3_000.0,
        }
    }
}

/// A table's key names: its partition key, and each global secondary index's partition key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeySchema {
    /// The table's partition key attribute.
    pub partition_key: String,
    /// The table's sort key attribute, if it has one.
    pub sort_key: Option<String>,
    /// Index name → the index's partition key attribute (global secondary indexes only: a local
    /// index shares the table's partition key, and so its partition).
    pub indexes: BTreeMap<String, String>,
}

impl KeySchema {
    /// Reads a `DescribeTable` answer's `Table`.
    pub fn from_description(table: &Value) -> Option<KeySchema> {
        let key_of = |schema: &Value, kind: &str| {
            schema.as_array()?.iter().find_map(|k| {
                (k.get("KeyType")?.as_str()? == kind)
                    .then(|| k.get("AttributeName")?.as_str().map(str::to_string))?
            })
        };
        let hash_of = |schema: &Value| key_of(schema, "HASH");
        let partition_key = hash_of(table.get("KeySchema")?)?;
        let sort_key = key_of(table.get("KeySchema")?, "RANGE");
        let indexes = table
            .get("GlobalSecondaryIndexes")
            .and_then(Value::as_array)
            .map(|gsis| {
                gsis.iter()
                    .filter_map(|g| {
                        let name = g.get("IndexName")?.as_str()?.to_string();
                        Some((name, hash_of(g.get("KeySchema")?)?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(KeySchema {
            partition_key,
            sort_key,
            indexes,
        })
    }
}

/// One partition: a table's or an index's partition key value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Partition {
    /// The table.
    pub table: String,
    /// The index, `None` for the table itself.
    pub index: Option<String>,
    /// The partition key value, as DynamoDB JSON text (`{"S":"lab"}`).
    pub key: String,
}

/// Read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Direction {
    /// Read units.
    Read,
    /// Write units.
    Write,
}

/// The size DynamoDB bills for an item in DynamoDB JSON (`{"name": {"S": "x"}, ...}`): attribute names
/// plus values, strings by their UTF-8 length, numbers by about one byte per two digits plus one.
pub fn item_size(item: &Map<String, Value>) -> usize {
    item.iter()
        .map(|(name, v)| name.len() + value_size(v))
        .sum()
}

fn value_size(v: &Value) -> usize {
    let Some((kind, inner)) = v.as_object().and_then(|o| o.iter().next()) else {
        return 1;
    };
    match (kind.as_str(), inner) {
        ("S", Value::String(s)) => s.len(),
        ("N", Value::String(n)) => n.trim_start_matches('-').len().div_ceil(2) + 1,
        ("B", Value::String(b)) => b.len() * 3 / 4,
        ("BOOL" | "NULL", _) => 1,
        ("SS" | "NS" | "BS", Value::Array(items)) => {
            items.iter().map(|s| s.as_str().map_or(1, str::len)).sum()
        }
        ("L", Value::Array(items)) => 3 + items.iter().map(|i| 1 + value_size(i)).sum::<usize>(),
        ("M", Value::Object(map)) => {
            3 + map
                .iter()
                .map(|(k, i)| 1 + k.len() + value_size(i))
                .sum::<usize>()
        }
        _ => 1,
    }
}

/// Write units for an item of `size` bytes: one per started KB, at least one.
pub fn write_units(size: usize) -> f64 {
    size.div_ceil(1024).max(1) as f64
}

/// The partitions one item occupies in `table` with `schema`: the table's, and each index's whose key
/// the item has (a sparse index holds only items with its key).
pub fn item_partitions(
    table: &str,
    schema: &KeySchema,
    item: &Map<String, Value>,
) -> Vec<Partition> {
    let mut out = vec![];
    if let Some(key) = item.get(&schema.partition_key) {
        out.push(Partition {
            table: table.to_string(),
            index: None,
            key: key.to_string(),
        });
    }
    for (index, attribute) in &schema.indexes {
        if let Some(key) = item.get(attribute) {
            out.push(Partition {
                table: table.to_string(),
                index: Some(index.clone()),
                key: key.to_string(),
            });
        }
    }
    out
}

/// The partition key value a `Query` reads, from its `KeyConditionExpression` (`#pk = :v` or
/// `pk = :v`, names and values resolved), for the table or the index it names.
pub fn query_partition(table: &str, schema: &KeySchema, request: &Value) -> Option<Partition> {
    let index = request.get("IndexName").and_then(Value::as_str);
    let key_name = match index {
        Some(i) => schema
            .indexes
            .get(i)
            .cloned()
            .unwrap_or_else(|| schema.partition_key.clone()),
        None => schema.partition_key.clone(),
    };
    let names = request.get("ExpressionAttributeNames");
    let values = request.get("ExpressionAttributeValues")?;
    let condition = request.get("KeyConditionExpression")?.as_str()?;
    let condition = condition.replace(['(', ')'], " ");
    for clause in condition.split(" AND ").flat_map(|c| c.split(" and ")) {
        let Some((left, right)) = clause.split_once('=') else {
            continue;
        };
        let (left, right) = (left.trim(), right.trim());
        if left.ends_with(['<', '>', '!']) {
            continue;
        }
        let resolved = if left.starts_with('#') {
            names
                .and_then(|n| n.get(left))
                .and_then(Value::as_str)
                .unwrap_or(left)
        } else {
            left
        };
        if resolved == key_name {
            let value = values.get(right)?;
            // A local index shares the table's partitions.
            let gsi = index.filter(|i| schema.indexes.contains_key(*i));
            return Some(Partition {
                table: table.to_string(),
                index: gsi.map(str::to_string),
                key: value.to_string(),
            });
        }
    }
    None
}

/// Per partition and direction, a one-second token bucket and what it has served.
#[derive(Debug)]
pub struct Budgets {
    limits: PartitionLimits,
    buckets: HashMap<(Partition, Direction), Bucket>,
}

#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    at: f64,
    served: f64,
    throttled: u64,
    /// Units served in the current whole second, and the most in any whole second so far.
    second: i64,
    in_second: f64,
    peak: f64,
}

/// What one partition saw.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionStats {
    /// The partition.
    pub partition: Partition,
    /// Reads or writes.
    pub direction: Direction,
    /// Units served in all.
    pub units: f64,
    /// Most units served in one whole second.
    pub peak_units_per_sec: f64,
    /// Requests turned away.
    pub throttled: u64,
}

impl Budgets {
    /// Budgets with `limits`, every bucket full.
    pub fn new(limits: PartitionLimits) -> Self {
        Budgets {
            limits,
            buckets: HashMap::new(),
        }
    }

    /// The limits these budgets enforce.
    pub fn limits(&self) -> PartitionLimits {
        self.limits
    }

    fn limit(&self, direction: Direction) -> f64 {
        match direction {
            Direction::Read => self.limits.read_units_per_sec,
            Direction::Write => self.limits.write_units_per_sec,
        }
    }

    fn bucket(&mut self, partition: &Partition, direction: Direction, now: f64) -> &mut Bucket {
        let limit = self.limit(direction);
        let bucket = self
            .buckets
            .entry((partition.clone(), direction))
            .or_insert(Bucket {
                tokens: limit,
                at: now,
                served: 0.0,
                throttled: 0,
                second: now.floor() as i64,
                in_second: 0.0,
                peak: 0.0,
            });
        bucket.tokens = (bucket.tokens + (now - bucket.at).max(0.0) * limit).min(limit);
        bucket.at = now;
        bucket
    }

    /// Whether every `(partition, units)` of one request fits now; if so they are charged, if not
    /// nothing is and the partitions over budget are returned (each counted as throttled).
    pub fn admit(
        &mut self,
        charges: &[(Partition, f64)],
        direction: Direction,
        now: f64,
    ) -> Result<(), Vec<Partition>> {
        let over: Vec<Partition> = charges
            .iter()
            .filter(|(p, units)| self.bucket(p, direction, now).tokens < *units)
            .map(|(p, _)| p.clone())
            .collect();
        if !over.is_empty() {
            for p in &over {
                self.bucket(p, direction, now).throttled += 1;
            }
            return Err(over);
        }
        for (p, units) in charges {
            self.charge(p, direction, *units, now);
        }
        Ok(())
    }

    /// Charges `units` to `partition` whatever its budget (reads are charged after the fact, with
    /// what DynamoDB reported; the bucket may go below zero and the next request waits for it).
    pub fn charge(&mut self, partition: &Partition, direction: Direction, units: f64, now: f64) {
        let bucket = self.bucket(partition, direction, now);
        bucket.tokens -= units;
        bucket.served += units;
        let second = now.floor() as i64;
        if second != bucket.second {
            bucket.second = second;
            bucket.in_second = 0.0;
        }
        bucket.in_second += units;
        bucket.peak = bucket.peak.max(bucket.in_second);
    }

    /// Whether `partition` has anything left for `direction` now.
    pub fn has_budget(&mut self, partition: &Partition, direction: Direction, now: f64) -> bool {
        let bucket = self.bucket(partition, direction, now);
        if bucket.tokens > 0.0 {
            true
        } else {
            bucket.throttled += 1;
            false
        }
    }

    /// Every partition seen, busiest first.
    pub fn stats(&self) -> Vec<PartitionStats> {
        let mut out: Vec<PartitionStats> = self
            .buckets
            .iter()
            .map(|((partition, direction), b)| PartitionStats {
                partition: partition.clone(),
                direction: *direction,
                units: b.served,
                peak_units_per_sec: b.peak,
                throttled: b.throttled,
            })
            .collect();
        out.sort_by(|a, b| b.units.total_cmp(&a.units));
        out
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> KeySchema {
        KeySchema::from_description(&json!({
            "KeySchema": [{"AttributeName": "task_id", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": [{
                "IndexName": "sosw_tasks_greenfield",
                "KeySchema": [
                    {"AttributeName": "labourer_id", "KeyType": "HASH"},
                    {"AttributeName": "greenfield", "KeyType": "RANGE"}
                ]
            }]
        }))
        .expect("a key schema")
    }

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().cloned().expect("an object")
    }

    #[test]
    fn an_item_occupies_its_table_partition_and_each_index_it_has_the_key_of() {
        let item = object(json!({
            "task_id": {"S": "t1"}, "labourer_id": {"S": "lab"}, "greenfield": {"N": "1000"}
        }));
        let parts = item_partitions("tasks", &schema(), &item);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].index.as_deref(), Some("sosw_tasks_greenfield"));
        assert_eq!(parts[1].key, r#"{"S":"lab"}"#);
        let sparse = object(json!({"task_id": {"S": "t2"}}));
        assert_eq!(item_partitions("tasks", &schema(), &sparse).len(), 1);
    }

    #[test]
    fn sizes_and_units_follow_dynamodbs_rules() {
        let item = object(
            json!({"a": {"S": "xyz"}, "n": {"N": "12345"}, "m": {"M": {"k": {"BOOL": true}}}}),
        );
        // a: 1 + 3; n: 1 + 4; m: 1 + 3 + (1 + 1 + 1)
        assert_eq!(item_size(&item), 4 + 5 + 7);
        assert_eq!(write_units(1), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
    }

    #[test]
    fn a_query_reads_the_partition_its_key_condition_names() {
        let request = json!({
            "IndexName": "sosw_tasks_greenfield",
            "KeyConditionExpression": "#l = :l AND greenfield < :g",
            "ExpressionAttributeNames": {"#l": "labourer_id"},
            "ExpressionAttributeValues": {":l": {"S": "lab"}, ":g": {"N": "5"}}
        });
        let p = query_partition("tasks", &schema(), &request).expect("a partition");
        assert_eq!(p.index.as_deref(), Some("sosw_tasks_greenfield"));
        assert_eq!(p.key, r#"{"S":"lab"}"#);
    }

    #[test]
    fn scaled_down_limits_are_dynamodbs_divided_by_the_factor() {
        let scaled = PartitionLimits::default().scaled_down(200.0);
        assert_eq!(scaled.write_units_per_sec, 5.0);
        assert_eq!(scaled.read_units_per_sec, 15.0);
        assert_eq!(Budgets::new(scaled).limits(), scaled);
    }

    #[test]
    fn a_partition_serves_its_limit_per_second_and_no_more() {
        let mut budgets = Budgets::new(PartitionLimits {
            write_units_per_sec: 10.0,
            read_units_per_sec: 30.0,
        });
        let hot = Partition {
            table: "t".into(),
            index: None,
            key: "k".into(),
        };
        let mut admitted = 0;
        let mut turned_away = 0;
        // 100 one-unit writes spread over 2 seconds against 10 units per second (plus the first
        // second's full bucket).
        for i in 0..100 {
            let now = f64::from(i) * 0.02;
            match budgets.admit(&[(hot.clone(), 1.0)], Direction::Write, now) {
                Ok(()) => admitted += 1,
                Err(over) => {
                    assert_eq!(over, std::slice::from_ref(&hot));
                    turned_away += 1;
                }
            }
        }
        assert!((28..=31).contains(&admitted), "{admitted} admitted");
        assert_eq!(admitted + turned_away, 100);
        let stats = budgets.stats();
        assert_eq!(stats[0].throttled, turned_away);
        assert!(
            stats[0].peak_units_per_sec <= 20.0,
            "{}",
            stats[0].peak_units_per_sec
        );
        // Another key is not affected.
        let cold = Partition {
            key: "other".into(),
            ..hot
        };
        assert!(budgets.admit(&[(cold, 1.0)], Direction::Write, 2.0).is_ok());
    }
}
