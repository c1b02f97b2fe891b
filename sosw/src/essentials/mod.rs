//! The essentials: the logic of sosw's Lambda functions over the ports, callable from a test with
//! embedded adapters. The executables in the `essentials` crate are thin `main`s around them.

pub mod scheduler;
