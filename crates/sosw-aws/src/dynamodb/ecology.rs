//! [`EcologyState`] over the `sosw_ecology` table (hash key `labourer_id`; new in this implementation,
//! sosw 0.7 has no such table): one item per labourer.
//!
//! | attribute | type | |
//! |---|---|---|
//! | `labourer_id` | S | the key |
//! | `version` | N | incremented by every write |
//! | `state` | S | the [`EcologyRecord`] as JSON text (a few hundred bytes: one write unit) |
//!
//! * **read**: one strongly consistent `GetItem`;
//! * **write**: one `PutItem` of the whole item on the condition `attribute_not_exists(labourer_id)`
//!   (version 0) or `version = :expected`; a failed condition is "another orchestrator wrote first"
//!   (`false`), not an error.
//!
//! The orchestrator's role needs `dynamodb:GetItem` and `dynamodb:PutItem` on this table and nothing
//! else.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::AttributeValue;

use super::DynamoTaskStore;
use super::codec::{Item, n, s};
use super::errors::sdk_error;
use sosw_core::error::{Error, Result};
use sosw_core::store::{EcologyRecord, EcologyState, VersionedEcology};

/// A first write: no item for the labourer yet.
pub(crate) const CREATE_IF: &str = "attribute_not_exists(labourer_id)";
/// A later write: nobody wrote since the read.
pub(crate) const REPLACE_IF: &str = "version = :expected";

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
            .put_item()
            .table_name(table)
            .item("labourer_id", s(labourer_id))
            .item("version", n(next))
            .item("state", s(state));
        request = if expected_version == 0 {
            request.condition_expression(CREATE_IF)
        } else {
            request
                .condition_expression(REPLACE_IF)
                .expression_attribute_values(":expected", n(next - 1))
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(PutItemError::is_conditional_check_failed_exception) =>
            {
                Ok(false)
            }
            Err(e) => Err(sdk_error("write ecology", table, e)),
        }
    }
}

fn decode(item: &Item, table: &str, labourer_id: &str) -> Result<VersionedEcology> {
    let bad = |what: String| Error::Decode {
        what: "ecology record",
        table: table.to_owned(),
        message: format!("the item of labourer `{labourer_id}` {what}"),
    };
    let version = match item.get("version") {
        Some(AttributeValue::N(v)) => v
            .parse::<u64>()
            .map_err(|_| bad(format!("has version `{v}`, not a whole number")))?,
        _ => return Err(bad("has no number `version`".into())),
    };
    let record = match item.get("state") {
        Some(AttributeValue::S(text)) => serde_json::from_str(text)
            .map_err(|e| bad(format!("has a `state` this build cannot read: {e}")))?,
        _ => return Err(bad("has no string `state`".into())),
    };
    Ok(VersionedEcology { version, record })
}
