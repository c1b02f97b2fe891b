//! The sosw tutorial's workers (the jobs and configs they run with are in `examples/jobs` and
//! `examples/configs`).
//!
//! * [`hashtags`]: the tutorial labourers (a reliable one and a flaky one) that `sosw local run`
//!   registers in-process and that ship as Lambda functions (`src/bin/sosw_tutorial_*.rs`).
//! * [`lambda`]: logging for those Lambda binaries.
//! * [`lifecycle_demo`]: a job's tasks through their whole life on the SQLite store, step by step
//!   (`src/bin/lifecycle_demo.rs`).

pub mod hashtags;
pub mod lambda;
pub mod lifecycle_demo;

/// The README's and the user guide's Rust examples, compiled as doc tests (`cargo test --doc`), so the
/// worker every newcomer copies keeps building.
#[cfg(doctest)]
mod documentation {
    #[doc = include_str!("../../../README.md")]
    struct Readme;

    #[doc = include_str!("../../../docs/guide.md")]
    struct UserGuide;
}
