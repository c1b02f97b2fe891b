//! [`TaskQueue`] on the lean layout: queued items sorted by greenfield inside each shard, the shards
//! merged by greenfield.

use std::collections::HashSet;

use aws_sdk_dynamodb::types::AttributeValue;

use async_trait::async_trait;

use super::super::queue::validate_all;
use futures::{StreamExt, TryStreamExt};

use super::super::codec::s;
use super::super::query::{self, QuerySpec};
use super::fair::{READ_CONCURRENCY, latest_per_task};
use super::{Found, LeanTaskStore, Read, order};
use sosw_core::ecology::fair::FairnessKey;
use sosw_core::error::Result;
use sosw_core::store::{EnqueueMode, EnqueueReport, KeyedQueue, TaskQueue};
use sosw_core::task::{Markers, Task};

/// The highest sort key of a queued item with greenfield `high` (any task id).
fn up_to(high: i64) -> String {
    format!("{}#\u{10ffff}", order(high))
}

/// `found` sorted by greenfield (the task id breaking ties, as the sort key does within a
/// partition), highest first if `descending`.
fn by_greenfield(mut found: Vec<Found>, descending: bool) -> Vec<Found> {
    found.sort_by(|a, b| {
        let by = (a.task.greenfield, a.task.task_id.as_str())
            .cmp(&(b.task.greenfield, b.task.task_id.as_str()));
        if descending { by.reverse() } else { by }
    });
    found
}

impl LeanTaskStore {
    /// The queued items of `labourer` with greenfield in `[low, high]`, every shard of the plain
    /// partitions and of every fairness key's, lowest greenfield first (highest if `descending`), at
    /// most `limit` per partition; of a task found twice (a stopped move) the later item.
    pub(crate) async fn queue_range(
        &self,
        operation: &'static str,
        labourer: &str,
        low: i64,
        high: i64,
        limit: usize,
        descending: bool,
    ) -> Result<Vec<Found>> {
        if high < low {
            return Ok(Vec::new());
        }
        let pks = self.queue_pks_from(labourer, low).await?;
        self.range_of(operation, pks, low, high, limit, descending)
            .await
    }

    /// The count of the queued items of partition `pk` at `now` (greenfield below it).
    fn queued_count_spec(&self, pk: String, now: i64) -> QuerySpec<'_> {
        QuerySpec::new(
            "queue length",
            self.table(),
            None,
            "pk = :pk AND sk BETWEEN :low AND :high",
            vec![
                (":pk", s(pk)),
                (":low", s(order(i64::MIN))),
                (":high", s(up_to(now.saturating_sub(1)))),
            ],
        )
    }

    /// The queued tasks `spec` reads, up to `cap` (and a page more): an item of its own counts one,
    /// a pack its tasks. Pages read with only the packs' tasks (`pt`) projected, a page at a time:
    /// DynamoDB charges the items whole either way, as it charges a `Select=COUNT`.
    async fn count_queued(&self, spec: &QuerySpec<'_>, now: i64, cap: u64) -> Result<u64> {
        let spec = spec.clone().project(super::pack::PACKED);
        let mut total: u64 = 0;
        let mut start = None;
        loop {
            if total >= cap {
                return Ok(cap);
            }
            let (items, next) = query::page(self.client(), &spec, start).await?;
            for item in &items {
                total += match item.get(super::pack::PACKED) {
                    // The pack's own key is its first task's: each of the others by its own.
                    Some(AttributeValue::M(entries)) => entries
                        .values()
                        .filter(|e| super::pack::entry_greenfield(e).is_some_and(|g| g < now))
                        .count() as u64,
                    _ => 1,
                };
            }
            match next {
                Some(next) => start = Some(next),
                None => return Ok(total.min(cap)),
            }
        }
    }

    /// [`LeanTaskStore::queue_range`] over `pks`.
    pub(crate) async fn range_of(
        &self,
        operation: &'static str,
        pks: Vec<String>,
        low: i64,
        high: i64,
        limit: usize,
        descending: bool,
    ) -> Result<Vec<Found>> {
        if high < low {
            return Ok(Vec::new());
        }
        let range = (order(low), up_to(high));
        let reads = pks
            .into_iter()
            .map(|pk| Read {
                operation,
                pk,
                range: Some(range.clone()),
                filter: None,
                values: vec![],
                limit,
                descending,
                consistent: false,
            })
            .collect();
        let all = self.read_all(reads).await?.into_iter().flatten().collect();
        Ok(by_greenfield(latest_per_task(all), descending))
    }

    /// The `limit` oldest queued items of `labourer` (greenfield at most `high`) for an orchestrator
    /// round, lowest greenfield first, reading about `limit` items in all rather than `limit` from
    /// each partition: a merge of the partitions' heads fetched in batches. Each partition is first
    /// asked for its share of `limit`; then only a partition that gave a whole batch and whose last
    /// item is older than the current `limit`-th oldest may hold more of the head, and is asked for
    /// more, until none does. Each batch asks for one item more than it needs, so that a partition
    /// that has no more is known without an empty read. Of a task found twice (a stopped move) the
    /// later item.
    pub(crate) async fn queue_head(
        &self,
        operation: &'static str,
        labourer: &str,
        high: i64,
        limit: usize,
    ) -> Result<Vec<Found>> {
        struct Part {
            pk: String,
            /// The sort key from which to read on.
            from: String,
            /// Whether it may hold more (its last read filled the batch).
            more: bool,
            /// The last item read from it, as (greenfield, task id).
            last: Option<(i64, String)>,
        }
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut parts: Vec<Part> = self
            .round_queue_pks(labourer)
            .await?
            .into_iter()
            .map(|pk| Part {
                pk,
                from: order(i64::MIN),
                more: true,
                last: None,
            })
            .collect();
        let high = up_to(high);
        let mut found: Vec<Found> = Vec::new();
        loop {
            found = by_greenfield(latest_per_task(found), false);
            let cutoff = found
                .get(limit - 1)
                .map(|f| (f.task.greenfield, f.task.task_id.as_str().to_owned()));
            let wanted: Vec<usize> = (0..parts.len())
                .filter(|i| {
                    let part = &parts[*i];
                    part.more
                        && match (&cutoff, &part.last) {
                            (Some(cutoff), Some(last)) => last < cutoff,
                            _ => true,
                        }
                })
                .collect();
            if wanted.is_empty() {
                break;
            }
            let missing = limit.saturating_sub(found.len()).max(limit / 4).max(1);
            let batch = missing.div_ceil(wanted.len());
            let reads: Vec<Read> = wanted
                .iter()
                .map(|i| Read {
                    operation,
                    pk: parts[*i].pk.clone(),
                    range: Some((parts[*i].from.clone(), high.clone())),
                    filter: None,
                    values: vec![],
                    // One more than the batch: a partition that has no more says so now, not
                    // with an empty read next time.
                    limit: batch + 1,
                    descending: false,
                    consistent: false,
                })
                .collect();
            let results: Vec<super::PartitionRead> = futures::stream::iter(reads)
                .map(|read| self.partition_items(read))
                .buffered(READ_CONCURRENCY)
                .try_collect()
                .await?;
            for (i, read) in wanted.into_iter().zip(results) {
                let part = &mut parts[i];
                // Items, not tasks: a pack is one item and gives each of its tasks.
                part.more = read.items > batch;
                if let Some(sk) = &read.last_sk {
                    // What is left of the partition sorts after the last item read: its key (a
                    // pack's is its first task's) bounds their greenfields and ids from below.
                    part.last = sk
                        .split_once('#')
                        .and_then(|(g, id)| super::unorder(g).map(|g| (g, id.to_owned())));
                    // Just past the last sort key read.
                    part.from = format!("{sk}\u{0}");
                }
                found.extend(read.found);
            }
        }
        found.truncate(limit);
        Ok(found)
    }

    /// Queued at `now`: greenfield below `now`.
    async fn queued(
        &self,
        operation: &'static str,
        labourer: &str,
        now: i64,
        limit: usize,
        descending: bool,
    ) -> Result<Vec<Task>> {
        let high = now.saturating_sub(1);
        // Newest first, a pack that starts before the last items may hold later tasks: in a
        // partition one enqueue filled, packs do not overlap, and a few items more cover packs of
        // enqueues that overlap in greenfields.
        let per_partition = match descending {
            true => limit.saturating_add(super::pack::PACK_NEAR),
            false => limit,
        };
        let mut found = self
            .queue_range(
                operation,
                labourer,
                i64::MIN,
                high,
                per_partition,
                descending,
            )
            .await?;
        if !descending
            && limit > 0
            && let Some(last) = found.get(limit - 1)
        {
            // A partition was read only in part. A pack sorts by its first greenfield, so the
            // items not read may hold tasks older than the ones read: a pack that starts later
            // but whose first tasks are gone. That range is read whole: the packs at the head of
            // the queue that rounds have begun to take.
            let last = last.task.greenfield;
            found.extend(
                self.queue_range(operation, labourer, i64::MIN, last, usize::MAX, false)
                    .await?,
            );
            found = by_greenfield(latest_per_task(found), false);
        }
        found.truncate(limit);
        Ok(found.into_iter().map(|f| f.task).collect())
    }

    /// The ids among `tasks` that exist as queued, claimed, waiting or closed items.
    ///
    /// The queued ones are found by reading the labourers' queues a page at a time, sort keys only
    /// (`queued_keys_with_ids`): a resumed batch of a job whose labourer has a million tasks queued
    /// holds its own ids and a page in memory, not the queue.
    async fn existing_ids(&self, tasks: &[Task]) -> Result<HashSet<String>> {
        let mut found = HashSet::new();
        let labourers: HashSet<&str> = tasks.iter().map(|t| t.labourer_id.as_str()).collect();
        for labourer in labourers {
            let ids: HashSet<&str> = tasks
                .iter()
                .filter(|t| t.labourer_id == labourer)
                .map(|t| t.task_id.as_str())
                .collect();
            let pks = self.queue_pks_from(labourer, i64::MIN).await?;
            for key in self
                .queued_keys_with_ids("enqueue (skip existing)", pks, &ids, false)
                .await?
            {
                if let Some(id) = super::pack::entry_of(&key) {
                    found.insert(id.to_owned());
                } else if let Some(AttributeValue::S(sk)) = key.get("sk")
                    && let Some((_, id)) = sk.split_once('#')
                {
                    found.insert(id.to_owned());
                }
            }
        }
        let mut keys = Vec::new();
        for t in tasks {
            let id = t.task_id.as_str();
            keys.push(self.claim_key(id));
            keys.push(self.closed_key(&t.labourer_id, id));
            keys.push(Self::retry_key(&t.labourer_id, id));
        }
        for f in self.get_many("enqueue (skip existing)", keys).await? {
            found.insert(f.task.task_id.as_str().to_owned());
        }
        Ok(found)
    }
}

#[async_trait]
impl TaskQueue for LeanTaskStore {
    async fn enqueue(&self, tasks: &[Task], mode: EnqueueMode) -> Result<EnqueueReport> {
        validate_all(tasks)?;
        let labourers: Vec<&str> = tasks.iter().map(|t| t.labourer_id.as_str()).collect();
        self.register(&labourers).await?;
        let items = tasks
            .iter()
            .zip(self.queue_keys_for(tasks).await?)
            .map(|(t, key)| self.item(t, &key, 0))
            .collect::<Result<Vec<_>>>()?;
        let existing = match mode {
            EnqueueMode::Fresh => HashSet::new(),
            EnqueueMode::SkipExisting => self.existing_ids(tasks).await?,
        };
        let new_items: Vec<(Task, _)> = tasks
            .iter()
            .zip(items)
            .filter(|(t, _)| !existing.contains(t.task_id.as_str()))
            .map(|(t, item)| (t.clone(), item))
            .collect();
        let written = new_items.len();
        let new_items: Vec<_> = if self.options().pack_queued {
            super::pack::pack_items(new_items)
        } else {
            new_items.into_iter().map(|(_, item)| item).collect()
        };
        let write_requests = self.legacy().batch_put(self.table(), new_items).await?;
        Ok(EnqueueReport {
            written,
            skipped_existing: tasks.len() - written,
            write_requests,
        })
    }

    async fn next_queued(&self, labourer_id: &str, now: i64, limit: usize) -> Result<Vec<Task>> {
        let found = self
            .queue_head("next queued", labourer_id, now.saturating_sub(1), limit)
            .await?;
        self.remember_queued(&found);
        Ok(found.into_iter().map(|f| f.task).collect())
    }

    /// Counted by DynamoDB (`Select=COUNT`, a page at a time), not read into memory: the
    /// orchestrator counts every labourer's queue after each run for its `queue_length` metric. A
    /// task left in two queued items by a move stopped between its two writes (until the next step
    /// finishes the move) counts twice.
    async fn queue_length(&self, labourer_id: &str, now: i64) -> Result<u64> {
        let pks = self.queue_pks_from(labourer_id, i64::MIN).await?;
        let counts: Vec<u64> = futures::stream::iter(pks)
            .map(|pk| async move {
                self.count_queued(&self.queued_count_spec(pk, now), now, u64::MAX)
                    .await
            })
            .buffered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(counts.into_iter().sum())
    }

    /// The partitions counted one after another, each only as far as the count still lacks of
    /// `cap`: at most `cap` items and one page more are read, whatever the queue's depth.
    async fn queue_length_up_to(&self, labourer_id: &str, now: i64, cap: u64) -> Result<u64> {
        let mut total: u64 = 0;
        for pk in self.queue_pks_from(labourer_id, i64::MIN).await? {
            if total >= cap {
                return Ok(cap);
            }
            let spec = self.queued_count_spec(pk, now);
            total = total.saturating_add(self.count_queued(&spec, now, cap - total).await?);
        }
        Ok(total.min(cap))
    }

    async fn oldest_queued_greenfield(&self, labourer_id: &str, now: i64) -> Result<Option<i64>> {
        let head = self
            .queued("queue head", labourer_id, now, 1, false)
            .await?;
        Ok(head.first().map(|t| t.greenfield))
    }

    async fn newest_queued_greenfield(&self, labourer_id: &str, now: i64) -> Result<Option<i64>> {
        let tail = self.queued("queue tail", labourer_id, now, 1, true).await?;
        Ok(tail.first().map(|t| t.greenfield))
    }

    async fn queue_by_key(
        &self,
        labourer_id: &str,
        key: &FairnessKey,
        markers: &Markers,
        per_key: usize,
    ) -> Result<KeyedQueue> {
        self.lean_queue_by_key(labourer_id, key, markers, per_key)
            .await
    }
}
