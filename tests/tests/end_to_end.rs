//! The essentials and workers end to end: the orchestrator, the scheduler, the scavenger, workers and
//! the worker assistant, on SQLite and on DynamoDB Local, with moto server's Lambda, SNS and S3 where
//! the AWS adapters are the subject, and the tutorial's task lifecycle demo.
//!
//! One test binary (each links the AWS SDK): a module per former test file, so test names read
//! `end_to_end::<file>::<test>`; filter by file with `cargo test -p sosw-integration-tests --test
//! end_to_end <file>`. Emulator-backed tests are skipped without their endpoint (failing instead when
//! `SOSW_REQUIRE_EMULATORS=1`).

mod end_to_end {
    mod lifecycle_demo;
    mod orchestrator_bench;
    mod orchestrator_health;
    mod orchestrator_moto;
    mod orchestrator_race;
    mod orchestrator_throughput;
    mod scavenger_lifecycle;
    mod scavenger_sns_moto;
    mod scheduler_faults;
    mod scheduler_hashtags;
    mod scheduler_scale;
    mod scheduler_spool;
    mod worker_jobs;
    mod worker_lambda_moto;
    mod worker_lifecycle;
    mod worker_sosw07_fixtures;
}

// What several of the files above share, as siblings of `end_to_end` (`crate::orchestrator_support`);
// `scheduler_common` is the reliability suite's too.
mod orchestrator_support;
mod scheduler_common;
mod worker_support;
