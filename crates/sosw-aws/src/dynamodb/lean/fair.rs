//! Per-key fairness on the lean layout ([`TaskQueue::queue_by_key`](sosw_core::store::TaskQueue)):
//! a labourer's queued items under one partition set per fairness key (docs/layout-lean.md,
//! "Per-key fairness").
//!
//! | item | `pk` | `sk` |
//! |---|---|---|
//! | queued task of a keyed labourer | `q#<labourer>#k#<path>#<key>#<shard>` | `<order(greenfield)>#<task_id>` |
//! | a key of a labourer | `k#<labourer>` | `<path>#<key>` |
//! | the path a labourer is keyed by | `k#<labourer>` | `~path` |
//! | the mark of a labourer's queued greenfields ahead (see [`AHEAD_FLOOR`]) | `k#<labourer>` | `~ahead` |
//!
//! The orchestrator announces the path it reads a labourer's queue by (its `fairness.key`) on its
//! first `queue_by_key` of the labourer; every process that queues a task of that labourer reads the
//! announcement (cached for [`PATH_TTL_SECS`]) and files the task under its key's partitions,
//! registering the key first. Nothing is ever only in a keyed partition that no read looks at: every
//! walk of a labourer's queue reads the plain partitions and every registered key's partitions, so a
//! task queued before the announcement, under another path, or by a process whose cached announcement
//! is stale is still found (and `queue_by_key` groups such tasks by the key read from their payload).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::{StreamExt, TryStreamExt};

use super::super::codec::{Item, n, s};
use super::super::errors::sdk_error;
use super::super::query::{self, QuerySpec};
use super::{Found, LeanTaskStore, Read, fnv1a, key, order};
use sosw_core::ecology::fair::FairnessKey;
use sosw_core::error::{Error, Result};
use sosw_core::store::KeyedQueue;
use sosw_core::task::{Markers, Task};

/// The sort key of a labourer's path announcement in its registry partition. It has no `fkey`, so
/// it is never taken for a key; kept there (not in an item of its own partition) so that the
/// registry query an enqueue makes anyway reads it too.
pub(crate) const PATH_SK: &str = "~path";
/// How long a process trusts the path it read for a labourer.
const PATH_TTL_SECS: u64 = 60;
/// How long a process trusts that a key it registered is still registered: it writes the registry
/// item again (refreshing `touched_at`) after this.
const REGISTER_TTL_SECS: u64 = 300;
/// A key whose partitions are empty is dropped from the registry once its registry item has not been
/// written for this long (seconds): far longer than [`REGISTER_TTL_SECS`], so a process that trusts
/// its registration still finds the item there when its write lands.
const PRUNE_AFTER_SECS: i64 = 3600;
/// At most this many empty keys are dropped per `queue_by_key`.
const PRUNE_PER_READ: usize = 20;
/// Partition reads in flight at once.
pub(crate) const READ_CONCURRENCY: usize = 16;
/// A path or key longer than this, or with a character outside [`safe`], is written into keys as a
/// readable prefix and a hash.
const SEGMENT_MAX: usize = 48;

/// What this process knows of the fairness registry.
#[derive(Debug, Default)]
pub(crate) struct FairState {
    /// The path each labourer is keyed by (`None`: not keyed), and when it was read.
    paths: Mutex<HashMap<String, (Instant, Option<FairnessKey>)>>,
    /// Registry items (labourer, sort key) written, and when.
    registered: Mutex<HashMap<(String, String), Instant>>,
    /// Each labourer's registry as last read for an orchestrator round, and when.
    round_keys: Mutex<HashMap<String, (Instant, Registry)>>,
    /// The highest greenfield each labourer's "ahead" mark was written with by this process.
    ahead: Mutex<HashMap<String, i64>>,
}

/// A labourer's registry partition (`k#<labourer>`) as read: its fairness keys and its "ahead" mark.
#[derive(Debug, Clone, Default)]
pub(crate) struct Registry {
    parts: Vec<KeyPartition>,
    /// The highest greenfield at or above [`AHEAD_FLOOR`] a queued item of the labourer was ever
    /// written with (`None`: never).
    ahead: Option<i64>,
}

impl Registry {
    /// Whether a queued item of the labourer can have a greenfield of `low` or more: always below
    /// [`AHEAD_FLOOR`]; at or above it, only if the mark says so.
    fn may_hold_from(&self, low: i64) -> bool {
        low < AHEAD_FLOOR || self.ahead.is_some_and(|ahead| ahead >= low)
    }
}

/// The sort key of a labourer's "ahead" mark in its registry partition. It has no `path` or `fkey`,
/// so it is never taken for a key.
const AHEAD_SK: &str = "~ahead";

/// The sort key, in a labourer's registry partition, of the shard count its tasks are written under
/// (written with the labourer's first registration; see `LeanTaskStore::register`).
pub(crate) const SHARDS_SK: &str = "~shards";
/// Queued greenfields from this one up (2001-09-09 as a Unix time) are marked: a queue's own numbers
/// (1,000 apart from 1,000, sosw 0.7's) reach it only with a million tasks queued at once, and every
/// clock that reads the queue is past it. Reads of a range above it (the queued items that count as
/// running, or as expired) are skipped when the mark shows none can be there.
pub(crate) const AHEAD_FLOOR: i64 = 1_000_000_000;

/// How long an orchestrator round's walks reuse a labourer's key registry as read: one read serves
/// the round's running count and its queue head. A key another process registered since is missed
/// for at most this long, which only delays its tasks (the walks that must see every item read the
/// registry each time); one this process registered is added to it at once.
const ROUND_KEYS_AGE: Duration = Duration::from_secs(2);

/// One registered key of a labourer.
#[derive(Debug, Clone)]
pub(crate) struct KeyPartition {
    /// The fairness path the key was computed with.
    path: String,
    /// The key itself.
    key: String,
    /// The partition prefix (`q#<labourer>#k#<path>#<key>`); the shard follows.
    prefix: String,
    /// The registry item's sort key and write time.
    sk: String,
    touched_at: i64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn safe(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.:@+=/,".contains(c)
}

/// A path or key as a key segment: itself if short and made of [`safe`] characters, else up to 16 of
/// its characters (others as `_`), `~` and a 64-bit hash of it. Never contains `#`; `~` marks a hashed
/// segment, so a hashed segment never equals a plain one.
fn segment(value: &str) -> String {
    if value.len() <= SEGMENT_MAX && value.chars().all(safe) {
        return value.to_owned();
    }
    let readable: String = value
        .chars()
        .take(16)
        .map(|c| if safe(c) { c } else { '_' })
        .collect();
    format!("{readable}~{:016x}", fnv1a(value.as_bytes()))
}

/// The registry sort key of `key` under `path`.
fn registry_sk(path: &str, key: &str) -> String {
    format!("{}#{}", segment(path), segment(key))
}

/// The partition prefix of `key` under `path` for `labourer`.
pub(crate) fn key_prefix(labourer: &str, path: &str, key: &str) -> String {
    format!("q#{labourer}#k#{}", registry_sk(path, key))
}

pub(crate) fn registry_pk(labourer: &str) -> String {
    format!("k#{labourer}")
}

fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

fn attr_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn parse_path(labourer: &str, path: String) -> Result<FairnessKey> {
    FairnessKey::try_from(path).map_err(|e| {
        Error::invalid(
            "fairness",
            format!("the lean table's fairness path of labourer `{labourer}`: {e}"),
        )
    })
}

/// Keeps the item of each task with the highest move counter (a stopped move leaves two).
pub(crate) fn latest_per_task(found: Vec<Found>) -> Vec<Found> {
    let mut by_id: HashMap<String, Found> = HashMap::new();
    for f in found {
        match by_id.get(f.task.task_id.as_str()) {
            Some(seen) if seen.rev >= f.rev => {}
            _ => {
                by_id.insert(f.task.task_id.as_str().to_owned(), f);
            }
        }
    }
    by_id.into_values().collect()
}

impl LeanTaskStore {
    /// The path `labourer`'s queue is keyed by, as announced in the table (cached for a minute; a
    /// consistent read of the registry fills the cache too, see [`LeanTaskStore::read_registry`]).
    pub(crate) async fn fairness_path(&self, labourer: &str) -> Result<Option<FairnessKey>> {
        if let Some((at, path)) = lock(&self.inner.fair.paths).get(labourer)
            && at.elapsed() < Duration::from_secs(PATH_TTL_SECS)
        {
            return Ok(path.clone());
        }
        let item = self
            .client()
            .get_item()
            .table_name(self.table())
            .key("pk", s(registry_pk(labourer)))
            .key("sk", s(PATH_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("read fairness path", self.table(), e))?
            .item;
        let path = item
            .and_then(|i| attr_s(&i, "path"))
            .map(|p| parse_path(labourer, p))
            .transpose()?;
        lock(&self.inner.fair.paths).insert(labourer.to_owned(), (Instant::now(), path.clone()));
        Ok(path)
    }

    /// Records that `labourer`'s queue is read by `path` from now on (a write only when it changes).
    async fn announce_path(&self, labourer: &str, path: &FairnessKey) -> Result<()> {
        if self.fairness_path(labourer).await?.as_ref() == Some(path) {
            return Ok(());
        }
        self.client()
            .put_item()
            .table_name(self.table())
            .item("pk", s(registry_pk(labourer)))
            .item("sk", s(PATH_SK))
            .item("path", s(path.as_str()))
            .send()
            .await
            .map_err(|e| sdk_error("announce fairness path", self.table(), e))?;
        lock(&self.inner.fair.paths)
            .insert(labourer.to_owned(), (Instant::now(), Some(path.clone())));
        Ok(())
    }

    /// Writes the registry item of `key` under `path` unless this process wrote it recently.
    pub(crate) async fn register_key(
        &self,
        labourer: &str,
        path: &FairnessKey,
        key: &str,
    ) -> Result<()> {
        let sk = registry_sk(path.as_str(), key);
        let cache_key = (labourer.to_owned(), sk.clone());
        if lock(&self.inner.fair.registered)
            .get(&cache_key)
            .is_some_and(|at| at.elapsed() < Duration::from_secs(REGISTER_TTL_SECS))
        {
            return Ok(());
        }
        let touched_at = now_secs();
        self.client()
            .put_item()
            .table_name(self.table())
            .item("pk", s(registry_pk(labourer)))
            .item("sk", s(&sk))
            .item("path", s(path.as_str()))
            .item("fkey", s(key))
            .item("touched_at", n(touched_at))
            .send()
            .await
            .map_err(|e| sdk_error("register fairness key", self.table(), e))?;
        lock(&self.inner.fair.registered).insert(cache_key, Instant::now());
        // This process's own rounds see its registration at once (a registry a round read before
        // would otherwise hide the key's tasks from the rounds for up to ROUND_KEYS_AGE).
        if let Some((_, registry)) = lock(&self.inner.fair.round_keys).get_mut(labourer)
            && !registry.parts.iter().any(|part| part.sk == sk)
        {
            registry.parts.push(KeyPartition {
                prefix: key_prefix(labourer, path.as_str(), key),
                path: path.as_str().to_owned(),
                key: key.to_owned(),
                sk,
                touched_at,
            });
        }
        Ok(())
    }

    /// Every registered key of `labourer` (one consistent query).
    async fn key_partitions(&self, labourer: &str) -> Result<Vec<KeyPartition>> {
        Ok(self.read_registry(labourer, true).await?.parts)
    }

    /// The registry of `labourer` for an orchestrator round's walks (the running count and the
    /// queue head): read eventually consistent and reused for [`ROUND_KEYS_AGE`].
    async fn round_registry(&self, labourer: &str) -> Result<Registry> {
        if let Some((at, registry)) = lock(&self.inner.fair.round_keys).get(labourer)
            && at.elapsed() < ROUND_KEYS_AGE
        {
            return Ok(registry.clone());
        }
        let registry = self.read_registry(labourer, false).await?;
        lock(&self.inner.fair.round_keys)
            .insert(labourer.to_owned(), (Instant::now(), registry.clone()));
        Ok(registry)
    }

    /// Marks that a queued item of `labourer` is written with greenfield `greenfield` (at or above
    /// [`AHEAD_FLOOR`]), before it is written: the mark only grows (a conditional update), and this
    /// process writes it once per higher greenfield.
    async fn mark_ahead(&self, labourer: &str, greenfield: i64) -> Result<()> {
        if lock(&self.inner.fair.ahead)
            .get(labourer)
            .is_some_and(|marked| *marked >= greenfield)
        {
            return Ok(());
        }
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .key("pk", s(registry_pk(labourer)))
            .key("sk", s(AHEAD_SK))
            .update_expression("SET ahead = :g")
            .condition_expression("attribute_not_exists(ahead) OR ahead < :g")
            .expression_attribute_values(":g", n(greenfield))
            .send()
            .await;
        match result {
            Ok(_) => {}
            Err(e)
                if e.as_service_error().is_some_and(
                    aws_sdk_dynamodb::operation::update_item::UpdateItemError::is_conditional_check_failed_exception,
                ) => {}
            Err(e) => return Err(sdk_error("mark queued greenfields ahead", self.table(), e)),
        }
        lock(&self.inner.fair.ahead).insert(labourer.to_owned(), greenfield);
        // This process's own rounds see its mark at once.
        if let Some((_, registry)) = lock(&self.inner.fair.round_keys).get_mut(labourer) {
            registry.ahead = registry.ahead.max(Some(greenfield));
        }
        Ok(())
    }

    async fn read_registry(&self, labourer: &str, consistent: bool) -> Result<Registry> {
        let mut spec = QuerySpec::new(
            "list fairness keys",
            self.table(),
            None,
            "pk = :pk",
            vec![(":pk", s(registry_pk(labourer)))],
        );
        if consistent {
            spec = spec.consistent();
        }
        let items = query::collect(self.client(), &spec, usize::MAX).await?;
        if consistent {
            // The announcement as of this read is what `fairness_path` would read now: an enqueue
            // that reads the registry (for the queue's tail) then needs no read of its own. One
            // that does not parse is left to `fairness_path`, which reports it.
            let path = items
                .iter()
                .find(|i| attr_s(i, "sk").as_deref() == Some(PATH_SK))
                .and_then(|i| attr_s(i, "path"))
                .map(|p| parse_path(labourer, p))
                .transpose();
            if let Ok(path) = path {
                lock(&self.inner.fair.paths).insert(labourer.to_owned(), (Instant::now(), path));
            }
        }
        if let Some(item) = items
            .iter()
            .find(|i| attr_s(i, "sk").as_deref() == Some(SHARDS_SK))
        {
            self.check_shards(labourer, &super::reshard::ShardRecord::of(item))?;
        }
        let ahead = items
            .iter()
            .find(|i| attr_s(i, "sk").as_deref() == Some(AHEAD_SK))
            .and_then(|i| i.get("ahead"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok());
        let parts = items
            .into_iter()
            .filter_map(|i| {
                let (path, key, sk) = (attr_s(&i, "path")?, attr_s(&i, "fkey")?, attr_s(&i, "sk")?);
                let touched_at = i
                    .get("touched_at")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                Some(KeyPartition {
                    prefix: key_prefix(labourer, &path, &key),
                    path,
                    key,
                    sk,
                    touched_at,
                })
            })
            .collect();
        Ok(Registry { parts, ahead })
    }

    /// The key of the queued item `task` is written to now: under its fairness key's partition if
    /// its labourer is keyed (registering the key first), else under the plain queue partition.
    pub(crate) async fn queue_key_for(&self, task: &Task) -> Result<Item> {
        let key = self.queue_keys_for(std::slice::from_ref(task)).await?.pop();
        // One key per task: never `None`.
        Ok(key.unwrap_or_else(|| self.queued_key(task)))
    }

    /// [`LeanTaskStore::queue_key_for`] of each of `tasks`, in order: the keys new to this process
    /// registered concurrently, each once.
    pub(crate) async fn queue_keys_for(&self, tasks: &[Task]) -> Result<Vec<Item>> {
        let mut paths: HashMap<&str, Option<FairnessKey>> = HashMap::new();
        for t in tasks {
            if !paths.contains_key(t.labourer_id.as_str()) {
                let path = self.fairness_path(&t.labourer_id).await?;
                paths.insert(&t.labourer_id, path);
            }
        }
        let mut keys = Vec::with_capacity(tasks.len());
        let mut to_register: HashMap<(&str, String), &FairnessKey> = HashMap::new();
        for t in tasks {
            match &paths[t.labourer_id.as_str()] {
                None => keys.push(self.queued_key(t)),
                Some(path) => {
                    let fkey = path.key_of(&t.payload);
                    let prefix = key_prefix(&t.labourer_id, path.as_str(), &fkey);
                    keys.push(self.queued_key_under(&prefix, t));
                    to_register.insert((t.labourer_id.as_str(), fkey), path);
                }
            }
        }
        futures::stream::iter(to_register)
            .map(Ok)
            .try_for_each_concurrent(READ_CONCURRENCY, |((labourer, fkey), path)| async move {
                self.register_key(labourer, path, &fkey).await
            })
            .await?;
        let mut ahead: HashMap<&str, i64> = HashMap::new();
        for t in tasks.iter().filter(|t| t.greenfield >= AHEAD_FLOOR) {
            let high = ahead.entry(t.labourer_id.as_str()).or_insert(t.greenfield);
            *high = (*high).max(t.greenfield);
        }
        for (labourer, greenfield) in ahead {
            self.mark_ahead(labourer, greenfield).await?;
        }
        Ok(keys)
    }

    /// The queued item's key of `task` under the partition prefix `prefix` (shard appended).
    fn queued_key_under(&self, prefix: &str, task: &Task) -> Item {
        key(
            format!("{prefix}#{}", self.shard(task.task_id.as_str())),
            format!("{}#{}", order(task.greenfield), task.task_id),
        )
    }

    /// Every key the queued item of `task` can be under: the plain partition and, for every path a
    /// key of its labourer was registered with, that key's partition.
    pub(crate) async fn queued_keys_of(&self, task: &Task) -> Result<Vec<Item>> {
        let mut keys = vec![self.queued_key(task)];
        let mut paths = HashSet::new();
        for part in self.key_partitions(&task.labourer_id).await? {
            if paths.insert(part.path.clone()) {
                let path = parse_path(&task.labourer_id, part.path)?;
                let prefix = key_prefix(
                    &task.labourer_id,
                    path.as_str(),
                    &path.key_of(&task.payload),
                );
                keys.push(self.queued_key_under(&prefix, task));
            }
        }
        Ok(keys)
    }

    /// The queued item of `task` still as it was read (same greenfield, not completed), wherever it
    /// is filed.
    pub(crate) async fn find_queued(
        &self,
        operation: &'static str,
        task: &Task,
    ) -> Result<Option<Found>> {
        let keys = self.queued_keys_of(task).await?;
        let mut found = self.get_many(operation, keys.clone()).await?;
        if found.is_empty() {
            // Not an item of its own: in a pack, which starts at most a pack's span before it.
            let pks = keys
                .iter()
                .filter_map(|k| k.get("pk").and_then(|v| v.as_s().ok()).cloned())
                .collect();
            found = self.packed(operation, pks, task).await?;
        }
        Ok(super::latest(
            found
                .into_iter()
                .filter(|f| {
                    f.task.greenfield == task.greenfield && f.task.completed_at == task.completed_at
                })
                .collect(),
        ))
    }

    /// Every shard of the plain queue partitions of `labourer` and of every registered key's (the
    /// registry read consistently), for a read of greenfields from `low` up: none when the
    /// registry's mark shows no queued item of `labourer` can be there.
    pub(crate) async fn queue_pks_from(&self, labourer: &str, low: i64) -> Result<Vec<String>> {
        let registry = self.read_registry(labourer, true).await?;
        if !registry.may_hold_from(low) {
            return Ok(Vec::new());
        }
        Ok(self.pks_of(labourer, &registry.parts))
    }

    /// Every shard of the plain queue partitions of `labourer`, then of each of `parts`.
    fn pks_of(&self, labourer: &str, parts: &[KeyPartition]) -> Vec<String> {
        let plain = (0..self.shards()).map(|shard| Self::queue_pk(labourer, shard));
        let keyed = parts.iter().flat_map(|part| {
            (0..self.shards()).map(move |shard| format!("{}#{shard}", part.prefix))
        });
        plain.chain(keyed).collect()
    }

    /// The queue partitions of `labourer` (all shards) for an orchestrator round's walks (the
    /// registry as read for the round; see [`ROUND_KEYS_AGE`]).
    pub(crate) async fn round_queue_pks(&self, labourer: &str) -> Result<Vec<String>> {
        let registry = self.round_registry(labourer).await?;
        Ok(self.pks_of(labourer, &registry.parts))
    }

    /// [`LeanTaskStore::round_queue_pks`] for a read of greenfields from `low` up: none when the
    /// registry's mark shows no queued item of `labourer` can be there.
    pub(crate) async fn round_queue_pks_from(
        &self,
        labourer: &str,
        low: i64,
    ) -> Result<Vec<String>> {
        let registry = self.round_registry(labourer).await?;
        if !registry.may_hold_from(low) {
            return Ok(Vec::new());
        }
        Ok(self.pks_of(labourer, &registry.parts))
    }

    /// The queue partitions of `labourer` that shard `shard` of a task id can be in.
    pub(crate) async fn queue_shard_pks(&self, labourer: &str, shard: u32) -> Result<Vec<String>> {
        let mut pks = vec![Self::queue_pk(labourer, shard)];
        pks.extend(
            self.key_partitions(labourer)
                .await?
                .into_iter()
                .map(|part| format!("{}#{shard}", part.prefix)),
        );
        Ok(pks)
    }

    /// The results of `reads`, some at a time.
    pub(crate) async fn read_all(&self, reads: Vec<Read>) -> Result<Vec<Vec<Found>>> {
        futures::stream::iter(reads)
            .map(|read| self.partition(read))
            .buffered(READ_CONCURRENCY)
            .try_collect()
            .await
    }

    /// The open work of `labourer` by the key at `path`; see `TaskQueue::queue_by_key`.
    ///
    /// Per registered key under `path`: the head of each shard (at most `per_key`, greenfield below
    /// `markers.start`). The plain partitions and keys registered under another path (the
    /// *unkeyed* ones: the key of their tasks is only in the payload) are read oldest first, at most
    /// `unkeyed_read_max` items in all, and grouped by the key in each task's payload; their items
    /// past `markers.expired` (queued with a greenfield ahead) are read whole when the labourer's
    /// mark says there can be any. Running counts come from the claim items (every claim shard),
    /// grouped by the key in their payload.
    pub(crate) async fn lean_queue_by_key(
        &self,
        labourer: &str,
        path: &FairnessKey,
        markers: &Markers,
        per_key: usize,
    ) -> Result<KeyedQueue> {
        self.announce_path(labourer, path).await?;
        let registry = self.read_registry(labourer, true).await?;
        let parts = registry.parts.clone();
        let head = (
            order(i64::MIN),
            format!("{}#\u{10ffff}", order(markers.start.saturating_sub(1))),
        );
        // (partition key, whether it is filed under a key of `path`, registry index or None for
        // the plain partitions) of every queue partition of the labourer.
        let mut partitions: Vec<(String, bool, Option<usize>)> = (0..self.shards())
            .map(|shard| (Self::queue_pk(labourer, shard), false, None))
            .collect();
        for (i, part) in parts.iter().enumerate() {
            let ours = part.path == path.as_str();
            partitions.extend(
                (0..self.shards()).map(|shard| (format!("{}#{shard}", part.prefix), ours, Some(i))),
            );
        }
        let unkeyed = partitions.iter().filter(|(_, ours, _)| !ours).count();
        let unkeyed_limit = (self.inner.options.unkeyed_read_max / unkeyed.max(1)).max(per_key);
        let ahead = registry.may_hold_from(markers.expired.saturating_add(1));
        let mut reads = Vec::new();
        // The registry index (None for the plain partitions) of every read, in order.
        let mut origin = Vec::new();
        for (pk, ours, from) in &partitions {
            reads.push(Read {
                operation: "queue by key",
                pk: pk.clone(),
                range: Some(head.clone()),
                filter: None,
                values: vec![],
                limit: if *ours { per_key } else { unkeyed_limit },
                descending: false,
                consistent: false,
            });
            origin.push(*from);
            if ahead && !ours {
                reads.push(Read {
                    operation: "queue by key",
                    pk: pk.clone(),
                    range: Some((order(markers.expired.saturating_add(1)), order(i64::MAX))),
                    filter: None,
                    values: vec![],
                    limit: usize::MAX,
                    descending: false,
                    consistent: false,
                });
                origin.push(*from);
            }
        }
        let results = self.read_all(reads).await?;
        let mut nonempty: HashSet<usize> = HashSet::new();
        let mut found = Vec::new();
        for (result, from) in results.into_iter().zip(origin) {
            if let (Some(i), false) = (from, result.is_empty()) {
                nonempty.insert(i);
            }
            found.extend(result);
        }
        let claims = self
            .claimed(
                "queue by key",
                labourer,
                "labourer_id = :lab AND greenfield > :expired AND attribute_not_exists(completed_at)",
                vec![(":expired", n(markers.expired))],
            )
            .await?;
        let mut running: BTreeMap<String, u64> = BTreeMap::new();
        let mut live: HashMap<String, i64> = HashMap::new();
        for c in &claims {
            *running.entry(path.key_of(&c.task.payload)).or_default() += 1;
            live.insert(c.task.task_id.as_str().to_owned(), c.rev);
        }
        let mut queued: BTreeMap<String, Vec<Found>> = BTreeMap::new();
        for f in latest_per_task(found) {
            // A queued item left beside a later claim item by a stopped move is not queued.
            if live
                .get(f.task.task_id.as_str())
                .is_some_and(|rev| *rev > f.rev)
                || f.task.completed_at.is_some()
            {
                continue;
            }
            let k = path.key_of(&f.task.payload);
            if f.task.greenfield > markers.expired {
                *running.entry(k).or_default() += 1;
            } else if f.task.greenfield < markers.start {
                queued.entry(k).or_default().push(f);
            }
        }
        let mut queue = KeyedQueue::new();
        for (k, mut heads) in queued {
            heads.sort_by(|a, b| {
                (a.task.greenfield, a.task.task_id.as_str())
                    .cmp(&(b.task.greenfield, b.task.task_id.as_str()))
            });
            heads.truncate(per_key);
            // The orchestrator claims what it has just read: its claims need no read.
            self.remember_queued(&heads);
            queue.entry(k).or_default().queued = heads.into_iter().map(|f| f.task).collect();
        }
        for (k, count) in running {
            queue.entry(k).or_default().running = count;
        }
        let empty: Vec<&KeyPartition> = parts
            .iter()
            .enumerate()
            .filter(|(i, part)| {
                !nonempty.contains(i)
                    && !queue.contains_key(&part.key)
                    && part.touched_at + PRUNE_AFTER_SECS < now_secs()
            })
            .map(|(_, part)| part)
            .take(PRUNE_PER_READ)
            .collect();
        for part in empty {
            self.prune_key(labourer, part).await?;
        }
        Ok(queue)
    }

    /// Drops `part` from the registry if every shard of it is empty (consistent reads) and its
    /// registry item has not been written since it was listed.
    async fn prune_key(&self, labourer: &str, part: &KeyPartition) -> Result<()> {
        for shard in 0..self.shards() {
            let one = self
                .partition(Read {
                    operation: "prune fairness key",
                    pk: format!("{}#{shard}", part.prefix),
                    range: None,
                    filter: None,
                    values: vec![],
                    limit: 1,
                    descending: false,
                    consistent: true,
                })
                .await?;
            if !one.is_empty() {
                return Ok(());
            }
        }
        let result = self
            .client()
            .delete_item()
            .table_name(self.table())
            .key("pk", s(registry_pk(labourer)))
            .key("sk", s(&part.sk))
            .condition_expression("touched_at = :t")
            .expression_attribute_values(":t", AttributeValue::N(part.touched_at.to_string()))
            .send()
            .await;
        match result {
            Ok(_) => {
                tracing::debug!(labourer, key = %part.key, path = %part.path, "empty fairness key dropped from the registry");
                Ok(())
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(DeleteItemError::is_conditional_check_failed_exception) =>
            {
                Ok(())
            }
            Err(e) => Err(sdk_error("prune fairness key", self.table(), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_keep_short_safe_values_and_hash_the_rest_without_a_separator() {
        assert_eq!(segment("acme-42"), "acme-42");
        assert_eq!(segment("account.id"), "account.id");
        assert_eq!(segment(""), "");
        for odd in ["a#b", "a b", "ünï", &"x".repeat(SEGMENT_MAX + 1), "a~b"] {
            let seg = segment(odd);
            assert!(!seg.contains('#'), "{odd:?} -> {seg}");
            assert!(seg.contains('~'), "{odd:?} -> {seg}");
            assert!(seg.len() <= 16 * 4 + 17, "{odd:?} -> {seg}");
        }
        assert_ne!(
            segment("a#b"),
            segment("a b"),
            "same readable prefix, other hash"
        );
        assert_eq!(segment("a#b"), segment("a#b"));
    }

    #[test]
    fn the_same_key_under_two_paths_is_in_two_partitions() {
        assert_ne!(
            key_prefix("w", "tenant", "a"),
            key_prefix("w", "account", "a")
        );
        assert_eq!(key_prefix("w", "tenant", "a"), "q#w#k#tenant#a");
    }
}
