//! The worker's reporter invoking the worker assistant Lambda on the moto server (Lambda without
//! Docker: `Event` answers 202, `RequestResponse` echoes the payload), a report that cannot be
//! delivered (a closed port: no moto needed), and a siblings manager reading its named EventBridge rule on
//! moto.
//!
//! Skipped without `SOSW_MOTO_ENDPOINT` (failed with `SOSW_REQUIRE_EMULATORS=1`).

use crate::worker_support;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use aws_sdk_eventbridge::Client as EventsClient;
use aws_sdk_eventbridge::types::{RuleState, Target};
use aws_sdk_lambda::Client as LambdaClient;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use serde_json::{Value, json};
use sosw::aws::assistant::{LambdaAssistantReporter, ReportInvocation};
use sosw::aws::eventbridge::EventBridgeRules;
use sosw::config::SiblingsConfig;
use sosw::essentials::worker_assistant::AssistantRequest;
use sosw::invoke::{InvokeOutcome, Invoker};
use sosw::siblings::{ScheduleRules, SiblingsManager, SpawnOutcome};
use sosw::task::TaskId;
use sosw::worker::HandleEvent;
use sosw::worker::{Reporter, WorkError, WorkerContext, WorkerRunner, worker_fn};
use sosw_integration_tests::{MOTO_ENDPOINT_VAR, emulator_endpoint, moto_config, unique_prefix};
use worker_support::{event, moto};

async fn moto() -> Option<(String, aws_config::SdkConfig)> {
    let sdk = moto_config().await?;
    let endpoint = emulator_endpoint(MOTO_ENDPOINT_VAR)?;
    Some((endpoint, sdk))
}

/// Creates a function on moto (code is not run without Docker) and returns its name.
async fn function(endpoint: &str, sdk: &aws_config::SdkConfig, name: &str) -> String {
    moto::lambda_without_docker(endpoint).await;
    let prefix = unique_prefix();
    let role = moto::create_role(endpoint, &format!("{prefix}role")).await;
    let name = format!("{prefix}{name}");
    LambdaClient::new(sdk)
        .create_function()
        .function_name(&name)
        .runtime(Runtime::Python311)
        .role(role)
        .handler("index.handler")
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(b"not run".to_vec()))
                .build(),
        )
        .send()
        .await
        .expect("function created on moto");
    name
}

fn report() -> AssistantRequest {
    let mut r = AssistantRequest::completed(TaskId::new("t-moto").expect("id"));
    r.stats.insert("rows".into(), json!(1));
    r
}

#[tokio::test]
async fn reports_reach_the_assistant_function_by_either_invocation_type() {
    let Some((endpoint, sdk)) = moto().await else {
        return;
    };
    let assistant = function(&endpoint, &sdk, "sosw_worker_assistant").await;
    for invocation in [ReportInvocation::Event, ReportInvocation::RequestResponse] {
        LambdaAssistantReporter::new(&sdk, &assistant, invocation)
            .report(&report())
            .await
            .unwrap_or_else(|e| panic!("{invocation:?} report delivered: {e}"));
    }
}

#[tokio::test]
async fn a_report_that_cannot_reach_lambda_fails_the_worker_invocation() {
    // moto accepts invokes of functions that do not exist, so the failure here is a closed port; a
    // missing function and a function error are pinned with aws-smithy-mocks in the adapter's tests.
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url("http://127.0.0.1:1")
        .region(aws_config::Region::new("us-east-1"))
        .test_credentials()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let reporter =
        LambdaAssistantReporter::new(&sdk, "sosw_worker_assistant", ReportInvocation::Event);
    let err = reporter
        .report(&report())
        .await
        .expect_err("nothing listens");
    assert!(err.is_retryable(), "a connection failure may pass: {err}");

    let runner = WorkerRunner::new(
        worker_fn(|_p: Value, _ctx: WorkerContext| async { Ok::<_, WorkError>(Value::Null) }),
        Arc::new(reporter),
    );
    let payload = json!({"task_id": "t-moto", "labourer_id": "w", "created_at": 1.0,
                         "greenfield": 2000, "attempts": 0});
    let err = runner
        .handle(event(payload))
        .await
        .expect_err("not swallowed");
    assert!(err.is_retryable());
    assert!(
        err.message().contains("t-moto") && err.message().contains("could not be delivered"),
        "{err}"
    );
}

/// Records invocations instead of making them.
#[derive(Default)]
struct Recording(Mutex<Vec<(String, Value)>>);

#[async_trait]
impl Invoker for Recording {
    async fn invoke(&self, function: &str, payload: &Value) -> sosw::Result<InvokeOutcome> {
        self.0
            .lock()
            .expect("lock")
            .push((function.to_string(), payload.clone()));
        Ok(InvokeOutcome::Accepted)
    }
}

#[tokio::test]
async fn siblings_follow_their_named_rule_enabled_disabled_or_missing() {
    let Some((_endpoint, sdk)) = moto().await else {
        return;
    };
    let events = EventsClient::new(&sdk);
    let prefix = unique_prefix();
    let me = format!("arn:aws:lambda:us-east-1:123456789012:function:{prefix}scheduler");
    let orchestrator = format!("arn:aws:lambda:us-east-1:123456789012:function:{prefix}orch");
    for (suffix, state) in [("on", RuleState::Enabled), ("off", RuleState::Disabled)] {
        let name = format!("{prefix}{suffix}");
        events
            .put_rule()
            .name(&name)
            .schedule_expression("rate(1 minute)")
            .state(state)
            .send()
            .await
            .expect("rule");
        events
            .put_targets()
            .rule(&name)
            .targets(
                Target::builder()
                    .id("1")
                    .arn(&orchestrator)
                    .build()
                    .expect("target"),
            )
            .send()
            .await
            .expect("target");
    }
    let on = Arc::new(EventBridgeRules::new(&sdk, format!("{prefix}on")));
    let off = EventBridgeRules::new(&sdk, format!("{prefix}off"));
    let missing = EventBridgeRules::new(&sdk, format!("{prefix}missing"));
    assert!(on.schedule_enabled(&me).await.expect("lookup"));
    assert!(!off.schedule_enabled(&me).await.expect("lookup"));
    assert!(
        !missing.schedule_enabled(&me).await.expect("lookup"),
        "a missing rule is off, not an error"
    );

    let invoker = Arc::new(Recording::default());
    let config = SiblingsConfig::default();
    let siblings = SiblingsManager::new(invoker.clone(), Some(on), "scheduler", &config);
    let spawned = siblings
        .spawn_sibling(&json!({}), &me, json!({"file": "q"}), false)
        .await
        .expect("spawn");
    assert_eq!(spawned, SpawnOutcome::Spawned { generation: 1 });
    let guarded_off =
        SiblingsManager::new(invoker.clone(), Some(Arc::new(off)), "scheduler", &config);
    let refused = guarded_off
        .spawn_sibling(&json!({}), &me, json!({}), false)
        .await
        .expect("decides");
    assert_eq!(refused, SpawnOutcome::NoEnabledRule);
    assert_eq!(invoker.0.lock().expect("lock").len(), 1);
}
