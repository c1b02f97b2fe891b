//! The lean layout: one table, partition key `pk` and sort key `sk`, no index, a labourer's tasks over
//! `shards` partitions (see docs/layout-lean.md for the items, every operation's writes and why each
//! is safe).
//!
//! | item | `pk` | `sk` |
//! |---|---|---|
//! | queued task (never claimed, released, requeued, redriven) | `q#<labourer>#<shard>` | `<order(greenfield)>#<task_id>` |
//! | queued task of a labourer with per-key fairness (see `fair`) | `q#<labourer>#k#<path>#<key>#<shard>` | `<order(greenfield)>#<task_id>` |
//! | claimed task (invoked, completed, failed) | `r#<shard>` | `<task_id>` |
//! | task waiting for retry | `w#<labourer>` | `<task_id>` |
//! | closed task (TTL `expires_at`) | `c#<labourer>#<shard>` | `<task_id>` |
//! | labourer registry (with the shard count, `shards`) | `labourers` | `<labourer>` |
//! | the shard count again, where rounds read it | `k#<labourer>` | `~shards` |
//!
//! `shard = fnv1a(task_id) mod shards`. Every item carries the task as sosw 0.7's row (a queued item
//! without `task_id` and `greenfield`, which its sort key holds, without `labourer_id`, which its
//! partition key holds, with `job_id` as its length in the task id (`jl`) when the task id starts
//! with it, and without an `attempts` of 0: see `compact_queued`) plus `lrev`, a
//! counter that grows with every move: a move writes its destination first (`lrev + 1`) and deletes
//! its source second, each conditionally, so a stop between the two leaves the task in two places with
//! the later one recognisable by its higher `lrev`, never in none. Reads resolve such a pair to the
//! later item; the next claim of the stale queued item deletes it.
//!
//! Job records stay in their own table (`sosw_jobs`, as on sosw 0.7's layout): [`LeanTaskStore`]
//! implements [`sosw_core::store::JobStore`] through the 0.7 layout's job store.

mod archive;
mod claims;
mod counts;
mod fair;
pub mod migrate;
mod pack;
mod queue;
pub mod reshard;
mod schema;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnValuesOnConditionCheckFailure,
};

use super::DynamoTaskStore;
use super::codec::{Item, decode_error, item_to_task, n, s, task_to_item};
use super::errors::{build_error, refused_item, sdk_error, store_error, written};
use super::query::{self, QuerySpec};
use sosw_core::clock::{Clock, SystemClock};
use sosw_core::error::Result;
use sosw_core::store::TableNames;
use sosw_core::task::{Task, TaskId};

pub use counts::Signed;
pub use schema::{create_lean_tables, create_lean_tables_without_stream, delete_lean_tables};

/// The attribute holding a item's move counter.
pub(crate) const REV: &str = "lrev";
/// The TTL attribute of closed items.
pub(crate) const EXPIRES: &str = "expires_at";
/// When a waiting item was written (Unix seconds, the mover's clock): how a later step tells the
/// first half of a move whose mover stopped from one whose mover may still be at work.
pub(crate) const MOVED_AT: &str = "lmoved";
/// The registry partition.
const REGISTRY: &str = "labourers";
/// Keys per `BatchGetItem`.
const GET_BATCH: usize = 100;

/// Where a lean deployment keeps its tasks and jobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeanOptions {
    /// The lean table (`sosw_lean`): hash `pk` (S), range `sk` (S), TTL on `expires_at`.
    pub table: String,
    /// The job records' table (`sosw_jobs`, hash `job_id`), shared with the 0.7 layout's job store.
    pub jobs_table: String,
    /// The shared ecology state's table (`sosw_ecology`, hash `labourer_id`), shared with the 0.7
    /// layout's store.
    pub ecology_table: String,
    /// Partitions per labourer and item kind, 1 to 64. Fixed for a table: each labourer's first
    /// registration records it, and a store set to another count is refused by name where it reads
    /// or writes that labourer's tasks (docs/layout-lean.md, "Changing the shard count").
    pub shards: u32,
    /// How long a closed item is kept (seconds after `closed_at`) before DynamoDB's TTL deletes it.
    pub closed_ttl_secs: i64,
    /// A completion reported to the worker assistant (with `archive_completed` on) closes the task in
    /// one move: an eventually consistent read of the claim, the closed item written, the claim
    /// deleted (2 write units and half a read unit) instead of a completion mark and a move (3 write
    /// units). On by default: half a read unit costs a tenth of the write unit it saves
    /// (docs/layout-lean.md, "Completing and closing in one move").
    pub close_on_completion: bool,
    /// A claim gives a receipt for the worker's event (`sosw_claim`, `sosw_core::task::receipt`):
    /// the claimed row without its payload, the claim's move counter and a digest of the payload. A
    /// worker run by sosw's worker runner sends its event back with the completion, and the close then
    /// needs no read of the claim. On by default (it only matters with `close_on_completion`); off,
    /// workers' events are exactly sosw 0.7's.
    pub claim_receipts: bool,
    /// At most this many queued items (about, split evenly over the partitions; a pack counts one) a per-key round
    /// (`queue_by_key`) reads of a keyed labourer's queue that is not filed under its current keys:
    /// tasks queued before its fairness path was recorded, or under an earlier path. Those are read
    /// oldest first and grouped by key in memory, so without a bound a deep backlog would be read
    /// whole, into the orchestrator's memory, every round; the rest waits for a later round
    /// (docs/layout-lean.md, "Per-key fairness").
    pub unkeyed_read_max: usize,
    /// An enqueue packs the tasks it writes to one queue partition with neighbouring greenfields
    /// into items of at most about 1 KB (about seven of the benchmark's tasks): one write unit for
    /// the pack instead of one per task, and the claim that empties the pack deletes it, so a task
    /// costs `4 + 2/k` write units for a pack of `k` instead of 5 (docs/layout-lean.md, "Packed
    /// queued items"). On by default; off, every queued task is an item of its own. Either way the
    /// store reads both.
    pub pack_queued: bool,
}

impl Default for LeanOptions {
    fn default() -> Self {
        LeanOptions {
            table: "sosw_lean".into(),
            jobs_table: "sosw_jobs".into(),
            ecology_table: "sosw_ecology".into(),
            shards: 4,
            closed_ttl_secs: 30 * 24 * 3600,
            close_on_completion: true,
            claim_receipts: true,
            unkeyed_read_max: 10_000,
            pack_queued: true,
        }
    }
}

impl LeanOptions {
    /// The default names with `prefix` in front of both tables.
    pub fn with_prefix(prefix: &str) -> Self {
        let d = LeanOptions::default();
        LeanOptions {
            table: format!("{prefix}{}", d.table),
            jobs_table: format!("{prefix}{}", d.jobs_table),
            ecology_table: format!("{prefix}{}", d.ecology_table),
            ..d
        }
    }

    /// The same options with `shards` partitions per labourer.
    pub fn shards(self, shards: u32) -> Self {
        LeanOptions { shards, ..self }
    }
}

/// The [`sosw_core::store::TaskStore`] and [`sosw_core::store::JobStore`] over the lean layout.
/// Cheap to clone. Construction makes no request.
#[derive(Debug, Clone)]
pub struct LeanTaskStore {
    inner: Arc<LeanInner>,
}

#[derive(Debug)]
struct LeanInner {
    client: Client,
    options: LeanOptions,
    /// The 0.7 layout's store, for the job records and batched puts.
    legacy: DynamoTaskStore,
    /// Labourers this process has registered already.
    registered: Mutex<HashSet<String>>,
    /// Queued items this process read with `next_queued`, by task id: the orchestrator claims what
    /// it has just read, so a claim needs no read (a stale entry only makes the claim's conditional
    /// delete fail, and the claim is then taken back).
    seen_queued: Mutex<HashMap<String, Found>>,
    /// Move counters of claim items this process has just written a report on, by task id: the
    /// worker assistant archives what it has just completed, so the archive needs no read (a stale
    /// counter only makes the archive's conditional delete fail, and the move is taken back).
    seen_claims: Mutex<HashMap<String, i64>>,
    /// At most how many tasks each pack this process read with `next_queued` still holds (as read,
    /// less the ones this process took out since), behind a lock each removal from the pack holds
    /// for its write: the removals of one pack's tasks by this process's concurrent claims go one
    /// at a time, so the claim of its last task knows it is the last and deletes the pack at once,
    /// without a refused `REMOVE` first (which AWS charges).
    pack_left: Mutex<HashMap<KeyPrint, PackCount>>,
    /// Receipts of the claims this process has just made, by task id, until the orchestrator takes
    /// them for the worker's event.
    receipts: Mutex<HashMap<String, serde_json::Value>>,
    /// With a client, closed tasks are counted into their jobs in batches from the table's stream
    /// (`counts.rs`); without, each closer adds its task to the job record at once.
    streams: Option<aws_sdk_dynamodbstreams::Client>,
    /// The fairness paths and keys this process has read or registered (see `fair`).
    fair: fair::FairState,
    /// The clock of the times moves record and compare ([`MOVED_AT`]): the system's, or a test's.
    clock: Arc<dyn Clock>,
}

/// At most this many queued items are remembered for claims (and as many claim counters and
/// receipts): past it, what is remembered is forgotten at once, which only costs reads.
const SEEN_QUEUED_MAX: usize = 100_000;

/// Remembers `value` for `task_id` in one of the process's memories of what it has just read or
/// written, forgetting everything first when it is full.
fn keep<V>(memory: &Mutex<HashMap<String, V>>, task_id: &str, value: V) {
    let mut memory = memory
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if memory.len() >= SEEN_QUEUED_MAX {
        memory.clear();
    }
    memory.insert(task_id.to_owned(), value);
}

/// What one of those memories holds for `task_id`, forgotten as it is returned.
fn take<V>(memory: &Mutex<HashMap<String, V>>, task_id: &str) -> Option<V> {
    memory
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(task_id)
}

/// An item of the lean table decoded: the task, its move counter and its key.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub task: Task,
    pub rev: i64,
    pub key: Item,
    /// [`MOVED_AT`], on the items that carry it (waiting items written by this build).
    pub moved_at: Option<i64>,
    /// For a task of a pack, how many tasks the pack held when read.
    pub pack_len: Option<usize>,
}

/// One read of a partition: every item of `pk` (at most `limit`), optionally within a sort-key range
/// (inclusive) and through a filter whose values are `values`.
pub(crate) struct Read {
    pub operation: &'static str,
    pub pk: String,
    pub range: Option<(String, String)>,
    pub filter: Option<&'static str>,
    pub values: Vec<(&'static str, AttributeValue)>,
    pub limit: usize,
    pub descending: bool,
    pub consistent: bool,
}

/// What [`LeanTaskStore::partition_items`] read.
pub(crate) struct PartitionRead {
    /// The tasks.
    pub found: Vec<Found>,
    /// How many items held them (a pack is one).
    pub items: usize,
    /// The sort key of the last item read.
    pub last_sk: Option<String>,
}

/// What a conditional write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    Yes,
    ConditionFailed,
}

impl LeanTaskStore {
    /// A store over `options.table` through `client`. Errors if `options.shards` is not 1 to 64.
    pub fn new(client: Client, options: LeanOptions) -> Result<Self> {
        if !(1..=64).contains(&options.shards) {
            return Err(sosw_core::Error::invalid(
                "lean layout",
                format!("shards must be 1 to 64, not {}", options.shards),
            ));
        }
        let tables = TableNames {
            jobs: options.jobs_table.clone(),
            ecology: options.ecology_table.clone(),
            ..TableNames::default()
        };
        Ok(LeanTaskStore {
            inner: Arc::new(LeanInner {
                legacy: DynamoTaskStore::new(client.clone(), tables),
                client,
                options,
                registered: Mutex::new(HashSet::new()),
                seen_queued: Mutex::new(HashMap::new()),
                seen_claims: Mutex::new(HashMap::new()),
                pack_left: Mutex::new(HashMap::new()),
                receipts: Mutex::new(HashMap::new()),
                streams: None,
                fair: fair::FairState::default(),
                clock: Arc::new(SystemClock),
            }),
        })
    }

    /// This store with `clock` for the times its moves record and compare (whether the first half
    /// of a move was written long enough ago that its mover has stopped: docs/layout-lean.md, "Why
    /// each transition is safe"); the system's clock by default. A test on a virtual clock gives
    /// its own.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        let streams = self.inner.streams.clone();
        self.rebuilt(streams, clock)
    }

    /// The current time of [`LeanTaskStore::with_clock`]'s clock, in Unix seconds.
    pub(crate) fn now_secs(&self) -> i64 {
        self.inner.clock.now_secs()
    }

    /// A new store over the same table and options, with `streams` and `clock` and nothing
    /// remembered.
    fn rebuilt(
        &self,
        streams: Option<aws_sdk_dynamodbstreams::Client>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let inner = &self.inner;
        LeanTaskStore {
            inner: Arc::new(LeanInner {
                client: inner.client.clone(),
                options: inner.options.clone(),
                legacy: inner.legacy.clone(),
                registered: Mutex::new(HashSet::new()),
                seen_queued: Mutex::new(HashMap::new()),
                seen_claims: Mutex::new(HashMap::new()),
                pack_left: Mutex::new(HashMap::new()),
                receipts: Mutex::new(HashMap::new()),
                streams,
                fair: fair::FairState::default(),
                clock,
            }),
        }
    }

    /// This store counting closed tasks into their jobs in batches, from the table's stream through
    /// `streams` (one update per job and scavenger run instead of one per closed task; the table needs
    /// its stream with `NEW_AND_OLD_IMAGES`, as [`create_lean_tables`] and the stacks make it). See
    /// docs/layout-lean.md, "Job counters in batches".
    pub fn with_job_counts_from_stream(self, streams: aws_sdk_dynamodbstreams::Client) -> Self {
        let clock = self.inner.clock.clone();
        self.rebuilt(Some(streams), clock)
    }

    pub(crate) fn streams_client(&self) -> Option<&aws_sdk_dynamodbstreams::Client> {
        self.inner.streams.as_ref()
    }

    /// The options this store uses.
    pub fn options(&self) -> &LeanOptions {
        &self.inner.options
    }

    /// The DynamoDB client.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    pub(crate) fn table(&self) -> &str {
        &self.inner.options.table
    }

    pub(crate) fn legacy(&self) -> &DynamoTaskStore {
        &self.inner.legacy
    }

    /// The shard of a task id.
    pub(crate) fn shard(&self, task_id: &str) -> u32 {
        shard_of(task_id, self.inner.options.shards)
    }

    pub(crate) fn shards(&self) -> u32 {
        self.inner.options.shards
    }

    /// Registers `labourers` in the registry partition (once per process and labourer).
    pub(crate) async fn register(&self, labourers: &[&str]) -> Result<()> {
        let new: Vec<String> = {
            let seen = self
                .inner
                .registered
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            labourers
                .iter()
                .filter(|l| !seen.contains(**l))
                .map(|l| (*l).to_owned())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect()
        };
        for labourer in new {
            // The shard count goes with the registration, on the condition that the labourer's
            // tasks were not written under another one: changing it would strand them. Recorded
            // now for the first time, it goes where rounds and scavenger runs read it too.
            if !self
                .record_shards(REGISTRY.to_owned(), labourer.clone(), &labourer)
                .await?
            {
                self.record_shards(
                    fair::registry_pk(&labourer),
                    fair::SHARDS_SK.to_owned(),
                    &labourer,
                )
                .await?;
            }
            self.inner
                .registered
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(labourer);
        }
        Ok(())
    }

    /// Remembers queued items read by `next_queued`.
    pub(crate) fn remember_queued(&self, found: &[Found]) {
        let mut seen = self
            .inner
            .seen_queued
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() + found.len() > SEEN_QUEUED_MAX {
            seen.clear();
        }
        for f in found {
            seen.insert(f.task.task_id.as_str().to_owned(), f.clone());
        }
        drop(seen);
        let mut left = self
            .inner
            .pack_left
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if left.len() + found.len() > SEEN_QUEUED_MAX {
            left.clear();
        }
        for f in found {
            if let Some(len) = f.pack_len {
                let print = key_print(&pack::table_key(&f.key));
                let known = left
                    .entry(print)
                    .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(len)));
                // A read later than the count's lowers it; a count a removal holds now is left
                // as it is (it is an upper bound either way).
                if let Ok(mut count) = known.try_lock() {
                    *count = (*count).min(len);
                }
            }
        }
    }

    /// The count of the pack at `key` (see `pack_left`), if this process read the pack.
    pub(crate) fn pack_count(&self, key: &Item) -> Option<PackCount> {
        self.inner
            .pack_left
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key_print(&pack::table_key(key)))
            .cloned()
    }

    /// Forgets the count of the pack at `key`: the pack is gone.
    pub(crate) fn forget_pack(&self, key: &Item) {
        self.inner
            .pack_left
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&key_print(&pack::table_key(key)));
    }

    /// The queued item of `task_id` this process read last, forgotten as it is returned.
    pub(crate) fn recall_queued(&self, task_id: &TaskId) -> Option<Found> {
        take(&self.inner.seen_queued, task_id.as_str())
    }

    /// Remembers the move counter of a claim item just written.
    pub(crate) fn remember_claim(&self, task_id: &str, rev: i64) {
        keep(&self.inner.seen_claims, task_id, rev);
    }

    /// The move counter of the claim item of `task_id` this process wrote last, forgotten as it is
    /// returned.
    pub(crate) fn recall_claim(&self, task_id: &str) -> Option<i64> {
        take(&self.inner.seen_claims, task_id)
    }

    /// Keeps the receipt of a claim just made (`claimed` as written, with move counter `rev`) for the
    /// worker's event, when receipts are on.
    pub(crate) fn issue_receipt(&self, claimed: &Task, rev: i64) {
        let options = self.options();
        if !(options.claim_receipts && options.close_on_completion) {
            return;
        }
        if let Some(receipt) = sosw_core::task::receipt::issue(claimed, rev) {
            keep(&self.inner.receipts, claimed.task_id.as_str(), receipt);
        }
    }

    /// The receipt of the claim of `task_id` this process made last, forgotten as it is returned.
    pub(crate) fn take_receipt(&self, task_id: &TaskId) -> Option<serde_json::Value> {
        take(&self.inner.receipts, task_id.as_str())
    }

    /// Every labourer that ever had a task in this table (refused if one's recorded shard count is
    /// not this store's).
    pub(crate) async fn labourers(&self) -> Result<Vec<String>> {
        let mut labourers = Vec::new();
        for entry in self.registry_entries().await? {
            self.check_shards(&entry.labourer, &entry.record)?;
            labourers.push(entry.labourer);
        }
        Ok(labourers)
    }

    /// One consistent read by key.
    pub(crate) async fn get(&self, operation: &'static str, key: Item) -> Result<Option<Found>> {
        self.get_read(operation, key, true).await
    }

    /// One read by key, strongly consistent or not (half the read units; may miss a write of the
    /// last second).
    pub(crate) async fn get_read(
        &self,
        operation: &'static str,
        key: Item,
        consistent: bool,
    ) -> Result<Option<Found>> {
        let out = self
            .client()
            .get_item()
            .table_name(self.table())
            .set_key(Some(pack::table_key(&key)))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(|e| sdk_error(operation, self.table(), e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        Ok(pack::decode_all(item, self.table())?
            .into_iter()
            .find(|f| f.key == key))
    }

    /// Consistent reads of many keys (those that exist).
    pub(crate) async fn get_many(
        &self,
        operation: &'static str,
        keys: Vec<Item>,
    ) -> Result<Vec<Found>> {
        let table = self.table().to_owned();
        // A key naming an entry of a pack reads the pack (once, however many of its entries are
        // asked for: a batch read refuses a key twice) and keeps the entries asked for.
        let wanted: HashSet<KeyPrint> = keys.iter().map(key_print).collect();
        let mut seen = HashSet::new();
        let mut table_keys: Vec<Item> = Vec::new();
        for k in &keys {
            let k = pack::table_key(k);
            if seen.insert(key_print(&k)) {
                table_keys.push(k);
            }
        }
        let mut found = Vec::new();
        for chunk in table_keys.chunks(GET_BATCH) {
            let mut pending = KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .consistent_read(true)
                .build()
                .map_err(|e| build_error(operation, &table, e))?;
            for attempt in 0.. {
                let out = self
                    .client()
                    .batch_get_item()
                    .request_items(&table, pending.clone())
                    .send()
                    .await
                    .map_err(|e| sdk_error(operation, &table, e))?;
                if let Some(mut responses) = out.responses {
                    for item in responses.remove(&table).unwrap_or_default() {
                        found.extend(
                            pack::decode_all(item, &table)?
                                .into_iter()
                                .filter(|f| wanted.contains(&key_print(&f.key))),
                        );
                    }
                }
                match out.unprocessed_keys.and_then(|mut m| m.remove(&table)) {
                    Some(rest) if !rest.keys().is_empty() => pending = rest,
                    _ => break,
                }
                let policy = *self.legacy().batch_retry();
                if attempt >= policy.max_retries {
                    return Err(store_error(
                        operation,
                        &table,
                        true,
                        "keys still unprocessed (throttled) after every resend",
                    ));
                }
                tokio::time::sleep(policy.delay(attempt)).await;
            }
        }
        Ok(found)
    }

    /// Every item of partition `pk` (paginated to the end), optionally with a sort-key range
    /// `(low, high)` (inclusive) and a filter. Listings read eventually consistently (as sosw 0.7's
    /// index queries do: every change they lead to is a conditional write); lookups before a move read
    /// consistently.
    ///
    /// `limit` counts items: a pack is one, and gives each of its tasks. A pack's tasks whose own
    /// sort keys are outside the range (a pack's key is its first task's) are left out.
    pub(crate) async fn partition(&self, read: Read) -> Result<Vec<Found>> {
        Ok(self.partition_items(read).await?.found)
    }

    /// [`LeanTaskStore::partition`], with how many items it read and the last one's sort key.
    pub(crate) async fn partition_items(&self, read: Read) -> Result<PartitionRead> {
        let limit = read.limit;
        let range = read.range.clone();
        let spec = self.spec_of(read);
        let items = query::collect(self.client(), &spec, limit).await?;
        let read = PartitionRead {
            items: items.len(),
            last_sk: items
                .last()
                .and_then(|i| i.get("sk"))
                .and_then(|v| v.as_s().ok())
                .cloned(),
            found: Vec::with_capacity(items.len()),
        };
        items.into_iter().try_fold(read, |mut read, item| {
            read.found.extend(
                pack::decode_all(item, self.table())?
                    .into_iter()
                    .filter(|f| within(f, range.as_ref())),
            );
            Ok(read)
        })
    }

    /// The `keep` items of the partitions `reads` (their limits ignored) that come first by
    /// `rank`, lowest first. Read a page at a time, so memory holds a page and about twice `keep`
    /// items, not the partitions (a labourer's closed items or retries can be a million).
    pub(crate) async fn best_of<K: Ord>(
        &self,
        reads: Vec<Read>,
        keep: usize,
        rank: impl Fn(&Found) -> K,
    ) -> Result<Vec<Found>> {
        let mut best: Vec<Found> = Vec::new();
        let trim = |best: &mut Vec<Found>| {
            best.sort_by_key(|f| rank(f));
            best.truncate(keep);
        };
        for read in reads {
            query::each_page(self.client(), &self.spec_of(read), |items| {
                for item in items {
                    best.extend(pack::decode_all(item, self.table())?);
                }
                if best.len() > keep.saturating_mul(2).max(1_000) {
                    trim(&mut best);
                }
                Ok(())
            })
            .await?;
        }
        trim(&mut best);
        Ok(best)
    }

    /// The query of `read` (its limit aside).
    fn spec_of(&self, read: Read) -> QuerySpec<'_> {
        let Read {
            operation,
            pk,
            range,
            filter,
            mut values,
            limit: _,
            descending,
            consistent,
        } = read;
        let condition = if let Some((low, high)) = range {
            values.push((":low", s(low)));
            values.push((":high", s(high)));
            "pk = :pk AND sk BETWEEN :low AND :high"
        } else {
            "pk = :pk"
        };
        values.push((":pk", s(pk)));
        let mut spec = QuerySpec::new(operation, self.table(), None, condition, values);
        if consistent {
            spec = spec.consistent();
        }
        if let Some(f) = filter {
            spec = spec.filter(f);
        }
        if descending {
            spec = spec.descending();
        }
        spec
    }

    /// Puts `item` unless an item with its key exists with `lrev >= rev of item` (a later state).
    pub(crate) async fn put_newer(&self, operation: &'static str, item: Item) -> Result<Written> {
        Ok(match self.put_newer_seeing(operation, item).await? {
            None => Written::Yes,
            Some(_) => Written::ConditionFailed,
        })
    }

    /// [`LeanTaskStore::put_newer`] that, when refused, gives back the item that refused it
    /// (`Some(None)` if DynamoDB returned none); `None` when written. The refusing item comes with the
    /// refusal (`ReturnValuesOnConditionCheckFailure`), without a read.
    pub(crate) async fn put_newer_seeing(
        &self,
        operation: &'static str,
        item: Item,
    ) -> Result<Option<Option<Found>>> {
        let rev = item.get(REV).cloned().unwrap_or_else(|| n(0));
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #rev < :rev")
            .expression_attribute_names("#rev", REV)
            .expression_attribute_values(":rev", rev)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let refused = refused_item(
            operation,
            self.table(),
            result,
            PutItemError::is_conditional_check_failed_exception,
            |e| match e {
                PutItemError::ConditionalCheckFailedException(c) => c.item,
                _ => None,
            },
        )?;
        match refused {
            None => Ok(None),
            Some(old) => Ok(Some(old.map(|i| decode(i, self.table())).transpose()?)),
        }
    }

    /// Deletes `key` if its item still has move counter `rev` and satisfies `extra` (a condition over
    /// `#gf`, `#done`, `#st`, with its own values).
    pub(crate) async fn delete_if(
        &self,
        operation: &'static str,
        key: Item,
        rev: i64,
        extra: Option<(String, Vec<(&'static str, AttributeValue)>)>,
    ) -> Result<Written> {
        if pack::entry_of(&key).is_some() {
            return self.remove_entry(operation, key, rev, extra).await;
        }
        let mut condition = "#rev = :rev".to_owned();
        let mut values = HashMap::from([(":rev".to_owned(), n(rev))]);
        let mut names = HashMap::from([("#rev".to_owned(), REV.to_owned())]);
        if let Some((extra, extra_values)) = extra {
            condition = format!("{condition} AND {extra}");
            for (k, v) in extra_values {
                values.insert(k.to_owned(), v);
            }
            for (k, v) in CONDITION_NAMES {
                if condition.contains(k) {
                    names.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let result = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(key))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        let refused = DeleteItemError::is_conditional_check_failed_exception;
        Ok(match written(operation, self.table(), result, refused)? {
            true => Written::Yes,
            false => Written::ConditionFailed,
        })
    }

    /// `task` as an item under `key` with move counter `rev`.
    pub(crate) fn item(&self, task: &Task, key: &Item, rev: i64) -> Result<Item> {
        let mut item = task_to_item(task, self.table())?;
        if is_queued_key(key) {
            compact_queued(&mut item, task, key);
        }
        item.extend(key.clone());
        item.insert(REV.to_owned(), n(rev));
        Ok(item)
    }

    // Keys.

    pub(crate) fn queued_key(&self, task: &Task) -> Item {
        key(
            format!(
                "q#{}#{}",
                task.labourer_id,
                self.shard(task.task_id.as_str())
            ),
            format!("{}#{}", order(task.greenfield), task.task_id),
        )
    }

    pub(crate) fn queue_pk(labourer: &str, shard: u32) -> String {
        format!("q#{labourer}#{shard}")
    }

    /// A claim item's key: by task id alone (over the table's shards, not the labourer's), so a
    /// report finds it without a read.
    pub(crate) fn claim_key(&self, task_id: &str) -> Item {
        key(format!("r#{}", self.shard(task_id)), task_id.to_owned())
    }

    pub(crate) fn claim_pk(shard: u32) -> String {
        format!("r#{shard}")
    }

    pub(crate) fn closed_key(&self, labourer: &str, task_id: &str) -> Item {
        key(
            format!("c#{labourer}#{}", self.shard(task_id)),
            task_id.to_owned(),
        )
    }

    pub(crate) fn closed_pk(labourer: &str, shard: u32) -> String {
        format!("c#{labourer}#{shard}")
    }

    pub(crate) fn retry_key(labourer: &str, task_id: &str) -> Item {
        key(format!("w#{labourer}"), task_id.to_owned())
    }

    pub(crate) fn retry_pk(labourer: &str) -> String {
        format!("w#{labourer}")
    }

    /// The queued items of `task_id` under `labourer` (normally none or one; two only after a stop
    /// between the two writes of a move). Reads the task's queue shard, plain and of every fairness
    /// key: a queued task's key holds its greenfield and its fairness key, which a lookup by id does
    /// not know.
    pub(crate) async fn queued_by_id(
        &self,
        labourer: &str,
        task_id: &TaskId,
    ) -> Result<Vec<Found>> {
        let pks = self
            .queue_shard_pks(labourer, self.shard(task_id.as_str()))
            .await?;
        let ids = HashSet::from([task_id.as_str()]);
        let keys = self
            .queued_keys_with_ids("find queued task", pks, &ids, true)
            .await?;
        let mut found = self.get_many("find queued task", keys.clone()).await?;
        // In the order the partitions hold them (a batch read answers in any order): of two items
        // with the same move counter, the later one is the one taken.
        found.sort_by_key(|f| keys.iter().position(|k| *k == f.key));
        Ok(found)
    }

    /// The keys of the queued items in `pks` (sort key `<greenfield, ordered>#<task_id>`) of the
    /// tasks in `ids`. The id is in the sort key, which neither a key condition nor a filter can
    /// match by its end, so each partition is read whole (`consistent` or not), but a page at a time and
    /// only its sort keys: memory holds a page and the matches, not the partition (a labourer's
    /// queue a million deep would not fit a function's memory), for the read units of the whole.
    pub(crate) async fn queued_keys_with_ids(
        &self,
        operation: &'static str,
        pks: Vec<String>,
        ids: &HashSet<&str>,
        consistent: bool,
    ) -> Result<Vec<Item>> {
        let per_partition: Vec<Vec<Item>> = futures::stream::iter(pks)
            .map(|pk| async move {
                let mut spec = QuerySpec::new(
                    operation,
                    self.table(),
                    None,
                    "pk = :pk",
                    vec![(":pk", s(pk.clone()))],
                )
                // `pt` and `pj`: pack::PACKED and pack::PREFIX.
                .project("sk, pt, pj");
                if consistent {
                    spec = spec.consistent();
                }
                let mut keys = Vec::new();
                query::each_page(self.client(), &spec, |items| {
                    for item in items {
                        let Some(AttributeValue::S(sk)) = item.get("sk") else {
                            continue;
                        };
                        if let Some(entries) =
                            pack::entry_ids(&item, &key(pk.clone(), sk.clone()), self.table())?
                        {
                            keys.extend(
                                entries
                                    .into_iter()
                                    .filter(|(id, _)| ids.contains(id.as_str()))
                                    .map(|(_, entry)| entry),
                            );
                        } else if sk.split_once('#').is_some_and(|(_, id)| ids.contains(id)) {
                            keys.push(key(pk.clone(), sk.clone()));
                        }
                    }
                    Ok(())
                })
                .await?;
                Ok::<_, sosw_core::Error>(keys)
            })
            .buffered(fair::READ_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(per_partition.into_iter().flatten().collect())
    }

    /// The live item of `task_id`: its claim item if there is one (one read by key), else its queued
    /// item, searched under `labourer` or every registered labourer. A queued item left beside a later
    /// claim item by a stopped move is not looked for here: the next claim of it finishes the move.
    pub(crate) async fn find_live(
        &self,
        task_id: &TaskId,
        labourer: Option<&str>,
    ) -> Result<Option<Found>> {
        if let Some(found) = self
            .get("find task", self.claim_key(task_id.as_str()))
            .await?
            .filter(|f| labourer.is_none_or(|l| f.task.labourer_id == l))
        {
            return Ok(Some(found));
        }
        let mut candidates = Vec::new();
        match labourer {
            Some(l) => candidates.extend(self.queued_by_id(l, task_id).await?),
            None => {
                for l in self.labourers().await? {
                    candidates.extend(self.queued_by_id(&l, task_id).await?);
                }
            }
        }
        Ok(latest(candidates))
    }

    /// The closed item of `task_id`, searched under every registered labourer.
    pub(crate) async fn find_closed(&self, task_id: &TaskId) -> Result<Option<Found>> {
        // Closed items stay where they were written: under every count the table had.
        let mut keys = Vec::new();
        for entry in self.registry_entries().await? {
            self.check_shards(&entry.labourer, &entry.record)?;
            for count in reshard::counts_ever(self.shards(), &entry.record) {
                let closed = key(
                    Self::closed_pk(&entry.labourer, shard_of(task_id.as_str(), count)),
                    task_id.as_str().to_owned(),
                );
                // Two counts may give the same shard; a batch read refuses a key twice.
                if !keys.contains(&closed) {
                    keys.push(closed);
                }
            }
        }
        Ok(latest(self.get_many("find closed task", keys).await?))
    }
}

/// Whether `found`, read with the sort-key range `range`, is within it by its own sort key: always
/// for an item of its own (the read's condition chose it), and for a task of a pack, whose key is
/// its first task's, when its own sort key (`<greenfield, ordered>#<task_id>`) is.
fn within(found: &Found, range: Option<&(String, String)>) -> bool {
    let Some((low, high)) = range else {
        return true;
    };
    if pack::entry_of(&found.key).is_none() {
        return true;
    }
    let own = format!("{}#{}", order(found.task.greenfield), found.task.task_id);
    low.as_str() <= own.as_str() && own.as_str() <= high.as_str()
}

/// At most how many tasks a pack holds, as this process knows, behind the lock its removals take.
pub(crate) type PackCount = Arc<tokio::sync::Mutex<usize>>;

/// The names an extra condition of [`LeanTaskStore::delete_if`] may use, and the attributes they
/// stand for.
pub(crate) const CONDITION_NAMES: [(&str, &str); 4] = [
    ("#gf", "greenfield"),
    ("#done", "completed_at"),
    ("#st", "labourer_id_task_status"),
    ("#fa", "failed_attempts"),
];

/// A key's strings (partition, sort, the pack entry it names), to hash.
type KeyPrint = (Option<String>, Option<String>, Option<String>);

fn key_print(key: &Item) -> KeyPrint {
    let text = |name: &str| key.get(name).and_then(|v| v.as_s().ok()).cloned();
    (text("pk"), text("sk"), text(pack::ENTRY))
}

/// The item with the highest move counter.
pub(crate) fn latest(found: Vec<Found>) -> Option<Found> {
    found.into_iter().max_by_key(|f| f.rev)
}

pub(crate) fn key(pk: String, sk: String) -> Item {
    Item::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// A greenfield (or any i64) as a string that sorts as the numbers do, negatives included, and is
/// short for the small numbers a queue's greenfields are (1,000 apart from 1,000): a letter that
/// says the sign and the number of digits, then the digits. `0..=9` are `b0`..`b9`, `2000` is
/// `e2000`, `i64::MAX` is `t` and 19 digits; a negative number of `n` digits is `A` + (19 - n) and
/// each digit of its magnitude as 9 minus it (a larger magnitude sorts first), so every negative
/// (`A`..`S`) sorts before every other (`b`..`t`). The key of a queued item of greenfield 2000 is
/// 15 bytes shorter than with 20 digits, on the item a round reads one by one.
pub(crate) fn order(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    // At most 19 digits (`i64::MIN` has 19).
    let len = digits.len() as u8;
    if v >= 0 {
        format!("{}{digits}", char::from(b'a' + len))
    } else {
        let flipped: String = digits
            .bytes()
            .map(|d| char::from(b'9' - d + b'0'))
            .collect();
        format!("{}{flipped}", char::from(b'A' + 19 - len))
    }
}

/// FNV-1a of the id, modulo `shards`.
pub(crate) fn shard_of(task_id: &str, shards: u32) -> u32 {
    (fnv1a(task_id.as_bytes()) % u64::from(shards.max(1))) as u32
}

/// FNV-1a, 64 bits.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The task id attribute of sosw 0.7's row.
const TASK_ID: &str = "task_id";
/// The greenfield attribute of sosw 0.7's row.
const GREENFIELD: &str = "greenfield";

/// The labourer attribute of sosw 0.7's row.
const LABOURER_ID: &str = "labourer_id";
/// The attempts attribute of sosw 0.7's row.
const ATTEMPTS: &str = "attempts";
/// The job id attribute of sosw 0.7's row.
const JOB_ID: &str = "job_id";
/// A queued item's stand-in for its job id: how many leading bytes of the task id it is.
const JOB_PREFIX: &str = "jl";

/// The labourer a queued item's partition key names (`q#<labourer>#<shard>` or
/// `q#<labourer>#k#...`): the segment after `q#`, which is the whole labourer id when that has no
/// `#`.
fn queued_labourer(pk: &str) -> Option<&str> {
    pk.strip_prefix("q#")?.split('#').next()
}

/// Leaves out of the queued item `item` of `task` under `key` what [`decode`] reads back without
/// it. The queue is what a round reads item by item (and pays for by the 4 KB), so its items carry
/// nothing twice: the task id and greenfield are in the sort key (`<greenfield>#<task_id>`), the
/// labourer in the partition key (`q#<labourer>#...`, unless the labourer id has a `#` of its own),
/// the job id, when the task id starts with it (as the scheduler names tasks: `<job_id>-<n>`), as
/// its length (`jl`), and an attempt count of 0 is what a missing one reads as.
fn compact_queued(item: &mut Item, task: &Task, key: &Item) {
    item.remove(TASK_ID);
    item.remove(GREENFIELD);
    if let Some(job) = &task.job_id
        && !job.is_empty()
        && task.task_id.as_str().starts_with(job.as_str())
    {
        item.remove(JOB_ID);
        item.insert(JOB_PREFIX.to_owned(), n(job.len() as i64));
    }
    if let Some(AttributeValue::S(pk)) = key.get("pk")
        && queued_labourer(pk).is_some_and(|l| l == task.labourer_id)
    {
        item.remove(LABOURER_ID);
    }
    if task.attempts == 0 {
        item.remove(ATTEMPTS);
    }
}

/// Whether `key` is a queued item's (plain or under a fairness key): `pk` `q#...`.
fn is_queued_key(key: &Item) -> bool {
    matches!(key.get("pk"), Some(AttributeValue::S(pk)) if pk.starts_with("q#"))
}

/// The greenfield [`order`] wrote as `key`, if it is one (exactly as `order` writes it).
pub(crate) fn unorder(key: &str) -> Option<i64> {
    let (&sign, digits) = key.as_bytes().split_first()?;
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = match sign {
        b'b'..=b't' => std::str::from_utf8(digits).ok()?.parse::<i64>().ok()?,
        b'A'..=b'S' => {
            let magnitude: String = digits.iter().map(|d| char::from(b'9' - d + b'0')).collect();
            let magnitude: i128 = magnitude.parse().ok()?;
            i64::try_from(-magnitude).ok()?
        }
        _ => return None,
    };
    // One spelling per number: no leading zeros, the length the letter says.
    (order(value) == key).then_some(value)
}

/// Decodes a lean item: the key, the move counter and the TTL are not part of the task. A queued
/// item's task id and greenfield come from its sort key, and its labourer from its partition key,
/// when the item does not carry them (written by this build: see [`LeanTaskStore::item`]); one
/// written with them (by an earlier build, or a labourer id with a `#`) decodes as it is.
pub(crate) fn decode(mut item: Item, table: &str) -> Result<Found> {
    let pk = item.remove("pk");
    let sk = item.remove("sk");
    if let (Some(AttributeValue::S(pk)), Some(AttributeValue::S(sk))) = (&pk, &sk)
        && pk.starts_with("q#")
        && let Some((greenfield, task_id)) = sk.split_once('#')
        && let Some(greenfield) = unorder(greenfield)
    {
        item.entry(TASK_ID.to_owned()).or_insert_with(|| s(task_id));
        item.entry(GREENFIELD.to_owned())
            .or_insert_with(|| n(greenfield));
        if let Some(labourer) = queued_labourer(pk) {
            item.entry(LABOURER_ID.to_owned())
                .or_insert_with(|| s(labourer));
        }
        if let Some(len) = item.remove(JOB_PREFIX) {
            let job = len
                .as_n()
                .ok()
                .and_then(|len| len.parse::<usize>().ok())
                .and_then(|len| task_id.get(..len))
                .ok_or_else(|| {
                    decode_error(
                        table,
                        Some(task_id),
                        format!("`{JOB_PREFIX}` {len:?} is not the length of a prefix of its id"),
                    )
                })?;
            item.entry(JOB_ID.to_owned()).or_insert_with(|| s(job));
        }
    }
    let rev = item
        .remove(REV)
        .and_then(|v| v.as_n().ok().and_then(|n| n.parse::<i64>().ok()))
        .unwrap_or(0);
    item.remove(EXPIRES);
    let moved_at = item
        .remove(MOVED_AT)
        .and_then(|v| v.as_n().ok().and_then(|n| n.parse::<i64>().ok()));
    let task = item_to_task(item, table)?;
    let mut key = Item::new();
    if let (Some(pk), Some(sk)) = (pk, sk) {
        key.insert("pk".to_owned(), pk);
        key.insert("sk".to_owned(), sk);
    }
    Ok(Found {
        task,
        rev,
        key,
        moved_at,
        pack_len: None,
    })
}

/// The shared ecology state is one small item per labourer, as on the 0.7 layout: the same table and
/// the same compare-and-set writes.
#[async_trait::async_trait]
impl sosw_core::store::EcologyState for LeanTaskStore {
    async fn read_ecology(&self, labourer_id: &str) -> Result<sosw_core::store::VersionedEcology> {
        self.legacy().read_ecology(labourer_id).await
    }

    async fn write_ecology(
        &self,
        labourer_id: &str,
        expected_version: u64,
        record: &sosw_core::store::EcologyRecord,
    ) -> Result<bool> {
        self.legacy()
            .write_ecology(labourer_id, expected_version, record)
            .await
    }

    async fn add_outcomes(
        &self,
        labourer_id: &str,
        outcomes: &sosw_core::store::OutcomeCounts,
    ) -> Result<()> {
        sosw_core::store::EcologyState::add_outcomes(self.legacy(), labourer_id, outcomes).await
    }
}

#[async_trait::async_trait]
impl sosw_core::store::JobStore for LeanTaskStore {
    async fn create_job(
        &self,
        record: &sosw_core::store::JobRecord,
    ) -> Result<sosw_core::store::CreateJobOutcome> {
        self.legacy().create_job(record).await
    }

    async fn get_job(&self, job_id: &str) -> Result<Option<sosw_core::store::JobRecord>> {
        self.legacy().get_job(job_id).await
    }

    async fn add_requester(
        &self,
        job_id: &str,
        requester: &str,
    ) -> Result<Option<sosw_core::store::JobRecord>> {
        self.legacy().add_requester(job_id, requester).await
    }

    async fn record_progress(
        &self,
        job_id: &str,
        enqueued: u64,
        total: Option<u64>,
        now: i64,
    ) -> Result<()> {
        self.legacy()
            .record_progress(job_id, enqueued, total, now)
            .await
    }

    async fn add_outcomes(
        &self,
        job_id: &str,
        delta: sosw_core::store::JobCounts,
    ) -> Result<Option<sosw_core::store::JobRecord>> {
        sosw_core::store::JobStore::add_outcomes(self.legacy(), job_id, delta).await
    }

    async fn finish_job(
        &self,
        job_id: &str,
        status: sosw_core::store::JobStatus,
        now: i64,
    ) -> Result<bool> {
        self.legacy().finish_job(job_id, status, now).await
    }

    async fn list_jobs(&self, limit: usize) -> Result<Vec<sosw_core::store::JobRecord>> {
        self.legacy().list_jobs(limit).await
    }

    async fn reopen_job(
        &self,
        job_id: &str,
        redriven: u64,
    ) -> Result<Option<sosw_core::store::JobRecord>> {
        // Counting from the stream, the redriven tasks' closed items leaving count them out of `dead`.
        let minus = if self.counts_closed_tasks() {
            0
        } else {
            redriven
        };
        self.legacy().reopen_job(job_id, minus).await
    }

    fn counts_closed_tasks(&self) -> bool {
        self.inner.streams.is_some()
    }

    async fn count_closed_tasks(&self, now: i64) -> Result<Vec<sosw_core::store::JobRecord>> {
        if !self.counts_closed_tasks() {
            return Ok(Vec::new());
        }
        self.count_from_stream(now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unorder_reads_back_what_order_wrote_and_nothing_else() {
        for v in [i64::MIN, -5, -1, 0, 1, 2000, 1_700_000_000, i64::MAX] {
            assert_eq!(unorder(&order(v)), Some(v), "{v}");
        }
        for bad in [
            "",
            "1",
            "abc",
            "b",
            "c5",
            "e0200",
            "S9",
            "-0000000000000000001",
            "99999999999999999999",
            "09223372036854777808",
            "u12345678901234567890",
        ] {
            assert_eq!(unorder(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_queued_item_carries_its_id_and_greenfield_only_in_its_key() {
        let mut task = Task::new("t-1#x", "lab", serde_json::json!({"a": 1}), 3000, 1.5);
        task.job_id = Some("j".into());
        let key = key(
            "q#lab#2".into(),
            format!("{}#{}", order(task.greenfield), task.task_id),
        );
        let item = task_to_item(&task, "t").expect("encodes");
        let mut compact = item.clone();
        compact.remove(TASK_ID);
        compact.remove(GREENFIELD);
        compact.extend(key.clone());
        compact.insert(REV.to_owned(), n(3));
        assert!(!compact.contains_key(TASK_ID) && !compact.contains_key(GREENFIELD));
        let found = decode(compact, "t").expect("decodes");
        assert_eq!(found.task, task, "the task comes back whole from the key");
        assert_eq!((found.rev, found.key), (3, key.clone()));
        // An item written whole (an earlier build) decodes the same.
        let mut whole = item;
        whole.extend(key);
        assert_eq!(decode(whole, "t").expect("decodes").task, task);
        // A claim item is not read from its key.
        let mut claim = task_to_item(&task, "t").expect("encodes");
        claim.remove(GREENFIELD);
        claim.extend(super::key("r#0".into(), task.task_id.as_str().to_owned()));
        assert!(
            decode(claim, "t").is_err(),
            "a claim item without its greenfield is refused"
        );
    }

    #[test]
    fn a_queued_item_leaves_out_what_its_key_and_id_say_and_decodes_whole() {
        let cases = [
            // (labourer, attempts, job id, partition key, whether the labourer is left out,
            // whether the job id is)
            ("lab", 0, Some("j"), "q#lab#2", true, true),
            (
                "lab",
                2,
                Some("j-0000001"),
                "q#lab#k#tenant#a#1",
                true,
                true,
            ),
            ("team#lab", 0, Some("other"), "q#team#lab#0", false, false),
            ("lab", 1, None, "q#lab#0", true, false),
        ];
        for (labourer, attempts, job, pk, labourer_out, job_out) in cases {
            let mut task = Task::new(
                "j-0000001",
                labourer,
                serde_json::json!({"a": 1}),
                3000,
                1.5,
            );
            task.attempts = attempts;
            task.job_id = job.map(str::to_owned);
            let key = key(
                pk.into(),
                format!("{}#{}", order(task.greenfield), task.task_id),
            );
            let mut item = task_to_item(&task, "t").expect("encodes");
            compact_queued(&mut item, &task, &key);
            assert_eq!(!item.contains_key(LABOURER_ID), labourer_out, "{pk}");
            assert_eq!(item.contains_key(ATTEMPTS), attempts != 0, "{pk}");
            assert_eq!(item.contains_key(JOB_PREFIX), job_out, "{pk}");
            assert_eq!(item.contains_key(JOB_ID), job.is_some() && !job_out, "{pk}");
            assert!(!item.contains_key(TASK_ID) && !item.contains_key(GREENFIELD));
            item.extend(key.clone());
            let found = decode(item, "t").expect("decodes");
            assert_eq!(found.task, task, "{pk}: the task comes back whole");
        }
        // A job id length past the task id is refused, not cut.
        let mut item = Item::from([
            ("payload".to_owned(), s("{}")),
            ("created_at".to_owned(), n(1)),
        ]);
        item.insert(JOB_PREFIX.to_owned(), n(99));
        item.extend(key("q#lab#0".into(), format!("{}#t-1", order(1000))));
        let err = decode(item, "t").expect_err("refused").to_string();
        assert!(err.contains("`jl`") && err.contains("t-1"), "{err}");
    }

    #[test]
    fn order_sorts_as_the_numbers_do() {
        let values = [i64::MIN, -5, -1, 0, 1, 2000, 1_700_000_000, i64::MAX];
        let keys: Vec<String> = values.iter().map(|v| order(*v)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(order(2000), "e2000", "a queue's greenfields are short");
        assert!(keys.iter().all(|k| k.len() <= 20), "{keys:?}");
        // Every neighbour pair across the lengths and the sign sorts as the numbers do.
        let mut edges = vec![i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
        for p in 1..19 {
            let ten = 10_i64.pow(p);
            edges.extend([ten - 1, ten, -ten, -ten + 1, -ten - 1]);
        }
        edges.sort_unstable();
        for pair in edges.windows(2) {
            assert_eq!(unorder(&order(pair[0])), Some(pair[0]));
            assert!(order(pair[0]) < order(pair[1]), "{pair:?}");
            // With a task id after it, as in a sort key, against the upper bound of a range.
            assert!(format!("{}#zz", order(pair[0])) < format!("{}#\u{10ffff}", order(pair[0])));
            assert!(format!("{}#\u{10ffff}", order(pair[0])) < format!("{}#", order(pair[1])));
        }
    }

    #[test]
    fn shards_spread_ids_within_bounds() {
        let mut seen = HashSet::new();
        for i in 0..200 {
            let shard = shard_of(&format!("task-{i}"), 16);
            assert!(shard < 16);
            seen.insert(shard);
        }
        assert_eq!(seen.len(), 16, "200 ids reach every one of 16 shards");
        assert_eq!(shard_of("anything", 1), 0);
    }
}
