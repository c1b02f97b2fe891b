//! AWS adapters of the ports.

pub mod dynamodb;
