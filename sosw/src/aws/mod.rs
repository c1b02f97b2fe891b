//! AWS adapters of the ports.

pub mod assistant;
pub mod cloudwatch;
pub mod config_source;
pub mod dynamodb;
pub mod eventbridge;
pub mod http;
pub mod lambda;
pub mod s3;
mod sdk_errors;
pub mod sns;
