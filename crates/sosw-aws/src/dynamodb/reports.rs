//! [`TaskReports`]: the worker assistant's conditional completion and failure updates.
//!
//! Unlike sosw 0.7 (bug B10), a report for a task that is gone creates no row: every update requires the
//! task to exist and not be completed, and `ReturnValuesOnConditionCheckFailure=ALL_OLD` tells a missing
//! task from a completed one without another read.

use std::ops::ControlFlow;

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};

use super::DynamoTaskStore;
use super::claims::is_condition_failure;
use super::codec::{Item, decode_error, is_completed, item_to_task, json_to_attribute, n, s};
use super::errors::{sdk_error, store_error};
use super::expr::Placeholders;
use sosw_core::error::Result;
use sosw_core::store::{ReportOutcome, TaskReport, TaskReports};
use sosw_core::task::{TaskId, greenfield};

/// How many times a completion re-reads a task whose state keeps flipping between queued and invoked.
const MAX_COMPLETE_ROUNDS: usize = 4;

/// The two shapes of a completion: a task that is invoked (greenfield `>= now`) keeps its greenfield;
/// a task found back in the queue is also taken out of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    Invoked,
    Queued,
}

/// What one conditional update found: an outcome, or that the task is in the other shape.
type Attempt = ControlFlow<ReportOutcome, Found>;

impl DynamoTaskStore {
    /// One conditional update of a live task. `set` adds the caller's `SET` clauses; the condition
    /// always requires the task to exist and not be completed, plus `extra_condition`.
    ///
    /// `Ok(row after)` when written; `Err(row before)` when the condition failed (`None`: no row).
    async fn report_update(
        &self,
        operation: &'static str,
        task_id: &TaskId,
        mut p: Placeholders,
        set: Vec<String>,
        extra_condition: Option<String>,
    ) -> Result<std::result::Result<Item, Option<Item>>> {
        let table = &self.tables().tasks;
        let mut condition = format!(
            "attribute_exists({}) AND attribute_not_exists({})",
            p.name("task_id"),
            p.name("completed_at")
        );
        if let Some(extra) = extra_condition {
            condition = format!("{condition} AND {extra}");
        }
        let result = self
            .client()
            .update_item()
            .table_name(table)
            .key("task_id", s(task_id.as_str()))
            .update_expression(format!("SET {}", set.join(", ")))
            .condition_expression(condition)
            .set_expression_attribute_names(p.names_opt())
            .set_expression_attribute_values(p.values_opt())
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => Ok(Ok(out.attributes.unwrap_or_default())),
            Err(e) if is_condition_failure(&e) => Ok(Err(old_item(e.into_service_error()))),
            Err(e) => Err(sdk_error(operation, table, e)),
        }
    }

    /// One round of a completion in the `found` shape.
    async fn complete_as(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
        found: Found,
    ) -> Result<Attempt> {
        let mut p = Placeholders::default();
        let mut set = report_assignments(&mut p, report)?;
        set.push(p.assign("completed_at", n(now)));
        let gf = p.name("greenfield");
        let now_ph = p.value(n(now));
        let condition = match found {
            Found::Invoked => format!("{gf} >= {now_ph}"),
            Found::Queued => {
                set.push(p.assign("greenfield", n(greenfield::invoked_at(now))));
                format!("{gf} < {now_ph}")
            }
        };
        let result = self
            .report_update("complete", task_id, p, set, Some(condition))
            .await?;
        let table = &self.tables().tasks;
        match result {
            Ok(new) => Ok(ControlFlow::Break(ReportOutcome::Recorded(item_to_task(
                new, table,
            )?))),
            Err(None) => Ok(ControlFlow::Break(ReportOutcome::NotFound)),
            Err(Some(old)) if is_completed(&old) => {
                Ok(ControlFlow::Break(ReportOutcome::AlreadyCompleted))
            }
            Err(Some(old)) => {
                let task = item_to_task(old, table)?;
                Ok(ControlFlow::Continue(if task.greenfield < now {
                    Found::Queued
                } else {
                    Found::Invoked
                }))
            }
        }
    }
}

/// The item a failed condition returned (ALL_OLD), if the task exists.
fn old_item(err: UpdateItemError) -> Option<Item> {
    match err {
        UpdateItemError::ConditionalCheckFailedException(e) => e.item,
        _ => None,
    }
}

/// `#stat_k = :v` for every attribute of the report.
fn report_assignments(p: &mut Placeholders, report: &TaskReport) -> Result<Vec<String>> {
    report
        .attributes()
        .map(|(name, value)| Ok(p.assign(&name, json_to_attribute(&name, value)?)))
        .collect()
}

fn outcome_of_failed_condition(old: Option<Item>) -> ReportOutcome {
    match old {
        None => ReportOutcome::NotFound,
        Some(_) => ReportOutcome::AlreadyCompleted,
    }
}

#[async_trait]
impl TaskReports for DynamoTaskStore {
    async fn complete(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<ReportOutcome> {
        let mut found = Found::Invoked;
        for _ in 0..MAX_COMPLETE_ROUNDS {
            match self.complete_as(task_id, report, now, found).await? {
                ControlFlow::Break(outcome) => return Ok(outcome),
                ControlFlow::Continue(next) if next != found => found = next,
                // Same shape but the condition failed: the row has no usable greenfield.
                ControlFlow::Continue(_) => {
                    return Err(decode_error(
                        &self.tables().tasks,
                        Some(task_id.as_str()),
                        "the row has no numeric greenfield",
                    ));
                }
            }
        }
        Err(store_error(
            "complete",
            &self.tables().tasks,
            true,
            format!("task `{task_id}` kept moving between queued and invoked; report again later"),
        ))
    }

    async fn record_failure(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        _now: i64,
    ) -> Result<ReportOutcome> {
        let mut p = Placeholders::default();
        let mut set = report_assignments(&mut p, report)?;
        let fa = p.name("failed_attempts");
        let zero = p.value(n(0));
        let one = p.value(n(1));
        set.push(format!("{fa} = if_not_exists({fa}, {zero}) + {one}"));
        let result = self
            .report_update("record failure", task_id, p, set, None)
            .await?;
        match result {
            Ok(new) => Ok(ReportOutcome::Recorded(item_to_task(
                new,
                &self.tables().tasks,
            )?)),
            Err(old) => Ok(outcome_of_failed_condition(old)),
        }
    }
}
