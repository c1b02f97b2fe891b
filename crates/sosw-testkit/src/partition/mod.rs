//! The partition model: a proxy in front of DynamoDB Local that enforces DynamoDB's per-partition-key
//! throughput limits, so that tests and benchmarks see the ceiling a real table has and DynamoDB Local
//! does not.
//!
//! DynamoDB serves at most about 1,000 write units and 3,000 read units per second for one partition key
//! value, in a table and, on their own, in each global secondary index. A labourer whose whole queue
//! sits under one index key (sosw 0.7's `sosw_tasks_greenfield`, keyed by `labourer_id`) meets that
//! ceiling long before the orchestrator's own speed. DynamoDB Local has no such limit.
//!
//! [`PartitionProxy`] forwards every request and, before a write, works out which partitions it
//! touches (the table's key, and each index whose key the item has, the old item's included: it reads
//! the old item for updates and deletes) and what it costs (one unit per started KB; twice in a
//! transaction). A partition over its one-second budget turns the request away with DynamoDB's own
//! error: `ProvisionedThroughputExceededException` with a `ThrottlingReasons` entry
//! (`TableWriteKeyRangeThroughputExceeded`, `IndexWriteKeyRangeThroughputExceeded`, and the read
//! twins), which the AWS SDKs retry. Batch writes come back with the throttled items in
//! `UnprocessedItems`, as DynamoDB answers them; a transaction is cancelled with a `ThrottlingError`
//! reason. Reads are charged after the fact with the units DynamoDB Local reports.
//!
//! Simplifications, on purpose: the budget is a one-second token bucket per key (no burst credit, no
//! adaptive capacity splitting a hot key's range); a `PutItem` is charged to the new item's partitions
//! only; an update that changes an index key is charged to the old key's partition.

mod model;
mod proxy;
mod sustained;

pub use model::{
    Budgets, Direction, KeySchema, Partition, PartitionLimits, PartitionStats, item_partitions,
    item_size, query_partition, write_units,
};
pub use proxy::PartitionProxy;
pub use sustained::{KeyLoad, SustainedFigures, SustainedRun};
