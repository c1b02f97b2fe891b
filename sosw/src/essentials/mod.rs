//! The essentials: logic over the ports, one module per function (`sosw_<name>`).

pub mod scavenger;
pub mod worker_assistant;
