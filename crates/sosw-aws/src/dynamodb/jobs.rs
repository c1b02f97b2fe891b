//! [`JobStore`] over the `sosw_jobs` table (hash key `job_id`; sosw 0.7 has no job table).
//!
//! Two items per job: the **record**, which every progress and outcome update writes, and the **body**,
//! the job as submitted, written once. DynamoDB charges an update by the size of the whole item, so
//! keeping the body (which grows with the job: a job of 500 sections is about 10 KB) out of the record
//! makes every counter update cost one write unit instead of one per KB of job. A **small job** (its
//! record with the job inside at most 768 bytes, compressed where that is smaller: the tutorial's
//! job is about 600) is one item, the record holding `job` or `jobz` itself: it is created with one
//! `PutItem` (1 write unit instead of the transaction's 4), and its updates still cost one unit.
//!
//! | item | attribute | type | |
//! |---|---|---|---|
//! | record | `job_id`, `labourer_id` | S | |
//! | record | `status` | S | `requested`, `running`, `finished`, `finished_with_failures`, `cancelled` |
//! | record | `created_at` | N | `started_at`, `finished_at` and `total` too, absent while unset |
//! | record | `enqueued`, `completed`, `failed`, `dead`, `cancelled` | N | counters (`cancelled` absent until a task is cancelled) |
//! | record | `requesters` | L of S | in submission order, without repeats |
//! | record | `job` or `jobz` | S or B | a small job, inside its record (as in the body item below) |
//! | body | `job_id` | S | the job id, then U+001F (unit separator), then `job`: no job id has a control character, so no record can have this key |
//! | body | `body_of` | S | the job id |
//! | body | `job` | S | the job as JSON text, as sosw 0.7 stores task payloads |
//! | body | `jobz` | B | instead of `job` when that costs fewer write units: the JSON text compressed (raw DEFLATE); a job of 500 sections, 3.2 KB of text, is then about 1 KB (builds before 2026-12-05 read such a job without its body) |
//!
//! Records written before the split carry `job` themselves, as small jobs' records do; they read as
//! before.
//!
//! * **create**: a small job, one `PutItem` of the record with the job inside; a larger one, one
//!   `TransactWriteItems` of both puts; the record's on `attribute_not_exists(job_id)`; when it is
//!   refused, the existing job is read and returned;
//! * **requesters**: `list_append` on the condition that the list does not contain the requester yet (a
//!   list, not a string set, so the order of submission is kept in one attribute);
//! * **outcomes**: `ADD` of the three counters with `ReturnValues=ALL_NEW`, so every caller sees the
//!   counts its own increment produced;
//! * **progress**: `enqueued` is set only on the condition that it grows; a job still `requested` then
//!   gets a second update, conditional on that status, to `running` with `started_at`. The first
//!   progress of a job the same store created (the scheduler's new job) does both in one update on
//!   both conditions, falling back to the two when it is refused. The usual call costs one write,
//!   one with a shrinking `enqueued` a failed condition (and a write of `total` when given);
//! * **finish**: `SET status` on the condition that the status is `requested` or `running`: of
//!   concurrent finishers exactly one passes it.
//!
//! The updates return the record without the body (`job` is `null`); [`JobStore::get_job`] and
//! [`JobStore::list_jobs`] return it with the body.
//!
//! [`JobStore::list_jobs`] scans the whole table (strongly consistent, every page) and sorts: its cost
//! grows with the number of jobs ever recorded, fine for the command line, not for a hot path.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};

use super::DynamoTaskStore;
use super::claims::is_condition_failure;
use super::codec::{Item, item_size, n, s};
use super::errors::{build_error, sdk_error};
use super::expr::Placeholders;
use sosw_core::error::{Error, Result};
use sosw_core::store::{CreateJobOutcome, JobCounts, JobRecord, JobStatus, JobStore, MoveOutcome};

/// What follows the job id in the key of its body item.
const BODY_KEY_SUFFIX: &str = "\u{1f}job";

/// The attribute of a body item that names its job.
const BODY_OF: &str = "body_of";

/// DynamoDB's largest item: 400 KB, names and values counted as [`item_size`] does.
const MAX_ITEM_BYTES: usize = 400 * 1024;

/// The key of job `job_id`'s body item.
fn body_key(job_id: &str) -> String {
    format!("{job_id}{BODY_KEY_SUFFIX}")
}

/// `#req`: `requesters`; `:r` the requester, `:one` a list holding it, `:none` an empty list.
pub(crate) const ADD_REQUESTER: &str = "SET #req = list_append(if_not_exists(#req, :none), :one)";
pub(crate) const ADD_REQUESTER_IF: &str = "attribute_exists(#id) AND NOT contains(#req, :r)";

/// The three counters, added in place.
pub(crate) const ADD_OUTCOMES: &str = "ADD #completed :completed, #failed :failed, #dead :dead";

/// The three counters and `cancelled`, added in place (only when a task was cancelled, so the
/// usual update stays as it was).
pub(crate) const ADD_OUTCOMES_CANCELLED: &str =
    "ADD #completed :completed, #failed :failed, #dead :dead, #cancelled :cancelled";

pub(crate) const EXISTS: &str = "attribute_exists(#id)";

/// `enqueued` only grows.
pub(crate) const GROW_ENQUEUED_IF: &str =
    "attribute_exists(#id) AND (attribute_not_exists(#enq) OR #enq < :enq)";

/// A requested job starts running (once: the condition fails for every later caller).
pub(crate) const START: &str = "SET #status = :running, #started = if_not_exists(#started, :now)";
pub(crate) const START_IF: &str = "#status = :requested";

/// At most this many jobs created by a store wait for their first progress in its memory.
const CREATED_HERE_MAX: usize = 1024;

/// Both: the first progress of a job created by the same store (one update instead of two).
pub(crate) const GROW_ENQUEUED_AND_START_IF: &str = "attribute_exists(#id) AND (attribute_not_exists(#enq) OR #enq < :enq) AND #status = :requested";

/// Only an unfinished job finishes; a missing one has no status and fails the condition too.
pub(crate) const FINISH: &str = "SET #status = :status, #finished = :now";
pub(crate) const FINISH_IF: &str = "#status IN (:requested, :running)";

/// A redrive: fewer dead, running again, not finished.
pub(crate) const REOPEN: &str = "SET #status = :running ADD #dead :minus REMOVE #finished";
pub(crate) const REOPEN_IF: &str = "attribute_exists(#id) AND #dead >= :redriven";

/// An update written (`Ok`, the item after it) or refused by its condition (`Err`, the item before
/// it, `None` when there is no item).
type Written = std::result::Result<Item, Option<Item>>;

/// One conditional update: its expressions and the placeholders they use (DynamoDB rejects unused ones).
struct Update {
    operation: &'static str,
    expression: String,
    condition: &'static str,
    names: &'static [(&'static str, &'static str)],
    values: Vec<(&'static str, AttributeValue)>,
}

impl DynamoTaskStore {
    async fn update_job(&self, job_id: &str, u: Update) -> Result<Written> {
        let table = &self.tables().jobs;
        let names: HashMap<String, String> = u
            .names
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let values: HashMap<String, AttributeValue> = u
            .values
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let result = self
            .client()
            .update_item()
            .table_name(table)
            .key("job_id", s(job_id))
            .update_expression(u.expression)
            .condition_expression(u.condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Ok(out.attributes.unwrap_or_default())),
            Err(e) if is_condition_failure(&e) => Ok(Err(old_item(e.into_service_error()))),
            Err(e) => Err(sdk_error(u.operation, table, e)),
        }
    }

    /// The jobs this store created and has recorded no progress of yet.
    fn created_here(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.inner
            .created_here
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The `enqueued` (and `total`) part of progress. Returns the job's status after it, or `None` when
    /// the job does not exist.
    async fn grow_enqueued(
        &self,
        job_id: &str,
        enqueued: u64,
        total: Option<u64>,
    ) -> Result<Option<JobStatus>> {
        let mut expression = "SET #enq = :enq".to_owned();
        let mut values = vec![(":enq", count(enqueued))];
        if let Some(total) = total {
            expression.push_str(", #total = :total");
            values.push((":total", count(total)));
        }
        let names: &[_] = if total.is_some() {
            &[("#id", "job_id"), ("#enq", "enqueued"), ("#total", "total")]
        } else {
            &[("#id", "job_id"), ("#enq", "enqueued")]
        };
        let update = Update {
            operation: "record progress",
            expression,
            condition: GROW_ENQUEUED_IF,
            names,
            values,
        };
        let after = match self.update_job(job_id, update).await? {
            Ok(new) => new,
            Err(None) => return Ok(None),
            Err(Some(old)) => {
                // `enqueued` did not grow: the rest of the call still applies.
                let old = self.decode(old)?;
                match total {
                    Some(t) if old.total != Some(t) => match self.set_total(job_id, t).await? {
                        Some(new) => new,
                        None => return Ok(None),
                    },
                    _ => return Ok(Some(old.status)),
                }
            }
        };
        Ok(Some(self.decode(after)?.status))
    }

    /// The first progress of a job this store created: `enqueued` (and `total`) as
    /// [`grow_enqueued`](Self::grow_enqueued) sets them and the start as [`start`](Self::start)
    /// makes it, in one update on both conditions, where a job found `requested` otherwise costs
    /// two. Refused (`Err`), nothing is written.
    async fn grow_and_start(
        &self,
        job_id: &str,
        enqueued: u64,
        total: Option<u64>,
        now: i64,
    ) -> Result<Written> {
        let mut expression = format!("{START}, #enq = :enq");
        let mut values = vec![
            (":enq", count(enqueued)),
            (":running", status_attr(JobStatus::Running)),
            (":requested", status_attr(JobStatus::Requested)),
            (":now", n(now)),
        ];
        if let Some(total) = total {
            expression.push_str(", #total = :total");
            values.push((":total", count(total)));
        }
        let names: &[_] = if total.is_some() {
            &[
                ("#id", "job_id"),
                ("#enq", "enqueued"),
                ("#total", "total"),
                ("#status", "status"),
                ("#started", "started_at"),
            ]
        } else {
            &[
                ("#id", "job_id"),
                ("#enq", "enqueued"),
                ("#status", "status"),
                ("#started", "started_at"),
            ]
        };
        let update = Update {
            operation: "record progress",
            expression,
            condition: GROW_ENQUEUED_AND_START_IF,
            names,
            values,
        };
        self.update_job(job_id, update).await
    }

    /// Sets `total` alone (progress with an `enqueued` that did not grow).
    async fn set_total(&self, job_id: &str, total: u64) -> Result<Option<Item>> {
        let update = Update {
            operation: "record progress",
            expression: "SET #total = :total".to_owned(),
            condition: EXISTS,
            names: &[("#id", "job_id"), ("#total", "total")],
            values: vec![(":total", count(total))],
        };
        Ok(self.update_job(job_id, update).await?.ok())
    }

    /// Moves a requested job to running with `started_at = now`; a job in any other status is left.
    async fn start(&self, job_id: &str, now: i64) -> Result<()> {
        let update = Update {
            operation: "record progress",
            expression: START.to_owned(),
            condition: START_IF,
            names: &[("#status", "status"), ("#started", "started_at")],
            values: vec![
                (":running", status_attr(JobStatus::Running)),
                (":requested", status_attr(JobStatus::Requested)),
                (":now", n(now)),
            ],
        };
        // A failed condition: another caller started it first.
        self.update_job(job_id, update).await.map(drop)
    }

    /// Applies `changes` (a job's closed-counter changes from one stream shard, each with its padded
    /// sequence number, in order) after the job's mark for that shard (attribute `mark`), moving the
    /// mark to the last of them, in one conditional update: each change is counted once however many
    /// passes race or repeat. Returns the record after the update, or `None` when nothing was left to
    /// apply or the job does not exist.
    ///
    /// The first try reads nothing: it applies every change on the condition that the mark is
    /// absent or below the first of them (the usual case: the pass's checkpoint was saved after the
    /// last one). Refused, the update hands back the job as it is (`ReturnValuesOnConditionCheckFailure`),
    /// and the next try applies the changes after its mark on the condition that the mark is still
    /// that one.
    pub(crate) async fn apply_counted(
        &self,
        job_id: &str,
        mark: &str,
        changes: &[(String, super::lean::Signed)],
    ) -> Result<Option<JobRecord>> {
        let table = &self.tables().jobs;
        // `None`: the mark is not known yet; `Some(previous)`: the mark as the last refusal showed it.
        let mut known: Option<Option<String>> = None;
        for _ in 0..5 {
            let after = known.clone().flatten();
            let mut sum = super::lean::Signed::default();
            let (mut first, mut last) = (None, None);
            for (seq, delta) in changes {
                if after.as_ref().is_none_or(|p| seq > p) {
                    sum.completed += delta.completed;
                    sum.dead += delta.dead;
                    sum.cancelled += delta.cancelled;
                    first.get_or_insert_with(|| seq.clone());
                    last = Some(seq.clone());
                }
            }
            let (Some(first), Some(last)) = (first, last) else {
                return Ok(None);
            };
            let mut request = self
                .client()
                .update_item()
                .table_name(table)
                .key("job_id", s(job_id))
                .update_expression(
                    "ADD #completed :completed, #dead :dead, #cancelled :cancelled SET #mark = :last",
                )
                .expression_attribute_names("#id", "job_id")
                .expression_attribute_names("#completed", "completed")
                .expression_attribute_names("#dead", "dead")
                .expression_attribute_names("#cancelled", "cancelled")
                .expression_attribute_names("#mark", mark)
                .expression_attribute_values(":completed", n(sum.completed))
                .expression_attribute_values(":dead", n(sum.dead))
                .expression_attribute_values(":cancelled", n(sum.cancelled))
                .expression_attribute_values(":last", s(last))
                .return_values(ReturnValue::AllNew)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
            request = match &known {
                None => request
                    .condition_expression(
                        "attribute_exists(#id) AND (attribute_not_exists(#mark) OR #mark < :first)",
                    )
                    .expression_attribute_values(":first", s(first)),
                Some(Some(p)) => request
                    .condition_expression("attribute_exists(#id) AND #mark = :previous")
                    .expression_attribute_values(":previous", s(p.clone())),
                Some(None) => request
                    .condition_expression("attribute_exists(#id) AND attribute_not_exists(#mark)"),
            };
            match request.send().await {
                Ok(out) => return self.decode(out.attributes.unwrap_or_default()).map(Some),
                Err(e) if is_condition_failure(&e) => {
                    // DynamoDB hands back the job that refused; no item back means no job, which a
                    // read confirms before the changes are dropped.
                    let old = match old_item(e.into_service_error()) {
                        Some(old) => old,
                        None => match self
                            .get_job_item("count closed tasks", job_id.to_owned())
                            .await?
                        {
                            Some(old) => old,
                            None => return Ok(None),
                        },
                    };
                    known = Some(old.get(mark).and_then(|v| v.as_s().ok()).cloned());
                }
                Err(e) => return Err(sdk_error("count closed tasks", table, e)),
            }
        }
        Err(super::errors::store_error(
            "count closed tasks",
            table,
            true,
            format!(
                "job `{job_id}`: its count mark `{mark}` kept changing under five tries (another \
                 count is running); the next pass counts what is left"
            ),
        ))
    }

    fn decode(&self, item: Item) -> Result<JobRecord> {
        item_to_job(item, &self.tables().jobs)
    }

    /// The job of body item `body` of job `job_id`.
    fn decode_body(&self, job_id: &str, body: &Item) -> Result<serde_json::Value> {
        Fields {
            item: body,
            table: &self.tables().jobs,
            job_id,
        }
        .job()
    }

    /// One item of the jobs table by key, strongly consistent.
    async fn get_job_item(&self, operation: &'static str, key: String) -> Result<Option<Item>> {
        let table = &self.tables().jobs;
        let out = self
            .client()
            .get_item()
            .table_name(table)
            .key("job_id", s(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(operation, table, e))?;
        Ok(out.item)
    }

    /// [`JobStore::get_job`] of a job whose record just refused a `create_job`: the record and its
    /// body read at once, one round trip instead of two. Safe here and not in general: the record and
    /// the body are written in one transaction (or are one item), which committed before the
    /// refusal, so consistent reads sent after it see both (a `get_job` racing a create could see
    /// the record alone).
    async fn get_existing_job(&self, job_id: &str) -> Result<Option<JobRecord>> {
        let (item, body) = futures::try_join!(
            self.get_job_item("get job", job_id.to_owned()),
            self.get_job_item("get job body", body_key(job_id)),
        )?;
        let Some(item) = item else {
            return Ok(None);
        };
        let mut record = self.decode(item)?;
        // A small job rides in its record (as every job did before the body had an item of its own).
        if record.job.is_null()
            && let Some(body) = body
        {
            record.job = self.decode_body(job_id, &body)?;
        }
        Ok(Some(record))
    }

    /// Every item of the jobs table, following every page.
    async fn scan_jobs(&self) -> Result<Vec<Item>> {
        let table = &self.tables().jobs;
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client()
                .scan()
                .table_name(table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error("list jobs", table, e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }
}

#[async_trait]
impl JobStore for DynamoTaskStore {
    async fn create_job(&self, record: &JobRecord) -> Result<CreateJobOutcome> {
        let table = &self.tables().jobs;
        let operation = "create job";
        let item = job_to_item(record)?;
        let (name, job) = job_attribute(record)?;
        let mut inline = item.clone();
        inline.insert(name.clone(), job.clone());
        let written = if item_size(&inline) <= INLINE_JOB_MAX {
            let mut p = Placeholders::default();
            let new_id = format!("attribute_not_exists({})", p.name("job_id"));
            self.put_if(operation, table, inline, (new_id, p)).await?
        } else {
            let body = body_item(&record.job_id, (name, job));
            let size = item_size(&body);
            if size > MAX_ITEM_BYTES {
                // DynamoDB would refuse the write with a `ValidationException` about item size.
                return Err(Error::invalid_job(
                    "job",
                    format!(
                        "job `{}` is {size} bytes as stored (compressed), over DynamoDB's 400 KB \
                         item limit: give the scheduler a `queue_bucket` (its S3 bucket, where a \
                         job over `max_task_payload_bytes` is recorded instead), or split the job",
                        record.job_id
                    ),
                ));
            }
            let put_record = Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(#id)")
                .expression_attribute_names("#id", "job_id")
                .build()
                .map_err(|e| build_error(operation, table, e))?;
            let put_body = Put::builder()
                .table_name(table)
                .set_item(Some(body))
                .build()
                .map_err(|e| build_error(operation, table, e))?;
            self.transact(
                operation,
                table,
                vec![
                    TransactWriteItem::builder().put(put_record).build(),
                    TransactWriteItem::builder().put(put_body).build(),
                ],
            )
            .await?
                == MoveOutcome::Moved
        };
        if written {
            if record.status == JobStatus::Requested {
                let mut created = self.created_here();
                // Only a saving: a process that creates jobs whose progress it never records
                // (jobs without tasks, failed runs) does not hold more than this many.
                if created.len() >= CREATED_HERE_MAX {
                    created.clear();
                }
                created.insert(record.job_id.clone());
            }
            return Ok(CreateJobOutcome::Created);
        }
        let existing = self
            .get_existing_job(&record.job_id)
            .await?
            .ok_or_else(|| {
                Error::store(
                    super::errors::STORE,
                    operation,
                    true,
                    format!("job `{}` blocked the put, then was deleted", record.job_id),
                )
            })?;
        Ok(CreateJobOutcome::Exists(Box::new(existing)))
    }

    async fn get_job(&self, job_id: &str) -> Result<Option<JobRecord>> {
        if job_id.is_empty() {
            // DynamoDB rejects an empty key; no job has one.
            return Ok(None);
        }
        let Some(item) = self.get_job_item("get job", job_id.to_owned()).await? else {
            return Ok(None);
        };
        let mut record = self.decode(item)?;
        if !record.job.is_null() {
            // Written before the body had an item of its own.
            return Ok(Some(record));
        }
        if let Some(body) = self.get_job_item("get job body", body_key(job_id)).await? {
            record.job = self.decode_body(job_id, &body)?;
        }
        Ok(Some(record))
    }

    async fn add_requester(&self, job_id: &str, requester: &str) -> Result<Option<JobRecord>> {
        if job_id.is_empty() {
            return Ok(None);
        }
        let update = Update {
            operation: "add requester",
            expression: ADD_REQUESTER.to_owned(),
            condition: ADD_REQUESTER_IF,
            names: &[("#id", "job_id"), ("#req", "requesters")],
            values: vec![
                (":r", s(requester)),
                (":one", AttributeValue::L(vec![s(requester)])),
                (":none", AttributeValue::L(vec![])),
            ],
        };
        // Refused: the job is missing, or lists the requester already (then it is returned as is).
        let item = match self.update_job(job_id, update).await? {
            Ok(new) => Some(new),
            Err(old) => old,
        };
        item.map(|i| self.decode(i)).transpose()
    }

    async fn record_progress(
        &self,
        job_id: &str,
        enqueued: u64,
        total: Option<u64>,
        now: i64,
    ) -> Result<()> {
        if job_id.is_empty() {
            return Ok(());
        }
        if self.created_here().remove(job_id) {
            match self.grow_and_start(job_id, enqueued, total, now).await? {
                Ok(_) | Err(None) => return Ok(()),
                // No longer `requested` (cancelled, say), or `enqueued` did not grow: as any call.
                Err(Some(_)) => {}
            }
        }
        match self.grow_enqueued(job_id, enqueued, total).await? {
            Some(JobStatus::Requested) => self.start(job_id, now).await,
            _ => Ok(()),
        }
    }

    async fn add_outcomes(&self, job_id: &str, delta: JobCounts) -> Result<Option<JobRecord>> {
        if job_id.is_empty() {
            return Ok(None);
        }
        if delta.is_zero() {
            // Nothing to add: a read instead of a write.
            return self.get_job(job_id).await;
        }
        let mut values = vec![
            (":completed", count(delta.completed)),
            (":failed", count(delta.failed)),
            (":dead", count(delta.dead)),
        ];
        let (expression, names): (&str, &'static [(&'static str, &'static str)]) =
            if delta.cancelled == 0 {
                (
                    ADD_OUTCOMES,
                    &[
                        ("#id", "job_id"),
                        ("#completed", "completed"),
                        ("#failed", "failed"),
                        ("#dead", "dead"),
                    ],
                )
            } else {
                values.push((":cancelled", count(delta.cancelled)));
                (
                    ADD_OUTCOMES_CANCELLED,
                    &[
                        ("#id", "job_id"),
                        ("#completed", "completed"),
                        ("#failed", "failed"),
                        ("#dead", "dead"),
                        ("#cancelled", "cancelled"),
                    ],
                )
            };
        let update = Update {
            operation: "add outcomes",
            expression: expression.to_owned(),
            condition: EXISTS,
            names,
            values,
        };
        match self.update_job(job_id, update).await? {
            Ok(new) => self.decode(new).map(Some),
            Err(_) => Ok(None),
        }
    }

    async fn finish_job(&self, job_id: &str, status: JobStatus, now: i64) -> Result<bool> {
        require_final(status)?;
        if job_id.is_empty() {
            return Ok(false);
        }
        let update = Update {
            operation: "finish job",
            expression: FINISH.to_owned(),
            condition: FINISH_IF,
            names: &[("#status", "status"), ("#finished", "finished_at")],
            values: vec![
                (":status", status_attr(status)),
                (":now", n(now)),
                (":requested", status_attr(JobStatus::Requested)),
                (":running", status_attr(JobStatus::Running)),
            ],
        };
        Ok(self.update_job(job_id, update).await?.is_ok())
    }

    async fn reopen_job(&self, job_id: &str, redriven: u64) -> Result<Option<JobRecord>> {
        if job_id.is_empty() {
            return Ok(None);
        }
        let minus = i64::try_from(redriven)
            .map_err(|_| Error::invalid("job redrive", format!("{redriven} is too many tasks")))?;
        let update = Update {
            operation: "reopen job",
            expression: REOPEN.to_owned(),
            condition: REOPEN_IF,
            names: &[
                ("#id", "job_id"),
                ("#status", "status"),
                ("#dead", "dead"),
                ("#finished", "finished_at"),
            ],
            values: vec![
                (":running", status_attr(JobStatus::Running)),
                (":minus", n(-minus)),
                (":redriven", count(redriven)),
            ],
        };
        match self.update_job(job_id, update).await? {
            Ok(new) => self.decode(new).map(Some),
            Err(None) => Ok(None),
            Err(Some(old)) => {
                let job = self.decode(old)?;
                Err(Error::invalid(
                    "job redrive",
                    format!(
                        "job `{job_id}` counts {} dead task(s), fewer than the {redriven} redriven",
                        job.counts.dead
                    ),
                ))
            }
        }
    }

    async fn list_jobs(&self, limit: usize) -> Result<Vec<JobRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (bodies, records): (Vec<Item>, Vec<Item>) = self
            .scan_jobs()
            .await?
            .into_iter()
            .partition(|item| item.contains_key(BODY_OF));
        let mut bodies: HashMap<String, Item> = bodies
            .into_iter()
            .filter_map(|item| Some((item.get(BODY_OF)?.as_s().ok()?.clone(), item)))
            .collect();
        let mut jobs = records
            .into_iter()
            .map(|item| {
                let mut record = self.decode(item)?;
                if let Some(body) = bodies.remove(&record.job_id) {
                    record.job = self.decode_body(&record.job_id, &body)?;
                }
                Ok(record)
            })
            .collect::<Result<Vec<_>>>()?;
        jobs.sort_by(|a, b| (b.created_at, &b.job_id).cmp(&(a.created_at, &a.job_id)));
        jobs.truncate(limit);
        Ok(jobs)
    }
}

/// The item a failed update condition returned (ALL_OLD), if the job exists.
fn old_item(err: UpdateItemError) -> Option<Item> {
    match err {
        UpdateItemError::ConditionalCheckFailedException(e) => e.item,
        _ => None,
    }
}

/// `status` must be one a job ends in.
fn require_final(status: JobStatus) -> Result<()> {
    if status.is_finished() {
        return Ok(());
    }
    Err(Error::invalid(
        "job status",
        format!(
            "a job can only be finished as `finished`, `finished_with_failures` or `cancelled`, \
             not `{}`",
            status_name(status)
        ),
    ))
}

/// The status as stored: its serde name.
fn status_name(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Requested => "requested",
        JobStatus::Running => "running",
        JobStatus::Finished => "finished",
        JobStatus::FinishedWithFailures => "finished_with_failures",
        JobStatus::Cancelled => "cancelled",
    }
}

const STATUSES: [JobStatus; 5] = [
    JobStatus::Requested,
    JobStatus::Running,
    JobStatus::Finished,
    JobStatus::FinishedWithFailures,
    JobStatus::Cancelled,
];

fn status_attr(status: JobStatus) -> AttributeValue {
    s(status_name(status))
}

/// A counter as a number attribute (DynamoDB numbers hold every `u64`).
fn count(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// The item of `record`.
fn job_to_item(r: &JobRecord) -> Result<Item> {
    if r.job_id.is_empty() {
        return Err(Error::invalid("job id", "the job id is empty"));
    }
    let mut item = Item::from([
        ("job_id".to_owned(), s(&r.job_id)),
        ("labourer_id".to_owned(), s(&r.labourer_id)),
        ("status".to_owned(), status_attr(r.status)),
        ("created_at".to_owned(), n(r.created_at)),
        ("enqueued".to_owned(), count(r.enqueued)),
        ("completed".to_owned(), count(r.counts.completed)),
        ("failed".to_owned(), count(r.counts.failed)),
        ("dead".to_owned(), count(r.counts.dead)),
        (
            "requesters".to_owned(),
            AttributeValue::L(r.requesters.iter().map(s).collect()),
        ),
    ]);
    let optional = [
        ("total", r.total.map(count)),
        // Absent until a task is cancelled, as in records the `ADD` of outcomes never touched.
        (
            "cancelled",
            (r.counts.cancelled > 0).then(|| count(r.counts.cancelled)),
        ),
        ("started_at", r.started_at.map(n)),
        ("finished_at", r.finished_at.map(n)),
    ];
    item.extend(
        optional
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_owned(), value?))),
    );
    Ok(item)
}

/// The attribute holding `record`'s job: `job`, its JSON text, or `jobz`, that text compressed when
/// that costs fewer write units.
fn job_attribute(r: &JobRecord) -> Result<(String, AttributeValue)> {
    let job = serde_json::to_string(&r.job).map_err(|e| {
        Error::invalid(
            "job record",
            format!("the job of `{}` cannot be encoded as JSON: {e}", r.job_id),
        )
    })?;
    Ok(match compressed_if_smaller(&job) {
        Some(bytes) => (
            COMPRESSED_JOB.to_owned(),
            AttributeValue::B(Blob::new(bytes)),
        ),
        None => ("job".to_owned(), s(job)),
    })
}

/// The body item of job `job_id`, holding `job` (from [`job_attribute`]).
fn body_item(job_id: &str, job: (String, AttributeValue)) -> Item {
    Item::from([
        ("job_id".to_owned(), s(body_key(job_id))),
        (BODY_OF.to_owned(), s(job_id)),
        job,
    ])
}

/// The body item of `record`: the job as JSON text.
#[cfg(test)]
fn body_to_item(r: &JobRecord) -> Result<Item> {
    Ok(body_item(&r.job_id, job_attribute(r)?))
}

/// A job whose record with the job inside is at most this many bytes is created as that one item:
/// one conditional `PutItem`, 1 write unit, instead of the record and the body in one
/// `TransactWriteItems` (two items, each charged twice: 4). The rest of the KB is left for what the
/// record gains later (its start and finish times, requesters, the lean layout's count marks), so
/// that its updates stay at one unit each.
const INLINE_JOB_MAX: usize = 768;

/// The attribute of a body item holding the job compressed (raw DEFLATE of its JSON text), instead
/// of `job`.
const COMPRESSED_JOB: &str = "jobz";

/// A compressed job is refused past this size once inflated (a body item is at most 400 KB).
const INFLATED_MAX: u64 = 64 << 20;

/// `text` compressed, when that makes the body item cost fewer write units (DynamoDB charges one per
/// KB, twice in the creating transaction): a job of 500 sections (about 3.2 KB of text) then costs
/// 2 units instead of 4. Small jobs stay readable text.
fn compressed_if_smaller(text: &str) -> Option<Vec<u8>> {
    use std::io::Write;
    /// The body item's key and `body_of`, about: what both forms pay beside the job.
    const OVERHEAD: usize = 100;
    let units = |bytes: usize| (bytes + OVERHEAD).div_ceil(1024);
    if text.len() + OVERHEAD <= 1024 {
        return None;
    }
    let mut encoder = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(text.as_bytes()).ok()?;
    let bytes = encoder.finish().ok()?;
    (units(bytes.len()) < units(text.len())).then_some(bytes)
}

/// The JSON text of a compressed job, refused past [`INFLATED_MAX`].
fn inflate(bytes: &[u8]) -> std::result::Result<String, String> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::DeflateDecoder::new(bytes)
        .take(INFLATED_MAX + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("not DEFLATE-compressed JSON text: {e}"))?;
    if text.len() as u64 > INFLATED_MAX {
        return Err(format!("inflates past {INFLATED_MAX} bytes"));
    }
    Ok(text)
}

/// The record of an item of `table`. Errors name the table, the job and the attribute.
fn item_to_job(item: Item, table: &str) -> Result<JobRecord> {
    let job_id = item
        .get("job_id")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .ok_or_else(|| decode_error(table, None, "no string `job_id`"))?;
    let f = Fields {
        item: &item,
        table,
        job_id: &job_id,
    };
    Ok(JobRecord {
        labourer_id: f.string("labourer_id")?,
        status: f.status()?,
        total: f.number_opt("total")?,
        enqueued: f.counter("enqueued")?,
        counts: JobCounts {
            completed: f.counter("completed")?,
            failed: f.counter("failed")?,
            dead: f.counter("dead")?,
            cancelled: f.counter("cancelled")?,
        },
        created_at: f.number("created_at")?,
        started_at: f.number_opt("started_at")?,
        finished_at: f.number_opt("finished_at")?,
        requesters: f.requesters()?,
        job: f.job()?,
        job_id: job_id.clone(),
    })
}

/// Typed reads of one item's attributes.
struct Fields<'a> {
    item: &'a Item,
    table: &'a str,
    job_id: &'a str,
}

impl Fields<'_> {
    fn error(&self, name: &str, problem: impl std::fmt::Display) -> Error {
        decode_error(
            self.table,
            Some(self.job_id),
            format!("attribute `{name}`: {problem}"),
        )
    }

    fn string(&self, name: &str) -> Result<String> {
        match self.item.get(name) {
            Some(AttributeValue::S(v)) => Ok(v.clone()),
            Some(other) => Err(self.error(name, format!("not a string: {other:?}"))),
            None => Err(self.error(name, "missing")),
        }
    }

    fn number_opt<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        match self.item.get(name) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(v)) => v
                .parse()
                .map(Some)
                .map_err(|e| self.error(name, format!("`{v}`: {e}"))),
            Some(other) => Err(self.error(name, format!("not a number: {other:?}"))),
        }
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<T>
    where
        T::Err: std::fmt::Display,
    {
        self.number_opt(name)?
            .ok_or_else(|| self.error(name, "missing"))
    }

    /// A counter; one never incremented may be absent.
    fn counter(&self, name: &str) -> Result<u64> {
        Ok(self.number_opt(name)?.unwrap_or(0))
    }

    fn status(&self) -> Result<JobStatus> {
        let text = self.string("status")?;
        STATUSES
            .into_iter()
            .find(|s| status_name(*s) == text)
            .ok_or_else(|| self.error("status", format!("`{text}` is not a job status")))
    }

    fn requesters(&self) -> Result<Vec<String>> {
        let list = match self.item.get("requesters") {
            None => return Ok(Vec::new()),
            Some(AttributeValue::L(list)) => list,
            Some(other) => return Err(self.error("requesters", format!("not a list: {other:?}"))),
        };
        list.iter()
            .map(|v| match v {
                AttributeValue::S(r) => Ok(r.clone()),
                other => Err(self.error("requesters", format!("not a string: {other:?}"))),
            })
            .collect()
    }

    fn job(&self) -> Result<serde_json::Value> {
        if let Some(compressed) = self.item.get(COMPRESSED_JOB) {
            let AttributeValue::B(bytes) = compressed else {
                return Err(self.error(COMPRESSED_JOB, format!("not binary: {compressed:?}")));
            };
            let text = inflate(bytes.as_ref()).map_err(|e| self.error(COMPRESSED_JOB, e))?;
            return serde_json::from_str(&text)
                .map_err(|e| self.error(COMPRESSED_JOB, format!("not JSON text: {e}")));
        }
        match self.item.get("job") {
            None => Ok(serde_json::Value::Null),
            Some(AttributeValue::S(text)) => serde_json::from_str(text)
                .map_err(|e| self.error("job", format!("not JSON text: {e}"))),
            Some(other) => Err(self.error("job", format!("not JSON text: {other:?}"))),
        }
    }
}

fn decode_error(table: &str, job_id: Option<&str>, what: impl std::fmt::Display) -> Error {
    Error::Decode {
        what: "job",
        table: table.to_owned(),
        message: match job_id {
            Some(id) => format!("job `{id}`: {what}"),
            None => format!("item without a string job_id: {what}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use aws_sdk_dynamodb::Client;
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
    use aws_sdk_dynamodb::operation::transact_write_items::{
        TransactWriteItemsError, TransactWriteItemsOutput,
    };
    use aws_sdk_dynamodb::operation::update_item::{UpdateItemInput, UpdateItemOutput};
    use aws_sdk_dynamodb::types::CancellationReason;
    use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
    use aws_sdk_dynamodb::types::error::TransactionCanceledException;
    use aws_smithy_mocks::{MockResponse, RuleMode, mock, mock_client};
    use serde_json::json;

    use super::*;
    use sosw_core::store::TableNames;

    const NOW: i64 = 1_700_000_000;

    fn store(client: Client) -> DynamoTaskStore {
        DynamoTaskStore::new(client, TableNames::with_prefix("p_"))
    }

    fn record(status: JobStatus) -> JobRecord {
        JobRecord {
            job_id: "j1".into(),
            labourer_id: "lab".into(),
            status,
            total: Some(30),
            enqueued: 10,
            counts: JobCounts {
                completed: 3,
                failed: 1,
                dead: 0,
                cancelled: 0,
            },
            created_at: NOW,
            started_at: Some(NOW + 1),
            finished_at: None,
            requesters: vec!["a".into(), "b".into()],
            job: json!({"lambda_name": "lab", "chunks": [1, 2.5]}),
        }
    }

    fn item(status: JobStatus) -> Item {
        job_to_item(&record(status)).expect("encodes")
    }

    /// The record as an update returns it: without the body.
    fn without_body(status: JobStatus) -> JobRecord {
        JobRecord {
            job: serde_json::Value::Null,
            ..record(status)
        }
    }

    fn failed_condition(old: Option<Item>) -> UpdateItemError {
        UpdateItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder()
                .message("The conditional request failed")
                .set_item(old)
                .build(),
        )
    }

    /// Every update a mock client receives, answered with `answer`.
    fn updates(
        answer: impl Fn(&UpdateItemInput) -> Answer + Send + Sync + 'static,
    ) -> (DynamoTaskStore, Arc<Mutex<Vec<UpdateItemInput>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rec = Arc::clone(&seen);
        let rule = mock!(Client::update_item).then_compute_response(move |req| {
            rec.lock().expect("not poisoned").push(req.clone());
            answer(req)
        });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]);
        (store(client), seen)
    }

    fn all(seen: &Arc<Mutex<Vec<UpdateItemInput>>>) -> Vec<UpdateItemInput> {
        seen.lock().expect("not poisoned").clone()
    }

    /// A mock's answer to an update.
    type Answer = MockResponse<UpdateItemOutput, UpdateItemError>;

    /// The update was written; the job is now in `status`.
    fn written(status: JobStatus) -> Answer {
        MockResponse::Output(
            UpdateItemOutput::builder()
                .set_attributes(Some(item(status)))
                .build(),
        )
    }

    /// The update's condition failed on `old`.
    fn refused(old: Option<Item>) -> Answer {
        MockResponse::Error(failed_condition(old))
    }

    /// Updates on `condition` are refused on a job in `status`; every other update is written and
    /// leaves it in `status`.
    fn refusing(
        condition: &'static str,
        status: JobStatus,
    ) -> impl Fn(&UpdateItemInput) -> Answer + Send + Sync + 'static {
        move |req| {
            if req.condition_expression() == Some(condition) {
                refused(Some(item(status)))
            } else {
                written(status)
            }
        }
    }

    #[test]
    fn a_record_and_its_body_are_two_items_that_read_back_as_one_job() {
        let full = record(JobStatus::Running);
        let stored = job_to_item(&full).expect("encodes");
        assert!(!stored.contains_key("job"), "the record has no body");
        assert_eq!(stored.get("status"), Some(&s("running")));
        assert_eq!(
            stored.get("requesters"),
            Some(&AttributeValue::L(vec![s("a"), s("b")]))
        );
        assert!(
            !stored.contains_key("finished_at"),
            "unset options are absent"
        );
        assert_eq!(
            item_to_job(stored, "t").expect("decodes"),
            without_body(JobStatus::Running)
        );

        let body = body_to_item(&full).expect("encodes");
        assert_eq!(body.get("job_id"), Some(&s("j1\u{1f}job")));
        assert_eq!(body.get(BODY_OF), Some(&s("j1")));
        let job = body.get("job").and_then(|v| v.as_s().ok());
        let job: Option<serde_json::Value> = job.and_then(|t| serde_json::from_str(t).ok());
        assert_eq!(job.as_ref(), Some(&full.job), "the body is JSON text");
    }

    #[test]
    fn a_large_job_is_stored_compressed_in_fewer_write_units_and_reads_back_whole() {
        let mut large = record(JobStatus::Running);
        let sections: Vec<String> = (0..500).map(|i| format!("s{i}")).collect();
        large.job =
            serde_json::json!({"lambda_name": "l", "isolate_sections": true, "sections": sections});
        let text_len = serde_json::to_string(&large.job).expect("JSON").len();
        let body = body_to_item(&large).expect("encodes");
        assert!(!body.contains_key("job"), "compressed instead");
        let Some(AttributeValue::B(bytes)) = body.get(COMPRESSED_JOB) else {
            panic!("a binary `jobz`: {body:?}");
        };
        assert!(text_len > 3_000, "{text_len}");
        let units = |len: usize| (len + 100).div_ceil(1024);
        assert_eq!(
            (units(bytes.as_ref().len()), units(text_len)),
            (2, 4),
            "two write units instead of four: {} bytes",
            bytes.as_ref().len()
        );
        let fields = Fields {
            item: &body,
            table: "t",
            job_id: "j1",
        };
        assert_eq!(fields.job().expect("inflates"), large.job);

        // A small job stays text; a corrupt compressed one is a decode error naming `jobz`.
        let small = body_to_item(&record(JobStatus::Running)).expect("encodes");
        assert!(small.contains_key("job") && !small.contains_key(COMPRESSED_JOB));
        let corrupt = Item::from([(
            COMPRESSED_JOB.to_owned(),
            AttributeValue::B(Blob::new(b"not deflate".to_vec())),
        )]);
        let err = Fields {
            item: &corrupt,
            table: "t",
            job_id: "j1",
        }
        .job()
        .expect_err("corrupt")
        .to_string();
        assert!(err.contains("`jobz`") && err.contains("j1"), "{err}");
    }

    #[test]
    fn a_record_written_with_its_body_inside_still_reads() {
        let full = record(JobStatus::Running);
        let mut old_layout = job_to_item(&full).expect("encodes");
        old_layout.insert(
            "job".to_owned(),
            s(serde_json::to_string(&full.job).expect("JSON")),
        );
        assert_eq!(item_to_job(old_layout, "t").expect("decodes"), full);
    }

    #[test]
    fn status_names_are_the_serde_names() {
        for status in STATUSES {
            let serde_name = serde_json::to_value(status).expect("serialises");
            assert_eq!(serde_name, serde_json::Value::from(status_name(status)));
        }
    }

    #[test]
    fn a_bad_item_is_a_decode_error_naming_job_and_attribute() {
        let cases = [
            ("status", s("done"), "`status`"),
            ("completed", s("3"), "`completed`"),
            ("created_at", AttributeValue::N("x".into()), "`created_at`"),
            ("requesters", AttributeValue::L(vec![n(1)]), "`requesters`"),
            ("job", s("{"), "`job`"),
        ];
        for (name, value, want) in cases {
            let mut bad = item(JobStatus::Running);
            bad.insert(name.to_owned(), value);
            let err = item_to_job(bad, "p_sosw_jobs").expect_err("a bad attribute");
            let msg = err.to_string();
            assert!(
                msg.contains("p_sosw_jobs") && msg.contains("`j1`") && msg.contains(want),
                "{name}: {msg}"
            );
        }
        let mut bad = item(JobStatus::Running);
        bad.remove("job_id");
        let msg = item_to_job(bad, "t").expect_err("no id").to_string();
        assert!(msg.contains("job_id"), "{msg}");
    }

    #[tokio::test]
    async fn add_outcomes_is_one_atomic_add_returning_the_new_record() {
        let (st, seen) = updates(|_| written(JobStatus::Running));
        let delta = JobCounts {
            completed: 2,
            failed: 0,
            dead: 1,
            cancelled: 0,
        };
        let after = st.add_outcomes("j1", delta).await.expect("adds");
        assert_eq!(after, Some(without_body(JobStatus::Running)));

        let reqs = all(&seen);
        assert_eq!(reqs.len(), 1, "one request");
        let req = &reqs[0];
        assert_eq!(req.table_name(), Some("p_sosw_jobs"));
        assert_eq!(req.update_expression(), Some(ADD_OUTCOMES));
        assert_eq!(req.condition_expression(), Some(EXISTS));
        assert_eq!(req.return_values(), Some(&ReturnValue::AllNew));
        let values = req.expression_attribute_values().expect("values");
        assert_eq!(values.get(":completed"), Some(&count(2)));
        assert_eq!(values.get(":dead"), Some(&count(1)));
        assert_eq!(req.key().and_then(|k| k.get("job_id")), Some(&s("j1")));
    }

    #[tokio::test]
    async fn outcomes_for_a_missing_job_are_none() {
        let (st, _) = updates(|_| refused(None));
        let delta = JobCounts {
            completed: 1,
            ..JobCounts::default()
        };
        assert_eq!(
            st.add_outcomes("gone", delta).await.expect("no error"),
            None
        );
    }

    #[tokio::test]
    async fn finish_is_conditional_on_an_unfinished_status() {
        let (st, seen) = updates(|_| written(JobStatus::Finished));
        let won = st.finish_job("j1", JobStatus::Finished, NOW).await;
        assert!(won.expect("finishes"), "a passed condition wins");
        let reqs = all(&seen);
        assert_eq!(reqs[0].update_expression(), Some(FINISH));
        assert_eq!(reqs[0].condition_expression(), Some(FINISH_IF));
        let values = reqs[0].expression_attribute_values().expect("values");
        assert_eq!(values.get(":status"), Some(&s("finished")));
        assert_eq!(values.get(":requested"), Some(&s("requested")));
        assert_eq!(values.get(":running"), Some(&s("running")));

        let (st, _) = updates(|_| refused(Some(item(JobStatus::Finished))));
        let won = st.finish_job("j1", JobStatus::Finished, NOW).await;
        assert!(!won.expect("no error"), "a failed condition loses");

        let err = st.finish_job("j1", JobStatus::Running, NOW).await;
        assert!(matches!(err, Err(Error::Invalid { .. })), "{err:?}");
    }

    #[tokio::test]
    async fn add_requester_appends_only_when_absent() {
        let (st, seen) = updates(|_| written(JobStatus::Running));
        st.add_requester("j1", "c").await.expect("adds");
        let reqs = all(&seen);
        assert_eq!(reqs[0].update_expression(), Some(ADD_REQUESTER));
        assert_eq!(reqs[0].condition_expression(), Some(ADD_REQUESTER_IF));
        let values = reqs[0].expression_attribute_values().expect("values");
        assert_eq!(values.get(":one"), Some(&AttributeValue::L(vec![s("c")])));

        let (st, _) = updates(|_| refused(Some(item(JobStatus::Running))));
        let listed = st.add_requester("j1", "a").await.expect("no error");
        assert_eq!(
            listed,
            Some(without_body(JobStatus::Running)),
            "listed already: as is"
        );
        let (st, _) = updates(|_| refused(None));
        assert_eq!(st.add_requester("gone", "a").await.expect("no error"), None);
    }

    #[tokio::test]
    async fn progress_of_a_running_job_is_one_conditional_write() {
        let (st, seen) = updates(|_| written(JobStatus::Running));
        st.record_progress("j1", 20, None, NOW)
            .await
            .expect("records");
        let reqs = all(&seen);
        assert_eq!(reqs.len(), 1, "running already: no start");
        assert_eq!(reqs[0].update_expression(), Some("SET #enq = :enq"));
        assert_eq!(reqs[0].condition_expression(), Some(GROW_ENQUEUED_IF));
    }

    #[tokio::test]
    async fn progress_of_a_requested_job_also_starts_it() {
        let (st, seen) = updates(|req| {
            if req.update_expression() == Some(START) {
                written(JobStatus::Running)
            } else {
                written(JobStatus::Requested)
            }
        });
        st.record_progress("j1", 20, Some(30), NOW)
            .await
            .expect("records");
        let reqs = all(&seen);
        assert_eq!(reqs.len(), 2, "grow, then start");
        assert_eq!(
            reqs[0].update_expression(),
            Some("SET #enq = :enq, #total = :total")
        );
        assert_eq!(reqs[1].update_expression(), Some(START));
        assert_eq!(reqs[1].condition_expression(), Some(START_IF));
        let values = reqs[1].expression_attribute_values().expect("values");
        assert_eq!(values.get(":now"), Some(&n(NOW)));
    }

    #[tokio::test]
    async fn the_first_progress_of_a_job_created_here_grows_and_starts_it_in_one_update() {
        let (st, seen) = updates(|_| written(JobStatus::Running));
        st.created_here().insert("j1".to_owned());
        st.record_progress("j1", 20, Some(30), NOW)
            .await
            .expect("records");
        let reqs = all(&seen);
        assert_eq!(reqs.len(), 1, "one update where a requested job took two");
        assert_eq!(
            reqs[0].update_expression(),
            Some(format!("{START}, #enq = :enq, #total = :total").as_str())
        );
        assert_eq!(
            reqs[0].condition_expression(),
            Some(GROW_ENQUEUED_AND_START_IF)
        );
        let values = reqs[0].expression_attribute_values().expect("values");
        assert_eq!(values.get(":now"), Some(&n(NOW)));
        assert_eq!(values.get(":enq"), Some(&count(20)));
        assert_eq!(values.get(":requested"), Some(&s("requested")));

        st.record_progress("j1", 40, None, NOW)
            .await
            .expect("records");
        let reqs = all(&seen);
        assert_eq!(reqs.len(), 2, "the next progress: one update");
        assert_eq!(reqs[1].condition_expression(), Some(GROW_ENQUEUED_IF));
    }

    #[tokio::test]
    async fn a_refused_first_progress_falls_back_to_the_usual_updates() {
        // Cancelled between its creation and its first batch: the combined update is refused,
        // then the progress is recorded as for any job, and nothing starts it.
        let (st, seen) = updates(refusing(GROW_ENQUEUED_AND_START_IF, JobStatus::Cancelled));
        st.created_here().insert("j1".to_owned());
        st.record_progress("j1", 20, None, NOW)
            .await
            .expect("records");
        let reqs = all(&seen);
        assert_eq!(reqs.len(), 2, "refused, then the growth alone");
        assert_eq!(reqs[1].update_expression(), Some("SET #enq = :enq"));
        assert_eq!(reqs[1].condition_expression(), Some(GROW_ENQUEUED_IF));
        assert!(st.created_here().is_empty(), "tried once only");
    }

    #[tokio::test]
    async fn progress_that_does_not_grow_still_sets_a_new_total() {
        let (st, seen) = updates(refusing(GROW_ENQUEUED_IF, JobStatus::Running));
        st.record_progress("j1", 5, Some(31), NOW)
            .await
            .expect("records");
        let reqs = all(&seen);
        assert_eq!(reqs.len(), 2, "refused growth, then the total");
        assert_eq!(reqs[1].update_expression(), Some("SET #total = :total"));

        let (st, seen) = updates(|_| refused(Some(item(JobStatus::Running))));
        st.record_progress("j1", 5, Some(30), NOW)
            .await
            .expect("records");
        assert_eq!(all(&seen).len(), 1, "the total is already 30: nothing more");
    }

    /// [`record`] with a job of 80 scattered words: too large to ride in its record, compressed or
    /// not.
    fn large_record(status: JobStatus) -> JobRecord {
        let words: Vec<String> = (0..80_u64)
            .map(|i| format!("{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect();
        JobRecord {
            job: json!({"lambda_name": "lab", "words": words}),
            ..record(status)
        }
    }

    #[tokio::test]
    async fn a_small_job_is_created_as_one_item_and_a_refusal_returns_the_existing_job() {
        let small = record(JobStatus::Requested);
        let mut inline = job_to_item(&small).expect("encodes");
        inline.insert("job".into(), s(small.job.to_string()));
        assert!(
            item_size(&inline) <= INLINE_JOB_MAX,
            "setup: {} bytes",
            item_size(&inline)
        );
        let put = mock!(Client::put_item)
            .match_requests(move |req| {
                req.condition_expression() == Some("attribute_not_exists(#n0)")
                    && req
                        .expression_attribute_names()
                        .and_then(|names| names.get("#n0"))
                        .is_some_and(|name| name == "job_id")
                    && req.table_name() == Some("p_sosw_jobs")
                    && req.item() == Some(&inline)
            })
            .then_output(|| PutItemOutput::builder().build());
        let st = store(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&put]));
        let outcome = st.create_job(&small).await;
        assert_eq!(outcome.expect("no error"), CreateJobOutcome::Created);
        assert_eq!(put.num_calls(), 1, "one put, no transaction");
        assert!(
            st.created_here().contains("j1"),
            "its first progress saves a write"
        );

        let refused = mock!(Client::put_item).then_error(|| {
            PutItemError::ConditionalCheckFailedException(
                ConditionalCheckFailedException::builder().build(),
            )
        });
        let mut stored = item(JobStatus::Running);
        stored.insert("job".into(), s(small.job.to_string()));
        let get_record = mock!(Client::get_item)
            .match_requests(|req| req.key().and_then(|k| k.get("job_id")) == Some(&s("j1")))
            .then_output(move || {
                GetItemOutput::builder()
                    .set_item(Some(stored.clone()))
                    .build()
            });
        let get_body = mock!(Client::get_item)
            .match_requests(|req| {
                req.key().and_then(|k| k.get("job_id")) == Some(&s("j1\u{1f}job"))
            })
            .then_output(|| GetItemOutput::builder().build());
        let st = store(mock_client!(
            aws_sdk_dynamodb,
            RuleMode::MatchAny,
            [&refused, &get_record, &get_body]
        ));
        let outcome = st.create_job(&small).await;
        assert_eq!(
            outcome.expect("no error"),
            CreateJobOutcome::Exists(Box::new(record(JobStatus::Running))),
            "the job read from inside its record"
        );
    }

    #[tokio::test]
    async fn create_is_one_transaction_and_returns_the_existing_job_with_its_body() {
        let refused = mock!(Client::transact_write_items)
            .match_requests(|req| {
                let items = req.transact_items();
                let record = items.first().and_then(|i| i.put());
                let body = items.get(1).and_then(|i| i.put());
                items.len() == 2
                    && record.is_some_and(|p| {
                        p.condition_expression() == Some("attribute_not_exists(#id)")
                            && p.table_name() == "p_sosw_jobs"
                            && !p.item().contains_key("job")
                    })
                    && body.is_some_and(|p| {
                        p.condition_expression().is_none()
                            && p.item().get(BODY_OF) == Some(&s("j1"))
                    })
            })
            .then_error(|| {
                TransactWriteItemsError::TransactionCanceledException(
                    TransactionCanceledException::builder()
                        .cancellation_reasons(
                            CancellationReason::builder()
                                .code("ConditionalCheckFailed")
                                .build(),
                        )
                        .cancellation_reasons(CancellationReason::builder().code("None").build())
                        .build(),
                )
            });
        let get_record = mock!(Client::get_item)
            .match_requests(|req| req.key().and_then(|k| k.get("job_id")) == Some(&s("j1")))
            .then_output(|| {
                GetItemOutput::builder()
                    .set_item(Some(item(JobStatus::Running)))
                    .build()
            });
        let get_body = mock!(Client::get_item)
            .match_requests(|req| {
                req.key().and_then(|k| k.get("job_id")) == Some(&s("j1\u{1f}job"))
            })
            .then_output(|| {
                GetItemOutput::builder()
                    .set_item(Some(
                        body_to_item(&large_record(JobStatus::Running)).expect("encodes"),
                    ))
                    .build()
            });
        let st = store(mock_client!(
            aws_sdk_dynamodb,
            RuleMode::MatchAny,
            [&refused, &get_record, &get_body]
        ));
        let outcome = st.create_job(&large_record(JobStatus::Requested)).await;
        assert_eq!(
            outcome.expect("no error"),
            CreateJobOutcome::Exists(Box::new(large_record(JobStatus::Running)))
        );
        assert_eq!(refused.num_calls(), 1);
        assert_eq!(get_body.num_calls(), 1, "the body is read with the record");

        let rule = mock!(Client::transact_write_items)
            .then_output(|| TransactWriteItemsOutput::builder().build());
        let st = store(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]));
        let outcome = st.create_job(&large_record(JobStatus::Requested)).await;
        assert_eq!(outcome.expect("no error"), CreateJobOutcome::Created);
    }
}
