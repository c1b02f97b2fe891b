//! The reliability suite: the queue checker's figures for orchestrators racing, worker and delivery
//! faults, throttling everywhere and a scheduler killed mid-job, each on SQLite and on DynamoDB Local;
//! hostile-input property tests; a virtual-clock scale simulation; and `sosw cancel` and `sosw pause`
//! under racing orchestrators.
//!
//! Sizes: reduced by default (`make test`); `SOSW_RELIABILITY_FULL=1` runs the full sizes
//! (`make reliability`, see docs/reliability.md).

/// One `#[tokio::test]` per case on each store: SQLite, sosw 0.7's tables on DynamoDB Local, and the
/// lean layout (4 shards) on DynamoDB Local. Each case is `async fn case(kind: Kind)` in the module
/// that invokes the macro, which also defines `Kind` with the variants `Sqlite`, `Dynamo` and `Lean`.
macro_rules! on_every_store {
    ($($case:ident),+ $(,)?) => {
        on_every_store!(@store sqlite Sqlite $($case),+);
        on_every_store!(@store dynamodb Dynamo $($case),+);
        on_every_store!(@store lean Lean $($case),+);
    };
    (@store $module:ident $kind:ident $($case:ident),+) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    super::$case(super::Kind::$kind).await;
                }
            )+
        }
    };
}

mod reliability {
    pub mod adaptive;
    pub mod fairness;
    pub mod hostile;
    pub mod rig;
    pub mod scenarios;
    pub mod scheduler_kills;
    pub mod simulation;
    pub mod steering;
}

#[path = "scheduler_common/mod.rs"]
mod scheduler_common;

/// Whether the full sizes were asked for (`SOSW_RELIABILITY_FULL=1`).
pub fn full() -> bool {
    std::env::var("SOSW_RELIABILITY_FULL").is_ok_and(|v| v == "1")
}

/// `full_size` under `SOSW_RELIABILITY_FULL=1`, else `reduced`.
pub fn size(reduced: u64, full_size: u64) -> u64 {
    if full() { full_size } else { reduced }
}

/// A DynamoDB Streams client for DynamoDB Local (the lean layout's job counts), or a panic naming the
/// variable: only called by lean cases, which have already found the endpoint.
pub async fn lean_streams() -> aws_sdk_dynamodbstreams::Client {
    let endpoint =
        sosw_integration_tests::emulator_endpoint(sosw_integration_tests::DYNAMODB_ENDPOINT_VAR)
            .expect("SOSW_DYNAMODB_ENDPOINT is set for the lean cases");
    sosw_integration_tests::dynamodb_streams_client_at(&endpoint).await
}
