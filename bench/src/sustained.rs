//! The `sustained` workload: one labourer's sustained rate under the partition model, on sosw 0.7's
//! tables and on the lean layout, with DynamoDB's per-key limits scaled down by `--dilation`
//! (`sosw_testkit::partition::SustainedRun`, the same run as the `stores` test
//! `a_sustained_run_saturates_the_07_layout_and_the_lean_layout_sustains_a_multiple`, longer). Runs in
//! the harness's own process: the pipeline is in-process (orchestrator, workers, worker assistant,
//! scavenger), only DynamoDB Local and the partition proxy are outside it.

use std::sync::Arc;
use std::time::Duration;

use sosw::aws::dynamodb::lean::{
    LeanOptions, LeanTaskStore, create_lean_tables, delete_lean_tables,
};
use sosw::aws::dynamodb::{DynamoTaskStore, create_tables, delete_tables};
use sosw::store::TableNames;
use sosw_testkit::partition::{PartitionLimits, PartitionProxy, SustainedFigures, SustainedRun};

use crate::{BenchResult, bench_error};

/// Limits no run reaches: the proxy only counts.
const NO_LIMITS: PartitionLimits = PartitionLimits {
    write_units_per_sec: 1e12,
    read_units_per_sec: 1e12,
};

/// One configuration of the workload.
pub struct Case {
    /// The workload's name in the report.
    pub workload: String,
    /// `0.7` or `lean`.
    pub layout: &'static str,
    /// Jobs the tasks are spread over.
    pub jobs: usize,
    /// Limits scaled down (or none: the machine's own rate).
    pub scaled: bool,
}

/// The cases, in the order they run: each layout scaled down, then the machine's own rate.
///
/// The unlimited run goes last because of DynamoDB Local, not DynamoDB: once a table with a stream
/// has been written to a lot, writes to a table created after it that also has a stream are several
/// times slower, deleted or not (measured with a boto3 script: 2 ms a put on a fresh emulator, 11 ms
/// after 10,000 stream records of an earlier table, 21 ms after 20,000, 39 ms after 40,000; writes to
/// the earlier table itself stay fast). The unlimited lean run leaves about 25,000 stream records;
/// run first, it held the scaled lean runs after it to a quarter of their rate, with no key near its
/// budget. A scaled lean run leaves about a fifth of that: the scaled runs after one did not notice,
/// but the unlimited run after two made 28 real tasks/s instead of about 180. So `make bench` also
/// gives every case a fresh DynamoDB Local (`SOSW_BENCH_DYNAMODB_RESTART`, see the harness).
pub fn cases(dilation: f64) -> Vec<Case> {
    let case = |layout, jobs, scaled| {
        let what = match layout {
            "0.7" => "sosw 0.7's tables".to_owned(),
            _ => format!(
                "lean, 16 shards, {jobs} job{}",
                if jobs == 1 { "" } else { "s" }
            ),
        };
        let limits = if scaled {
            format!("limits / {dilation}")
        } else {
            "no limits: this machine".to_owned()
        };
        Case {
            workload: format!("sustained run, {what} ({limits})"),
            layout,
            jobs,
            scaled,
        }
    };
    vec![
        case("0.7", 4, true),
        case("lean", 4, true),
        case("lean", 1, true),
        case("lean", 4, false),
    ]
}

/// Runs `case` for `window` over fresh tables with `prefix`, behind a partition proxy in front of
/// DynamoDB Local at `endpoint` (limits DynamoDB's divided by `dilation`, or none).
pub async fn run_case(
    case: &Case,
    direct: &aws_sdk_dynamodb::Client,
    endpoint: &str,
    prefix: &str,
    window: Duration,
    dilation: f64,
) -> BenchResult<SustainedFigures> {
    let limits = if case.scaled {
        PartitionLimits::default().scaled_down(dilation)
    } else {
        NO_LIMITS
    };
    let proxy = PartitionProxy::start(endpoint, limits).await?;
    let through = aws_sdk_dynamodb::Client::from_conf(
        direct
            .config()
            .to_builder()
            .endpoint_url(proxy.url())
            .build(),
    );
    let run = SustainedRun::new("sustained_worker", case.jobs, window);
    if case.layout == "lean" {
        let options = LeanOptions::with_prefix(prefix).shards(16);
        create_lean_tables(direct, &options)
            .await
            .map_err(bench_error)?;
        // Job counters in batches from the table's stream, as a lean deployment keeps them.
        let streams = aws_sdk_dynamodbstreams::Client::from_conf(
            aws_sdk_dynamodbstreams::Config::builder()
                .behavior_version_latest()
                .endpoint_url(endpoint)
                .region(direct.config().region().cloned())
                .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new(
                    "bench", "bench", None, None, "bench",
                ))
                .build(),
        );
        let store = |client| {
            LeanTaskStore::new(client, options.clone())
                .map(|s| Arc::new(s.with_job_counts_from_stream(streams.clone())))
        };
        let figures = run
            .run(
                store(through).map_err(bench_error)?,
                store(direct.clone()).map_err(bench_error)?,
                &proxy,
            )
            .await;
        delete_lean_tables(direct, &options)
            .await
            .map_err(bench_error)?;
        figures.map_err(bench_error)
    } else {
        let tables = TableNames::with_prefix(prefix);
        create_tables(direct, &tables).await.map_err(bench_error)?;
        let store = |client| Arc::new(DynamoTaskStore::new(client, tables.clone()));
        let figures = run.run(store(through), store(direct.clone()), &proxy).await;
        delete_tables(direct, &tables).await.map_err(bench_error)?;
        figures.map_err(bench_error)
    }
}

/// The report's rows of one case: `(metric, value)`.
pub fn rows(case: &Case, f: &SustainedFigures) -> Vec<(&'static str, f64)> {
    let limit = PartitionLimits::default().write_units_per_sec;
    let mut rows = vec![
        ("real tasks per second", f.real_tasks_per_sec),
        // About 3 s when nothing holds a round; much longer when the requests are slow.
        (
            "longest orchestrator run (s; each stops claiming after 3 s)",
            f.longest_orchestrator_run_secs,
        ),
    ];
    if case.scaled {
        rows.extend([
            ("virtual tasks per second", f.virtual_tasks_per_sec),
            (
                "hottest key: write units per task",
                f.hottest_write_units_per_task,
            ),
            (
                "hottest key: virtual write units per second",
                f.hottest_virtual_write_units_per_sec,
            ),
            (
                "ceiling of the hottest key (1,000 / its units per task): virtual tasks per second",
                limit / f.hottest_write_units_per_task,
            ),
            (
                "hottest read key: virtual read units per second",
                f.hottest_virtual_read_units_per_sec,
            ),
            (
                "throttled writes per real second",
                f.write_throttles as f64 / f.window_secs,
            ),
            (
                "throttled reads per real second",
                f.read_throttles as f64 / f.window_secs,
            ),
        ]);
    }
    rows.extend([
        ("queue checker: tasks lost", f.check.lost.len() as f64),
        (
            "queue checker: claims delivered twice",
            f.check.duplicated.len() as f64,
        ),
        (
            "queue checker: tasks in several places (at rest: after the scavenger's pass a minute later)",
            f.check.in_several_places.len() as f64,
        ),
        (
            "moves a throttle interrupted, finished by that pass",
            f.scavenger_archived_a_minute_later as f64,
        ),
        (
            "job records: completions not counted",
            f.check.completed.saturating_sub(f.job_counted_completed) as f64,
        ),
    ]);
    rows
}
