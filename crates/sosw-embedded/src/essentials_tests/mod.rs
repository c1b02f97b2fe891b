//! Tests of `sosw-core`'s essentials and ecology that need a real store: they run here, over the
//! SQLite store, because the core crate cannot depend on an adapter.

mod durations;
mod orchestrator;
mod redrive;
mod scheduler;
mod worker_assistant;
