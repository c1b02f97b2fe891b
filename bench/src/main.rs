//! `sosw-bench`: the same workloads, on the same emulators, for this implementation and Python sosw
//! 0.7, side by side (`make bench`; see docs/performance.md for what it measures and how to read it).
//!
//! ```text
//! sosw-bench run [--quick|--smoke] [--reps N] [--out DIR] [--only w1,w2] [--python PATH] [--bins DIR]
//!                [--dilation D]
//! sosw-bench local [--quick|--smoke] [--out DIR] [--only true,inprocess,million] --bins DIR
//! sosw-bench ours <enqueue|orchestrate|lifecycle|throughput|migrate> --prefix P --labourer L --tasks N ...
//! ```
//!
//! `run` needs `SOSW_DYNAMODB_ENDPOINT` (DynamoDB Local) and `SOSW_MOTO_ENDPOINT` (moto: S3 for both
//! schedulers' queue files, SNS); `local` needs nothing but the release `sosw` binary in `--bins`
//! (see [`local`]); `ours` is the child process `run` starts for this implementation.

mod harness;
mod local;
mod ours;
mod proxy;
mod receiver;
mod report;
mod sustained;

use std::process::ExitCode;

use serde_json::{Value, json};

/// Errors of the harness: reported, never a panic.
pub type BenchError = Box<dyn std::error::Error + Send + Sync>;

/// The harness's result type.
pub type BenchResult<T> = Result<T, BenchError>;

/// Wraps any error as a [`BenchError`].
pub fn bench_error(e: impl std::fmt::Display) -> BenchError {
    e.to_string().into()
}

/// The arguments of both subcommands.
#[derive(Debug, Clone)]
pub struct Args {
    /// `run` or `ours`.
    pub command: String,
    /// The workload (`ours`) or nothing.
    pub workload: String,
    /// Table prefix of this run.
    pub prefix: String,
    /// The labourer (worker function) name.
    pub labourer: String,
    /// Tasks in the job or the queue.
    pub tasks: u64,
    /// Slots of the labourer (throughput).
    pub slots: u64,
    /// The S3 bucket of the schedulers' queue files.
    pub bucket: String,
    /// Repetitions per workload and implementation.
    pub reps: usize,
    /// Sizes: `full`, `quick` or `smoke`.
    pub size: String,
    /// Where performance.md and performance.csv go (nothing written when empty).
    pub out: String,
    /// Workloads to run (all when empty).
    pub only: Vec<String>,
    /// The Python of the sosw 0.7 virtualenv.
    pub python: String,
    /// The directory of the release essentials binaries.
    pub bins: String,
    /// The table layout ours runs on (`ours` only): `0.7` (sosw 0.7's tables) or `lean`.
    pub layout: String,
    /// Shards per labourer of the lean layout.
    pub shards: u32,
    /// The lean layout closes a completed task in one move (`LeanOptions::close_on_completion`, the
    /// default; `--lean-mark` marks the completion and archives it instead).
    pub lean_close: bool,
    /// The lean layout packs queued tasks of one partition into items of about 1 KB
    /// (`LeanOptions::pack_queued`, the default; `--no-pack` writes each task as an item of its own).
    pub lean_pack: bool,
    /// The simulated workers send their event back with a completion, as workers run by sosw's
    /// worker runner do (on the lean layout the close then needs no read of the claim); `--no-echo`
    /// reports as sosw 0.7's Python workers do, with the task id alone.
    pub echo: bool,
    /// DynamoDB's per-key limits are divided by this in the `sustained` workload.
    pub dilation: f64,
    /// Tasks `sosw migrate-layout` moves at once (the `migrate` workload).
    pub concurrency: usize,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            command: String::new(),
            workload: String::new(),
            prefix: String::new(),
            labourer: "bench_worker".into(),
            tasks: 0,
            slots: 10,
            bucket: "sosw-bench".into(),
            reps: 3,
            size: "full".into(),
            out: String::new(),
            only: Vec::new(),
            python: ".tools/sosw07-venv/bin/python".into(),
            bins: String::new(),
            layout: "0.7".into(),
            shards: 4,
            lean_close: true,
            lean_pack: true,
            echo: true,
            dilation: 200.0,
            concurrency: sosw::aws::dynamodb::lean::migrate::DEFAULT_CONCURRENCY,
        }
    }
}

fn parse_args(mut raw: impl Iterator<Item = String>) -> BenchResult<Args> {
    let mut args = Args {
        command: raw.next().ok_or("usage: sosw-bench run|local|ours ...")?,
        ..Args::default()
    };
    if args.command == "ours" {
        args.workload = raw.next().ok_or("ours: which workload?")?;
    }
    while let Some(flag) = raw.next() {
        let mut value = || raw.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--prefix" => args.prefix = value()?,
            "--labourer" => args.labourer = value()?,
            "--tasks" => args.tasks = value()?.parse()?,
            "--slots" => args.slots = value()?.parse()?,
            "--bucket" => args.bucket = value()?,
            "--reps" => args.reps = value()?.parse()?,
            "--out" => args.out = value()?,
            "--only" => args.only = value()?.split(',').map(str::to_owned).collect(),
            "--python" => args.python = value()?,
            "--bins" => args.bins = value()?,
            "--layout" => args.layout = value()?,
            "--shards" => args.shards = value()?.parse()?,
            "--concurrency" => {
                args.concurrency = value()?.parse()?;
                if args.concurrency == 0 {
                    return Err("--concurrency must be at least 1".into());
                }
            }
            "--lean-mark" => args.lean_close = false,
            "--no-pack" => args.lean_pack = false,
            "--no-echo" => args.echo = false,
            "--dilation" => {
                args.dilation = value()?.parse()?;
                if !(args.dilation.is_finite() && args.dilation >= 1.0) {
                    return Err(
                        format!("--dilation must be at least 1, not {}", args.dilation).into(),
                    );
                }
            }
            "--quick" => args.size = "quick".into(),
            "--smoke" => args.size = "smoke".into(),
            other => return Err(format!("unknown argument `{other}`").into()),
        }
    }
    Ok(args)
}

/// The job both schedulers get: `tasks` isolated sections, one task each.
pub fn sections_job(labourer: &str, tasks: u64) -> Value {
    let sections: Vec<String> = (0..tasks).map(|i| format!("s{i}")).collect();
    json!({"lambda_name": labourer, "isolate_sections": true, "sections": sections})
}

/// Tells the counting proxy (`BENCH_PROXY_CONTROL`) which phase the next requests belong to.
pub async fn phase(name: &str) {
    let Ok(control) = std::env::var("BENCH_PROXY_CONTROL") else {
        return;
    };
    let _ = proxy::set_phase(&control, name).await;
}

async fn ours(args: &Args) -> BenchResult<Value> {
    match args.workload.as_str() {
        "enqueue" => ours::enqueue(args).await,
        "orchestrate" => ours::orchestrate(args).await,
        "lifecycle" => ours::lifecycle(args).await,
        "throughput" => ours::throughput(args).await,
        "migrate" => ours::migrate(args).await,
        other => Err(format!("unknown workload `{other}`").into()),
    }
}

/// A Tokio runtime: one thread, or a worker per core.
fn runtime(one_thread: bool) -> BenchResult<tokio::runtime::Runtime> {
    let mut builder = if one_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        // As `sosw` itself (the local workloads drive the library's local runner).
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(sosw::local::runtime_worker_threads());
        builder
    };
    Ok(builder.enable_all().build()?)
}

fn main() -> ExitCode {
    let outcome = match parse_args(std::env::args().skip(1)) {
        // This implementation's side runs on one thread, as the essentials' Lambda binaries do
        // (see "Runtime" in the `sosw_essentials` docs); the harness (proxy, receiver) on every core.
        Ok(args) if args.command == "ours" => runtime(true)
            .and_then(|rt| rt.block_on(ours(&args)))
            .map(|v| println!("{v}")),
        Ok(args) if args.command == "local" => {
            runtime(false).and_then(|rt| rt.block_on(local::run(&args)))
        }
        Ok(args) if args.command == "run" => {
            runtime(false).and_then(|rt| rt.block_on(harness::run(&args)))
        }
        Ok(args) => Err(format!("unknown command `{}`: run, local or ours", args.command).into()),
        Err(e) => Err(e),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sosw-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
