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
    /// The adaptive controller's state and window, when the labourer runs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<AdaptiveRecord>,
}

/// The adaptive controller's part of the record: its state and the observation window in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdaptiveRecord {
    /// The controller's state.
    pub state: ControllerState,
    /// When the current observation window started (seconds on the orchestrators' clock).
    pub window_start: f64,
    /// The outcome counters as they were when the window started: the window's outcomes are the
    /// counters now minus these.
    #[serde(default)]
    pub seen: OutcomeCounts,
}

/// Outcomes of a labourer's invocations, counted since the labourer's record was created. Only ever
/// added to ([`EcologyState::add_outcomes`]), by the worker assistant (completions, failures, throttled
/// reports) and the orchestrator (invocations the invoke service throttled); the adaptive controller
/// reads the difference over its window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    /// Invocations that ended well.
    #[serde(default)]
    pub succeeded: u64,
    /// Invocations that failed (errors, expiries).
    #[serde(default)]
    pub failed: u64,
    /// Invocations turned away because the worker or what it depends on was saturated.
    #[serde(default)]
    pub throttled: u64,
}

impl OutcomeCounts {
    /// What was added from `earlier` to `self` (0 where a counter went back, e.g. a recreated item).
    pub fn since(&self, earlier: &OutcomeCounts) -> OutcomeCounts {
        OutcomeCounts {
            succeeded: self.succeeded.saturating_sub(earlier.succeeded),
            failed: self.failed.saturating_sub(earlier.failed),
            throttled: self.throttled.saturating_sub(earlier.throttled),
        }
    }

    /// Whether every counter is 0.
    pub fn is_zero(&self) -> bool {
        *self == OutcomeCounts::default()
    }
}

/// A record as read, with the version a conditional write must name. Version 0: no record yet (a
/// default one is returned).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VersionedEcology {
    /// Incremented by every write of the record; 0 while nothing was written. Adding outcomes does
    /// not change it.
    pub version: u64,
    /// The record.
    pub record: EcologyRecord,
    /// The labourer's outcome counters, as read with the record.
    pub outcomes: OutcomeCounts,
}

/// The store port of the shared ecology state.
#[async_trait]
pub trait EcologyState: Send + Sync {
    /// The record of `labourer_id`, its version (0 and a default record when there is none) and its
    /// outcome counters.
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

    /// Adds `outcomes` to `labourer_id`'s counters atomically (no read, no condition: concurrent
    /// adders never lose an increment, and the record's version does not change).
    async fn add_outcomes(&self, labourer_id: &str, outcomes: &OutcomeCounts) -> Result<()>;
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

/// Reads `labourer_id`'s record, applies `change` (given the record and the outcome counters read
/// with it) and writes it back on the version read; on a conflict
/// reads again and re-applies `change` to the fresh record, up to [`MAX_ECOLOGY_ATTEMPTS`] times.
/// Returns `None` if every attempt lost to another writer (the caller then acts as if it got nothing:
/// for a rate limit, no grant).
pub async fn update_ecology<S, T>(
    store: &S,
    labourer_id: &str,
    mut change: impl FnMut(&mut EcologyRecord, &OutcomeCounts) -> Change<T> + Send,
) -> Result<Option<T>>
where
    S: EcologyState + ?Sized,
    T: Send,
{
    for _ in 0..MAX_ECOLOGY_ATTEMPTS {
        let VersionedEcology {
            version,
            mut record,
            outcomes,
        } = store.read_ecology(labourer_id).await?;
        match change(&mut record, &outcomes) {
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
    let granted = update_ecology(store, labourer_id, |record, _| {
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
    update_ecology(store, labourer_id, |record, _| {
        match record.rate.give_back(period_ms, taken_at_ms, count) {
            0 => Change::Keep(()),
            _ => Change::Write(()),
        }
    })
    .await?;
    Ok(())
}
