//! Local mode: every essential on one machine, over the embedded SQLite store.
//!
//! [`LocalRunner`] wires the same library code the Lambda functions run: the scheduler turns a job into
//! tasks, the orchestrator (continuous mode) claims and invokes them, workers run in-process
//! ([`WorkerRegistry`]) or as a child process per task (`command` labourers), their reports go through
//! the worker assistant, and the scavenger retries expired tasks and declares dead ones. Everything is
//! in one SQLite file, so a run killed at any moment continues where it stopped.
//!
//! How labourers run here is the `sosw_local_config` document ([`LocalConfig`]), next to the usual
//! config documents (`sosw_essential_config`, `<essential>_config`). Timings are the labourers' own
//! (`duration`, `cooldown`, `retry`): a local config directory sets them in seconds so that a demo
//! finishes in seconds.

mod config;
mod counting;
mod runner;
mod summary;
mod workers;

pub use config::{CommandLabourer, InProcessWorker, LOCAL_CONFIG_NAME, LocalConfig, LocalConfigs};
pub use runner::{LabourerProgress, LocalRunner, RunObserver, interrupted, schedule};
pub use summary::{LabourerSummary, Summary};
pub use workers::{LocalInvoker, ReportExitToAssistant, WorkerRegistry, command_spec};

/// Worker threads for a tokio runtime that drives a [`LocalRunner`]: two more than the machine's cores
/// (at least 4). The SQLite store runs its statements on the calling worker thread and makes callers
/// wait for its one connection; with only as many workers as cores, a core sits idle while its worker
/// waits for the lock. Measured on 2 cores (`sosw-bench local --only inprocess`): 2 workers close about
/// 8,000 no-op tasks/s, 3 about 11,000-12,000, 4 to 6 about 12,000.
pub fn runtime_worker_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    (cores + 2).max(4)
}
