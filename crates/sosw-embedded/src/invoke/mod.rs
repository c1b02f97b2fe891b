//! Invokers for workers on this machine (the `Invoker` port is `sosw_core::invoke::Invoker`).

pub mod command;
pub mod inprocess;
mod tracker;
