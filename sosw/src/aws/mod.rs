//! AWS adapters of the ports.

pub mod config_source;
pub mod dynamodb;
pub mod s3;
