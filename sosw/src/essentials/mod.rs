//! The essentials: the logic of sosw's Lambda functions, over ports, callable from tests and local runs.

pub mod orchestrator;
