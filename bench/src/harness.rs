//! `sosw-bench run`: starts the counting proxy and the Invoke receiver, then runs every workload for
//! both implementations, alternating which goes first, on fresh tables each time, and writes the
//! report.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sosw::aws::dynamodb::lean::{LeanOptions, create_lean_tables, delete_lean_tables};
use sosw::aws::dynamodb::{DynamoTaskStore, create_tables, delete_tables};
use sosw::store::{EnqueueMode, TableNames, TaskQueue};
use sosw::task::{Task, TaskId};
use sosw_testkit::lambda_api::RuntimeApi;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::proxy::{Proxy, Tally};
use crate::receiver::Receiver;
use crate::report::{Sample, write_report};
use crate::{Args, BenchResult, bench_error};

/// The two implementations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// This project.
    Ours,
    /// Python sosw 0.7.47 from PyPI.
    Python07,
}

impl Implementation {
    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Implementation::Ours => "sosw (Rust)",
            Implementation::Python07 => "sosw 0.7.47",
        }
    }

    /// Repetition `rep`'s order: alternating who goes first.
    fn order(rep: usize) -> [Implementation; 2] {
        if rep.is_multiple_of(2) {
            [Implementation::Ours, Implementation::Python07]
        } else {
            [Implementation::Python07, Implementation::Ours]
        }
    }
}

/// The workload sizes of a run.
#[derive(Debug, Clone)]
struct Sizes {
    /// Job sizes both schedulers run.
    enqueue_both: Vec<u64>,
    /// Larger job sizes only ours runs; sosw 0.7's figure is a computed lower bound (see
    /// [`Bench::enqueue_ours_only`]).
    enqueue_ours: Vec<u64>,
    orchestrate: u64,
    lifecycle: u64,
    /// A larger lifecycle only ours runs (on sosw 0.7's tables and the lean layout): the lean
    /// layout's fixed reads (a query per shard, per round, run and job) over more tasks a round.
    lifecycle_ours: Option<u64>,
    throughput: bool,
    /// Queued tasks `sosw migrate-layout` moves.
    migrate: u64,
    /// The measured window of each sustained run, in seconds.
    sustained_secs: u64,
}

impl Sizes {
    fn of(size: &str) -> Sizes {
        match size {
            "smoke" => Sizes {
                enqueue_both: vec![50],
                enqueue_ours: vec![],
                orchestrate: 50,
                lifecycle: 10,
                lifecycle_ours: None,
                throughput: false,
                migrate: 50,
                sustained_secs: 5,
            },
            "quick" => Sizes {
                enqueue_both: vec![1_000],
                enqueue_ours: vec![10_000],
                orchestrate: 10_000,
                lifecycle: 200,
                lifecycle_ours: Some(2_000),
                throughput: true,
                migrate: 300,
                sustained_secs: 20,
            },
            _ => Sizes {
                enqueue_both: vec![1_000],
                enqueue_ours: vec![10_000, 100_000],
                orchestrate: 10_000,
                lifecycle: 500,
                lifecycle_ours: Some(5_000),
                throughput: true,
                migrate: 1_000,
                sustained_secs: 60,
            },
        }
    }
}

/// What every workload shares: the emulators, the proxy, the receiver.
struct Bench<'a> {
    args: &'a Args,
    dynamodb: String,
    moto: String,
    proxy: Proxy,
    receiver: Receiver,
    direct: aws_sdk_dynamodb::Client,
    runs: usize,
    samples: Vec<Sample>,
    /// sosw 0.7's seconds per task in each enqueue run (for the computed lower bounds).
    python_secs_per_task: Vec<f64>,
}

fn env_var(name: &str) -> BenchResult<String> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            format!("{name} is not set: run `make bench`, which starts the emulators").into()
        })
}

/// A shell command that replaces DynamoDB Local with a fresh instance and prints
/// `SOSW_DYNAMODB_ENDPOINT=<url>`: the sustained workload runs each case on a fresh emulator when it is
/// set (`make bench` sets it when it started DynamoDB Local itself).
const RESTART_VAR: &str = "SOSW_BENCH_DYNAMODB_RESTART";

/// The command in [`RESTART_VAR`], if one is set.
fn restart_command() -> Option<String> {
    std::env::var(RESTART_VAR)
        .ok()
        .filter(|c| !c.trim().is_empty())
}

/// Runs the workloads `args` selects and writes the report.
pub async fn run(args: &Args) -> BenchResult<()> {
    let selected = |w: &str| args.only.is_empty() || args.only.iter().any(|o| o == w);
    let dynamodb = env_var("SOSW_DYNAMODB_ENDPOINT")?;
    // Only the `sustained` workload runs without moto (DynamoDB Local alone).
    let needs_moto = [
        "enqueue",
        "orchestrate",
        "lifecycle",
        "throughput",
        "coldstart",
    ]
    .iter()
    .any(|w| selected(w));
    let moto = if needs_moto {
        env_var("SOSW_MOTO_ENDPOINT")?
    } else {
        std::env::var("SOSW_MOTO_ENDPOINT").unwrap_or_default()
    };
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .test_credentials();
    if !moto.is_empty() {
        loader = loader.endpoint_url(&moto);
    }
    let sdk = loader.load().await;
    if needs_moto {
        let s3 = sosw::aws::s3::S3BlobStore::new(
            sosw::aws::s3::S3BlobStore::client(&sdk, true),
            &args.bucket,
        );
        s3.create_bucket().await.map_err(bench_error)?;
    }
    let direct = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&sdk)
            .endpoint_url(&dynamodb)
            .build(),
    );
    let mut bench = Bench {
        args,
        proxy: Proxy::start(&dynamodb).await?,
        receiver: Receiver::start().await?,
        dynamodb,
        moto,
        direct,
        runs: 0,
        samples: Vec::new(),
        python_secs_per_task: Vec::new(),
    };
    let sizes = Sizes::of(&args.size);
    let mut failures = Vec::new();
    // First, on a DynamoDB Local that holds nothing yet: the sustained runs hold only while the
    // partition model's limits, not this machine, set the rate, and DynamoDB Local slows down as the
    // other workloads fill it (a full run made 15 real tasks/s without limits after them, against
    // about 100 on a fresh emulator).
    if selected("sustained") {
        note(&mut failures, bench.sustained(sizes.sustained_secs).await);
    }
    if selected("enqueue") {
        for tasks in &sizes.enqueue_both {
            note(&mut failures, bench.enqueue(*tasks).await);
        }
        for tasks in &sizes.enqueue_ours {
            note(&mut failures, bench.enqueue_ours_only(*tasks).await);
        }
    }
    if selected("orchestrate") {
        note(&mut failures, bench.orchestrate(sizes.orchestrate).await);
    }
    if selected("lifecycle") {
        note(&mut failures, bench.lifecycle(sizes.lifecycle, true).await);
        if let Some(tasks) = sizes.lifecycle_ours {
            note(&mut failures, bench.lifecycle(tasks, false).await);
        }
    }
    if selected("migrate") {
        // `--tasks N` sizes this workload alone (to see its memory stay flat on a large queue).
        let tasks = if args.tasks > 0 {
            args.tasks
        } else {
            sizes.migrate
        };
        note(&mut failures, bench.migrate(tasks).await);
    }
    if selected("throughput") && sizes.throughput {
        note(&mut failures, bench.throughput().await);
    }
    if selected("coldstart") {
        note(&mut failures, bench.coldstart().await);
    }
    write_report(args, &bench.samples)?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "some workloads failed (the report has the others):\n{}",
            failures.join("\n")
        )
        .into())
    }
}

/// Keeps a workload's failure for the end, so the others still run and are reported.
fn note(failures: &mut Vec<String>, outcome: BenchResult<()>) {
    if let Err(e) = outcome {
        eprintln!("sosw-bench: {e}");
        failures.push(e.to_string());
    }
}

impl Bench<'_> {
    fn record(&mut self, workload: &str, metric: &str, imp: Implementation, value: f64) {
        self.push(workload, metric, imp, value, false);
    }

    /// Records a figure that was computed, not measured (labelled so in the report).
    fn computed(&mut self, workload: &str, metric: &str, imp: Implementation, value: f64) {
        self.push(workload, metric, imp, value, true);
    }

    fn push(
        &mut self,
        workload: &str,
        metric: &str,
        imp: Implementation,
        value: f64,
        computed: bool,
    ) {
        let how = if computed { " (computed)" } else { "" };
        println!("  {workload} | {metric} | {}{how}: {value:.4}", imp.name());
        self.samples.push(Sample {
            workload: workload.to_owned(),
            metric: metric.to_owned(),
            implementation: imp.name().to_owned(),
            value,
            computed,
        });
    }

    /// Fresh tables for one run; returns their prefix and names.
    async fn fresh_tables(&mut self) -> BenchResult<(String, TableNames)> {
        self.runs += 1;
        let prefix = format!("bench{}_{}_", std::process::id(), self.runs);
        let tables = TableNames::with_prefix(&prefix);
        create_tables(&self.direct, &tables)
            .await
            .map_err(bench_error)?;
        Ok((prefix, tables))
    }

    async fn drop_tables(&self, tables: &TableNames) -> BenchResult<()> {
        delete_tables(&self.direct, tables)
            .await
            .map_err(bench_error)
    }

    /// Points every AWS client of `command` at the emulators (DynamoDB at `dynamodb`, Lambda at the
    /// receiver, the rest at moto) with fixed credentials and region, and nothing from the caller's
    /// AWS profile.
    fn emulator_env(&self, command: &mut Command, dynamodb: &str) {
        command
            .env_remove("AWS_PROFILE")
            .env_remove("AWS_ENDPOINT_URL")
            .env("AWS_ENDPOINT_URL_DYNAMODB", dynamodb)
            .env("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", dynamodb)
            .env("AWS_ENDPOINT_URL_LAMBDA", &self.receiver.url)
            .env("AWS_ENDPOINT_URL_S3", &self.moto)
            .env("AWS_ENDPOINT_URL_SNS", &self.moto)
            .env("AWS_ENDPOINT_URL_EVENTBRIDGE", &self.moto)
            .env("AWS_ENDPOINT_URL_CLOUDWATCH", &self.moto)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("SOSW_S3_FORCE_PATH_STYLE", "true");
    }

    /// The process of `imp` for `workload`, talking to the proxy, the receiver and moto.
    fn command(
        &self,
        imp: Implementation,
        workload: &str,
        extra: &[String],
    ) -> BenchResult<Command> {
        let mut command = match imp {
            Implementation::Ours => {
                let mut c = Command::new(std::env::current_exe()?);
                c.arg("ours").arg(workload);
                c
            }
            Implementation::Python07 => {
                let mut c = Command::new(&self.args.python);
                c.arg("bench/python/sosw07_driver.py").arg(workload);
                c
            }
        };
        self.emulator_env(&mut command, &self.proxy.url);
        command
            .args(extra)
            .env("BENCH_PROXY_CONTROL", &self.proxy.url)
            .kill_on_drop(true);
        Ok(command)
    }

    /// Runs `imp`'s `workload` to its end; returns the JSON line it printed.
    async fn child(
        &self,
        imp: Implementation,
        workload: &str,
        extra: &[String],
    ) -> BenchResult<Value> {
        let output = self
            .command(imp, workload, extra)?
            .stdin(Stdio::null())
            .output()
            .await?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        match serde_json::from_str::<Value>(last) {
            Ok(value) if output.status.success() => Ok(value),
            _ => {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let tail: Vec<&str> = stderr.lines().rev().take(20).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                Err(format!(
                    "{} {workload} failed ({}):\n{}",
                    imp.name(),
                    output.status,
                    tail.join("\n")
                )
                .into())
            }
        }
    }

    fn run_args(&self, prefix: &str, tasks: u64) -> Vec<String> {
        vec![
            "--prefix".into(),
            prefix.into(),
            "--labourer".into(),
            self.args.labourer.clone(),
            "--tasks".into(),
            tasks.to_string(),
            "--bucket".into(),
            self.args.bucket.clone(),
        ]
    }

    async fn enqueue(&mut self, tasks: u64) -> BenchResult<()> {
        let workload = format!("enqueue {tasks} tasks");
        println!("{workload}");
        for rep in 0..self.args.reps {
            for imp in Implementation::order(rep) {
                let (secs, tally) = self.enqueue_once(imp, tasks).await?;
                let n = tasks as f64;
                self.record_enqueue(&workload, imp, secs, &tally, n);
                if imp == Implementation::Python07 {
                    self.python_secs_per_task.push(secs / n);
                }
            }
        }
        Ok(())
    }

    /// Records one enqueue run of `n` tasks: time, rate, requests and capacity units per task.
    fn record_enqueue(
        &mut self,
        workload: &str,
        imp: Implementation,
        secs: f64,
        tally: &Tally,
        n: f64,
    ) {
        self.record(workload, "wall time (s)", imp, secs);
        self.record(workload, "tasks per second", imp, n / secs);
        let per_task = [
            (
                "DynamoDB write requests per task",
                tally.write_requests as f64 / n,
            ),
            (
                "DynamoDB requests per task (all)",
                tally.requests as f64 / n,
            ),
            ("write units per task", tally.write_units / n),
            ("read units per task", tally.read_units / n),
        ];
        for (metric, value) in per_task {
            self.record(workload, metric, imp, value);
        }
    }

    /// Sizes sosw 0.7 cannot schedule here in reasonable time: before each task it reads the newest
    /// queued greenfield with a Query that has no `Limit` (only the client-side `MaxItems: 1`), so each
    /// read returns a page of up to 1 MB of the queue and the cost per task grows with the queue. Its
    /// figure is then a lower bound computed from the smaller runs' fastest time per task.
    async fn enqueue_ours_only(&mut self, tasks: u64) -> BenchResult<()> {
        let workload = format!("enqueue {tasks} tasks");
        println!("{workload}");
        let n = tasks as f64;
        for _ in 0..self.args.reps {
            let (secs, tally) = self.enqueue_once(Implementation::Ours, tasks).await?;
            self.record_enqueue(&workload, Implementation::Ours, secs, &tally, n);
        }
        let fastest = self
            .python_secs_per_task
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        if fastest.is_finite() {
            let python = Implementation::Python07;
            self.computed(&workload, "wall time (s)", python, fastest * n);
            self.computed(&workload, "tasks per second", python, 1.0 / fastest);
        }
        Ok(())
    }

    async fn enqueue_once(&mut self, imp: Implementation, tasks: u64) -> BenchResult<(f64, Tally)> {
        let (prefix, tables) = self.fresh_tables().await?;
        self.proxy.take();
        let out = self
            .child(imp, "enqueue", &self.run_args(&prefix, tasks))
            .await?;
        let tally = self.proxy.take().remove("enqueue").unwrap_or_default();
        self.drop_tables(&tables).await?;
        Ok((out["secs"].as_f64().unwrap_or(f64::NAN), tally))
    }

    /// `count` queued tasks of the labourer, written straight to DynamoDB Local (not counted).
    async fn seed(&self, tables: &TableNames, count: u64) -> BenchResult<()> {
        let store = DynamoTaskStore::new(self.direct.clone(), tables.clone());
        let now = chrono::Utc::now().timestamp() as f64;
        let tasks: Vec<Task> = (0..count)
            .map(|n| {
                let id = TaskId::for_chunk("seeded", n);
                Task::new(
                    id.as_str(),
                    &self.args.labourer,
                    json!({"n": n}),
                    2000 + 1000 * n as i64,
                    now,
                )
            })
            .collect();
        for chunk in tasks.chunks(1000) {
            store
                .enqueue(chunk, EnqueueMode::Fresh)
                .await
                .map_err(bench_error)?;
        }
        Ok(())
    }

    async fn orchestrate(&mut self, tasks: u64) -> BenchResult<()> {
        let workload = format!("orchestrate {tasks} queued tasks");
        println!("{workload}");
        for rep in 0..self.args.reps {
            for imp in Implementation::order(rep) {
                let (prefix, tables) = self.fresh_tables().await?;
                self.seed(&tables, tasks).await?;
                self.proxy.take();
                self.receiver.take();
                let out = self
                    .child(imp, "orchestrate", &self.run_args(&prefix, tasks))
                    .await?;
                let tally = self.proxy.take().remove("orchestrate").unwrap_or_default();
                let invoked = self.receiver.take();
                self.drop_tables(&tables).await?;
                if invoked != tasks {
                    return Err(
                        format!("{}: {invoked} of {tasks} tasks invoked", imp.name()).into(),
                    );
                }
                let secs = out["secs"].as_f64().unwrap_or(f64::NAN);
                self.record(&workload, "run time (s)", imp, secs);
                self.record(
                    &workload,
                    "invocations per second",
                    imp,
                    invoked as f64 / secs,
                );
                self.record(
                    &workload,
                    "DynamoDB requests per invocation",
                    imp,
                    tally.requests as f64 / invoked as f64,
                );
            }
        }
        Ok(())
    }

    /// `tasks` through their lifecycle in one job and one orchestrator round, on sosw 0.7's tables
    /// (by both implementations with `both`, else by ours alone) and on the lean layout: with
    /// `both` its four variants, else the default and its shard counts (1 and 16 beside 4).
    ///
    /// Without `both`, each case starts on a fresh DynamoDB Local when [`RESTART_VAR`] is set: a
    /// lean case leaves the emulator thousands of stream records, which slow its writes to the next
    /// lean table tenfold (see *Sustained runs* in docs/performance.md).
    async fn lifecycle(&mut self, tasks: u64, both: bool) -> BenchResult<()> {
        let workload = format!("lifecycle of {tasks} tasks");
        println!("{workload}");
        let restart = restart_command().filter(|_| !both);
        for rep in 0..self.args.reps {
            let implementations: &[Implementation] = if both {
                &Implementation::order(rep)
            } else {
                &[Implementation::Ours]
            };
            for &imp in implementations {
                if let Some(command) = &restart {
                    self.fresh_dynamodb(command).await?;
                }
                let (prefix, tables) = self.fresh_tables().await?;
                self.proxy.take();
                self.receiver.take();
                let out = self
                    .child(imp, "lifecycle", &self.run_args(&prefix, tasks))
                    .await?;
                let tallies = self.proxy.take();
                if std::env::var_os("BENCH_VERBOSE").is_some() {
                    println!("  {}: {}", imp.name(), serde_json::to_string(&tallies)?);
                }
                self.drop_tables(&tables).await?;
                if out["completed"].as_u64() != Some(tasks) {
                    return Err(format!(
                        "{}: lifecycle completed {} of {tasks}",
                        imp.name(),
                        out["completed"]
                    )
                    .into());
                }
                self.record_lifecycle(&workload, imp, &tallies, tasks as f64);
            }
            // This implementation again on the lean layout (docs/layout-lean.md), in the same run:
            // as deployed by default (a completion closes the task in one move, the worker sends
            // its event and claim receipt back), with workers that report the task id alone (sosw
            // 0.7's Python workers: the close reads the claim), and with the completion marked,
            // then archived (`SOSW_LEAN_CLOSE_ON_COMPLETION=false`); and as deployed by default with
            // one shard per labourer instead of 4 (each shard is a query per round and per
            // scavenger run: fewer fixed reads, a lower per-labourer ceiling).
            // (variant, close in one move, workers send their event back, shards, pack queued tasks)
            let variants: &[(&str, bool, bool, u32, bool)] = if both {
                &[
                    ("", true, true, 4, true),
                    (", queued tasks unpacked", true, true, 4, false),
                    (
                        ", workers reporting the task id alone",
                        true,
                        false,
                        4,
                        true,
                    ),
                    (", completion marked then archived", false, true, 4, true),
                    (", 1 shard", true, true, 1, true),
                ]
            } else {
                &[
                    ("", true, true, 4, true),
                    (", 1 shard", true, true, 1, true),
                    (", 16 shards", true, true, 16, true),
                ]
            };
            for &(variant, close, echo, shards, pack) in variants {
                if let Some(command) = &restart {
                    self.fresh_dynamodb(command).await?;
                }
                let lean_workload = format!("{workload}, lean layout{variant}");
                let (prefix, tables) = self.fresh_tables().await?;
                self.drop_tables(&tables).await?;
                let options = LeanOptions::with_prefix(&prefix);
                create_lean_tables(&self.direct, &options)
                    .await
                    .map_err(bench_error)?;
                self.proxy.take();
                self.receiver.take();
                let mut run_args = self.run_args(&prefix, tasks);
                run_args.extend([
                    "--layout".to_owned(),
                    "lean".to_owned(),
                    "--shards".to_owned(),
                    shards.to_string(),
                ]);
                if !close {
                    run_args.push("--lean-mark".to_owned());
                }
                if !echo {
                    run_args.push("--no-echo".to_owned());
                }
                if !pack {
                    run_args.push("--no-pack".to_owned());
                }
                let out = self
                    .child(Implementation::Ours, "lifecycle", &run_args)
                    .await?;
                let tallies = self.proxy.take();
                if std::env::var_os("BENCH_VERBOSE").is_some() {
                    println!("  lean{variant}: {}", serde_json::to_string(&tallies)?);
                }
                delete_lean_tables(&self.direct, &options)
                    .await
                    .map_err(bench_error)?;
                if out["completed"].as_u64() != Some(tasks) {
                    return Err(format!(
                        "lean layout{variant}: lifecycle completed {} of {tasks}",
                        out["completed"]
                    )
                    .into());
                }
                self.record_lifecycle(&lean_workload, Implementation::Ours, &tallies, tasks as f64);
            }
        }
        // The workloads after this one start on an empty emulator too.
        if let Some(command) = &restart {
            self.fresh_dynamodb(command).await?;
        }
        Ok(())
    }

    /// `sosw migrate-layout` of `tasks` queued 0.7 rows (seeded, not counted) to the lean table,
    /// one task at a time (as before 2026-12-05) and as many at once as by default, each as
    /// DynamoDB Local answers and with [`MIGRATE_LATENCY`] added to every request by the proxy (a
    /// client's round trip to AWS, which concurrency hides and DynamoDB Local on loopback lacks).
    async fn migrate(&mut self, tasks: u64) -> BenchResult<()> {
        use sosw::aws::dynamodb::lean::migrate::DEFAULT_CONCURRENCY;
        for rep in 0..self.args.reps {
            let mut cases = [
                (1, Duration::ZERO),
                (DEFAULT_CONCURRENCY, Duration::ZERO),
                (1, MIGRATE_LATENCY),
                (DEFAULT_CONCURRENCY, MIGRATE_LATENCY),
            ];
            if rep % 2 == 1 {
                cases.reverse();
            }
            for (concurrency, latency) in cases {
                let at_once = if concurrency == 1 {
                    "one at a time".to_owned()
                } else {
                    format!("{concurrency} at once")
                };
                let network = if latency.is_zero() {
                    String::new()
                } else {
                    format!(", {} ms a request added", latency.as_millis())
                };
                let workload =
                    format!("migrate-layout of {tasks} queued tasks, {at_once}{network}");
                if rep == 0 {
                    println!("{workload}");
                }
                let (prefix, tables) = self.fresh_tables().await?;
                self.seed(&tables, tasks).await?;
                let options = LeanOptions::with_prefix(&prefix);
                create_lean_tables(&self.direct, &options)
                    .await
                    .map_err(bench_error)?;
                self.proxy.take();
                self.proxy.set_latency(latency);
                let mut run_args = self.run_args(&prefix, tasks);
                run_args.extend(["--concurrency".to_owned(), concurrency.to_string()]);
                let out = self.child(Implementation::Ours, "migrate", &run_args).await;
                self.proxy.set_latency(Duration::ZERO);
                let out = out?;
                let tally = self.proxy.take().remove("migrate").unwrap_or_default();
                delete_lean_tables(&self.direct, &options)
                    .await
                    .map_err(bench_error)?;
                self.drop_tables(&tables).await?;
                if out["moved"].as_u64() != Some(tasks) {
                    return Err(format!(
                        "migrate-layout moved {} of {tasks} queued tasks",
                        out["moved"]
                    )
                    .into());
                }
                let n = tasks as f64;
                let secs = out["secs"].as_f64().unwrap_or(f64::NAN);
                let ours = Implementation::Ours;
                self.record(&workload, "run time (s)", ours, secs);
                self.record(&workload, "tasks per second", ours, n / secs);
                self.record(
                    &workload,
                    "write units per task",
                    ours,
                    tally.write_units / n,
                );
                self.record(&workload, "read units per task", ours, tally.read_units / n);
                let rss = out["peak_rss_mb"].as_f64().unwrap_or(f64::NAN);
                self.record(&workload, "peak memory (MB)", ours, rss);
            }
        }
        Ok(())
    }

    /// Records a lifecycle run's tallies by phase, by operation and in total, per task.
    fn record_lifecycle(
        &mut self,
        workload: &str,
        imp: Implementation,
        tallies: &std::collections::HashMap<String, Tally>,
        n: f64,
    ) {
        let workload = workload.to_owned();
        let mut total = Tally::default();
        let mut by_table: std::collections::BTreeMap<String, f64> = Default::default();
        for phase in ["enqueue", "claim", "complete", "archive"] {
            let t = tallies.get(phase).cloned().unwrap_or_default();
            self.record(
                &workload,
                &format!("{phase}: write units per task"),
                imp,
                t.write_units / n,
            );
            self.record(
                &workload,
                &format!("{phase}: requests per task"),
                imp,
                t.requests as f64 / n,
            );
            self.record(
                &workload,
                &format!("{phase}: read units per task"),
                imp,
                t.read_units / n,
            );
            for (operation, units) in &t.write_units_by_operation {
                self.record(
                    &format!("{workload}, by operation"),
                    &format!("{phase}: {operation} write units per task"),
                    imp,
                    units / n,
                );
            }
            for (operation, units) in &t.read_units_by_operation {
                self.record(
                    &format!("{workload}, by operation"),
                    &format!("{phase}: {operation} read units per task"),
                    imp,
                    units / n,
                );
            }
            for (table, units) in &t.write_units_by_table {
                *by_table.entry(table.clone()).or_default() += units;
            }
            total.requests += t.requests;
            total.write_units += t.write_units;
            total.read_units += t.read_units;
            total.empty_read_units += t.empty_read_units;
            total.transact_units += t.transact_units;
            total.write_requests += t.write_requests;
        }
        self.record(
            &workload,
            "total: write units per task",
            imp,
            total.write_units / n,
        );
        // Which table took the writes: on the lean layout, the task's own moves (the lean table)
        // apart from its job's record (the jobs table: creation, progress, counts, finish).
        for (table, units) in &by_table {
            self.record(
                &format!("{workload}, by table"),
                &format!("total: {table} write units per task"),
                imp,
                units / n,
            );
        }
        self.record(
            &workload,
            "total: of which in transactions",
            imp,
            total.transact_units / n,
        );
        self.record(
            &workload,
            "total: read units per task",
            imp,
            total.read_units / n,
        );
        self.record(
            &workload,
            "total: of which AWS's minimum for empty reads",
            imp,
            total.empty_read_units / n,
        );
        self.record(
            &workload,
            "total: DynamoDB requests per task",
            imp,
            total.requests as f64 / n,
        );
        self.record(
            &workload,
            "total: write requests per task",
            imp,
            total.write_requests as f64 / n,
        );
    }

    /// Ours measured; sosw 0.7's figure follows from its design: one single pass per scheduled minute,
    /// at most `max_simultaneous_invocations` invocations per pass.
    async fn throughput(&mut self) -> BenchResult<()> {
        let slots = 10;
        let workload = format!("short tasks ({slots} slots, 1 s tasks)");
        println!("{workload}");
        for _ in 0..self.args.reps.min(2) {
            let (prefix, tables) = self.fresh_tables().await?;
            self.seed(&tables, 2_000).await?;
            let mut extra = self.run_args(&prefix, 2_000);
            extra.extend(["--slots".to_owned(), slots.to_string()]);
            let out = self
                .child(Implementation::Ours, "throughput", &extra)
                .await?;
            self.proxy.take();
            self.drop_tables(&tables).await?;
            let finished = out["finished"].as_f64().unwrap_or(f64::NAN);
            self.record(
                &workload,
                "tasks finished per minute",
                Implementation::Ours,
                finished,
            );
            self.computed(
                &workload,
                "tasks finished per minute",
                Implementation::Python07,
                slots as f64,
            );
        }
        Ok(())
    }

    /// One labourer sustained under the partition model, limits scaled down by `--dilation` (see
    /// [`crate::sustained`]): each layout, one run each, then the machine's own rate.
    async fn sustained(&mut self, window_secs: u64) -> BenchResult<()> {
        let dilation = self.args.dilation;
        let restart = restart_command();
        if restart.is_none() {
            println!(
                "note: {RESTART_VAR} is not set, so every sustained case runs on the same DynamoDB \
                 Local; after a lean case its stream records slow the emulator's writes to the next \
                 lean table (see bench/src/sustained.rs). `make bench` sets it when it started \
                 DynamoDB Local itself."
            );
        }
        for case in crate::sustained::cases(dilation) {
            if let Some(command) = &restart {
                self.fresh_dynamodb(command).await?;
            }
            println!("{}", case.workload);
            self.runs += 1;
            let prefix = format!("bench{}_{}_", std::process::id(), self.runs);
            let figures = crate::sustained::run_case(
                &case,
                &self.direct,
                &self.dynamodb,
                &prefix,
                Duration::from_secs(window_secs),
                dilation,
            )
            .await?;
            println!(
                "  hottest write keys: {}",
                serde_json::to_string(&figures.top_write_keys)?
            );
            if !figures.several_places.is_empty() {
                println!("  in several places: {:?}", figures.several_places);
            }
            if std::env::var_os("BENCH_VERBOSE").is_some() {
                println!("  {}", serde_json::to_string(&figures)?);
            }
            for (metric, value) in crate::sustained::rows(&case, &figures) {
                self.record(&case.workload, metric, Implementation::Ours, value);
            }
        }
        // The workloads after this one start on an empty emulator too.
        if let Some(command) = &restart {
            self.fresh_dynamodb(command).await?;
        }
        Ok(())
    }

    /// Replaces DynamoDB Local with a fresh, empty instance by running `command` (a shell command
    /// that prints `SOSW_DYNAMODB_ENDPOINT=<url>`), and points the harness's client and counting
    /// proxy at it.
    async fn fresh_dynamodb(&mut self, command: &str) -> BenchResult<()> {
        let out = Command::new("sh")
            .args(["-c", command])
            .stderr(Stdio::inherit())
            .output()
            .await
            .map_err(|e| format!("{RESTART_VAR} (`{command}`) did not run: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!("{RESTART_VAR} (`{command}`) failed ({})", out.status).into());
        }
        let endpoint = stdout
            .lines()
            .filter_map(|l| l.trim().strip_prefix("SOSW_DYNAMODB_ENDPOINT="))
            .next_back()
            .ok_or_else(|| {
                format!(
                    "{RESTART_VAR} (`{command}`) printed no SOSW_DYNAMODB_ENDPOINT=<url> line: \
                     {stdout}"
                )
            })?
            .to_owned();
        self.direct = aws_sdk_dynamodb::Client::from_conf(
            self.direct
                .config()
                .to_builder()
                .endpoint_url(&endpoint)
                .build(),
        );
        self.proxy = Proxy::start(&endpoint).await?;
        println!("DynamoDB Local restarted, fresh and empty: {endpoint}");
        self.dynamodb = endpoint;
        Ok(())
    }

    async fn coldstart(&mut self) -> BenchResult<()> {
        // The config rows name sosw 0.7's tables, which have no key for this implementation's job
        // and ecology tables: they keep their default names here.
        self.runs += 1;
        let prefix = format!("bench{}_{}_", std::process::id(), self.runs);
        let tables = TableNames {
            jobs: TableNames::default().jobs,
            ecology: TableNames::default().ecology,
            ..TableNames::with_prefix(&prefix)
        };
        create_tables(&self.direct, &tables)
            .await
            .map_err(bench_error)?;
        self.config_table(&prefix).await?;
        let bins = if self.args.bins.is_empty() {
            std::env::current_exe()?
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        } else {
            self.args.bins.clone()
        };
        for essential in [
            "sosw_orchestrator",
            "sosw_scavenger",
            "sosw_worker_assistant",
            "sosw_scheduler",
        ] {
            let workload = format!("cold start: {essential}");
            println!("{workload}");
            for rep in 0..self.args.reps {
                for imp in Implementation::order(rep) {
                    let (ms, rss) = match imp {
                        Implementation::Ours => self.cold_ours(&bins, essential).await?,
                        Implementation::Python07 => self.cold_python(essential).await?,
                    };
                    self.record(&workload, "start to first answer (ms)", imp, ms);
                    self.record(&workload, "peak RSS (MB)", imp, rss);
                }
            }
        }
        self.drop_tables(&tables).await?;
        let _ = self
            .direct
            .delete_table()
            .table_name(CONFIG_TABLE)
            .send()
            .await;
        Ok(())
    }

    /// sosw 0.7's `config` table (a fixed name in sosw 0.7), with one row per essential naming the
    /// benchmark's tables: both implementations read these same rows at start.
    async fn config_table(&self, prefix: &str) -> BenchResult<()> {
        use aws_sdk_dynamodb::types::{
            AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
            ScalarAttributeType,
        };
        let _ = self
            .direct
            .delete_table()
            .table_name(CONFIG_TABLE)
            .send()
            .await;
        let attr = |n: &str| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let key = |n: &str, t| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(t)
                .build()
        };
        self.direct
            .create_table()
            .table_name(CONFIG_TABLE)
            .attribute_definitions(attr("env").map_err(bench_error)?)
            .attribute_definitions(attr("config_name").map_err(bench_error)?)
            .key_schema(key("env", KeyType::Hash).map_err(bench_error)?)
            .key_schema(key("config_name", KeyType::Range).map_err(bench_error)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await
            .map_err(bench_error)?;
        let task_config = json!({
            "dynamo_db_config": {"table_name": format!("{prefix}sosw_tasks")},
            "sosw_closed_tasks_table": format!("{prefix}sosw_closed_tasks"),
            "sosw_retry_tasks_table": format!("{prefix}sosw_retry_tasks"),
            "labourers": {
                self.args.labourer.as_str(): {
                    "arn": format!("arn:aws:lambda:us-east-1:000000000000:function:{}", self.args.labourer),
                    "max_simultaneous_invocations": 10,
                }
            },
        });
        let schema = json!({"chunkable_attrs": [["section", {}]]});
        let rows = [
            (
                "sosw_orchestrator_config",
                json!({"task_config": task_config}),
            ),
            ("sosw_scavenger_config", json!({"task_config": task_config})),
            // sosw 0.7's worker assistant reads the tasks table from its root `dynamo_db_config`.
            (
                "sosw_worker_assistant_config",
                json!({"task_config": task_config,
                       "dynamo_db_config": {"table_name": format!("{prefix}sosw_tasks")}}),
            ),
            (
                "sosw_scheduler_config",
                json!({"task_config": task_config, "queue_bucket": self.args.bucket,
                       "job_schema": schema, "job_schema_variants": {"default": schema}}),
            ),
        ];
        for (name, value) in rows {
            self.direct
                .put_item()
                .table_name(CONFIG_TABLE)
                .item("env", AttributeValue::S("production".into()))
                .item("config_name", AttributeValue::S(name.into()))
                .item("config_value", AttributeValue::S(value.to_string()))
                .send()
                .await
                .map_err(bench_error)?;
        }
        Ok(())
    }

    fn cold_event(&self, essential: &str) -> Value {
        match essential {
            "sosw_worker_assistant" => {
                json!({"action": "mark_task_as_completed", "task_id": "coldstart"})
            }
            // A new job at every start (a section named by the time): the first call after a cold
            // start is nearly always a job not seen before, and a resubmitted one takes another path
            // (the job record exists; its tasks are resumed, not created).
            "sosw_scheduler" => {
                let nonce = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                json!({"job": {
                    "lambda_name": self.args.labourer,
                    "isolate_sections": true,
                    "sections": [format!("cold{nonce}")],
                }})
            }
            _ => json!({"source": "aws.events", "detail-type": "Scheduled Event"}),
        }
    }

    /// Process start of a release essential to its first answer through the Runtime API.
    async fn cold_ours(&self, bins: &str, essential: &str) -> BenchResult<(f64, f64)> {
        let api = RuntimeApi::builder(essential)
            .deadline(Duration::from_secs(900))
            .start()
            .await?;
        let pending = api.queue(&self.cold_event(essential));
        let mut command = Command::new(format!("{bins}/{essential}"));
        self.cold_env(&mut command, essential);
        command
            .env("AWS_LAMBDA_RUNTIME_API", api.address().to_string())
            .env("RUST_LOG", "warn");
        let started = Instant::now();
        let mut child = command.stdin(Stdio::null()).stdout(Stdio::null()).spawn()?;
        let answer = tokio::time::timeout(Duration::from_secs(60), pending.answer()).await;
        let elapsed = started.elapsed();
        let rss = peak_rss_mb(&child);
        finish(&mut child).await;
        match answer {
            Ok(Some(answer)) if answer.is_response() => Ok((elapsed.as_secs_f64() * 1e3, rss)),
            Ok(Some(answer)) => Err(format!(
                "{essential} answered an error: {}",
                String::from_utf8_lossy(&answer.body)
            )
            .into()),
            _ => Err(format!("{essential} did not answer within 60 s").into()),
        }
    }

    /// Process start of Python (import, handler, first call) to the driver's answer.
    async fn cold_python(&self, essential: &str) -> BenchResult<(f64, f64)> {
        let mut command = self.command(
            Implementation::Python07,
            "coldstart",
            &[
                "--essential".into(),
                essential.into(),
                "--labourer".into(),
                self.args.labourer.clone(),
            ],
        )?;
        self.cold_env(&mut command, essential);
        let started = Instant::now();
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await;
        let elapsed = started.elapsed();
        let rss = peak_rss_mb(&child);
        drop(child.stdin.take());
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ =
                tokio::time::timeout(Duration::from_secs(5), e.read_to_string(&mut stderr)).await;
        }
        finish(&mut child).await;
        match line {
            Ok(Ok(Some(_))) => Ok((elapsed.as_secs_f64() * 1e3, rss)),
            _ => Err(format!("sosw 0.7 {essential} gave no answer: {stderr}").into()),
        }
    }

    /// Both cold starts: the function's name, DynamoDB Local directly (no proxy), the config table.
    fn cold_env(&self, command: &mut Command, essential: &str) {
        self.emulator_env(command, &self.dynamodb);
        command
            .env("AWS_LAMBDA_FUNCTION_NAME", essential)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("SOSW_CONFIG_TABLE", CONFIG_TABLE)
            .env_remove("BENCH_PROXY_CONTROL")
            .kill_on_drop(true);
    }
}

/// What the `migrate` workload adds to each request in its cases with a network: about a client's
/// round trip to DynamoDB in the same AWS region.
const MIGRATE_LATENCY: Duration = Duration::from_millis(4);

/// sosw 0.7 reads its config rows from a table of this fixed name.
const CONFIG_TABLE: &str = "config";

/// The child's peak resident set (`VmHWM`), in MB, or NaN when it cannot be read.
fn peak_rss_mb(child: &Child) -> f64 {
    match child.id() {
        Some(pid) => vm_hwm_mb(&format!("/proc/{pid}/status")),
        None => f64::NAN,
    }
}

/// The peak resident set (`VmHWM`) in the process status file `status`, in MB, or NaN when it
/// cannot be read.
pub fn vm_hwm_mb(status: &str) -> f64 {
    std::fs::read_to_string(status)
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|kb| kb.parse::<f64>().ok())
                })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

async fn finish(child: &mut Child) {
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
}
