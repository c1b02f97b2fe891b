//! The reliability suite: the queue checker's figures for orchestrators racing, worker and delivery
//! faults, throttling everywhere and a scheduler killed mid-job, each on SQLite and on DynamoDB Local;
//! hostile-input property tests; a virtual-clock scale simulation; and `sosw cancel` and `sosw pause`
//! under racing orchestrators.
//!
//! Sizes: reduced by default (`make test`); `SOSW_RELIABILITY_FULL=1` runs the full sizes
//! (`make reliability`, see docs/reliability.md).

mod reliability {
    pub mod adaptive;
    pub mod fairness;
    pub mod hostile;
    pub mod rig;
    pub mod scenarios;
    pub mod scheduler_kills;
    pub mod simulation;
    pub mod steering;
}

#[path = "scheduler_common/mod.rs"]
mod scheduler_common;

/// Whether the full sizes were asked for (`SOSW_RELIABILITY_FULL=1`).
pub fn full() -> bool {
    std::env::var("SOSW_RELIABILITY_FULL").is_ok_and(|v| v == "1")
}

/// `full_size` under `SOSW_RELIABILITY_FULL=1`, else `reduced`.
pub fn size(reduced: u64, full_size: u64) -> u64 {
    if full() { full_size } else { reduced }
}
