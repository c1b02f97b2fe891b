//! # The `sosw` command line and the four essentials' Lambda mains
//!
//! The binaries `sosw_scheduler`, `sosw_orchestrator`, `sosw_scavenger` and `sosw_worker_assistant`
//! are `bootstrap`s for the `provided.al2023` runtime; each is the same few lines over
//! `sosw::lambda` (`sosw-lambda`), which holds the essentials' Lambda services, their metrics and the
//! wiring from the environment. The `sosw` binary is the command line ([`cli`]).
#![forbid(unsafe_code)]

pub mod cli;
