//! AWS adapters of the ports.

pub mod assistant;
pub mod config_source;
pub mod dynamodb;
pub mod eventbridge;
mod sdk_errors;
pub mod sns;
