//! The essentials: the logic of sosw's Lambda functions (`sosw_<name>`), over ports, callable from
//! tests and local runs.

pub mod cancel;
pub mod closer;
pub mod orchestrator;
pub mod redrive;
pub mod scavenger;
pub mod scheduler;
pub mod worker_assistant;
