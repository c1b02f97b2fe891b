//! Ecology state shared by every orchestrator: one small versioned record per labourer, read and
//! written back only if nobody wrote it since (compare-and-set on its version).
//!
//! The record holds the labourer's shared rate log ([`RateLog`]) and, when the labourer runs the
//! adaptive controller, its [`ControllerState`]. A store keeps it apart from the task tables (SQLite: the
//! `ecology` table; DynamoDB: the `sosw_ecology` table, hash key `labourer_id`), so nothing that reads
//! tasks ever sees it.
//!
//! Every change is read, change in memory, [`EcologyState::write_ecology`] on the version read; a write
//! refused because another orchestrator wrote first is read again ([`update_ecology`]). So two
//! orchestrators taking from one rate limit never both spend the same allowance.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::ecology::adaptive::ControllerState;
use crate::ecology::rate::RateLog;
use crate::error::Result;
use crate::task::RateLimit;

/// One labourer's shared ecology state. Serialized as JSON text by the stores; a few hundred bytes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EcologyRecord {
    /// The labourer's shared rate log (empty without a rate limit).
    #[serde(default, skip_serializing_if = "RateLog::is_empty")]
    pub rate: RateLog,
    /// The adaptive controller's state, when the labourer runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<ControllerState>,
}

/// A record as read, with the version a conditional write must name. Version 0: no record yet (a
/// default one is returned).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VersionedEcology {
    /// Incremented by every write; 0 while nothing was written.
    pub version: u64,
    /// The record.
    pub record: EcologyRecord,
}

/// The store port of the shared ecology state.
#[async_trait]
pub trait EcologyState: Send + Sync {
    /// The record of `labourer_id` and its version (0 and a default record when there is none).
    async fn read_ecology(&self, labourer_id: &str) -> Result<VersionedEcology>;

    /// Writes `record` as version `expected_version + 1` on the condition that the stored version is
    /// `expected_version` (0: that no record exists). Returns whether it wrote; `false` means another
    /// writer came first and nothing changed.
    async fn write_ecology(
        &self,
        labourer_id: &str,
        expected_version: u64,
        record: &EcologyRecord,
    ) -> Result<bool>;
}

/// How many read-change-write rounds [`update_ecology`] tries before giving up.
pub const MAX_ECOLOGY_ATTEMPTS: usize = 8;

/// What [`update_ecology`]'s change decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<T> {
    /// Write the changed record and return the value.
    Write(T),
    /// Nothing changed: return the value without writing.
    Keep(T),
}

/// Reads `labourer_id`'s record, applies `change` and writes it back on the version read; on a conflict
/// reads again and re-applies `change` to the fresh record, up to [`MAX_ECOLOGY_ATTEMPTS`] times.
/// Returns `None` if every attempt lost to another writer (the caller then acts as if it got nothing:
/// for a rate limit, no grant).
pub async fn update_ecology<S, T>(
    store: &S,
    labourer_id: &str,
    mut change: impl FnMut(&mut EcologyRecord) -> Change<T> + Send,
) -> Result<Option<T>>
where
    S: EcologyState + ?Sized,
    T: Send,
{
    for _ in 0..MAX_ECOLOGY_ATTEMPTS {
        let VersionedEcology {
            version,
            mut record,
        } = store.read_ecology(labourer_id).await?;
        match change(&mut record) {
            Change::Keep(value) => return Ok(Some(value)),
            Change::Write(value) => {
                if store.write_ecology(labourer_id, version, &record).await? {
                    return Ok(Some(value));
                }
            }
        }
    }
    tracing::warn!(
        labourer = labourer_id,
        attempts = MAX_ECOLOGY_ATTEMPTS,
        "the shared ecology record kept changing under this orchestrator; nothing taken this round"
    );
    Ok(None)
}

/// The rate limit's period in milliseconds.
pub fn rate_period_ms(limit: RateLimit) -> i64 {
    i64::try_from(limit.period_secs)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000)
}

/// Takes up to `wanted` invocations of `labourer_id` at `now_ms` from its shared rate log under `limit`.
/// Returns how many were granted: never more, across every orchestrator sharing the store, than `limit`
/// allows in any window of its period. Contention beyond [`MAX_ECOLOGY_ATTEMPTS`] grants nothing.
pub async fn take_rate<S: EcologyState + ?Sized>(
    store: &S,
    labourer_id: &str,
    limit: RateLimit,
    now_ms: i64,
    wanted: u64,
) -> Result<u64> {
    if wanted == 0 {
        return Ok(0);
    }
    let period_ms = rate_period_ms(limit);
    let granted = update_ecology(store, labourer_id, |record| {
        match record
            .rate
            .take(u64::from(limit.tasks), period_ms, now_ms, wanted)
        {
            0 => Change::Keep(0),
            n => Change::Write(n),
        }
    })
    .await?;
    Ok(granted.unwrap_or(0))
}

/// Gives back `count` invocations taken at `taken_at_ms` and not used (the queue held fewer tasks,
/// claims lost to another orchestrator), so they are not counted against the rate limit.
pub async fn give_back_rate<S: EcologyState + ?Sized>(
    store: &S,
    labourer_id: &str,
    limit: RateLimit,
    taken_at_ms: i64,
    count: u64,
) -> Result<()> {
    if count == 0 {
        return Ok(());
    }
    let period_ms = rate_period_ms(limit);
    update_ecology(store, labourer_id, |record| {
        match record.rate.give_back(period_ms, taken_at_ms, count) {
            0 => Change::Keep(()),
            _ => Change::Write(()),
        }
    })
    .await?;
    Ok(())
}
