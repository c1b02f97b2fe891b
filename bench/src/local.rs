//! `sosw-bench local`: local mode next to the machine's own limits, in one run (no emulators, no
//! Python):
//!
//! * `true`: N `/bin/true` tasks through `sosw local run` with 8 slots, against `xargs -P 8` running N
//!   `/bin/true` (target: at most 2x the wall time of xargs);
//! * `inprocess`: an in-process no-op worker through the library's local runner (target: at least
//!   10,000 tasks/s);
//! * `million`: a job of M tasks: the peak resident memory of `sosw plan` and `sosw submit` (target:
//!   150 MB each), then the run rate of the no-op worker with the M tasks queued against the rate with
//!   N queued (target: at least 80%).
//!
//! Results are printed and, with `--out DIR`, written to `DIR/performance-local.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sosw::config::StaticConfigSource;
use sosw::embedded::SqliteTaskStore;
use sosw::local::{LabourerProgress, LocalConfigs, LocalRunner, RunObserver, WorkerRegistry};
use sosw::notify::LogNotifier;
use sosw::worker::{WorkError, WorkerContext, worker_fn};
use tokio::process::Command;

use crate::{Args, BenchResult, bench_error};

/// The labourer of the command workload.
const TRUE_LABOURER: &str = "bench_true";
/// The labourer of the in-process workloads.
const NOOP_LABOURER: &str = "bench_noop";
/// Slots of the command workload (and of xargs).
const TRUE_SLOTS: u64 = 8;
/// Slots of the in-process workloads.
const NOOP_SLOTS: u64 = 64;
/// Days of the large job: it has `DAYS x sections` tasks.
const DAYS: u64 = 1000;

/// The sizes of one run.
struct Sizes {
    /// `/bin/true` tasks, in-process tasks, and the small queue of the rate comparison.
    small: u64,
    /// The large job.
    large: u64,
    /// How long each rate is measured.
    window: Duration,
}

impl Sizes {
    fn of(size: &str) -> Sizes {
        match size {
            "full" => Sizes {
                small: 20_000,
                large: 1_000_000,
                window: Duration::from_secs(10),
            },
            "quick" => Sizes {
                small: 5_000,
                large: 200_000,
                window: Duration::from_secs(5),
            },
            _ => Sizes {
                small: 1_000,
                large: 20_000,
                window: Duration::from_secs(2),
            },
        }
    }
}

/// One measured line of the report.
struct Line {
    workload: String,
    figure: String,
    target: String,
    met: Option<bool>,
}

/// Runs the selected local workloads (`--only true,inprocess,million`; all when `--only` is empty or
/// `local`).
pub async fn run(args: &Args) -> BenchResult<()> {
    let sizes = Sizes::of(&args.size);
    let selected =
        |w: &str| args.only.is_empty() || args.only.iter().any(|o| o == w || o == "local");
    if !["true", "inprocess", "million"].into_iter().any(selected) {
        return Ok(());
    }
    let dir = std::env::temp_dir().join(format!("sosw-bench-local-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut lines = Vec::new();
    let mut failures = Vec::new();
    if selected("true") {
        note(
            &mut failures,
            commands(args, &dir, sizes.small, &mut lines).await,
        );
    }
    if selected("inprocess") {
        note(
            &mut failures,
            inprocess(&dir, sizes.small, &mut lines).await,
        );
    }
    if selected("million") {
        note(&mut failures, million(args, &dir, &sizes, &mut lines).await);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let report = report(args, &sizes, &lines);
    println!("{report}");
    if !args.out.is_empty() {
        let path = Path::new(&args.out).join("performance-local.md");
        std::fs::write(&path, &report)?;
        eprintln!("wrote {}", path.display());
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; ").into())
    }
}

fn note(failures: &mut Vec<String>, outcome: BenchResult<()>) {
    if let Err(e) = outcome {
        eprintln!("sosw-bench local: {e}");
        failures.push(e.to_string());
    }
}

/// The job of `tasks` isolated sections (times `days` isolated days when `days` > 1).
fn job(labourer: &str, sections: u64, days: u64) -> Value {
    let sections: Vec<String> = (0..sections).map(|i| format!("s{i}")).collect();
    let mut job = json!({"lambda_name": labourer, "isolate_sections": true, "sections": sections});
    if days > 1 {
        job["period"] = json!(format!("last_{days}_days"));
        job["isolate_days"] = json!(true);
    }
    json!({ "job": job })
}

/// Writes the config directory of one labourer with `slots`, run as `local` says.
fn config_dir(
    dir: &Path,
    name: &str,
    labourer: &str,
    slots: u64,
    local: Value,
) -> BenchResult<PathBuf> {
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir)?;
    for (file, document) in documents(labourer, slots, local) {
        std::fs::write(dir.join(format!("{file}.json")), document.to_string())?;
    }
    Ok(dir)
}

fn documents(labourer: &str, slots: u64, local: Value) -> [(&'static str, Value); 3] {
    [
        (
            "sosw_essential_config",
            json!({"task_config": {"labourers": {labourer: {
                "max_simultaneous_invocations": slots,
                "duration": 60,
                "cooldown": 10,
                "max_attempts": 3,
            }}}}),
        ),
        (
            "sosw_scheduler_config",
            json!({"job_schema": {"chunkable_attrs": [["section", {}]]}}),
        ),
        ("sosw_local_config", local),
    ]
}

fn write_json(path: &Path, value: &Value) -> BenchResult<()> {
    std::fs::write(path, value.to_string())?;
    Ok(())
}

fn sosw_bin(args: &Args) -> PathBuf {
    Path::new(&args.bins).join("sosw")
}

/// What a child process did: its wall time and peak resident memory (sampled `VmHWM`).
struct Ran {
    wall: f64,
    peak_mb: f64,
}

/// Runs `command` to its end, stdout to /dev/null; fails with its stderr on a non-zero exit.
async fn run_child(mut command: Command) -> BenchResult<Ran> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command.spawn().map_err(bench_error)?;
    let pid = child.id();
    let mut stderr = child.stderr.take();
    let reading = tokio::spawn(async move {
        let mut text = String::new();
        if let Some(stderr) = stderr.as_mut() {
            let _ = tokio::io::AsyncReadExt::read_to_string(stderr, &mut text).await;
        }
        text
    });
    let mut peak_mb = f64::NAN;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            () = tokio::time::sleep(Duration::from_millis(20)) => {
                if let Some(mb) = pid.and_then(vm_hwm_mb) {
                    peak_mb = mb;
                }
            }
        }
    };
    let wall = started.elapsed().as_secs_f64();
    let stderr = reading.await.unwrap_or_default();
    if !status.success() {
        return Err(format!("{command:?} failed ({status}): {stderr}").into());
    }
    Ok(Ran { wall, peak_mb })
}

/// The peak resident set (`VmHWM`) of process `pid`, in MB.
fn vm_hwm_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// `tasks` `/bin/true` through `sosw local run` against `xargs -P 8`.
async fn commands(args: &Args, dir: &Path, tasks: u64, lines: &mut Vec<Line>) -> BenchResult<()> {
    let config = config_dir(
        dir,
        "true",
        TRUE_LABOURER,
        TRUE_SLOTS,
        json!({
            "commands": {TRUE_LABOURER: {"command": ["/bin/true"]}},
            "poll_interval_ms": 100,
            "scavenge_interval_ms": 1000,
        }),
    )?;
    let job_file = dir.join("true-job.json");
    write_json(&job_file, &job(TRUE_LABOURER, tasks, 1))?;
    let mut xargs = Command::new("sh");
    xargs.arg("-c").arg(format!(
        "seq 1 {tasks} | xargs -P {TRUE_SLOTS} -n 1 /bin/true"
    ));
    let baseline = run_child(xargs).await?;
    let mut sosw = Command::new(sosw_bin(args));
    sosw.args(["local", "run"])
        .arg(&job_file)
        .arg("--state")
        .arg(dir.join("true.sqlite"))
        .arg("--config")
        .arg(&config)
        .arg("--plain");
    let ours = run_child(sosw).await?;
    let ratio = ours.wall / baseline.wall;
    lines.push(Line {
        workload: format!("{tasks} `/bin/true`, {TRUE_SLOTS} slots"),
        figure: format!(
            "`sosw local run` {:.2} s ({:.0} tasks/s); `xargs -P {TRUE_SLOTS}` {:.2} s ({:.0}/s): {ratio:.2}x",
            ours.wall,
            tasks as f64 / ours.wall,
            baseline.wall,
            tasks as f64 / baseline.wall
        ),
        target: "<= 2x xargs".into(),
        met: Some(ratio <= 2.0),
    });
    Ok(())
}

/// The configs of the no-op labourer.
async fn noop_configs() -> BenchResult<LocalConfigs> {
    let mut source = StaticConfigSource::new();
    for (name, document) in documents(
        NOOP_LABOURER,
        NOOP_SLOTS,
        json!({"workers": {NOOP_LABOURER: {"worker": "noop"}}, "poll_interval_ms": 100,
               "scavenge_interval_ms": 1000}),
    ) {
        source.insert(name, document);
    }
    LocalConfigs::load(&source).await.map_err(bench_error)
}

async fn noop(_payload: Value, _ctx: WorkerContext) -> Result<Value, WorkError> {
    Ok(Value::Null)
}

/// A local runner of the no-op worker over the state file `state`.
async fn noop_runner(state: &Path) -> BenchResult<LocalRunner> {
    let registry = WorkerRegistry::new().register("noop", |_| worker_fn(noop));
    let store = Arc::new(SqliteTaskStore::open(state).map_err(bench_error)?);
    LocalRunner::new(
        store,
        noop_configs().await?,
        &registry,
        Arc::new(LogNotifier),
    )
    .map_err(bench_error)
}

struct Quiet;

impl RunObserver for Quiet {
    fn update(&self, _progress: &[LabourerProgress]) {}
}

/// Closes every task of a job of `tasks` with the in-process no-op worker; the rate of the run (the
/// scheduling before it not counted).
async fn inprocess(dir: &Path, tasks: u64, lines: &mut Vec<Line>) -> BenchResult<()> {
    let runner = noop_runner(&dir.join("inprocess.sqlite")).await?;
    let report = runner
        .submit(&job(NOOP_LABOURER, tasks, 1))
        .await
        .map_err(bench_error)?;
    let summary = runner
        .run_until_finished(&[report.job_id], &Quiet, Some(Duration::from_secs(600)))
        .await
        .map_err(bench_error)?;
    let rate = summary.tasks_per_second();
    lines.push(Line {
        workload: format!("{tasks} in-process no-op tasks, {NOOP_SLOTS} slots"),
        figure: format!(
            "{:.0} tasks/s ({} closed in {:.2} s)",
            rate,
            summary.closed_this_run,
            summary.wall.as_secs_f64()
        ),
        target: ">= 10,000 tasks/s".into(),
        met: Some(rate >= 10_000.0),
    });
    Ok(())
}

/// Peak memory of `plan` and `submit` of a job of `sizes.large` tasks, then the run rate with it
/// queued against the rate with `sizes.small` queued.
async fn million(args: &Args, dir: &Path, sizes: &Sizes, lines: &mut Vec<Line>) -> BenchResult<()> {
    let config = config_dir(
        dir,
        "noop",
        NOOP_LABOURER,
        NOOP_SLOTS,
        json!({"workers": {NOOP_LABOURER: {"worker": "noop"}}}),
    )?;
    let large = sizes.large;
    let job_file = dir.join("large-job.json");
    write_json(&job_file, &job(NOOP_LABOURER, large / DAYS, DAYS))?;
    let mut plan = Command::new(sosw_bin(args));
    plan.arg("plan").arg(&job_file).arg("--config").arg(&config);
    let planned = run_child(plan).await?;
    let large_state = dir.join("large.sqlite");
    let mut submit = Command::new(sosw_bin(args));
    submit
        .arg("submit")
        .arg(&job_file)
        .arg("--config")
        .arg(&config)
        .arg("--state")
        .arg(&large_state)
        .arg("--plain");
    let submitted = run_child(submit).await?;
    for (what, ran) in [("plan", &planned), ("submit", &submitted)] {
        lines.push(Line {
            workload: format!("`sosw {what}` of a {large}-task job"),
            figure: format!("peak {:.0} MB resident, {:.2} s", ran.peak_mb, ran.wall),
            target: "<= 150 MB".into(),
            met: Some(ran.peak_mb <= 150.0),
        });
    }
    listed_job(args, dir, &config, large, lines).await?;
    let small_state = dir.join("small.sqlite");
    let small_runner = noop_runner(&small_state).await?;
    small_runner
        .submit(&job(
            NOOP_LABOURER,
            sizes.small / DAYS.min(sizes.small),
            DAYS.min(sizes.small),
        ))
        .await
        .map_err(bench_error)?;
    let small_rate = rate_for(small_runner, sizes.window).await?;
    let large_rate = rate_for(noop_runner(&large_state).await?, sizes.window).await?;
    let ratio = large_rate / small_rate;
    lines.push(Line {
        workload: format!("run rate, {large} queued against {} queued", sizes.small),
        figure: format!(
            "{large_rate:.0} against {small_rate:.0} tasks/s over {} s each: {:.0}%",
            sizes.window.as_secs(),
            ratio * 100.0
        ),
        target: ">= 80%".into(),
        met: Some(ratio >= 0.8),
    });
    Ok(())
}

/// Peak memory of `plan` and `submit` of a job of `large` tasks whose sections are all listed in its
/// file (one task per section), where the job above lists few and multiplies them by days. The file
/// itself is then large, and a process must hold it; the target is that it is held about twice (the
/// file as read and the job taken from it), not once per step that looks at it.
async fn listed_job(
    args: &Args,
    dir: &Path,
    config: &Path,
    large: u64,
    lines: &mut Vec<Line>,
) -> BenchResult<()> {
    let job_file = dir.join("listed-job.json");
    write_json(&job_file, &job(NOOP_LABOURER, large, 1))?;
    let file_mb = std::fs::metadata(&job_file)?.len() as f64 / 1e6;
    let state = dir.join("listed.sqlite");
    for what in ["plan", "submit"] {
        let mut command = Command::new(sosw_bin(args));
        command.arg(what).arg(&job_file).arg("--config").arg(config);
        if what == "submit" {
            command.arg("--state").arg(&state).arg("--plain");
        }
        let ran = run_child(command).await?;
        let times = ran.peak_mb / file_mb;
        lines.push(Line {
            workload: format!(
                "`sosw {what}` of a {large}-task job listing its {large} sections ({file_mb:.1} MB file)"
            ),
            figure: format!(
                "peak {:.0} MB resident ({times:.0}x the file), {:.2} s",
                ran.peak_mb, ran.wall
            ),
            target: "<= 40x the file".into(),
            met: Some(times <= 40.0),
        });
    }
    Ok(())
}

/// The rate at which `runner` closes the queued tasks of its unfinished jobs during `window`.
async fn rate_for(runner: LocalRunner, window: Duration) -> BenchResult<f64> {
    let job_ids: Vec<String> = runner
        .unfinished_jobs()
        .await
        .map_err(bench_error)?
        .into_iter()
        .map(|job| job.job_id)
        .collect();
    let summary = runner
        .run_until_finished_or(&job_ids, &Quiet, None, tokio::time::sleep(window))
        .await
        .map_err(bench_error)?;
    Ok(summary.tasks_per_second())
}

fn report(args: &Args, sizes: &Sizes, lines: &[Line]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Performance: local mode against the machine's own limits\n\n\
         Written by `make bench` (`sosw-bench local`, sizes `{}`: {} small, {} large); see \
         docs/performance.md for how to read and reproduce it.\n",
        args.size, sizes.small, sizes.large
    );
    let _ = writeln!(
        out,
        "| Workload | Measured | Target | Met |\n|---|---|---|---|"
    );
    for line in lines {
        let met = match line.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "–",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {met} |",
            line.workload, line.figure, line.target
        );
    }
    out
}
