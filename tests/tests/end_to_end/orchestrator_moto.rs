//! The Lambda adapters against moto server's Lambda (no Docker): `Event` invocations,
//! `GetFunctionConfiguration` (and its refusal of a missing function), and an orchestrator run
//! invoking through it.
//!
//! Gated by `SOSW_MOTO_ENDPOINT` (see `sosw_integration_tests::moto_config`).

use crate::orchestrator_support;

use std::sync::Arc;

use serde_json::json;
use sosw::aws::lambda::{FunctionTimeouts, LambdaInvoker};
use sosw::clock::{Clock, SystemClock};
use sosw::essentials::orchestrator::{OrchestratorSettings, RunMode};
use sosw::invoke::{InvokeOutcome, Invoker, WorkerTimeouts};
use sosw::store::TaskLookup;
use sosw::task::TaskId;

use orchestrator_support::moto::moto_function;
use orchestrator_support::{config, orchestrator, sqlite_with};

#[tokio::test]
async fn event_invocations_are_accepted() {
    let Some((sdk, function)) = moto_function(42).await else {
        return;
    };
    let invoker = LambdaInvoker::from_sdk_config(&sdk);
    for n in 0..3 {
        let outcome = invoker
            .invoke(
                &function,
                &json!({"task_id": format!("t{n}"), "attempts": 0}),
            )
            .await
            .expect("invoke");
        assert_eq!(
            outcome,
            InvokeOutcome::Accepted,
            "moto answers 202 to an Event invoke"
        );
    }
    // moto's Docker-free Lambda accepts an invocation of any function name, so the refusal of a
    // missing function is pinned with aws-smithy-mocks in `sosw::aws::lambda` instead.
}

#[tokio::test]
async fn the_worker_timeout_comes_from_get_function_configuration() {
    let Some((sdk, function)) = moto_function(42).await else {
        return;
    };
    let timeouts = FunctionTimeouts::from_sdk_config(&sdk);
    assert_eq!(
        timeouts.timeout_secs(&function).await.expect("read"),
        Some(42)
    );
    let err = timeouts
        .timeout_secs(&format!("{function}-missing"))
        .await
        .expect_err("no such function");
    assert!(
        !err.is_retryable(),
        "a missing function does not appear by retrying: {err}"
    );
}

#[tokio::test]
async fn an_orchestrator_run_invokes_through_moto() {
    let Some((sdk, function)) = moto_function(60).await else {
        return;
    };
    let store = sqlite_with(&function, 25).await;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let run = orchestrator(
        store.clone(),
        Arc::new(LambdaInvoker::from_sdk_config(&sdk)),
        config(
            json!({ function.as_str(): {"max_simultaneous_invocations": 20} }),
            json!({}),
        ),
        clock.clone(),
        OrchestratorSettings {
            mode: RunMode::SinglePass,
            ..OrchestratorSettings::default()
        },
    )
    .with_worker_timeouts(Arc::new(FunctionTimeouts::from_sdk_config(&sdk)));
    let report = run
        .run(clock.now() + chrono::Duration::seconds(60))
        .await
        .expect("run");
    let entry = &report.labourers[&function];
    assert_eq!(
        (entry.desired, entry.claimed, entry.invoked),
        (20, 20, 20),
        "{entry:?}"
    );
    let first = store
        .get_task(&TaskId::for_chunk(&function, 0))
        .await
        .expect("get")
        .expect("live");
    assert_eq!(first.attempts, 1);
    let last = store
        .get_task(&TaskId::for_chunk(&function, 24))
        .await
        .expect("get")
        .expect("live");
    assert_eq!(last.attempts, 0, "beyond the 20 slots");
}
