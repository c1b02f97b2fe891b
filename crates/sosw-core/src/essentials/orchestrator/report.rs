//! What one orchestrator run did, per labourer.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Most error messages kept per labourer in a report; the count goes on.
const MAX_ERRORS_KEPT: usize = 10;

/// The report of one run, returned by [`Orchestrator::run`](super::Orchestrator::run) and logged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OrchestratorReport {
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// How many rounds it made (one in single-pass mode).
    pub rounds: u32,
    /// Per labourer id.
    pub labourers: BTreeMap<String, LabourerReport>,
}

/// What a run did for one labourer. Counts are over the whole run; `status`, `desired`, `running` and
/// `rate_limited` are as last seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LabourerReport {
    /// The ecology status 0-4, `None` if it could not be computed (see `errors`).
    pub status: Option<u8>,
    /// Slots to fill: `floor(max_simultaneous_invocations x coefficient[status])`.
    pub desired: u64,
    /// Tasks running (invoked, not completed, not expired) at the last count.
    pub running: u64,
    /// Tasks this run claimed.
    pub claimed: u64,
    /// Claimed tasks the invoker accepted.
    pub invoked: u64,
    /// Claimed tasks the invoker rejected, whose claim was released (back in the queue at once).
    pub released: u64,
    /// Claimed tasks whose invocation outcome is unknown; the claim is kept (they expire and retry if
    /// the worker never got them).
    pub unknown: u64,
    /// Rejected tasks whose release failed or was refused; the claim stays, so they expire and retry.
    pub release_failed: u64,
    /// Queued tasks another orchestrator claimed first.
    pub skipped: u64,
    /// Free slots the labourer's rate limit held back at the last count.
    pub rate_limited: u64,
    /// Milliseconds spent on this labourer.
    pub elapsed_ms: u64,
    /// How many errors happened (store, metrics, config of this labourer).
    pub error_count: u64,
    /// The first few error messages.
    pub errors: Vec<String>,
    /// Whether the labourer was paused (`sosw pause`) at the last round: nothing was invoked for it.
    pub paused: bool,
}

impl LabourerReport {
    /// Records an error message.
    pub(super) fn error(&mut self, message: String) {
        self.error_count += 1;
        if self.errors.len() < MAX_ERRORS_KEPT {
            self.errors.push(message);
        }
    }
}

impl OrchestratorReport {
    pub(super) fn new(started_at: DateTime<Utc>) -> Self {
        OrchestratorReport {
            started_at,
            finished_at: started_at,
            rounds: 0,
            labourers: BTreeMap::new(),
        }
    }

    /// The entry of `labourer_id`, created empty on first use.
    pub(super) fn labourer(&mut self, labourer_id: &str) -> &mut LabourerReport {
        self.labourers.entry(labourer_id.to_string()).or_default()
    }

    /// Tasks invoked (accepted) over every labourer.
    pub fn invoked(&self) -> u64 {
        self.labourers.values().map(|l| l.invoked).sum()
    }

    /// Tasks claimed over every labourer.
    pub fn claimed(&self) -> u64 {
        self.labourers.values().map(|l| l.claimed).sum()
    }

    /// Errors over every labourer.
    pub fn error_count(&self) -> u64 {
        self.labourers.values().map(|l| l.error_count).sum()
    }

    /// The run's length in seconds.
    pub fn elapsed_secs(&self) -> f64 {
        (self.finished_at - self.started_at).num_milliseconds() as f64 / 1000.0
    }

    /// Logs the report: one line per labourer and a summary, as structured fields.
    pub fn log(&self) {
        for (id, l) in &self.labourers {
            tracing::info!(
                labourer = %id,
                status = l.status,
                desired = l.desired,
                running = l.running,
                claimed = l.claimed,
                invoked = l.invoked,
                released = l.released,
                unknown = l.unknown,
                release_failed = l.release_failed,
                skipped = l.skipped,
                rate_limited = l.rate_limited,
                elapsed_ms = l.elapsed_ms,
                errors = l.error_count,
                "orchestrator labourer report"
            );
        }
        tracing::info!(
            rounds = self.rounds,
            labourers = self.labourers.len(),
            claimed = self.claimed(),
            invoked = self.invoked(),
            errors = self.error_count(),
            elapsed_secs = self.elapsed_secs(),
            "orchestrator run finished"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn totals_add_up_over_labourers_and_errors_are_capped() {
        let t0 = Utc.timestamp_opt(1_700_000_000, 0).single().expect("time");
        let mut report = OrchestratorReport::new(t0);
        report.labourer("a").invoked = 3;
        report.labourer("a").claimed = 4;
        report.labourer("b").invoked = 2;
        for n in 0..(MAX_ERRORS_KEPT + 5) {
            report.labourer("b").error(format!("e{n}"));
        }
        report.finished_at = t0 + chrono::Duration::milliseconds(2500);
        assert_eq!(report.invoked(), 5);
        assert_eq!(report.claimed(), 4);
        assert_eq!(report.error_count(), (MAX_ERRORS_KEPT + 5) as u64);
        assert_eq!(report.labourers["b"].errors.len(), MAX_ERRORS_KEPT);
        assert_eq!(report.elapsed_secs(), 2.5);
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(json["labourers"]["a"]["invoked"], 3);
    }
}
