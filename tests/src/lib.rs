//! Shared helpers of the integration tests: emulator endpoints and clients.
//!
//! Emulator-backed tests read their endpoint from the environment (`make test` starts the emulators and
//! sets it). When it is unset they are skipped with a message, unless `SOSW_REQUIRE_EMULATORS=1`
//! (set by `make test` and CI), in which case they fail: a CI run can never silently skip them.

use aws_sdk_dynamodb::Client as DynamoClient;

pub mod failed_writes;
mod seeded;
pub mod unprocessed;

/// Environment variable with the DynamoDB Local endpoint, e.g. `http://127.0.0.1:8000`.
pub const DYNAMODB_ENDPOINT_VAR: &str = "SOSW_DYNAMODB_ENDPOINT";

/// Environment variable with the moto server endpoint (S3, SNS, Lambda), e.g. `http://127.0.0.1:5000`.
pub const MOTO_ENDPOINT_VAR: &str = "SOSW_MOTO_ENDPOINT";

/// Environment variable that turns a missing emulator from a skip into a failure.
pub const REQUIRE_VAR: &str = "SOSW_REQUIRE_EMULATORS";

/// The endpoint in `var`, or `None` (after printing why) when the test should be skipped.
///
/// # Panics
/// When the endpoint is unset and `SOSW_REQUIRE_EMULATORS=1`: the test run must not pass without it.
pub fn emulator_endpoint(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let required = std::env::var(REQUIRE_VAR).is_ok_and(|v| v == "1");
            assert!(
                !required,
                "{var} is not set but {REQUIRE_VAR}=1: start the emulators with `make test`"
            );
            eprintln!("skipped: {var} is not set (run `make test` to start the emulators)");
            None
        }
    }
}

/// A DynamoDB client for DynamoDB Local at `endpoint`, with fake credentials and retries suited to tests.
pub async fn dynamodb_client_at(endpoint: &str) -> DynamoClient {
    DynamoClient::new(&emulator_config(endpoint).await)
}

/// SDK config for an emulator at `endpoint`: fake credentials, `us-east-1`.
async fn emulator_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .test_credentials()
        .load()
        .await
}

/// A DynamoDB Streams client for DynamoDB Local at `endpoint` (the lean table's stream).
pub async fn dynamodb_streams_client_at(endpoint: &str) -> aws_sdk_dynamodbstreams::Client {
    aws_sdk_dynamodbstreams::Client::new(&emulator_config(endpoint).await)
}

/// A DynamoDB Local client whose batch writes come back partly unprocessed at `unprocessed_rate`
/// (see [`unprocessed::UnprocessedItems`]) and whose single-item writes fail at `failed_write_rate`
/// (see [`failed_writes::FailedWrites`]), with handles on the interceptors' counts; `None` when the
/// test is to be skipped.
pub async fn dynamodb_client_with_faults(
    unprocessed_rate: f64,
    failed_write_rate: f64,
    seed: u64,
) -> Option<(
    DynamoClient,
    unprocessed::UnprocessedItems,
    failed_writes::FailedWrites,
)> {
    let endpoint = emulator_endpoint(DYNAMODB_ENDPOINT_VAR)?;
    let base = dynamodb_client_at(&endpoint).await;
    let unprocessed = unprocessed::UnprocessedItems::new(unprocessed_rate, seed);
    let failed = failed_writes::FailedWrites::new(failed_write_rate, seed);
    let config = base
        .config()
        .to_builder()
        .interceptor(unprocessed.clone())
        .interceptor(failed.clone())
        // The SDK's three attempts, without its backoff of a second or more between them: a failed
        // write is refused at once at every attempt, and DynamoDB Local does not throttle.
        .retry_config(
            aws_sdk_dynamodb::config::retry::RetryConfig::standard()
                .with_max_attempts(3)
                .with_initial_backoff(std::time::Duration::from_millis(1))
                .with_max_backoff(std::time::Duration::from_millis(5)),
        )
        .build();
    Some((DynamoClient::from_conf(config), unprocessed, failed))
}

/// Puts `item` into `table` as it is, unconditionally: a test writing what a store would (or what a
/// stopped store left), past the store.
///
/// # Panics
/// When DynamoDB refuses the write.
pub async fn put_raw(
    client: &DynamoClient,
    table: &str,
    item: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>,
) {
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap_or_else(|e| panic!("raw put into {table}: {e:?}"));
}

/// A DynamoDB Local client, or `None` when the test is to be skipped (see [`emulator_endpoint`]).
pub async fn dynamodb_client() -> Option<DynamoClient> {
    let endpoint = emulator_endpoint(DYNAMODB_ENDPOINT_VAR)?;
    Some(dynamodb_client_at(&endpoint).await)
}

/// AWS SDK config for the moto server (S3, SNS, Lambda), or `None` when the test is to be skipped.
/// S3 clients built from it need `force_path_style(true)`.
pub async fn moto_config() -> Option<aws_config::SdkConfig> {
    let endpoint = emulator_endpoint(MOTO_ENDPOINT_VAR)?;
    Some(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .test_credentials()
            .load()
            .await,
    )
}

/// A table-name prefix unique to one test: `t<random>_`.
pub fn unique_prefix() -> String {
    format!("t{}_", uuid_like())
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{:x}{:x}{n}", std::process::id(), nanos)
}

/// The repository's root directory.
pub fn repo_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the repository")
        .to_path_buf()
}

/// The python of Python sosw 0.7.47's virtualenv (`scripts/sosw07.sh` installs it from PyPI into
/// `.tools/`), or `None` when it cannot be installed and the test is to be skipped (failing instead when
/// `SOSW_REQUIRE_EMULATORS=1`).
pub fn sosw07_python(root: &std::path::Path) -> Option<String> {
    let out = std::process::Command::new("bash")
        .arg(root.join("scripts/sosw07.sh"))
        .arg("python")
        .output()
        .ok()?;
    let python = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() && !python.is_empty() {
        return Some(python);
    }
    let why = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        std::env::var("SOSW_REQUIRE_EMULATORS").as_deref() != Ok("1"),
        "sosw 0.7.47 could not be installed: {why}"
    );
    eprintln!("skipped: sosw 0.7.47 could not be installed: {why}");
    None
}

/// An orchestrator as the tests drive one: a single pass over `store`, invoking through `invoker`,
/// with fixed health metrics, the system clock and the labourers of `config`.
pub fn single_pass_orchestrator(
    store: std::sync::Arc<dyn sosw::essentials::orchestrator::OrchestratorStore>,
    invoker: std::sync::Arc<dyn sosw::invoke::Invoker>,
    config: sosw::config::OrchestratorConfig,
) -> sosw::essentials::orchestrator::Orchestrator {
    use sosw::essentials::orchestrator::{ConfigFeed, Orchestrator, OrchestratorSettings, RunMode};
    Orchestrator::new(
        store,
        invoker,
        std::sync::Arc::new(sosw::ecology::FixedMetrics::new()),
        ConfigFeed::fixed(config),
        std::sync::Arc::new(sosw::clock::SystemClock),
    )
    .with_settings(OrchestratorSettings {
        mode: RunMode::SinglePass,
        ..OrchestratorSettings::default()
    })
}
