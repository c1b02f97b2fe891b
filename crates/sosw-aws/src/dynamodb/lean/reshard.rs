//! A lean table's shard count: recorded with each labourer's first registration, checked wherever a
//! process reads or writes that labourer's tasks, and changed only by `sosw migrate-layout --reshard`
//! ([`reshard`]), which moves the queued items to their new shards while every essential is refused
//! (docs/layout-lean.md, "Changing the shard count").
//!
//! The record is two items per labourer, with the same attributes: its registry item (`labourers`,
//! `<labourer>`), which lookups by id list, and `~shards` in its fairness registry partition
//! (`k#<labourer>`), which every enqueue, orchestrator round and scavenger run reads anyway.
//!
//! | attribute | |
//! |---|---|
//! | `shards` | the count the labourer's tasks are written under; `0` while a reshard runs |
//! | `reshard_from`, `reshard_to` | while a reshard runs: the counts it moves from and to |
//! | `earlier_shards` | (a number set) counts used before: closed items stay where they were written, and lookups by id try these too |

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use futures::{StreamExt, TryStreamExt};

use super::super::codec::{Item, n, s};
use super::super::errors::sdk_error;
use super::super::query::{self, QuerySpec};
use super::{LeanTaskStore, REGISTRY, REV, Written, fair, shard_of};
use sosw_core::ecology::fair::FairnessKey;
use sosw_core::error::{Error, Result};

const SHARDS: &str = "shards";
const EARLIER: &str = "earlier_shards";
const FROM: &str = "reshard_from";
const TO: &str = "reshard_to";

/// Items moved at once by a reshard.
const MOVE_CONCURRENCY: usize = 16;

/// Passes over the queue partitions at most: the second and later ones only find items a process
/// still running with the old count wrote after the first read them.
const MAX_PASSES: u32 = 5;

/// What a registry item records of its labourer's shard count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ShardRecord {
    /// The count its tasks are written under (`Some(0)` while a reshard runs).
    pub shards: Option<u32>,
    /// Counts used before (closed items written under them stay there).
    pub earlier: Vec<u32>,
    /// A reshard running: from, to.
    pub reshard: Option<(u32, u32)>,
}

fn number(item: &Item, name: &str) -> Option<u32> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

impl ShardRecord {
    pub(crate) fn of(item: &Item) -> Self {
        let earlier = item
            .get(EARLIER)
            .and_then(|v| v.as_ns().ok())
            .map(|ns| ns.iter().filter_map(|v| v.parse().ok()).collect())
            .unwrap_or_default();
        ShardRecord {
            shards: number(item, SHARDS),
            earlier,
            reshard: number(item, FROM).zip(number(item, TO)),
        }
    }
}

/// A labourer of the registry with its record.
#[derive(Debug, Clone)]
pub(crate) struct RegistryEntry {
    pub labourer: String,
    pub record: ShardRecord,
}

impl LeanTaskStore {
    /// Every item of the registry partition (one consistent query), unchecked.
    pub(crate) async fn registry_entries(&self) -> Result<Vec<RegistryEntry>> {
        let spec = QuerySpec::new(
            "list labourers",
            self.table(),
            None,
            "pk = :pk",
            vec![(":pk", s(REGISTRY))],
        )
        .consistent();
        let items = query::collect(self.client(), &spec, usize::MAX).await?;
        Ok(items
            .into_iter()
            .filter_map(|item| {
                let labourer = item.get("sk")?.as_s().ok()?.clone();
                Some(RegistryEntry {
                    labourer,
                    record: ShardRecord::of(&item),
                })
            })
            .collect())
    }

    /// Every shard count `labourer`'s closed items may be under: this store's, then the earlier ones
    /// its registry item lists.
    pub(crate) async fn shard_counts_ever(&self, labourer: &str) -> Result<Vec<u32>> {
        let record = self
            .client()
            .get_item()
            .table_name(self.table())
            .key("pk", s(REGISTRY))
            .key("sk", s(labourer))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("read shard counts", self.table(), e))?
            .item
            .map(|i| ShardRecord::of(&i))
            .unwrap_or_default();
        Ok(counts_ever(self.shards(), &record))
    }

    /// Refuses a record this store's shard count does not match.
    pub(crate) fn check_shards(&self, labourer: &str, record: &ShardRecord) -> Result<()> {
        if let Some((from, to)) = record.reshard
            && from == to
        {
            return Err(Error::invalid(
                "lean layout",
                format!(
                    "the lean table `{}` is being refiled under its fairness keys (`sosw \
                     migrate-layout --aws --reshard --refile-keys`, labourer `{labourer}`; the \
                     shard count stays {to}): every process is refused until it finishes, a \
                     moment per queued task; try again then",
                    self.table()
                ),
            ));
        }
        if let Some((from, to)) = record.reshard {
            return Err(Error::invalid(
                "lean layout",
                format!(
                    "the lean table `{}` is being resharded from {from} to {to} shards (`sosw \
                     migrate-layout --aws --reshard`, labourer `{labourer}`): every process is \
                     refused until it finishes; then set SOSW_LEAN_SHARDS={to} (the stacks' \
                     LeanShards) on every essential and worker",
                    self.table()
                ),
            ));
        }
        match record.shards {
            Some(recorded) if recorded != self.shards() => {
                Err(self.shards_mismatch(labourer, Some(recorded)))
            }
            _ => Ok(()),
        }
    }

    /// The error of a process whose shard count is not the one `labourer`'s tasks were written
    /// under (`recorded`, when known).
    pub(crate) fn shards_mismatch(&self, labourer: &str, recorded: Option<u32>) -> Error {
        let recorded = recorded.map_or_else(|| "another count".to_owned(), |r| r.to_string());
        Error::invalid(
            "lean layout",
            format!(
                "the lean table `{}` holds labourer `{labourer}`'s tasks under {recorded} shards, \
                 but this process is set to {} (SOSW_LEAN_SHARDS, the stacks' LeanShards): a task's \
                 keys depend on the count, so running with another one would strand the tasks \
                 written under the old one. Set SOSW_LEAN_SHARDS={recorded} on every essential and \
                 worker, or change the table's count with `sosw migrate-layout --aws --reshard \
                 --shards {}` (docs/layout-lean.md, \"Changing the shard count\")",
                self.table(),
                self.shards(),
                self.shards(),
            ),
        )
    }

    /// Records this store's shard count on the item `pk`, `sk` of `labourer`'s registry, on the
    /// condition that no other count (and no reshard) is recorded there. Whether it was recorded
    /// there before.
    pub(crate) async fn record_shards(
        &self,
        pk: String,
        sk: String,
        labourer: &str,
    ) -> Result<bool> {
        let shards = n(i64::from(self.shards()));
        let outcome = self
            .update_record(
                "record shard count",
                (pk, sk),
                "SET #shards = :shards",
                "attribute_not_exists(#shards) OR #shards = :shards",
                vec![(":shards", shards)],
            )
            .await?;
        match outcome {
            Ok(old) => Ok(old.is_some_and(|old| ShardRecord::of(&old).shards.is_some())),
            Err(refused_by) => {
                let record = refused_by.as_ref().map(ShardRecord::of).unwrap_or_default();
                self.check_shards(labourer, &record)?;
                Err(self.shards_mismatch(labourer, record.shards))
            }
        }
    }

    /// One conditional update of a record item (`#shards`, `#from`, `#to`, `#earlier` name its
    /// attributes): `Ok` with the item as it was, or `Err` with the item that refused the condition.
    async fn update_record(
        &self,
        operation: &'static str,
        (pk, sk): (String, String),
        update: &str,
        condition: &str,
        values: Vec<(&str, AttributeValue)>,
    ) -> Result<std::result::Result<Option<Item>, Option<Item>>> {
        let names = [
            ("#shards", SHARDS),
            ("#from", FROM),
            ("#to", TO),
            ("#earlier", EARLIER),
        ]
        .into_iter()
        .filter(|(name, _)| update.contains(name) || condition.contains(name))
        .map(|(name, attribute)| (name.to_owned(), attribute.to_owned()))
        .collect();
        let values = values
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Ok(out.attributes)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(UpdateItemError::is_conditional_check_failed_exception) =>
            {
                Ok(Err(match e.into_service_error() {
                    UpdateItemError::ConditionalCheckFailedException(c) => c.item,
                    _ => None,
                }))
            }
            Err(e) => Err(sdk_error(operation, self.table(), e)),
        }
    }
}

/// `current`, then the record's earlier counts and a reshard's source, without repeats.
pub(crate) fn counts_ever(current: u32, record: &ShardRecord) -> Vec<u32> {
    let mut counts = vec![current];
    let others = record
        .earlier
        .iter()
        .copied()
        .chain(record.shards)
        .chain(record.reshard.map(|(from, _)| from))
        .filter(|c| *c > 0);
    for c in others {
        if !counts.contains(&c) {
            counts.push(c);
        }
    }
    counts
}

/// What a reshard did (or, on a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReshardReport {
    /// Labourers of the table.
    pub labourers: u64,
    /// The counts the labourers were recorded under (usually one).
    pub from: Vec<u32>,
    /// The new count.
    pub to: u32,
    /// Queued items read.
    pub queued_found: u64,
    /// Queued items whose shard changes (on a dry run: to be moved).
    pub queued_to_move: u64,
    /// Queued items moved (0 on a dry run).
    pub queued_moved: u64,
    /// Queued items moved under their key's partitions (from the plain ones or an earlier path's):
    /// with [`ReshardSettings::refile_keys`] only, counted in `queued_moved` (on a dry run:
    /// `queued_to_move`) too.
    pub queued_refiled: u64,
    /// Labourers with a fairness path recorded (read with [`ReshardSettings::refile_keys`] only):
    /// the ones whose tasks a refile files under keys.
    pub keyed_labourers: u64,
    /// Passes over the queue partitions (the last one moved nothing).
    pub passes: u32,
    /// Claimed tasks found (a reshard needs none).
    pub running: u64,
}

/// How a reshard runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReshardSettings {
    /// Count, write nothing.
    pub dry_run: bool,
    /// The count of labourers whose registry records none (tables written before counts were
    /// recorded).
    pub unrecorded_from: Option<u32>,
    /// How long to wait after marking the reshard before moving, so that processes still running
    /// stop using registries they read before (an orchestrator round reuses its read for 2 s).
    pub settle: Duration,
    /// Also file every queued item of a labourer with a fairness path where that path puts it now:
    /// a task queued before the path was recorded (or under an earlier path) moves under its key's
    /// partitions. With the count unchanged this runs while tasks are claimed (claims do not move).
    pub refile_keys: bool,
}

impl Default for ReshardSettings {
    fn default() -> Self {
        ReshardSettings {
            dry_run: false,
            unrecorded_from: None,
            settle: Duration::from_secs(5),
            refile_keys: false,
        }
    }
}

/// Changes the shard count of `store`'s table to `store`'s own (`LeanOptions::shards`): marks the
/// reshard in every labourer's record (every process is then refused), moves each queued item
/// whose shard changes (the new item first, then the old one deleted on its unchanged move
/// counter), repeats until a pass moves nothing, and records the new count (the old one kept as
/// earlier, for closed items, which stay where they are). Refused while a task is claimed (running)
/// and the count changes: its claim's key depends on the count too. With
/// [`ReshardSettings::refile_keys`] it also moves the queued items of each labourer with a fairness
/// path under their key's partitions (registering each key first), the same way; with the count
/// unchanged that is all it does, and it runs while tasks are claimed. Resumable: a run stopped at
/// any point is finished by running it again with the same count.
pub async fn reshard(store: &LeanTaskStore, settings: ReshardSettings) -> Result<ReshardReport> {
    let to = store.shards();
    let entries = store.registry_entries().await?;
    let mut report = ReshardReport {
        labourers: entries.len() as u64,
        to,
        ..ReshardReport::default()
    };
    let mut plan = Vec::with_capacity(entries.len());
    for entry in &entries {
        let from = match (entry.record.reshard, entry.record.shards) {
            (Some((from, running_to)), _) if running_to == to => from,
            (Some((_, running_to)), _) => {
                return Err(Error::invalid(
                    "reshard",
                    format!(
                        "labourer `{}` is being resharded to {running_to} shards, not {to}: run \
                         `sosw migrate-layout --aws --reshard --shards {running_to}` to finish that \
                         one first",
                        entry.labourer
                    ),
                ));
            }
            (None, Some(recorded)) => recorded,
            (None, None) => settings.unrecorded_from.ok_or_else(|| {
                Error::invalid(
                    "reshard",
                    format!(
                        "labourer `{}` has no recorded shard count (written before counts were \
                         recorded): pass --from-shards with the count its tasks were written under",
                        entry.labourer
                    ),
                )
            })?,
        };
        if !report.from.contains(&from) {
            report.from.push(from);
        }
        plan.push((entry.labourer.clone(), from, entry.record.reshard.is_some()));
    }
    report.from.sort_unstable();
    let widest = plan
        .iter()
        .map(|(_, from, _)| *from)
        .chain([to])
        .max()
        .unwrap_or(to);
    report.running = store.claims_in(widest).await?;
    let count_changes = plan.iter().any(|(_, from, _)| *from != to);
    let unfinished = plan.iter().any(|(_, _, running)| *running);
    if !count_changes && !unfinished && !settings.refile_keys {
        return Ok(report);
    }
    // Claims are keyed by the count, not by the fairness path: a refile alone leaves them be.
    if count_changes && report.running > 0 && !settings.dry_run {
        return Err(Error::invalid(
            "reshard",
            format!(
                "{} tasks of the lean table `{}` are claimed (running): a claim's key depends on \
                 the shard count too. Stop the orchestrator (and the scheduler), let the running \
                 tasks finish or expire (`sosw status`, the scavenger closes expired ones), then run \
                 this again",
                report.running,
                store.table()
            ),
        ));
    }
    if !settings.dry_run {
        for (labourer, from, _) in &plan {
            store.mark_reshard(labourer, *from, to).await?;
        }
        tokio::time::sleep(settings.settle).await;
    }
    loop {
        report.passes += 1;
        let pass = store
            .move_queued(&plan, widest, settings.dry_run, settings.refile_keys)
            .await?;
        if report.passes == 1 {
            report.queued_found = pass.found;
            report.queued_to_move = pass.to_move;
            report.keyed_labourers = pass.keyed;
        }
        report.queued_moved += pass.moved;
        report.queued_refiled += pass.refiled;
        if settings.dry_run || pass.to_move == 0 {
            break;
        }
        if report.passes >= MAX_PASSES {
            return Err(Error::invalid(
                "reshard",
                format!(
                    "queued items kept arriving under the old shard count after {MAX_PASSES} \
                     passes: a scheduler or other process with the old SOSW_LEAN_SHARDS is still \
                     writing to `{}`. Stop it and run this again (the table stays marked, and every \
                     process refused, until a run finishes)",
                    store.table()
                ),
            ));
        }
    }
    if !settings.dry_run {
        for (labourer, from, _) in &plan {
            store.finish_reshard(labourer, *from, to).await?;
        }
    }
    Ok(report)
}

impl LeanTaskStore {
    /// Claims in the claim shards `0..widest` (consistent).
    async fn claims_in(&self, widest: u32) -> Result<u64> {
        let mut count = 0;
        for shard in 0..widest {
            count += self.raw_partition(&Self::claim_pk(shard)).await?.len() as u64;
        }
        Ok(count)
    }

    async fn raw_partition(&self, pk: &str) -> Result<Vec<Item>> {
        query::collect(self.client(), &partition_spec(self.table(), pk), usize::MAX).await
    }

    /// Both record items of `labourer`: marked as resharding from `from` to `to`.
    async fn mark_reshard(&self, labourer: &str, from: u32, to: u32) -> Result<()> {
        for keys in record_keys(labourer) {
            let marked = self
                .update_record(
                    "reshard: mark",
                    keys,
                    "SET #shards = :zero, #from = :from, #to = :to",
                    "attribute_not_exists(#shards) OR #shards = :from OR (#shards = :zero AND #to = :to)",
                    vec![
                        (":zero", n(0)),
                        (":from", n(i64::from(from))),
                        (":to", n(i64::from(to))),
                    ],
                )
                .await?;
            if marked.is_err() {
                return Err(Error::invalid(
                    "reshard",
                    format!(
                        "labourer `{labourer}`'s shard count changed while the reshard started \
                         (another reshard?): run it again"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Both record items of `labourer`: the new count, `from` kept as earlier.
    async fn finish_reshard(&self, labourer: &str, from: u32, to: u32) -> Result<()> {
        for keys in record_keys(labourer) {
            let mut values = vec![(":zero", n(0)), (":to", n(i64::from(to)))];
            let update = if from == to {
                "SET #shards = :to REMOVE #from, #to"
            } else {
                values.push((":earlier", AttributeValue::Ns(vec![from.to_string()])));
                "SET #shards = :to REMOVE #from, #to ADD #earlier :earlier"
            };
            let finished = self
                .update_record(
                    "reshard: finish",
                    keys,
                    update,
                    "#shards = :zero AND #to = :to",
                    values,
                )
                .await?;
            if finished.is_err() {
                return Err(Error::invalid(
                    "reshard",
                    format!(
                        "labourer `{labourer}`'s reshard mark changed before it finished (another \
                         reshard?): run it again"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// One pass over every queue partition of the labourers in `plan` (shards `0..widest`, plain
    /// and per fairness key): items found, items whose partition changes (their shard; with
    /// `refile`, also the partition their labourer's fairness path puts them in), items moved.
    async fn move_queued(
        &self,
        plan: &[(String, u32, bool)],
        widest: u32,
        dry_run: bool,
        refile: bool,
    ) -> Result<Pass> {
        let to = self.shards();
        let mut pass = Pass::default();
        for (labourer, _, _) in plan {
            let registry = self.registry_unchecked(labourer).await?;
            if refile && registry.path.is_some() {
                pass.keyed += 1;
            }
            let plain = format!("q#{labourer}");
            let prefixes: Vec<&String> = std::iter::once(&plain)
                .chain(registry.keys.iter())
                .collect();
            // Items this pass moved into a partition it reads later: not found twice.
            let mut moved_in: HashMap<String, u64> = HashMap::new();
            for prefix in prefixes {
                for shard in 0..widest {
                    let pk = format!("{prefix}#{shard}");
                    let spec = partition_spec(self.table(), &pk);
                    let mut read = 0u64;
                    let mut start = None;
                    // A page at a time (about 1 MB), so memory stays flat whatever the queue's size.
                    loop {
                        let (items, next) = query::page(self.client(), &spec, start).await?;
                        // A pack's tasks each move on their own (to an item of their own there).
                        let mut flat: Vec<(Item, Option<Item>)> = Vec::with_capacity(items.len());
                        for item in items {
                            match super::pack::unpack(&item, self.table())? {
                                Some(entries) => flat.extend(
                                    entries
                                        .into_iter()
                                        .map(|(plain, entry)| (plain, Some(entry))),
                                ),
                                None => flat.push((item, None)),
                            }
                        }
                        let items = flat;
                        read += items.len() as u64;
                        let mut moves: Vec<(Item, Option<Item>, String)> = Vec::new();
                        for (item, entry) in items {
                            let Some(id) = queued_task_id(&item) else {
                                continue;
                            };
                            let target_shard = shard_of(id, to);
                            // With a path, the partition its key gives the task now.
                            let keyed = match &registry.path {
                                Some(path) if refile => {
                                    let task = super::decode(item.clone(), self.table())?.task;
                                    let fkey = path.key_of(&task.payload);
                                    Some((
                                        path,
                                        fair::key_prefix(labourer, path.as_str(), &fkey),
                                        fkey,
                                    ))
                                }
                                _ => None,
                            };
                            let target_prefix =
                                keyed.as_ref().map_or(prefix, |(_, prefix, _)| prefix);
                            let target = format!("{target_prefix}#{target_shard}");
                            if target == pk {
                                continue;
                            }
                            if target_prefix != prefix {
                                pass.refiled_to_move += 1;
                            }
                            if let Some((path, key_prefix, fkey)) = &keyed
                                && key_prefix != prefix
                                && !dry_run
                            {
                                // Registered before anything is filed there, so that every walk
                                // of the queue reads the partition (once per key: the store
                                // remembers its registrations).
                                self.register_key(labourer, path, fkey).await?;
                            }
                            moves.push((item, entry, target));
                        }
                        pass.to_move += moves.len() as u64;
                        if !dry_run {
                            let outcomes: Vec<Move> = futures::stream::iter(moves)
                                .map(|(item, entry, target)| self.move_item(item, entry, target))
                                .buffer_unordered(MOVE_CONCURRENCY)
                                .try_collect()
                                .await?;
                            for outcome in outcomes {
                                if outcome.copied {
                                    *moved_in.entry(outcome.target.clone()).or_default() += 1;
                                }
                                if outcome.deleted == Written::Yes {
                                    pass.moved += 1;
                                    pass.refiled += u64::from(outcome.refiled);
                                }
                            }
                        }
                        match next {
                            Some(key) => start = Some(key),
                            None => break,
                        }
                    }
                    pass.found += read.saturating_sub(moved_in.get(&pk).copied().unwrap_or(0));
                }
            }
        }
        if dry_run {
            pass.refiled = pass.refiled_to_move;
        }
        Ok(pass)
    }

    /// Moves the queued `item` to the partition `target` (same sort key): the copy first (unless an
    /// item with a later move counter is there), then the original deleted on its move counter. A
    /// task of a pack (`entry`, the key of its entry; `item`, the task as an item of its own) is
    /// copied as an item of its own, and its entry taken out of the pack.
    async fn move_item(&self, item: Item, entry: Option<Item>, target: String) -> Result<Move> {
        let rev = item
            .get(REV)
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        let (Some(pk), Some(sk)) = (item.get("pk").cloned(), item.get("sk").cloned()) else {
            return Err(Error::invalid(
                "reshard",
                format!("an item of `{}` read without its key", self.table()),
            ));
        };
        let refiled = pk
            .as_s()
            .ok()
            .and_then(|pk| pk.rsplit_once('#'))
            .zip(target.rsplit_once('#'))
            .is_some_and(|((from, _), (to, _))| from != to);
        let source =
            entry.unwrap_or_else(|| Item::from([("pk".to_owned(), pk), ("sk".to_owned(), sk)]));
        let mut copy = item;
        copy.insert("pk".to_owned(), s(target.clone()));
        // Refused when the task's state there is as new or newer already (a stopped run's copy, or
        // a later state left by a stopped move of the task): the item here is then only deleted.
        let copied = self.put_newer("reshard: write moved item", copy).await? == Written::Yes;
        let deleted = self
            .delete_if("reshard: delete moved item", source, rev, None)
            .await?;
        Ok(Move {
            target,
            copied,
            deleted,
            refiled,
        })
    }

    /// `labourer`'s fairness registry as it is (not checked: the reshard reads it while the table
    /// is marked): its path, and the partition prefix of every registered key (of every path).
    async fn registry_unchecked(&self, labourer: &str) -> Result<RegistryAsIs> {
        let items = self.raw_partition(&fair::registry_pk(labourer)).await?;
        let mut registry = RegistryAsIs::default();
        let mut keys = BTreeSet::new();
        for item in &items {
            let attr = |name: &str| item.get(name).and_then(|v| v.as_s().ok());
            match (attr("sk"), attr("path"), attr("fkey")) {
                (Some(sk), Some(path), None) if sk == fair::PATH_SK => {
                    registry.path = Some(FairnessKey::try_from(path.clone()).map_err(|e| {
                        Error::invalid(
                            "reshard",
                            format!("the fairness path of labourer `{labourer}`: {e}"),
                        )
                    })?);
                }
                (_, Some(path), Some(key)) => {
                    keys.insert(fair::key_prefix(labourer, path, key));
                }
                _ => {}
            }
        }
        registry.keys = keys.into_iter().collect();
        Ok(registry)
    }
}

/// A labourer's fairness registry as a reshard reads it.
#[derive(Default)]
struct RegistryAsIs {
    /// The path its orchestrator reads its queue by, if any.
    path: Option<FairnessKey>,
    /// The partition prefix of every registered key, of every path.
    keys: Vec<String>,
}

/// What one pass over the queue partitions found and did.
#[derive(Debug, Default)]
struct Pass {
    keyed: u64,
    found: u64,
    to_move: u64,
    moved: u64,
    refiled_to_move: u64,
    refiled: u64,
}

/// A consistent read of the partition `pk`.
fn partition_spec<'a>(table: &'a str, pk: &str) -> QuerySpec<'a> {
    QuerySpec::new(
        "reshard: read partition",
        table,
        None,
        "pk = :pk",
        vec![(":pk", s(pk))],
    )
    .consistent()
}

/// What moving one queued item did.
struct Move {
    /// The partition it went to.
    target: String,
    /// Whether that partition is another key's (or the plain one), not only another shard.
    refiled: bool,
    /// Whether the copy was written there (not when the task's state there was as new or newer).
    copied: bool,
    /// Whether the original was deleted (not when it changed since it was read).
    deleted: Written,
}

/// The two items recording `labourer`'s shard count.
fn record_keys(labourer: &str) -> [(String, String); 2] {
    [
        (REGISTRY.to_owned(), labourer.to_owned()),
        (fair::registry_pk(labourer), fair::SHARDS_SK.to_owned()),
    ]
}

/// The task id of a queued item: its sort key after the ordered greenfield.
fn queued_task_id(item: &Item) -> Option<&str> {
    let sk = item.get("sk")?.as_s().ok()?;
    sk.split_once('#').map(|(_, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_its_count_earlier_counts_and_a_running_reshard() {
        let item = Item::from([
            ("shards".to_owned(), n(0)),
            ("reshard_from".to_owned(), n(4)),
            ("reshard_to".to_owned(), n(8)),
            (
                "earlier_shards".to_owned(),
                AttributeValue::Ns(vec!["1".into()]),
            ),
        ]);
        let record = ShardRecord::of(&item);
        assert_eq!(
            record,
            ShardRecord {
                shards: Some(0),
                earlier: vec![1],
                reshard: Some((4, 8)),
            }
        );
        assert_eq!(counts_ever(8, &record), vec![8, 1, 4]);
        assert_eq!(counts_ever(4, &ShardRecord::default()), vec![4]);
    }

    #[test]
    fn a_queued_items_task_id_follows_its_ordered_greenfield() {
        let item = Item::from([("sk".to_owned(), s("e2000#job-1#a"))]);
        assert_eq!(queued_task_id(&item), Some("job-1#a"));
        assert_eq!(queued_task_id(&Item::new()), None);
    }
}
