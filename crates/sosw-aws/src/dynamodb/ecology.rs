//! [`EcologyState`] over the `sosw_ecology` table (hash key `labourer_id`; new in this implementation,
//! sosw 0.7 has no such table): one item per labourer.
//!
//! | attribute | type | |
//! |---|---|---|
//! | `labourer_id` | S | the key |
//! | `version` | N | incremented by every write of `state`; absent (0) on an item only outcomes were added to |
//! | `state` | S | the [`EcologyRecord`] as JSON text (a few hundred bytes: one write unit) |
//! | `succeeded`, `failed`, `throttled` | N | outcome counters, only ever added to |
//!
//! * **read**: one strongly consistent `GetItem`;
//! * **write**: one `UpdateItem` `SET version, state` on the condition `attribute_not_exists(version)`
//!   (version 0) or `version = :expected`; a failed condition is "another orchestrator wrote first"
//!   (`false`), not an error. An update, not a put, so the counters on the item stay as they are;
//! * **add outcomes**: one `UpdateItem` `ADD` of the three counters, unconditional (creates the item
//!   if needed, never touches `version`).
//!
//! The orchestrator's role needs `dynamodb:GetItem` and `dynamodb:UpdateItem` on this table, the
//! worker assistant's `dynamodb:UpdateItem`, and nothing else.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::DynamoTaskStore;
use super::codec::{Item, n, s};
use super::errors::sdk_error;
use sosw_core::error::{Error, Result};
use sosw_core::store::{EcologyRecord, EcologyState, OutcomeCounts, VersionedEcology};

/// Every write of the record.
pub(crate) const WRITE: &str = "SET #v = :next, #s = :state";
/// A first write: no record yet (the item may hold counters).
pub(crate) const FIRST_WRITE_IF: &str = "attribute_not_exists(#v)";
/// A later write: nobody wrote since the read.
pub(crate) const NEXT_WRITE_IF: &str = "#v = :expected";
/// Outcomes, added in place.
pub(crate) const ADD_OUTCOMES: &str = "ADD #ok :ok, #failed :failed, #throttled :throttled";

#[async_trait]
impl EcologyState for DynamoTaskStore {
    async fn read_ecology(&self, labourer_id: &str) -> Result<VersionedEcology> {
        let table = &self.tables().ecology;
        let out = self
            .client()
            .get_item()
            .table_name(table)
            .key("labourer_id", s(labourer_id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("read ecology", table, e))?;
        let Some(item) = out.item else {
            return Ok(VersionedEcology::default());
        };
        decode(&item, table, labourer_id)
    }

    async fn write_ecology(
        &self,
        labourer_id: &str,
        expected_version: u64,
        record: &EcologyRecord,
    ) -> Result<bool> {
        let table = &self.tables().ecology;
        let state = serde_json::to_string(record)
            .map_err(|e| Error::invalid("ecology record", e.to_string()))?;
        let next = i64::try_from(expected_version.saturating_add(1))
            .map_err(|_| Error::invalid("ecology version", "beyond 2^63"))?;
        let mut request = self
            .client()
            .update_item()
            .table_name(table)
            .key("labourer_id", s(labourer_id))
            .update_expression(WRITE)
            .expression_attribute_names("#v", "version")
            .expression_attribute_names("#s", "state")
            .expression_attribute_values(":next", n(next))
            .expression_attribute_values(":state", s(state));
        request = if expected_version == 0 {
            request.condition_expression(FIRST_WRITE_IF)
        } else {
            request
                .condition_expression(NEXT_WRITE_IF)
                .expression_attribute_values(":expected", n(next - 1))
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(UpdateItemError::is_conditional_check_failed_exception) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error("write ecology", table, e)),
        }
    }

    async fn add_outcomes(&self, labourer_id: &str, outcomes: &OutcomeCounts) -> Result<()> {
        if outcomes.is_zero() {
            return Ok(());
        }
        let table = &self.tables().ecology;
        let v = |count: u64| n(i64::try_from(count).unwrap_or(i64::MAX));
        self.client()
            .update_item()
            .table_name(table)
            .key("labourer_id", s(labourer_id))
            .update_expression(ADD_OUTCOMES)
            .expression_attribute_names("#ok", "succeeded")
            .expression_attribute_names("#failed", "failed")
            .expression_attribute_names("#throttled", "throttled")
            .expression_attribute_values(":ok", v(outcomes.succeeded))
            .expression_attribute_values(":failed", v(outcomes.failed))
            .expression_attribute_values(":throttled", v(outcomes.throttled))
            .send()
            .await
            .map_err(|e| sdk_error("add ecology outcomes", table, e))?;
        Ok(())
    }
}

fn decode(item: &Item, table: &str, labourer_id: &str) -> Result<VersionedEcology> {
    let bad = |what: String| Error::Decode {
        what: "ecology record",
        table: table.to_owned(),
        message: format!("the item of labourer `{labourer_id}` {what}"),
    };
    let number = |name: &str| match item.get(name) {
        None => Ok(0),
        Some(AttributeValue::N(v)) => v
            .parse::<u64>()
            .map_err(|_| bad(format!("has {name} `{v}`, not a whole number"))),
        Some(_) => Err(bad(format!("has a `{name}` that is not a number"))),
    };
    let record = match item.get("state") {
        None => EcologyRecord::default(),
        Some(AttributeValue::S(text)) => serde_json::from_str(text)
            .map_err(|e| bad(format!("has a `state` this build cannot read: {e}")))?,
        Some(_) => return Err(bad("has a `state` that is not a string".into())),
    };
    Ok(VersionedEcology {
        version: number("version")?,
        record,
        outcomes: OutcomeCounts {
            succeeded: number("succeeded")?,
            failed: number("failed")?,
            throttled: number("throttled")?,
        },
    })
}
