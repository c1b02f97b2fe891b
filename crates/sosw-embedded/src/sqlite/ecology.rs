//! The shared ecology state ([`EcologyState`]) in the `ecology` table: one row per labourer, its
//! version and its record as JSON text.
//!
//! A write is one statement conditional on the version read: an `INSERT` that a row of the same
//! labourer makes fail (version 0), or an `UPDATE ... WHERE version = ?`. Of concurrent writers on the
//! same version, in this process or another sharing the file, exactly one changes a row.
//!
//! The table is created on every open (`IF NOT EXISTS`) and needs no schema version: an older build
//! never reads it, and a file it opens keeps it untouched.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::{Failure, SqliteTaskStore};
use sosw_core::error::{Error, Result};
use sosw_core::store::{EcologyRecord, EcologyState, VersionedEcology};

/// The table, created on every open.
pub(super) const ECOLOGY_TABLE: &str = "
CREATE TABLE IF NOT EXISTS ecology (
    labourer_id TEXT NOT NULL PRIMARY KEY,
    version INTEGER NOT NULL,
    state TEXT NOT NULL
);
";

#[async_trait]
impl EcologyState for SqliteTaskStore {
    async fn read_ecology(&self, labourer_id: &str) -> Result<VersionedEcology> {
        self.run("read ecology", |conn| {
            let row: Option<(i64, String)> = conn
                .query_row(
                    "SELECT version, state FROM ecology WHERE labourer_id = ?1",
                    [labourer_id],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional()?;
            let Some((version, state)) = row else {
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
                version: u64::try_from(version).unwrap_or(0),
                record,
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
                     ON CONFLICT (labourer_id) DO NOTHING",
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
}
