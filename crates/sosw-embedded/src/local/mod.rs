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
