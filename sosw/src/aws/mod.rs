//! AWS adapters of the ports.

pub mod cloudwatch;
pub mod config_source;
pub mod dynamodb;
pub mod lambda;
