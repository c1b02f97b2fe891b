//! Measures invocations per second of one orchestrator run (single pass over one labourer with as many
//! slots as tasks), against the in-process invoker and against moto server's Lambda on loopback.
//! Ignored by default; prints the numbers:
//!
//! ```text
//! cargo test -p sosw-integration-tests --test end_to_end orchestrator_bench -- --ignored --nocapture
//! ```
//!
//! Sizes are set with `SOSW_BENCH_TASKS` (default 20,000 in process, a tenth of it against moto).

use crate::orchestrator_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use sosw::aws::lambda::LambdaInvoker;
use sosw::clock::{Clock, SystemClock};
use sosw::essentials::orchestrator::{OrchestratorSettings, RunMode};
use sosw::invoke::Invoker;
use sosw::invoke::inprocess::{InProcessInvoker, handler_fn};

use orchestrator_support::{config, orchestrator, sqlite_with};

fn tasks() -> u64 {
    std::env::var("SOSW_BENCH_TASKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// One single-pass run over `count` tasks; prints and returns invocations per second.
async fn measure(
    name: &str,
    labourer: &str,
    count: u64,
    invoker: Arc<dyn Invoker>,
    concurrency: usize,
) -> f64 {
    let store = sqlite_with(labourer, count).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let run = orchestrator(
        store,
        invoker,
        config(
            json!({ labourer: {"max_simultaneous_invocations": count} }),
            json!({}),
        ),
        clock.clone(),
        OrchestratorSettings {
            mode: RunMode::SinglePass,
            max_concurrent_invocations: concurrency,
            ..OrchestratorSettings::default()
        },
    );
    let started = Instant::now();
    let report = run
        .run(clock.now() + chrono::Duration::seconds(600))
        .await
        .expect("run");
    let secs = started.elapsed().as_secs_f64();
    let rate = report.invoked() as f64 / secs;
    println!(
        "{name}: {} invocations in {secs:.2} s = {rate:.0} invocations/s (claim + invoke, {concurrency} in flight, SQLite store)",
        report.invoked()
    );
    assert_eq!(report.invoked(), count);
    rate
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture"]
async fn invocations_per_second_in_process() {
    let invoker = InProcessInvoker::new().register("w", handler_fn(|_| async {}));
    let invoker = Arc::new(invoker);
    measure("in-process", "w", tasks(), invoker.clone(), 64).await;
    invoker.wait_idle().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run with --ignored --nocapture (needs SOSW_MOTO_ENDPOINT)"]
async fn invocations_per_second_against_moto_lambda() {
    let Some(sdk) = sosw_integration_tests::moto_config().await else {
        return;
    };
    let function = orchestrator_support::moto::create_function(&sdk, 60).await;
    let count = (tasks() / 10).max(1);
    for concurrency in [1, 16, 64] {
        let invoker = Arc::new(LambdaInvoker::from_sdk_config(&sdk));
        measure(
            &format!("moto Lambda, {concurrency} in flight"),
            &function,
            count,
            invoker,
            concurrency,
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
}
