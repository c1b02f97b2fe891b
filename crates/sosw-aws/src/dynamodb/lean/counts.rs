//! Job counters in batches on the lean layout: the closed items of a job's tasks are counted from the
//! table's change feed (DynamoDB Streams, `NEW_AND_OLD_IMAGES`), one conditional update per job and
//! pass instead of one per closed task.
//!
//! A pass ([`LeanTaskStore::count_from_stream`], the scavenger's `count_closed_tasks`) reads every
//! shard of the table's stream from where the last pass stopped (a checkpoint item per stream shard,
//! `pk = counts`, `sk = <shard id>`), parents before children, and turns each change of a closed item
//! (`c#…`) into signed counts for the item's job: its new image's status counts `+1`, its old image's
//! `-1`. So a closed item written counts once, a closed item taken back (a move that lost a race, a
//! redrive) counts out again, and one rewritten with a later status (a redriven task closed again)
//! moves its count. Deletions by DynamoDB's TTL are not counted out: the task stays closed.
//!
//! **Exactly once.** The job record keeps, per stream shard, the sequence number of the last change it
//! has counted (`cnt#<shard id>`). A pass reads that mark first and applies, in one conditional update,
//! the job's changes after it, moving the mark on the condition that it is still the one read: of two
//! passes racing, or a pass repeated after a stop before its checkpoint was written, only one counts a
//! change. The checkpoint only saves reading: a change is never counted by it.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodbstreams::types::{
    AttributeValue as StreamValue, OperationType, Record, Shard, ShardIteratorType,
};

use super::super::codec::{Item, s};
use super::super::errors::sdk_error;
use super::LeanTaskStore;
use sosw_core::error::{Error, Result};
use sosw_core::store::{CLOSED_STATUS_ATTRIBUTE, ClosedStatus, JobRecord};

/// The partition of the stream checkpoints in the lean table.
pub(crate) const CHECKPOINTS: &str = "counts";

/// Most `GetRecords` pages one pass reads from one shard (1,000 changes each at most): a backlog
/// larger than this is counted over the next passes.
const PAGES_PER_SHARD: usize = 100;

/// The signed changes of one job's closed counters from one stream shard, and the changes they came
/// from (sequence number, padded so that text order is number order).
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct JobChanges {
    pub changes: Vec<(String, Signed)>,
}

/// Signed counter changes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Signed {
    /// Completed tasks.
    pub completed: i64,
    /// Dead tasks.
    pub dead: i64,
    /// Cancelled tasks.
    pub cancelled: i64,
}

impl Signed {
    fn add(&mut self, other: Signed) {
        self.completed += other.completed;
        self.dead += other.dead;
        self.cancelled += other.cancelled;
    }

    /// Whether every change is zero.
    pub fn is_zero(&self) -> bool {
        *self == Signed::default()
    }
}

/// A stream sequence number as the stream gave it (`raw`, for reading on after it) and padded (for
/// comparing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seq {
    padded: String,
    raw: String,
}

/// A stream sequence number as text that sorts as the number does (they are up to 40 digits).
fn padded(sequence: &str) -> String {
    format!("{sequence:0>40}")
}

/// The job record's attribute holding the last change of stream shard `shard` it has counted.
pub(crate) fn mark_attribute(shard: &str) -> String {
    format!("cnt#{shard}")
}

fn text<'a>(image: &'a HashMap<String, StreamValue>, name: &str) -> Option<&'a str> {
    image
        .get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

/// The job and the closed status of a closed item's image, if it is one of a job's tasks.
fn closed_of(image: &HashMap<String, StreamValue>) -> Option<(String, ClosedStatus)> {
    if !text(image, "pk")?.starts_with("c#") {
        return None;
    }
    let job = text(image, "job_id").filter(|j| !j.is_empty())?;
    let labourer = text(image, "labourer_id")?;
    let key = text(image, CLOSED_STATUS_ATTRIBUTE)?;
    let status = [
        ClosedStatus::Completed,
        ClosedStatus::Dead,
        ClosedStatus::Cancelled,
    ]
    .into_iter()
    .find(|st| st.index_key(labourer) == key)?;
    Some((job.to_owned(), status))
}

fn one(status: ClosedStatus, sign: i64) -> Signed {
    let mut d = Signed::default();
    match status {
        ClosedStatus::Completed => d.completed = sign,
        ClosedStatus::Dead => d.dead = sign,
        ClosedStatus::Cancelled => d.cancelled = sign,
    }
    d
}

/// Whether a removal was DynamoDB's TTL sweeper (the service's identity on the record, or an image
/// whose `expires_at` has passed).
fn removed_by_ttl(record: &Record, old: &HashMap<String, StreamValue>, now: i64) -> bool {
    let by_service = record
        .user_identity()
        .is_some_and(|id| id.r#type() == Some("Service"));
    let expired = old
        .get(super::EXPIRES)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .is_some_and(|at| at <= now);
    by_service || expired
}

/// The counter changes of one stream record, by job: nothing for items that are not closed items of
/// a job's task.
pub(crate) fn changes_of(record: &Record, now: i64) -> Vec<(String, Signed)> {
    let Some(change) = record.dynamodb() else {
        return Vec::new();
    };
    let mut out: Vec<(String, Signed)> = Vec::new();
    let mut push = |job: String, d: Signed| match out.iter_mut().find(|(j, _)| *j == job) {
        Some((_, sum)) => sum.add(d),
        None => out.push((job, d)),
    };
    let removal = record.event_name() == Some(&OperationType::Remove);
    if let Some(old) = change.old_image()
        && let Some((job, status)) = closed_of(old)
        && !(removal && removed_by_ttl(record, old, now))
    {
        push(job, one(status, -1));
    }
    if let Some(new) = change.new_image()
        && let Some((job, status)) = closed_of(new)
    {
        push(job, one(status, 1));
    }
    out.retain(|(_, d)| !d.is_zero());
    out
}

/// `shards` ordered parents first (a child's changes of an item follow its parent's).
fn parents_first(shards: Vec<Shard>) -> Vec<Shard> {
    let ids: std::collections::HashSet<String> = shards
        .iter()
        .filter_map(|s| s.shard_id().map(str::to_owned))
        .collect();
    let mut ordered: Vec<Shard> = Vec::with_capacity(shards.len());
    let mut rest = shards;
    while !rest.is_empty() {
        let placed: std::collections::HashSet<String> = ordered
            .iter()
            .filter_map(|s| s.shard_id().map(str::to_owned))
            .collect();
        let (ready, waiting): (Vec<Shard>, Vec<Shard>) = rest.into_iter().partition(|s| {
            s.parent_shard_id()
                .is_none_or(|p| !ids.contains(p) || placed.contains(p))
        });
        if ready.is_empty() {
            // A cycle cannot happen; keep what is left in the order given rather than loop.
            ordered.extend(waiting);
            break;
        }
        ordered.extend(ready);
        rest = waiting;
    }
    ordered
}

impl LeanTaskStore {
    fn streams(&self) -> Result<&aws_sdk_dynamodbstreams::Client> {
        self.streams_client().ok_or_else(|| {
            Error::invalid(
                "lean layout",
                "job counts from the stream need a DynamoDB Streams client \
                 (LeanTaskStore::with_job_counts_from_stream)",
            )
        })
    }

    /// The table's stream, or a clear error if it has none.
    async fn stream_arn(&self) -> Result<String> {
        let table = self.table();
        let out = self
            .client()
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| sdk_error("describe table (stream)", table, e))?;
        let description = out.table();
        let enabled = description
            .and_then(|t| t.stream_specification())
            .is_some_and(|s| s.stream_enabled());
        match description.and_then(|t| t.latest_stream_arn()) {
            Some(arn) if enabled => Ok(arn.to_owned()),
            _ => Err(Error::invalid(
                "lean layout",
                format!(
                    "table `{table}` has no stream, and this deployment counts job progress from \
                     it (SOSW_LEAN_JOB_COUNTS=batched, the default): enable its stream with \
                     NEW_AND_OLD_IMAGES (the stacks' Layout=lean does), or set \
                     SOSW_LEAN_JOB_COUNTS=immediate"
                ),
            )),
        }
    }

    /// Every shard of the stream.
    async fn stream_shards(&self, arn: &str) -> Result<Vec<Shard>> {
        let streams = self.streams()?;
        let mut shards = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let out = streams
                .describe_stream()
                .stream_arn(arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("describe stream", self.table(), e))?;
            let Some(description) = out.stream_description else {
                break;
            };
            shards.extend(description.shards.unwrap_or_default());
            match description.last_evaluated_shard_id {
                Some(last) => start = Some(last),
                None => break,
            }
        }
        Ok(parents_first(shards))
    }

    /// The checkpoints of the stream's shards: shard id -> last change read. Read eventually
    /// consistent (half the units): a checkpoint read a moment old only makes the pass read again
    /// changes a pass has counted, and each job's mark refuses to count them twice
    /// (`apply_counted`).
    async fn checkpoints(&self) -> Result<HashMap<String, Seq>> {
        let table = self.table();
        let items: Vec<Item> = self
            .client()
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(CHECKPOINTS))
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error("read stream checkpoints", table, e))?;
        Ok(items
            .into_iter()
            .filter_map(|item| {
                let shard = item.get("sk")?.as_s().ok()?.clone();
                let padded = item.get("seq")?.as_s().ok()?.clone();
                let raw = item.get("raw")?.as_s().ok()?.clone();
                Some((shard, Seq { padded, raw }))
            })
            .collect())
    }

    async fn save_checkpoint(&self, shard: &str, seq: &Seq) -> Result<()> {
        let table = self.table();
        self.client()
            .put_item()
            .table_name(table)
            .item("pk", s(CHECKPOINTS))
            .item("sk", s(shard))
            .item("seq", s(&seq.padded))
            .item("raw", s(&seq.raw))
            .condition_expression("attribute_not_exists(seq) OR seq < :seq")
            .expression_attribute_values(":seq", s(&seq.padded))
            .send()
            .await
            .map(drop)
            .or_else(|e| {
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception())
                {
                    // Another pass has read further: its checkpoint stands.
                    Ok(())
                } else {
                    Err(sdk_error("save stream checkpoint", table, e))
                }
            })
    }

    /// The changes of one shard after `after`, by job, and the last change read, if any.
    async fn read_shard(
        &self,
        arn: &str,
        shard: &Shard,
        after: Option<&Seq>,
        now: i64,
    ) -> Result<(BTreeMap<String, JobChanges>, Option<Seq>)> {
        let streams = self.streams()?;
        let shard_id = shard.shard_id().unwrap_or_default();
        let request = streams
            .get_shard_iterator()
            .stream_arn(arn)
            .shard_id(shard_id);
        let request = match after {
            Some(seq) => request
                .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                .sequence_number(&seq.raw),
            None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
        };
        let mut iterator = request
            .send()
            .await
            .map_err(|e| sdk_error("read stream shard", self.table(), e))?
            .shard_iterator;
        let mut by_job: BTreeMap<String, JobChanges> = BTreeMap::new();
        let mut last = None;
        for _ in 0..PAGES_PER_SHARD {
            let Some(it) = iterator.take() else { break };
            let out = streams
                .get_records()
                .shard_iterator(it)
                .send()
                .await
                .map_err(|e| sdk_error("read stream records", self.table(), e))?;
            let records = out.records.unwrap_or_default();
            let empty = records.is_empty();
            for record in &records {
                let Some(seq) = record.dynamodb().and_then(|c| c.sequence_number()) else {
                    continue;
                };
                let seq = Seq {
                    padded: padded(seq),
                    raw: seq.to_owned(),
                };
                for (job, delta) in changes_of(record, now) {
                    by_job
                        .entry(job)
                        .or_default()
                        .changes
                        .push((seq.padded.clone(), delta));
                }
                last = Some(seq);
            }
            iterator = out.next_shard_iterator;
            if empty {
                // Caught up with an open shard (or the end of a closed one).
                break;
            }
        }
        Ok((by_job, last))
    }

    /// One counting pass over the table's stream: applies every closed-item change since the last
    /// pass to its job, exactly once, and returns the records of the jobs it changed (after the
    /// change).
    pub async fn count_from_stream(&self, now: i64) -> Result<Vec<JobRecord>> {
        let arn = self.stream_arn().await?;
        let shards = self.stream_shards(&arn).await?;
        let checkpoints = self.checkpoints().await?;
        let mut changed: BTreeMap<String, JobRecord> = BTreeMap::new();
        for shard in &shards {
            let Some(shard_id) = shard.shard_id() else {
                continue;
            };
            let after = checkpoints.get(shard_id);
            let ending = shard
                .sequence_number_range()
                .and_then(|r| r.ending_sequence_number())
                .map(padded);
            if let (Some(end), Some(done)) = (&ending, after)
                && done.padded >= *end
            {
                continue;
            }
            let (by_job, last) = self.read_shard(&arn, shard, after, now).await?;
            for (job_id, changes) in by_job {
                if let Some(record) = self
                    .legacy()
                    .apply_counted(&job_id, &mark_attribute(shard_id), &changes.changes)
                    .await?
                {
                    changed.insert(job_id, record);
                }
            }
            if let Some(last) = last {
                self.save_checkpoint(shard_id, &last).await?;
            }
        }
        Ok(changed.into_values().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodbstreams::types::{Identity, StreamRecord};

    fn image(pk: &str, job: &str, status: &str) -> HashMap<String, StreamValue> {
        [
            ("pk", pk),
            ("job_id", job),
            ("labourer_id", "w"),
            (CLOSED_STATUS_ATTRIBUTE, status),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), StreamValue::S(v.to_owned())))
        .collect()
    }

    fn record(
        op: OperationType,
        old: Option<HashMap<String, StreamValue>>,
        new: Option<HashMap<String, StreamValue>>,
        ttl: bool,
    ) -> Record {
        let change = StreamRecord::builder()
            .sequence_number("7")
            .set_old_image(old)
            .set_new_image(new)
            .build();
        let mut r = Record::builder().event_name(op).dynamodb(change);
        if ttl {
            r = r.user_identity(
                Identity::builder()
                    .r#type("Service")
                    .principal_id("dynamodb.amazonaws.com")
                    .build(),
            );
        }
        r.build()
    }

    fn signed(completed: i64, dead: i64, cancelled: i64) -> Signed {
        Signed {
            completed,
            dead,
            cancelled,
        }
    }

    #[test]
    fn a_closed_item_counts_in_when_written_and_out_when_taken_back_but_not_when_expired() {
        let done = image("c#w#0", "j", "w_1");
        let insert = record(OperationType::Insert, None, Some(done.clone()), false);
        assert_eq!(changes_of(&insert, 0), vec![("j".into(), signed(1, 0, 0))]);
        let taken_back = record(OperationType::Remove, Some(done.clone()), None, false);
        assert_eq!(
            changes_of(&taken_back, 0),
            vec![("j".into(), signed(-1, 0, 0))]
        );
        let swept = record(OperationType::Remove, Some(done.clone()), None, true);
        assert!(
            changes_of(&swept, 0).is_empty(),
            "TTL deletions count nothing"
        );
        let mut expired = done.clone();
        expired.insert(super::super::EXPIRES.into(), StreamValue::N("100".into()));
        let late = record(OperationType::Remove, Some(expired), None, false);
        assert!(
            changes_of(&late, 100).is_empty(),
            "an expired item's removal is the sweep"
        );
    }

    #[test]
    fn a_rewritten_closed_item_moves_its_count_and_other_items_count_nothing() {
        let dead = image("c#w#0", "j", "w_0");
        let done = image("c#w#0", "j", "w_1");
        let rewrite = record(OperationType::Modify, Some(dead), Some(done.clone()), false);
        assert_eq!(
            changes_of(&rewrite, 0),
            vec![("j".into(), signed(1, -1, 0))]
        );
        let same = record(OperationType::Modify, Some(done.clone()), Some(done), false);
        assert!(changes_of(&same, 0).is_empty());
        let claim = image("r#0", "j", "w_1");
        let claimed = record(OperationType::Insert, None, Some(claim), false);
        assert!(
            changes_of(&claimed, 0).is_empty(),
            "only closed items count"
        );
        let cancelled = image("c#w#1", "j", &ClosedStatus::Cancelled.index_key("w"));
        let closed = record(OperationType::Insert, None, Some(cancelled), false);
        assert_eq!(changes_of(&closed, 0), vec![("j".into(), signed(0, 0, 1))]);
        let mut no_job = image("c#w#0", "", "w_1");
        no_job.remove("job_id");
        let orphan = record(OperationType::Insert, None, Some(no_job), false);
        assert!(
            changes_of(&orphan, 0).is_empty(),
            "tasks without a job count nowhere"
        );
    }

    #[test]
    fn sequence_numbers_sort_as_numbers_once_padded() {
        assert!(padded("99") < padded("100"));
        assert_eq!(padded("000000000000000000001").len(), 40);
    }

    #[test]
    fn parents_come_before_their_children() {
        let shard = |id: &str, parent: Option<&str>| {
            Shard::builder()
                .shard_id(id)
                .set_parent_shard_id(parent.map(str::to_owned))
                .build()
        };
        let ordered = parents_first(vec![
            shard("c", Some("b")),
            shard("b", Some("a")),
            shard("a", Some("gone")),
        ]);
        let ids: Vec<&str> = ordered.iter().filter_map(|s| s.shard_id()).collect();
        assert_eq!(ids, ["a", "b", "c"]);
    }
}
