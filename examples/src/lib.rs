//! Example sosw workers, jobs and configs.
//!
//! * [`hashtags`]: the tutorial labourers (a reliable one and a flaky one) that `sosw local run`
//!   registers in-process and that ship as Lambda functions (`src/bin/sosw_tutorial_*.rs`).
//! * [`lambda`]: logging for those Lambda binaries.

pub mod hashtags;
pub mod lambda;
