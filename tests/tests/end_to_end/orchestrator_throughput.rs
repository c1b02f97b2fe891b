//! Throughput: with 10 slots and workers that take 1 second, one continuous run completes hundreds of
//! tasks per simulated minute; sosw 0.7's one pass per minute completes 10.
//!
//! Time is tokio's paused clock: the minute is simulated, the result is the same on any machine.

use crate::orchestrator_support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sosw::clock::Clock;
use sosw::essentials::orchestrator::{OrchestratorSettings, RunMode};
use sosw::store::TaskArchive;

use orchestrator_support::{
    Deliveries, TokioClock, completing_workers, config, continuous, orchestrator, sqlite_with,
};

const SLOTS: u64 = 10;

/// Runs one orchestrator run of a simulated minute over 1,000 queued 1-second tasks; returns how many
/// tasks completed within the minute.
async fn completed_in_one_minute(settings: OrchestratorSettings) -> (u64, u64) {
    let store = sqlite_with("w", 1000).await;
    let clock = TokioClock::start();
    let deliveries = Arc::new(Deliveries::default());
    let workers = Arc::new(completing_workers(
        "w",
        store.clone(),
        clock.clone(),
        Duration::from_secs(1),
        deliveries.clone(),
    ));
    let orchestrator = orchestrator(
        store.clone(),
        workers.clone(),
        config(
            json!({"w": {"max_simultaneous_invocations": SLOTS}}),
            json!({}),
        ),
        clock.clone(),
        settings,
    );
    let minute_end = clock.now() + chrono::Duration::seconds(60);
    let report = orchestrator.run(minute_end).await.expect("run");
    // Let the last invocations finish, but count only what completed inside the minute.
    workers.wait_idle().await;
    let completed = store
        .list_completed("w", i64::MAX, 2000)
        .await
        .expect("completed");
    let in_minute = completed
        .iter()
        .filter(|t| t.completed_at.is_some_and(|c| c <= minute_end.timestamp()))
        .count() as u64;
    (in_minute, report.invoked())
}

#[tokio::test(start_paused = true)]
async fn a_continuous_run_completes_at_least_300_one_second_tasks_per_minute_with_10_slots() {
    let (completed, invoked) =
        completed_in_one_minute(continuous(Duration::from_millis(500))).await;
    println!(
        "continuous, 500 ms poll: {completed} tasks completed in one simulated minute ({invoked} invoked)"
    );
    assert!(completed >= 300, "only {completed} completed");
    // Never more than the slots allow: 10 slots x 60 one-second tasks.
    assert!(
        completed <= SLOTS * 60,
        "{completed} is more than 10 slots can do"
    );
}

#[tokio::test(start_paused = true)]
async fn a_single_pass_completes_one_batch_per_minute_like_sosw_07() {
    let settings = OrchestratorSettings {
        mode: RunMode::SinglePass,
        ..OrchestratorSettings::default()
    };
    let (completed, invoked) = completed_in_one_minute(settings).await;
    println!(
        "single pass (sosw 0.7 behaviour): {completed} tasks completed in one simulated minute"
    );
    assert_eq!(invoked, SLOTS);
    assert_eq!(completed, SLOTS);
}
