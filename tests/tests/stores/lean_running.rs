//! The orchestrator over several labourers on the lean layout, on DynamoDB Local: the store counts
//! their running tasks together at the start of each round (one read of the claim shards every
//! labourer's claims share, `TaskClaims::count_running_many`), and no labourer gets more than its
//! `max_simultaneous_invocations` over runs, however many of its tasks are still running or have
//! completed since. Skipped without `SOSW_DYNAMODB_ENDPOINT` (failing instead when
//! `SOSW_REQUIRE_EMULATORS=1`).

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use serde_json::json;
use sosw::aws::dynamodb::lean::{
    LeanOptions, LeanTaskStore, create_lean_tables_without_stream, delete_lean_tables,
};
use sosw::config::{OrchestratorConfig, parse_config};
use sosw::essentials::orchestrator::OrchestratorReport;
use sosw::invoke::inprocess::{InProcessInvoker, handler_fn};
use sosw::store::{EnqueueMode, TaskClaims, TaskQueue, TaskReport, TaskReports};
use sosw::task::{Task, TaskId};
use sosw_integration_tests::{dynamodb_client, unique_prefix};
use sosw_testkit::faults::FaultyStore;

const LABOURERS: [&str; 3] = ["alpha", "beta", "gamma"];
const SLOTS: u64 = 5;

fn tasks(labourer: &str, count: usize) -> Vec<Task> {
    (0..count)
        .map(|i| {
            Task::new(
                format!("{labourer}-{i:03}"),
                labourer,
                json!({"i": i}),
                1_000 + i as i64,
                1.0,
            )
        })
        .collect()
}

type Store = FaultyStore<LeanTaskStore>;

async fn run_once(store: &Arc<Store>, invoker: &Arc<InProcessInvoker>) -> OrchestratorReport {
    let labourers: serde_json::Map<String, serde_json::Value> = LABOURERS
        .iter()
        .map(|l| {
            (
                l.to_string(),
                json!({"max_simultaneous_invocations": SLOTS, "duration": 900}),
            )
        })
        .collect();
    let config: OrchestratorConfig = parse_config(
        "sosw_orchestrator_config",
        json!({"task_config": {"labourers": labourers}}),
    )
    .expect("a valid config");
    let orchestrator =
        sosw_integration_tests::single_pass_orchestrator(store.clone(), invoker.clone(), config);
    let report = orchestrator
        .run(Utc::now() + TimeDelta::seconds(60))
        .await
        .expect("an orchestrator run");
    invoker.wait_idle().await;
    report
}

fn claimed(report: &OrchestratorReport) -> Vec<u64> {
    LABOURERS
        .iter()
        .map(|l| report.labourers.get(*l).map_or(0, |e| e.claimed))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labourers_counted_together_never_get_more_than_their_slots() {
    let Some(client) = dynamodb_client().await else {
        return;
    };
    let options = LeanOptions::with_prefix(&unique_prefix()).shards(4);
    create_lean_tables_without_stream(&client, &options)
        .await
        .expect("lean tables created on DynamoDB Local");
    // A store without faults, for its count of calls by operation.
    let store = Arc::new(FaultyStore::new(
        LeanTaskStore::new(client.clone(), options.clone()).expect("options"),
        1,
    ));
    assert!(
        store.counts_running_together(),
        "the lean layout counts running tasks together"
    );
    for labourer in LABOURERS {
        store
            .enqueue(&tasks(labourer, 12), EnqueueMode::Fresh)
            .await
            .expect("enqueued");
    }
    // Workers that never report: what they are given stays running.
    let mut invoker = InProcessInvoker::new();
    for labourer in LABOURERS {
        invoker = invoker.register(labourer, handler_fn(|_| async {}));
    }
    let invoker = Arc::new(invoker);

    let first = run_once(&store, &invoker).await;
    assert_eq!(
        claimed(&first),
        vec![SLOTS; 3],
        "every slot filled once: {first:?}"
    );
    let second = run_once(&store, &invoker).await;
    assert_eq!(
        claimed(&second),
        vec![0; 3],
        "all slots still taken: {second:?}"
    );
    for labourer in LABOURERS {
        assert_eq!(
            second.labourers[labourer].running, SLOTS,
            "{labourer}: {second:?}"
        );
    }

    // Two of alpha's tasks complete: two slots free for alpha alone.
    let now = Utc::now().timestamp();
    for i in 0..2 {
        let id = TaskId::new(format!("alpha-{i:03}")).expect("id");
        store
            .complete(&id, &TaskReport::default(), now)
            .await
            .expect("completed");
    }
    let third = run_once(&store, &invoker).await;
    assert_eq!(
        claimed(&third),
        vec![2, 0, 0],
        "alpha's two freed slots only: {third:?}"
    );
    assert_eq!(third.labourers["alpha"].running, SLOTS - 2, "{third:?}");
    let calls = store.per_operation();
    assert!(
        calls.get("count_running_many").copied().unwrap_or(0) >= 3
            && !calls.contains_key("count_running"),
        "each round counted its labourers together, none on its own: {calls:?}"
    );
    delete_lean_tables(&client, &options)
        .await
        .expect("deleted");
}
