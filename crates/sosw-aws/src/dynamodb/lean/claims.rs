//! [`TaskLookup`], [`TaskClaims`] and [`TaskReports`] on the lean layout.
//!
//! A claim moves the queued item to its claim item: the conditional put of the claim first (the claim
//! itself: of any number of claimers of the same queued item exactly one put succeeds), then the
//! conditional delete of the queued item. A claimer whose delete finds the queued item gone or changed
//! read a stale copy: it takes its claim back and reports the task already claimed.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::super::codec::{Item, is_completed, json_to_attribute, n, s};
use super::super::errors::sdk_error;
use super::super::expr::Placeholders;
use super::{Found, LeanTaskStore, REV, Read, Written, decode};
use sosw_core::error::Result;
use sosw_core::store::{
    ClaimOutcome, MoveOutcome, ReportOutcome, TaskClaims, TaskLookup, TaskReport, TaskReports,
};
use sosw_core::task::{Markers, Task, TaskId, greenfield};

/// What a report written straight onto a claim item did.
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per report and matched at once; boxing would only add an allocation"
)]
enum Direct {
    /// Recorded, or refused for good.
    Done(ReportOutcome),
    /// The claim item changed under the report: read again.
    Retry,
    /// There is no claim item: the task is queued or gone.
    NoClaim,
}

/// How many times a report re-reads a task that moved under it.
const MAX_ROUNDS: usize = 6;

/// A claim item at least this old (seconds since its claim) whose queued item is still there was left
/// by a claimer that stopped between its two writes; a later claimer then deletes the queued item for
/// it. Younger, its claimer may still be about to delete it (a throttled write retried by the SDK).
pub(crate) const FINISH_AFTER_SECS: i64 = 60;

/// Whether an item is a claim item (not a queued one).
pub(crate) fn is_claim(found: &Found) -> bool {
    found
        .key
        .get("pk")
        .and_then(|v| v.as_s().ok())
        .is_some_and(|pk| pk.starts_with("r#"))
}

impl LeanTaskStore {
    /// The claim items (every shard) that pass `filter`, which names `labourer` as `:lab`.
    pub(crate) async fn claimed(
        &self,
        operation: &'static str,
        labourer: &str,
        filter: &'static str,
        mut values: Vec<(&'static str, AttributeValue)>,
    ) -> Result<Vec<Found>> {
        values.push((":lab", s(labourer)));
        self.claims_passing(operation, filter, values).await
    }

    /// The queued items of `labourer` that occupy a slot at `markers` (greenfield after
    /// `markers.expired`: put back by a clock ahead), counted with its claims as running.
    async fn queued_running(&self, labourer: &str, markers: &Markers) -> Result<u64> {
        let low = markers.expired.saturating_add(1);
        let pks = self.round_queue_pks_from(labourer, low).await?;
        let queued = self
            .range_of("count running", pks, low, i64::MAX, usize::MAX, false)
            .await?;
        Ok(queued.len() as u64)
    }

    /// The claim items of every labourer (every shard) that pass `filter` with `values`.
    pub(crate) async fn claims_passing(
        &self,
        operation: &'static str,
        filter: &'static str,
        values: Vec<(&'static str, AttributeValue)>,
    ) -> Result<Vec<Found>> {
        let mut all = Vec::new();
        for shard in 0..self.shards() {
            all.extend(
                self.partition(Read {
                    operation,
                    pk: Self::claim_pk(shard),
                    range: None,
                    filter: Some(filter),
                    values: values.clone(),
                    limit: usize::MAX,
                    descending: false,
                    consistent: false,
                })
                .await?,
            );
        }
        Ok(all)
    }

    /// Updates `found` in place with `set` on the condition that it has not moved (same move counter)
    /// and is not completed. `Some(item after)` when written.
    async fn update_in_place(
        &self,
        operation: &'static str,
        found: &Found,
        mut p: Placeholders,
        set: Vec<String>,
    ) -> Result<Option<Found>> {
        let condition = format!(
            "{} = {} AND attribute_not_exists({})",
            p.name(REV),
            p.value(n(found.rev)),
            p.name("completed_at")
        );
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(found.key.clone()))
            .update_expression(format!("SET {}", set.join(", ")))
            .condition_expression(condition)
            .set_expression_attribute_names(p.names_opt())
            .set_expression_attribute_values(p.values_opt())
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Some(decode(
                out.attributes.unwrap_or_default(),
                self.table(),
            )?)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(UpdateItemError::is_conditional_check_failed_exception) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error(operation, self.table(), e)),
        }
    }

    /// The claim of the queued item `found` at `now`.
    async fn claim_found(&self, found: Found, now: i64) -> Result<ClaimOutcome> {
        let before = found.task.clone();
        if before.greenfield >= now || before.completed_at.is_some() {
            return Ok(ClaimOutcome::AlreadyClaimed);
        }
        let mut claimed = before.clone();
        claimed.greenfield = greenfield::invoked_at(now);
        claimed.attempts = claimed.attempts.saturating_add(1);
        let claim_key = self.claim_key(claimed.task_id.as_str());
        let item = self.item(&claimed, &claim_key, found.rev + 1)?;
        if let Some(refused_by) = self.put_newer_seeing("claim", item).await? {
            // Another claim of this attempt (or a later state) exists. If its claimer stopped before
            // deleting this queued item, the item is the stale half of that move: finish the move,
            // but only once that claim is old enough that its claimer is surely not still making it.
            // A claimer alive between its two writes deletes the item itself, and a third deleter
            // would make it and a concurrent archive or retry both find their source gone and both
            // take their moves back.
            let stale = refused_by.is_none_or(|other| {
                other.rev > found.rev + 1
                    || greenfield::invocation_time(other.task.greenfield) + FINISH_AFTER_SECS <= now
            });
            if stale {
                self.delete_if("claim", found.key, found.rev, None).await?;
            }
            return Ok(ClaimOutcome::AlreadyClaimed);
        }
        if self.delete_if("claim", found.key, found.rev, None).await? == Written::ConditionFailed
            && self.superseded(&claimed, found.rev + 1).await?
        {
            // The queued item moved elsewhere since it was read: a claim, completion or release made
            // after the read (a higher move counter), or a concurrent archive, cancel or retry of the
            // same queued item that deleted it first (its destination has this claim's counter).
            // This claim was made on a copy another move won, so it is taken back. When nothing else
            // holds the task, a losing claimer finished this move by deleting the queued item: the
            // claim holds.
            self.delete_if(
                "claim",
                claim_key,
                found.rev + 1,
                Some(("#gf = :gf".to_owned(), vec![(":gf", n(claimed.greenfield))])),
            )
            .await?;
            return Ok(ClaimOutcome::AlreadyClaimed);
        }
        self.issue_receipt(&claimed, found.rev + 1);
        Ok(ClaimOutcome::Claimed(before))
    }

    /// A report written straight onto the claim item of `task_id`, without a read: a completion
    /// first on the condition that the task is invoked (`greenfield >= now`), then, if the claim
    /// item shows a greenfield below `now`, again taking it out of the queue (`queued`).
    async fn update_claim(
        &self,
        operation: &'static str,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
        complete: bool,
        queued: bool,
    ) -> Result<Direct> {
        let mut p = Placeholders::default();
        let mut set = report
            .attributes()
            .map(|(name, value)| Ok(p.assign(&name, json_to_attribute(&name, value)?)))
            .collect::<Result<Vec<_>>>()?;
        let mut condition = format!(
            "attribute_exists({}) AND attribute_not_exists({})",
            p.name("pk"),
            p.name("completed_at")
        );
        if complete {
            set.push(p.assign("completed_at", n(now)));
            let gf = p.name("greenfield");
            let now_value = p.value(n(now));
            if queued {
                set.push(p.assign("greenfield", n(greenfield::invoked_at(now))));
                condition = format!("{condition} AND {gf} < {now_value}");
            } else {
                condition = format!("{condition} AND {gf} >= {now_value}");
            }
        } else {
            let fa = p.name("failed_attempts");
            let zero = p.value(n(0));
            let one = p.value(n(1));
            set.push(format!("{fa} = if_not_exists({fa}, {zero}) + {one}"));
        }
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(self.claim_key(task_id.as_str())))
            .update_expression(format!("SET {}", set.join(", ")))
            .condition_expression(condition)
            .set_expression_attribute_names(p.names_opt())
            .set_expression_attribute_values(p.values_opt())
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let old: Option<Item> = match result {
            Ok(out) => {
                let after = decode(out.attributes.unwrap_or_default(), self.table())?;
                self.remember_claim(task_id.as_str(), after.rev);
                return Ok(Direct::Done(ReportOutcome::Recorded(after.task)));
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(UpdateItemError::is_conditional_check_failed_exception) =>
            {
                match e.into_service_error() {
                    UpdateItemError::ConditionalCheckFailedException(c) => c.item,
                    _ => None,
                }
            }
            Err(e) => return Err(sdk_error(operation, self.table(), e)),
        };
        let Some(old) = old else {
            return Ok(Direct::NoClaim);
        };
        if is_completed(&old) {
            return Ok(Direct::Done(ReportOutcome::AlreadyCompleted));
        }
        if complete && !queued {
            let before = decode(old, self.table())?;
            if before.task.greenfield < now {
                return Box::pin(self.update_claim(operation, task_id, report, now, true, true))
                    .await;
            }
        }
        Ok(Direct::Retry)
    }

    /// Whether the claim item of `task` with move counter `rev` has been superseded: another item of
    /// the task (queued, waiting or closed) has a move counter of `rev` or more (a move from the same
    /// source, or a later one), or the claim item itself a higher one.
    async fn superseded(&self, task: &Task, rev: i64) -> Result<bool> {
        let id = task.task_id.as_str();
        let lab = &task.labourer_id;
        let keys = vec![
            self.claim_key(id),
            self.closed_key(lab, id),
            Self::retry_key(lab, id),
        ];
        let mut found = self.get_many("claim", keys).await?;
        found.extend(self.queued_by_id(lab, &task.task_id).await?);
        Ok(found
            .iter()
            .any(|f| f.rev > rev || (f.rev == rev && !is_claim(f))))
    }

    /// Records a report on the live task `task_id`: `complete` or a failure.
    /// The completion mark (one conditional update of the claim item, or a move out of the queue).
    pub(crate) async fn complete_only(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<ReportOutcome> {
        self.report("complete", task_id, report, now, true).await
    }

    async fn report(
        &self,
        operation: &'static str,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
        complete: bool,
    ) -> Result<ReportOutcome> {
        for _ in 0..MAX_ROUNDS {
            match self
                .update_claim(operation, task_id, report, now, complete, false)
                .await?
            {
                Direct::Done(outcome) => return Ok(outcome),
                Direct::Retry => continue,
                Direct::NoClaim => {}
            }
            let Some(found) = self.find_live(task_id, None).await? else {
                return Ok(ReportOutcome::NotFound);
            };
            if is_claim(&found) {
                continue;
            }
            let queued_now = found.task.greenfield < now;
            if complete {
                // A queued task completes by moving to its claim item, out of the queue.
                let mut done = found.task.clone();
                report.apply_to(&mut done);
                done.completed_at = Some(now);
                if queued_now {
                    done.greenfield = greenfield::invoked_at(now);
                }
                let key = self.claim_key(task_id.as_str());
                let item = self.item(&done, &key, found.rev + 1)?;
                if self.put_newer(operation, item).await? == Written::ConditionFailed {
                    continue;
                }
                if self
                    .delete_if(operation, found.key, found.rev, None)
                    .await?
                    == Written::ConditionFailed
                {
                    self.delete_if(operation, key, found.rev + 1, None).await?;
                    continue;
                }
                return Ok(ReportOutcome::Recorded(done));
            }
            if super::pack::entry_of(&found.key).is_some() {
                // A failure is written onto the task's item in place: out of its pack first.
                self.unpack_entry(operation, &found).await?;
                continue;
            }
            let mut p = Placeholders::default();
            let mut set = report
                .attributes()
                .map(|(name, value)| Ok(p.assign(&name, json_to_attribute(&name, value)?)))
                .collect::<Result<Vec<_>>>()?;
            let fa = p.name("failed_attempts");
            let zero = p.value(n(0));
            let one = p.value(n(1));
            set.push(format!("{fa} = if_not_exists({fa}, {zero}) + {one}"));
            if let Some(after) = self.update_in_place(operation, &found, p, set).await? {
                return Ok(ReportOutcome::Recorded(after.task));
            }
        }
        Err(super::super::errors::store_error(
            operation,
            self.table(),
            true,
            format!(
                "task `{task_id}` kept moving while the report was written; report again later"
            ),
        ))
    }
}

#[async_trait]
impl TaskLookup for LeanTaskStore {
    async fn get_task(&self, task_id: &TaskId) -> Result<Option<Task>> {
        Ok(self.find_live(task_id, None).await?.map(|f| f.task))
    }

    async fn get_closed_task(&self, task_id: &TaskId) -> Result<Option<Task>> {
        Ok(self.find_closed(task_id).await?.map(|f| f.task))
    }

    async fn get_retry_task(&self, labourer_id: &str, task_id: &TaskId) -> Result<Option<Task>> {
        let key = Self::retry_key(labourer_id, task_id.as_str());
        Ok(self.get("get retry task", key).await?.map(|f| f.task))
    }
}

#[async_trait]
impl TaskClaims for LeanTaskStore {
    async fn claim(&self, task_id: &TaskId, now: i64) -> Result<ClaimOutcome> {
        if let Some(found) = self.recall_queued(task_id) {
            return self.claim_found(found, now).await;
        }
        match self.find_live(task_id, None).await? {
            Some(found) if !is_claim(&found) => self.claim_found(found, now).await,
            _ => Ok(ClaimOutcome::AlreadyClaimed),
        }
    }

    async fn release_claim(&self, claimed: &Task, claimed_at: i64) -> Result<bool> {
        let claim_key = self.claim_key(claimed.task_id.as_str());
        let invoked = greenfield::invoked_at(claimed_at);
        let Some(found) = self.get("release claim", claim_key).await? else {
            return Ok(false);
        };
        if found.task.greenfield != invoked || found.task.completed_at.is_some() {
            return Ok(false);
        }
        let mut queued = found.task.clone();
        queued.greenfield = claimed.greenfield;
        queued.attempts = claimed.attempts;
        let queued_key = self.queue_key_for(&queued).await?;
        let item = self.item(&queued, &queued_key, found.rev + 1)?;
        if self.put_newer("release claim", item).await? == Written::ConditionFailed {
            return Ok(false);
        }
        let unchanged = (
            "#gf = :gf AND attribute_not_exists(#done)".to_owned(),
            vec![(":gf", n(invoked))],
        );
        if self
            .delete_if("release claim", found.key, found.rev, Some(unchanged))
            .await?
            == Written::ConditionFailed
        {
            self.delete_if("release claim", queued_key, found.rev + 1, None)
                .await?;
            return Ok(false);
        }
        Ok(true)
    }

    async fn count_running(&self, labourer_id: &str, markers: &Markers) -> Result<u64> {
        let queued = self.queued_running(labourer_id, markers).await?;
        let claimed = self
            .claimed(
                "count running",
                labourer_id,
                "labourer_id = :lab AND greenfield > :expired AND attribute_not_exists(completed_at)",
                vec![(":expired", n(markers.expired))],
            )
            .await?;
        Ok(queued + claimed.len() as u64)
    }

    /// Claims of every labourer share the claim shards, so one labourer's count reads the running
    /// tasks of all: counted together, one read of the shards serves every labourer.
    fn counts_running_together(&self) -> bool {
        true
    }

    async fn count_running_many(
        &self,
        labourers: &[(String, Markers)],
    ) -> Result<HashMap<String, u64>> {
        let open = self
            .claims_passing(
                "count running",
                "attribute_not_exists(completed_at)",
                vec![],
            )
            .await?;
        let mut counts = HashMap::with_capacity(labourers.len());
        for (labourer_id, markers) in labourers {
            let queued = self.queued_running(labourer_id, markers).await?;
            let claimed = open
                .iter()
                .filter(|f| {
                    f.task.labourer_id == *labourer_id && f.task.greenfield > markers.expired
                })
                .count();
            counts.insert(labourer_id.clone(), queued + claimed as u64);
        }
        Ok(counts)
    }

    fn claim_receipt(&self, task_id: &TaskId) -> Option<serde_json::Value> {
        self.take_receipt(task_id)
    }
}

#[async_trait]
impl TaskReports for LeanTaskStore {
    async fn complete(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<ReportOutcome> {
        self.complete_only(task_id, report, now).await
    }

    async fn complete_and_close(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<(ReportOutcome, Option<MoveOutcome>)> {
        if self.options().close_on_completion {
            self.complete_closing(task_id, report, now).await
        } else {
            Ok((self.complete_only(task_id, report, now).await?, None))
        }
    }

    async fn record_failure(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<ReportOutcome> {
        self.report("record failure", task_id, report, now, false)
            .await
    }
}
