//! Example sosw workers, jobs and configs.
//!
//! * [`hashtags`]: the tutorial labourers (a reliable one and a flaky one) that `sosw local run`
//!   registers in-process and that ship as Lambda functions (`src/bin/sosw_tutorial_*.rs`).
//! * [`lambda`]: logging for those Lambda binaries.

pub mod hashtags;
pub mod lambda;

/// The README's and the user guide's Rust examples, compiled as doc tests (`cargo test --doc`), so the
/// worker every newcomer copies keeps building.
#[cfg(doctest)]
mod documentation {
    #[doc = include_str!("../../README.md")]
    struct Readme;

    #[doc = include_str!("../../docs/guide.md")]
    struct UserGuide;
}
