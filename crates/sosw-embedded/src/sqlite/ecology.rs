//! The shared ecology state ([`EcologyState`]) in the `ecology` table: one row per labourer, its
//! version and its record as JSON text.
//!
//! A write is one statement conditional on the version read: an `INSERT` whose conflict with an
//! existing row updates it only if that row is still at version 0 (a row only outcomes were added to),
//! or an `UPDATE ... WHERE version = ?`. Of concurrent writers on the same version, in this process or
//! another sharing the file, exactly one changes a row. Outcomes are added by one upsert adding to the
//! counter columns, which never touches `version` or `state`.
//!
//! The table is created on every open (`IF NOT EXISTS`) and needs no schema version: an older build
//! never reads it, and a file it opens keeps it untouched.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::{Failure, SqliteTaskStore, count};
use sosw_core::error::{Error, Result};
use sosw_core::store::{EcologyRecord, EcologyState, OutcomeCounts, VersionedEcology};

/// The table, created on every open.
pub(super) const ECOLOGY_TABLE: &str = "
CREATE TABLE IF NOT EXISTS ecology (
    labourer_id TEXT NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT '{}',
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    throttled INTEGER NOT NULL DEFAULT 0
);
";

#[async_trait]
impl EcologyState for SqliteTaskStore {
    async fn read_ecology(&self, labourer_id: &str) -> Result<VersionedEcology> {
        self.run("read ecology", |conn| {
            let row: Option<(i64, String, [i64; 3])> = conn
                .query_row(
                    "SELECT version, state, succeeded, failed, throttled FROM ecology
                     WHERE labourer_id = ?1",
                    [labourer_id],
                    |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            [row.get(2)?, row.get(3)?, row.get(4)?],
                        ))
                    },
                )
                .optional()?;
            let Some((version, state, [succeeded, failed, throttled])) = row else {
                return Ok(VersionedEcology::default());
            };
            let record: EcologyRecord = serde_json::from_str(&state).map_err(|e| {
                Failure::Sosw(Error::Decode {
                    what: "ecology record",
                    table: "ecology".into(),
                    message: format!(
                        "the record of labourer `{labourer_id}` is not what this build writes: {e}"
                    ),
                })
            })?;
            Ok(VersionedEcology {
                version: count(version),
                record,
                outcomes: OutcomeCounts {
                    succeeded: count(succeeded),
                    failed: count(failed),
                    throttled: count(throttled),
                },
            })
        })
    }

    async fn write_ecology(
        &self,
        labourer_id: &str,
        expected_version: u64,
        record: &EcologyRecord,
    ) -> Result<bool> {
        let state = serde_json::to_string(record)
            .map_err(|e| Error::invalid("ecology record", e.to_string()))?;
        let expected = i64::try_from(expected_version)
            .map_err(|_| Error::invalid("ecology version", "beyond 2^63"))?;
        self.run("write ecology", |conn| {
            let changed = if expected == 0 {
                conn.execute(
                    "INSERT INTO ecology (labourer_id, version, state) VALUES (?1, 1, ?2)
                     ON CONFLICT (labourer_id) DO UPDATE SET version = 1, state = excluded.state
                     WHERE ecology.version = 0",
                    params![labourer_id, state],
                )?
            } else {
                conn.execute(
                    "UPDATE ecology SET version = version + 1, state = ?3
                     WHERE labourer_id = ?1 AND version = ?2",
                    params![labourer_id, expected, state],
                )?
            };
            Ok(changed == 1)
        })
    }

    async fn add_outcomes(&self, labourer_id: &str, outcomes: &OutcomeCounts) -> Result<()> {
        if outcomes.is_zero() {
            return Ok(());
        }
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.run("add ecology outcomes", |conn| {
            conn.execute(
                "INSERT INTO ecology (labourer_id, succeeded, failed, throttled) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (labourer_id) DO UPDATE SET
                     succeeded = succeeded + excluded.succeeded,
                     failed = failed + excluded.failed,
                     throttled = throttled + excluded.throttled",
                params![
                    labourer_id,
                    n(outcomes.succeeded),
                    n(outcomes.failed),
                    n(outcomes.throttled)
                ],
            )?;
            Ok(())
        })
    }
}
