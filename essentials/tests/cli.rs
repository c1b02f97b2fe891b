//! The `sosw` binary as a user runs it: every subcommand's output, its exit status, and what it left in
//! the store. Local runs use the tutorial job with short timings; the `--aws` variants of `job` and
//! `queue` run against DynamoDB Local (skipped without `SOSW_DYNAMODB_ENDPOINT`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sosw::embedded::SqliteTaskStore;
use sosw::essentials::scheduler::job_task_ids;
use sosw::store::{JobStatus, JobStore, TaskArchive, TaskClaims, TaskLookup, TaskQueue};

/// moto's Lambda without Docker: an IAM role and a function, shared with the integration tests.
#[allow(dead_code, reason = "only `moto_function` is used here")]
#[path = "../../tests/tests/orchestrator_support/moto.rs"]
mod moto;

#[path = "cli/engine.rs"]
mod engine;

const HASHTAGS: &str = "sosw_tutorial_pull_tweeter_hashtags";
const FLAKY: &str = "sosw_tutorial_flaky_hashtags";

/// The workspace root: job and worker paths in the examples are relative to it.
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A directory of its own for one test, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sosw-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, value: &Value) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, serde_json::to_vec_pretty(value).expect("json")).expect("write");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `sosw <args>` in the workspace root, with no `SOSW_*` setting inherited.
fn sosw(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sosw"));
    command.args(args).current_dir(root());
    for var in [
        "SOSW_STATE",
        "SOSW_CONFIG_DIR",
        "SOSW_AWS",
        "SOSW_LOG",
        "SOSW_PLAIN",
        "SOSW_TIMEOUT",
        "SOSW_SCHEDULER_FUNCTION",
        "SOSW_DELIVERY_LOG",
    ] {
        command.env_remove(var);
    }
    command
}

/// `sosw <args> --aws` against the emulator at `endpoint`, with fake credentials.
fn sosw_on_aws(args: &[&str], endpoint: &str) -> Command {
    let mut command = sosw(args);
    command
        .arg("--aws")
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "fake")
        .env("AWS_SECRET_ACCESS_KEY", "fake");
    command
}

fn run(args: &[&str]) -> (i32, String, String) {
    outcome(sosw(args))
}

/// Exit status, stdout and stderr of `command`.
fn outcome(mut command: Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("sosw runs");
    (
        status.code().unwrap_or(-1),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

fn text(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// The summary line of `labourer`: tasks, completed, retried, dead, re-run.
fn summary_line(stdout: &str, labourer: &str) -> [u64; 5] {
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.split_whitespace().next() == Some(labourer))
        .unwrap_or_else(|| panic!("no summary line for {labourer} in:\n{stdout}"));
    let numbers: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|n| n.parse().expect("a number"))
        .collect();
    numbers.try_into().expect("five columns")
}

/// The job id `local run` or `submit` printed.
fn job_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("job "))
        .and_then(|rest| rest.split([':', ' ']).next())
        .unwrap_or_else(|| panic!("no job id in:\n{stdout}"))
        .to_owned()
}

/// Checks in the store that every task of `job_id` is closed exactly once: one closed row, no live row,
/// no retry row, and job counters that add up to the total. Returns the closed tasks' attempts.
async fn assert_closed_exactly_once(state: &Path, job_id: &str) -> Vec<(String, u32, bool)> {
    let store = SqliteTaskStore::open(state).expect("state file");
    let job = store.get_job(job_id).await.expect("read").expect("job");
    let total = job.total.expect("chunked");
    assert_eq!(
        job.counts.completed + job.counts.dead,
        total,
        "each task counted once: {job:?}"
    );
    let mut closed = Vec::new();
    for id in job_task_ids(job_id, total) {
        assert!(
            store.get_task(&id).await.expect("read").is_none(),
            "{id} is not live"
        );
        assert!(
            store
                .get_retry_task(&job.labourer_id, &id)
                .await
                .expect("read")
                .is_none(),
            "{id} is not waiting for retry"
        );
        let task = store
            .get_closed_task(&id)
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("{id} is closed"));
        closed.push((id.to_string(), task.attempts, task.completed_at.is_some()));
    }
    closed
}

#[tokio::test]
async fn local_run_finishes_the_tutorial_job_on_the_built_in_configs() {
    let dir = TempDir::new("run");
    let state = dir.path("state.sqlite");
    let (code, stdout, stderr) = run(&[
        "local",
        "run",
        "examples/jobs/hashtags.json",
        "--state",
        text(&state),
        "--timeout",
        "120",
    ]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(summary_line(&stdout, HASHTAGS), [36, 36, 0, 0, 0]);
    assert!(stdout.contains("tasks/s"), "{stdout}");
    let id = job_id(&stdout);
    let closed = assert_closed_exactly_once(&state, &id).await;
    assert!(
        closed
            .iter()
            .all(|(_, attempts, done)| *done && *attempts == 1)
    );

    // The same job again on the same day: nothing runs twice.
    let (code, again, _) = run(&[
        "local",
        "run",
        "examples/jobs/hashtags.json",
        "--state",
        text(&state),
    ]);
    assert_eq!(code, 0, "{again}");
    assert!(again.contains("already"), "{again}");
    assert!(again.contains("0 tasks closed in this run"), "{again}");
}

/// `sosw local run` of the flaky tutorial job (36 tasks, 2 of them die) into `state`.
fn run_flaky_job(state: &Path) -> (i32, String, String) {
    run(&[
        "local",
        "run",
        "examples/jobs/flaky_hashtags.json",
        "--state",
        text(state),
        "--timeout",
        "120",
    ])
}

#[tokio::test]
async fn the_flaky_job_retries_and_buries_the_racing_tasks() {
    let dir = TempDir::new("flaky");
    let state = dir.path("state.sqlite");
    let (code, stdout, stderr) = run_flaky_job(&state);
    assert_eq!(
        code, 3,
        "dead tasks make exit status 3:\n{stdout}\n{stderr}"
    );
    let [tasks, completed, retried, dead, _] = summary_line(&stdout, FLAKY);
    assert_eq!((tasks, completed, dead), (36, 34, 2), "{stdout}");
    assert!(
        retried > dead,
        "some first attempts fail and succeed later: {stdout}"
    );
    let closed = assert_closed_exactly_once(&state, &job_id(&stdout)).await;
    let store = SqliteTaskStore::open(&state).expect("state");
    for (id, attempts, done) in closed.iter().filter(|(_, _, done)| !done) {
        let task = store
            .get_closed_task(&sosw::task::TaskId::new(id.as_str()).expect("id"))
            .await
            .expect("read")
            .expect("closed");
        assert_eq!(payload(&task.payload)["words"], json!(["racing"]), "{id}");
        assert_eq!((*attempts, *done), (3, false), "dead after max_attempts");
    }
    assert_eq!(queue_counts(&state, FLAKY), ["0", "0", "0", "34", "0", "2"]);

    // `sosw redrive <labourer>`: both dead tasks back in the queue, the job reopened; a resumed run
    // buries them again (racing always fails), each closed exactly once.
    let (code, out, err) = run(&["redrive", FLAKY, "--state", text(&state)]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("redriven")).count(),
        2,
        "{out}"
    );
    assert!(
        out.contains("reopened  job") && out.contains("(2 task(s)"),
        "{out}"
    );
    assert_eq!(queue_counts(&state, FLAKY), ["2", "0", "0", "34", "0", "0"]);
    let job = job_id(&stdout);
    let (_, shown, _) = run(&["job", &job, "--state", text(&state)]);
    assert!(
        shown.contains("running"),
        "the job is running again: {shown}"
    );
    let (code, _, _) = run(&[
        "local",
        "run",
        "--resume",
        "--state",
        text(&state),
        "--timeout",
        "120",
    ]);
    assert_eq!(code, 3, "the racing tasks die again");
    let closed = assert_closed_exactly_once(&state, &job).await;
    assert_eq!(closed.iter().filter(|(_, _, done)| !done).count(), 2);

    let (code, _, err) = run(&["redrive", "no-such-task", "--state", text(&state)]);
    assert_eq!(code, 1);
    assert!(
        err.contains("`no-such-task` is not among the closed tasks"),
        "{err}"
    );
}

/// `sosw queue`'s counts for `labourer`: queued, running, expired, completed, retry, dead.
fn queue_counts(state: &Path, labourer: &str) -> Vec<String> {
    let (code, queue, err) = run(&["queue", "--state", text(state)]);
    assert_eq!(code, 0, "{err}");
    let row = queue
        .lines()
        .find(|l| l.starts_with(labourer))
        .unwrap_or_else(|| panic!("no row for {labourer}: {queue}"));
    row.split_whitespace()
        .skip(1)
        .take(6)
        .map(str::to_owned)
        .collect()
}

/// A closed row's payload, which the store may keep as JSON text.
fn payload(value: &Value) -> Value {
    match value {
        Value::String(text) => serde_json::from_str(text).expect("JSON text"),
        other => other.clone(),
    }
}

/// A config directory for the kill test: the tutorial labourer, slower work, short expiry.
fn slow_configs(dir: &TempDir) -> PathBuf {
    let configs = dir.path("configs");
    std::fs::create_dir_all(&configs).expect("dir");
    let labourer = json!({
        "max_simultaneous_invocations": 3, "duration": 2, "cooldown": 1, "max_attempts": 3,
        "retry": {"policy": "exponential", "base_secs": 1, "cap_secs": 1}
    });
    let write = |name: &str, value: Value| {
        std::fs::write(configs.join(name), value.to_string()).expect("write");
    };
    write(
        "sosw_essential_config.json",
        json!({"task_config": {"labourers": {HASHTAGS: labourer}}}),
    );
    write(
        "sosw_scheduler_config.json",
        json!({"job_schema": {"chunkable_attrs": [["topic", {}], ["word", {}]]}}),
    );
    write(
        "sosw_local_config.json",
        json!({
            "workers": {HASHTAGS: {"worker": HASHTAGS, "work_ms": 300}},
            "poll_interval_ms": 50, "scavenge_interval_ms": 200
        }),
    );
    configs
}

#[tokio::test]
async fn a_run_killed_mid_way_resumes_and_closes_every_task_exactly_once() {
    let dir = TempDir::new("kill");
    let state = dir.path("state.sqlite");
    let configs = slow_configs(&dir);
    let log = dir.path("deliveries.jsonl");
    let args = [
        "--state",
        text(&state),
        "--config",
        text(&configs),
        "--delivery-log",
        text(&log),
    ];
    let mut first = sosw(&[&["local", "run", "examples/jobs/hashtags.json"], &args[..]].concat())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sosw starts");

    // Kill it with SIGKILL once some tasks, not all, are closed.
    let started = Instant::now();
    let closed_at_kill = loop {
        assert!(started.elapsed() < Duration::from_secs(60), "no progress");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Ok(store) = SqliteTaskStore::open(&state) else {
            continue;
        };
        let jobs = store.list_jobs(1).await.unwrap_or_default();
        if let Some(job) = jobs.first()
            && job.counts.completed >= 6
        {
            first.kill().expect("SIGKILL");
            break job.counts.completed;
        }
    };
    first.wait().expect("reaped");
    assert!(closed_at_kill < 36, "killed mid-run, not after it");

    let (code, stdout, stderr) =
        run(&[&["local", "run", "--resume", "--timeout", "120"], &args[..]].concat());
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("continuing job"), "{stdout}");
    let id = job_id(&stdout.replace("continuing job ", "job "));
    let closed = assert_closed_exactly_once(&state, &id).await;
    assert!(
        closed.iter().all(|(_, _, done)| *done),
        "every task completed"
    );
    // Only the tasks in flight at the kill (at most max_simultaneous_invocations) ran again, and the
    // summary counts exactly those re-runs.
    let reruns: u64 = closed.iter().map(|(_, a, _)| u64::from(a - 1)).sum();
    assert!(reruns <= 3, "{reruns} re-runs for 3 slots");
    let [tasks, completed, _, dead, rerun_column] = summary_line(&stdout, HASHTAGS);
    assert_eq!(
        (tasks, completed, dead, rerun_column),
        (36, 36, 0, reruns),
        "{stdout}"
    );
    let store = SqliteTaskStore::open(&state).expect("state");
    let job = store.get_job(&id).await.expect("read").expect("job");
    assert_eq!(job.status, JobStatus::Finished);

    // The queue checker over the state file and both runs' delivery log: nothing lost, unexpected or
    // in two places, no attempt delivered twice; every re-run is a later attempt after the kill.
    use sosw::testing::checker::{Delivery, FinalState, check};
    let deliveries =
        Delivery::parse_jsonl(&std::fs::read_to_string(&log).expect("log")).expect("delivery log");
    let final_state = FinalState::from_sqlite_file(&state).expect("state file");
    let report = check(
        job_task_ids(&id, 36).map(|t| t.as_str().to_owned()),
        &deliveries,
        &final_state,
    );
    assert!(report.is_sound(), "{report}");
    assert_eq!(
        (report.completed, report.dead, report.pending),
        (36, 0, 0),
        "{report}"
    );
    assert_eq!(report.redeliveries, reruns, "{report}");
    println!("queue check after SIGKILL and --resume: {report}");
}

#[tokio::test]
async fn plan_prints_one_task_per_line_for_the_pinned_day_and_writes_nothing() {
    let dir = TempDir::new("plan");
    let state = dir.path("never.sqlite");
    let (code, stdout, stderr) = run(&[
        "plan",
        "examples/jobs/hashtags.json",
        "--today",
        "2026-11-16",
        "--state",
        text(&state),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let tasks: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(tasks.len(), 36);
    assert_eq!(tasks[0]["labourer_id"], HASHTAGS);
    assert_eq!(tasks[0]["payload"]["date_list"], json!(["2026-11-14"]));
    assert_eq!(tasks[35]["payload"]["date_list"], json!(["2026-11-15"]));
    assert_eq!(tasks[35]["payload"]["words"], json!(["musical"]));
    let id = tasks[0]["task_id"].as_str().expect("id");
    assert!(id.ends_with("-20261116-0000000"), "{id}");
    assert!(stderr.contains("dry run"), "{stderr}");
    assert!(!state.exists(), "plan writes nothing");
}

#[tokio::test]
async fn submit_schedules_into_the_state_file_and_job_and_queue_show_it() {
    let dir = TempDir::new("submit");
    let state = dir.path("state.sqlite");
    let (code, stdout, stderr) = run(&[
        "submit",
        "examples/jobs/hashtags.json",
        "--state",
        text(&state),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let id = job_id(&stdout);
    assert!(stdout.contains("36 tasks"), "{stdout}");

    let (code, job, _) = run(&["job", &id, "--state", text(&state)]);
    assert_eq!(code, 0);
    assert!(job.contains("status     running"), "{job}");
    assert!(
        job.contains("tasks      36 (enqueued 36, closed 0)"),
        "{job}"
    );
    assert!(job.contains("requesters sosw submit"), "{job}");

    let (code, queue, _) = run(&["queue", "--state", text(&state)]);
    assert_eq!(code, 0);
    let row = queue
        .lines()
        .find(|l| l.starts_with(HASHTAGS))
        .expect("row");
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>()[1..],
        ["36", "0", "0", "0", "0", "0", "4", "High"],
        "{queue}"
    );

    let (code, _, missing) = run(&["job", "nope", "--state", text(&state)]);
    assert_eq!(code, 1);
    assert!(
        missing.contains(&format!("its newest jobs: {id}")),
        "{missing}"
    );
}

#[tokio::test]
async fn config_check_accepts_the_examples_and_names_a_misspelt_key() {
    let (code, stdout, _) = run(&["config", "check", "examples/configs/local"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("ok (3 labourers"), "{stdout}");

    let dir = TempDir::new("check");
    dir.write(
        "sosw_essential_config.json",
        &json!({"task_config": {"labourers": {"w": {"max_attempt": 3}}}}),
    );
    let (code, _, stderr) = run(&["config", "check", text(&dir.0)]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("sosw_essential_config")
            && stderr.contains("task_config.labourers.w.max_attempt")
            && stderr.contains("`max_attempts`"),
        "{stderr}"
    );
}

#[test]
fn bad_input_gets_an_error_that_says_what_to_do() {
    let (code, _, stderr) = run(&["local", "run", "no/such/job.json"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("examples/jobs/hashtags.json"), "{stderr}");
    let (code, _, stderr) = run(&["local", "run"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--resume"), "{stderr}");
    let (code, _, stderr) = run(&[
        "local",
        "run",
        "--resume",
        "--state",
        "no-such-state.sqlite",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("no state file"), "{stderr}");
    let (code, _, stderr) = run(&["queue", "--state", "no-such-state.sqlite"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("sosw local run"), "{stderr}");
    let (code, workers, _) = run(&["local", "workers"]);
    assert_eq!(code, 0);
    assert_eq!(workers.lines().collect::<Vec<_>>(), [FLAKY, HASHTAGS]);
    let (code, _, usage) = run(&["plan"]);
    assert_eq!(code, 2, "clap's usage error");
    assert!(usage.contains("<JOB>"), "{usage}");
}

/// The tutorial hashtags job (36 tasks of `HASHTAGS`) scheduled into tables of a test's own on
/// DynamoDB Local, with a config directory that names them.
struct DynamoJob {
    endpoint: String,
    client: aws_sdk_dynamodb::Client,
    tables: sosw::store::TableNames,
    dir: TempDir,
    store: std::sync::Arc<sosw::aws::dynamodb::DynamoTaskStore>,
    report: sosw::essentials::scheduler::SchedulerReport,
}

impl DynamoJob {
    async fn schedule(endpoint: &str, name: &str) -> Self {
        let client = sosw_integration_tests::dynamodb_client_at(endpoint).await;
        let prefix = sosw_integration_tests::unique_prefix();
        let tables = sosw::store::TableNames::with_prefix(&prefix);
        sosw::aws::dynamodb::create_tables(&client, &tables)
            .await
            .expect("tables");
        let dir = TempDir::new(name);
        let task_config = json!({"table_prefix": prefix, "labourers": {HASHTAGS: {"max_simultaneous_invocations": 2}}});
        dir.write(
            "sosw_essential_config.json",
            &json!({"task_config": task_config}),
        );
        let config: sosw::config::SchedulerConfig = sosw::config::parse_config(
            "sosw_scheduler_config",
            json!({"task_config": task_config, "job_schema": {"chunkable_attrs": [["topic", {}], ["word", {}]]}}),
        )
        .expect("config");
        let store = std::sync::Arc::new(sosw::aws::dynamodb::DynamoTaskStore::new(
            client.clone(),
            tables.clone(),
        ));
        let job: Value = serde_json::from_slice(
            &std::fs::read(root().join("examples/jobs/hashtags.json")).expect("job"),
        )
        .expect("json");
        let report = sosw::essentials::scheduler::Scheduler::new(config, store.clone())
            .run(&job, chrono::Utc::now() + chrono::TimeDelta::minutes(5))
            .await
            .expect("scheduled");
        DynamoJob {
            endpoint: endpoint.to_owned(),
            client,
            tables,
            dir,
            store,
            report,
        }
    }

    /// `sosw <args> --aws --config <its config directory>`.
    fn sosw(&self, args: &[&str]) -> (i32, String, String) {
        let mut command = sosw_on_aws(args, &self.endpoint);
        command.args(["--config", text(&self.dir.0)]);
        outcome(command)
    }

    /// The ids of the job's tasks (queued or claimed) in the 0.7 tables.
    async fn report_ids(&self) -> Vec<String> {
        let now = chrono::Utc::now().timestamp() + sosw::task::greenfield::INVOCATION_DELTA * 2;
        let mut ids: Vec<String> = self
            .store
            .next_queued(HASHTAGS, now, 1000)
            .await
            .expect("queue")
            .into_iter()
            .map(|t| t.task_id.as_str().to_owned())
            .collect();
        ids.sort();
        ids
    }

    async fn delete_tables(&self) {
        let _ = sosw::aws::dynamodb::delete_tables(&self.client, &self.tables).await;
    }
}

/// `--aws` reads DynamoDB: the tutorial job scheduled into tables of this test's own on DynamoDB
/// Local, then `job` and `queue` read it there.
#[tokio::test]
async fn job_and_queue_read_dynamodb_with_aws() {
    let Some(endpoint) =
        sosw_integration_tests::emulator_endpoint(sosw_integration_tests::DYNAMODB_ENDPOINT_VAR)
    else {
        return;
    };
    let aws_job = DynamoJob::schedule(&endpoint, "aws").await;
    let report = &aws_job.report;
    let aws = |args: &[&str]| aws_job.sosw(args);
    let (code, job_out, stderr) = aws(&["job", &report.job_id]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        job_out.contains("tasks      36 (enqueued 36, closed 0)"),
        "{job_out}"
    );
    let (code, queue, stderr) = aws(&["queue"]);
    assert_eq!(code, 0, "{stderr}");
    let row = queue
        .lines()
        .find(|l| l.starts_with(HASHTAGS))
        .expect("row");
    assert_eq!(row.split_whitespace().nth(1), Some("36"), "{queue}");

    // One task dies (claimed and archived as dead straight in the tables); `redrive --aws` brings it
    // back to the queue on DynamoDB.
    let tasks = &aws_job.store;
    let now = chrono::Utc::now().timestamp();
    let first = tasks.next_queued(HASHTAGS, now, 1).await.expect("next");
    let id = first[0].task_id.clone();
    tasks.claim(&id, now - 9000).await.expect("claim");
    let row = tasks.get_task(&id).await.expect("get").expect("live");
    tasks
        .archive(&row, sosw::store::ClosedStatus::Dead, now)
        .await
        .expect("archive");
    let (code, out, stderr) = aws(&["redrive", HASHTAGS]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains(&format!("redriven  {id}")), "{out}");
    let back = tasks.get_task(&id).await.expect("get").expect("live again");
    assert_eq!(back.attempts, 0, "a fresh task");
    aws_job.delete_tables().await;
}

/// `submit --aws` checks the job against the config, then invokes the scheduler function (moto's Lambda
/// answers an `Event` invocation with 202; it accepts one for any name, so the refusal path is not
/// exercised here).
#[tokio::test]
async fn submit_with_aws_invokes_the_scheduler_function() {
    let Some((_, function)) = moto::moto_function(60).await else {
        return;
    };
    let endpoint = std::env::var(sosw_integration_tests::MOTO_ENDPOINT_VAR).expect("endpoint");
    let mut command = sosw_on_aws(&["submit", "examples/jobs/hashtags.json"], &endpoint);
    command.args([
        "--config",
        "examples/configs/local",
        "--scheduler-function",
        &function,
    ]);
    let (code, stdout, stderr) = outcome(command);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("submitted to `{function}`")),
        "{stdout}"
    );
    assert!(stdout.contains("36 tasks"), "{stdout}");
}

/// The user guide: every JSON block read by the real parsers, every default in the config reference
/// checked against the parser's, every command marked as tested run.
mod guide {
    use super::*;
    use sosw::config::{
        OrchestratorConfig, ScavengerConfig, SchedulerConfig, WorkerAssistantConfig, parse_config,
    };
    use sosw::local::LocalConfig;

    fn guide() -> String {
        std::fs::read_to_string(root().join("docs/guide.md")).expect("docs/guide.md")
    }

    /// `(marker, body)` of every fenced block of `language`, the marker being the HTML comment on
    /// the line before the fence (empty if none).
    fn blocks(text: &str, language: &str) -> Vec<(String, String)> {
        let lines: Vec<&str> = text.lines().collect();
        let mut found = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            if lines[i].trim() == format!("```{language}") {
                let marker = i
                    .checked_sub(1)
                    .and_then(|j| lines[j].strip_prefix("<!-- "))
                    .and_then(|m| m.strip_suffix(" -->"))
                    .unwrap_or_default()
                    .to_owned();
                let end = (i + 1..lines.len())
                    .find(|&j| lines[j].trim() == "```")
                    .expect("closed fence");
                found.push((marker, lines[i + 1..end].join("\n")));
                i = end;
            }
            i += 1;
        }
        found
    }

    fn same_as_default<T>(document: &str, value: Value) -> bool
    where
        T: serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let with: T = parse_config(document, value.clone())
            .unwrap_or_else(|e| panic!("{document}: {value} is accepted: {e}"));
        let without: T = parse_config(document, json!({})).expect("defaults");
        with == without
    }

    fn nest(path: &str, leaf: Value) -> Value {
        path.rsplit('.')
            .fold(leaf, |inner, key| json!({ key: inner }))
    }

    #[tokio::test]
    async fn every_json_block_reads_with_the_real_parsers() {
        let text = guide();
        let source = sosw_essentials::cli::builtin_config_source().expect("built-in configs");
        let scheduler_config: SchedulerConfig =
            sosw::config::load_essential_config(&source, "sosw_scheduler", json!({}), None)
                .await
                .expect("scheduler config");
        let scheduler = sosw::essentials::scheduler::Scheduler::new(
            scheduler_config,
            std::sync::Arc::new(SqliteTaskStore::in_memory().expect("store")),
        );
        let json_blocks = blocks(&text, "json");
        assert!(json_blocks.len() >= 4, "the guide shows configs and a job");
        for (marker, body) in json_blocks {
            let value: Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("invalid JSON in the guide ({e}):\n{body}"));
            match marker.as_str() {
                "config: sosw_local_config" => {
                    parse_config::<LocalConfig>("sosw_local_config", value).expect("local config");
                }
                "config: sosw_essential_config" => {
                    parse_config::<OrchestratorConfig>("sosw_essential_config", value)
                        .expect("essential config");
                }
                "job" => {
                    let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 16).expect("day");
                    let plan = scheduler.plan(&value, today).expect("the job plans");
                    assert_eq!(plan.tasks.len(), 4, "2 days x 2 words");
                }
                "job-payload" => {
                    for key in ["task_id", "labourer_id", "attempts"] {
                        assert!(value.get(key).is_some(), "the payload carries `{key}`");
                    }
                    let chunk: sosw_tutorial::hashtags::HashtagChunk =
                        serde_json::from_value(value).expect("the tutorial worker reads it");
                    assert_eq!(chunk.words, ["toyota"]);
                }
                other => panic!("a JSON block in the guide has no test marker: `{other}`"),
            }
        }
    }

    #[test]
    fn every_default_in_the_config_reference_is_the_parsers() {
        let text = guide();
        let mut document = String::new();
        let mut checked = 0;
        for line in text.lines() {
            if let Some(heading) = line.strip_prefix("### ") {
                document = heading.trim().to_owned();
                continue;
            }
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let [_, key, default, _, _] = cells.as_slice() else {
                continue;
            };
            let (Some(key), Some(default)) = (
                key.strip_prefix('`').and_then(|k| k.strip_suffix('`')),
                default.strip_prefix('`').filter(|d| !d.starts_with('`')),
            ) else {
                continue;
            };
            let Some(Ok(default)) = default.split('`').next().map(serde_json::from_str::<Value>)
            else {
                continue;
            };
            if key.contains('<') {
                continue;
            }
            let value = nest(key, default.clone());
            let same = match document.as_str() {
                "task_config" | "sosw_orchestrator_config" => {
                    same_as_default::<OrchestratorConfig>(&document, value)
                }
                "sosw_scheduler_config" => same_as_default::<SchedulerConfig>(&document, value),
                "sosw_scavenger_config" => same_as_default::<ScavengerConfig>(&document, value),
                "sosw_worker_assistant_config" => {
                    same_as_default::<WorkerAssistantConfig>(&document, value)
                }
                "sosw_local_config" => same_as_default::<LocalConfig>(&document, value),
                _ => continue,
            };
            assert!(
                same,
                "{document}: `{key}` defaults to {default}, as the guide says"
            );
            checked += 1;
        }
        assert!(checked >= 25, "only {checked} defaults checked");
    }

    #[test]
    fn the_commands_marked_as_tested_run() {
        let dir = TempDir::new("guide");
        let state = dir.path("state.sqlite");
        let text = guide();
        let mut ran = 0;
        for (marker, body) in blocks(&text, "sh") {
            if marker != "tested" {
                continue;
            }
            for line in body.lines() {
                let (command, comment) = line.split_once('#').unwrap_or((line, ""));
                let words: Vec<&str> = command.split_whitespace().collect();
                let Some((&"sosw", args)) = words.split_first() else {
                    panic!("a tested line runs sosw: {line}");
                };
                let output = sosw(args)
                    .env("SOSW_STATE", &state)
                    .output()
                    .expect("sosw runs");
                let expected = if comment.contains("exit 3") { 3 } else { 0 };
                assert_eq!(
                    output.status.code(),
                    Some(expected),
                    "{line}\n{}\n{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                );
                ran += 1;
            }
        }
        assert!(ran >= 7, "only {ran} commands ran");
    }
}

// ---- Local mode is never silent (issue 16): every case runs the binary and checks its message and
// exit status.

/// A small job on `labourer`: 2 days x 2 words = 4 tasks.
fn small_job(dir: &TempDir, labourer: &str) -> PathBuf {
    dir.write(
        "job.json",
        &json!({"job": {
            "lambda_name": labourer, "period": "last_2_days", "isolate_days": true,
            "isolate_topics": true, "isolate_words": true,
            "topics": {"cars": {"isolate_words": true, "words": ["toyota", "mazda"]}}
        }}),
    )
}

/// A config directory (`<dir>/configs`) whose only labourer is HASHTAGS, run as `command` (with the
/// extra keys of `extra`), under the labourer settings `labourer`.
fn command_configs(dir: &TempDir, command: Value, extra: Value, labourer: Value) -> PathBuf {
    let configs = dir.path("configs");
    std::fs::create_dir_all(&configs).expect("dir");
    let mut entry = json!({"command": command});
    if let (Some(entry), Some(extra)) = (entry.as_object_mut(), extra.as_object()) {
        entry.extend(extra.clone());
    }
    let write = |name: &str, value: Value| {
        std::fs::write(configs.join(name), value.to_string()).expect("write");
    };
    write(
        "sosw_essential_config.json",
        json!({"task_config": {"labourers": {HASHTAGS: labourer}}}),
    );
    write(
        "sosw_scheduler_config.json",
        json!({"job_schema": {"chunkable_attrs": [["topic", {}], ["word", {}]]}}),
    );
    write(
        "sosw_local_config.json",
        json!({"commands": {HASHTAGS: entry}, "poll_interval_ms": 20, "scavenge_interval_ms": 100}),
    );
    configs
}

/// An executable shell script `name` in `dir` with `body`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Exit status, stdout and stderr of `command`, failing the test if it has not ended, and closed
/// both pipes, within `limit` (a worker's child holding sosw's stdout would keep them open).
fn outcome_within(mut command: Command, limit: Duration) -> (i32, String, String) {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sosw starts");
    wait_within(child, limit)
}

fn wait_within(mut child: std::process::Child, limit: Duration) -> (i32, String, String) {
    use std::io::Read;
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    for (n, mut stream) in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .enumerate()
    .filter_map(|(n, s)| s.map(|s| (n, s)))
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stream.read_to_string(&mut text);
            let _ = tx.send((n, text));
        });
    }
    drop(tx);
    let mut texts = [String::new(), String::new()];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        match rx.recv_timeout(left) {
            Ok((n, text)) => texts[n] = text,
            // Every stream read to its end.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("sosw or its output did not end within {limit:?}");
            }
        }
    }
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("sosw did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let [stdout, stderr] = texts;
    (status.code().unwrap_or(-1), stdout, stderr)
}

/// Processes whose environment holds `marker` (the worker processes of one test and their children).
fn processes_with(marker: &str) -> Vec<String> {
    let needle = format!("SOSW_TEST_MARKER={marker}");
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter(|entry| {
            std::fs::read(entry.path().join("environ"))
                .map(|env| env.split(|b| *b == 0).any(|var| var == needle.as_bytes()))
                .unwrap_or(false)
        })
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect()
}

fn marker(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

#[test]
fn a_worker_that_cannot_start_is_a_config_error_before_any_task_runs() {
    let dir = TempDir::new("cannot-start");
    let job = small_job(&dir, HASHTAGS);
    let labourer = json!({"max_simultaneous_invocations": 2, "duration": 5, "cooldown": 1});
    let not_executable = dir.path("configs").join("not-executable.sh");
    let cases = [
        (json!(["./missing.sh"]), "No such file"),
        (json!(["./not-executable.sh"]), "not executable"),
        (json!(["no-such-program-sosw-test"]), "not found in PATH"),
        (json!([]), "empty command"),
    ];
    for (command, reason) in cases {
        let configs = command_configs(&dir, command.clone(), json!({}), labourer.clone());
        std::fs::write(&not_executable, "#!/bin/sh\nexit 0\n").expect("write");
        let (code, _, stderr) = run(&["config", "check", text(&configs)]);
        assert_eq!(code, 1, "config check refuses {command}: {stderr}");
        assert!(
            stderr.contains(HASHTAGS) && stderr.contains(reason),
            "config check names the labourer and why: {stderr}"
        );
        let state = dir.path("state.sqlite");
        let _ = std::fs::remove_file(&state);
        let mut command_line = sosw(&[
            "local",
            "run",
            text(&job),
            "--config",
            text(&configs),
            "--state",
            text(&state),
        ]);
        command_line.stdin(Stdio::null());
        let started = Instant::now();
        let (code, stdout, stderr) = outcome_within(command_line, Duration::from_secs(30));
        assert_eq!(code, 1, "the run stops: {stdout}\n{stderr}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "at once, not after claiming the tasks again and again"
        );
        assert!(
            stderr.contains(&format!("labourer `{HASHTAGS}`")) && stderr.contains(reason),
            "{command}: {stderr}"
        );
        if let Some(program) = command.get(0).and_then(Value::as_str) {
            let program = program.trim_start_matches("./");
            assert!(stderr.contains(program), "the command is named: {stderr}");
        }
    }
}

#[test]
fn relative_command_paths_resolve_against_the_config_directory() {
    let dir = TempDir::new("relative");
    let job = small_job(&dir, HASHTAGS);
    let configs = command_configs(
        &dir,
        json!(["./worker.sh", "data.txt"]),
        json!({}),
        json!({"max_simultaneous_invocations": 2, "duration": 5, "cooldown": 1}),
    );
    // The worker reads a file named relative to the config directory, where it runs.
    script(&configs, "worker.sh", "cat > /dev/null; test -f \"$1\"");
    std::fs::write(configs.join("data.txt"), "x").expect("write");
    let (code, stdout, _) = run(&["config", "check", text(&configs)]);
    assert_eq!(code, 0, "{stdout}");
    let state = dir.path("state.sqlite");
    // Run from another directory than the workspace root and the config directory.
    let mut command = sosw(&[
        "local",
        "run",
        text(&job),
        "--config",
        text(&configs),
        "--state",
        text(&state),
        "--timeout",
        "60",
    ]);
    command.current_dir(std::env::temp_dir());
    let (code, stdout, stderr) = outcome(command);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(summary_line(&stdout, HASHTAGS), [4, 4, 0, 0, 0]);
}

#[test]
fn the_python_example_runs_from_another_directory() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("python3 is not installed: skipped");
        return;
    }
    let dir = TempDir::new("python");
    let state = dir.path("state.sqlite");
    let job = root().join("examples/jobs/python_hashtags.json");
    let configs = root().join("examples/configs/local");
    let mut command = sosw(&[
        "local",
        "run",
        text(&job),
        "--config",
        text(&configs),
        "--state",
        text(&state),
        "--timeout",
        "120",
    ]);
    command.current_dir(&dir.0);
    let (code, stdout, stderr) = outcome(command);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let [tasks, completed, _, dead, _] = summary_line(&stdout, "sosw_tutorial_python_hashtags");
    assert_eq!((completed, dead), (tasks, 0), "{stdout}");
}

#[tokio::test]
async fn a_timeout_ends_the_workers_children_and_the_dead_tasks_keep_their_output() {
    let dir = TempDir::new("group");
    let job = small_job(&dir, HASHTAGS);
    let marker = marker("group");
    let configs = command_configs(
        &dir,
        json!(["./wrapper.sh"]),
        json!({"timeout_secs": 1, "env": {"SOSW_TEST_MARKER": marker}}),
        json!({"max_simultaneous_invocations": 4, "duration": 30, "cooldown": 1, "max_attempts": 1}),
    );
    // A wrapper that starts a long child (which inherits stdout) and waits for it.
    script(
        &configs,
        "wrapper.sh",
        "cat > /dev/null; echo wrapper says hello; echo and complains >&2; sleep 300 & wait",
    );
    let state = dir.path("state.sqlite");
    let command = sosw(&[
        "local",
        "run",
        text(&job),
        "--config",
        text(&configs),
        "--state",
        text(&state),
        "--timeout",
        "60",
    ]);
    let (code, stdout, stderr) = outcome_within(command, Duration::from_secs(60));
    assert_eq!(code, 3, "every task timed out and died: {stdout}\n{stderr}");
    assert_eq!(summary_line(&stdout, HASHTAGS), [4, 0, 0, 4, 0]);
    assert!(
        !stdout.contains("wrapper says hello") && !stderr.contains("wrapper says hello"),
        "worker output is not mixed into sosw's: {stdout}\n{stderr}"
    );
    assert_eq!(
        processes_with(&marker),
        Vec::<String>::new(),
        "no child outlives sosw"
    );

    // The dead tasks keep how their process ended and its last lines; `sosw job` shows them.
    let id = job_id(&stdout);
    let (code, shown, err) = run(&["job", &id, "--state", text(&state)]);
    assert_eq!(code, 0, "{err}");
    assert!(shown.contains("timed out"), "{shown}");
    assert!(
        shown.contains("wrapper says hello") && shown.contains("and complains"),
        "{shown}"
    );
    let store = SqliteTaskStore::open(&state).expect("state");
    let first = job_task_ids(&id, 4).next().expect("a task");
    let task = store
        .get_closed_task(&first)
        .await
        .expect("read")
        .expect("closed");
    assert_eq!(task.extra.get("result_exit"), Some(&json!("timed out")));
    // stdout and stderr are read side by side: their lines come in the order they arrive.
    let output = task.extra.get("result_output").and_then(Value::as_str);
    let mut lines: Vec<&str> = output.unwrap_or_default().lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["and complains", "wrapper says hello"], "{output:?}");
}

#[test]
fn ctrl_c_stops_the_workers_says_how_to_resume_and_exits_130() {
    let dir = TempDir::new("sigint");
    let job = small_job(&dir, HASHTAGS);
    let marker = marker("sigint");
    let configs = command_configs(
        &dir,
        json!(["./wrapper.sh"]),
        json!({"env": {"SOSW_TEST_MARKER": marker}}),
        json!({"max_simultaneous_invocations": 2, "duration": 30, "cooldown": 1}),
    );
    script(&configs, "wrapper.sh", "cat > /dev/null; sleep 300 & wait");
    let state = dir.path("state.sqlite");
    let child = sosw(&[
        "local",
        "run",
        text(&job),
        "--config",
        text(&configs),
        "--state",
        text(&state),
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("sosw starts");
    let started = Instant::now();
    while processes_with(&marker).len() < 4 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the workers did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let (code, stdout, stderr) = wait_within(child, Duration::from_secs(30));
    assert_eq!(code, 130, "{stdout}\n{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "sosw local run --resume --state {} --config {}",
            text(&state),
            text(&configs)
        )),
        "{stderr}"
    );
    assert!(stdout.contains("0 tasks closed in this run"), "{stdout}");
    assert_eq!(
        processes_with(&marker),
        Vec::<String>::new(),
        "the workers are gone"
    );
}

#[test]
fn a_run_that_can_never_progress_says_why_instead_of_waiting() {
    let dir = TempDir::new("stuck");
    let job = small_job(&dir, HASHTAGS);
    let state = dir.path("state.sqlite");
    let worker = json!(["sh", "-c", "cat > /dev/null"]);

    // A paused labourer.
    let configs = command_configs(
        &dir,
        worker.clone(),
        json!({}),
        json!({"max_simultaneous_invocations": 0}),
    );
    let command = sosw(&[
        "local",
        "run",
        text(&job),
        "--config",
        text(&configs),
        "--state",
        text(&state),
    ]);
    let (code, stdout, stderr) = outcome_within(command, Duration::from_secs(30));
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("paused")
            && stderr.contains(&format!(
                "task_config.labourers.{HASHTAGS}.max_simultaneous_invocations"
            ))
            && stderr.contains("--resume"),
        "{stderr}"
    );

    // The same state resumed with a config whose labourers do not include the job's.
    let other = TempDir::new("stuck-other");
    let other_configs = other.path("configs");
    std::fs::create_dir_all(&other_configs).expect("dir");
    std::fs::write(
        other_configs.join("sosw_essential_config.json"),
        json!({"task_config": {"labourers": {"another": {}}}}).to_string(),
    )
    .expect("write");
    std::fs::write(
        other_configs.join("sosw_local_config.json"),
        json!({"commands": {"another": {"command": worker}}}).to_string(),
    )
    .expect("write");
    let command = sosw(&[
        "local",
        "run",
        "--resume",
        "--config",
        text(&other_configs),
        "--state",
        text(&state),
    ]);
    let (code, stdout, stderr) = outcome_within(command, Duration::from_secs(30));
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("labourer `{HASHTAGS}`"))
            && stderr.contains("task_config.labourers")
            && stderr.contains("--config"),
        "{stderr}"
    );

    // A configured labourer with no worker and no command.
    std::fs::write(
        other_configs.join("sosw_local_config.json"),
        json!({}).to_string(),
    )
    .expect("write");
    let (code, _, stderr) = run(&["config", "check", text(&other_configs)]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("labourer `another` has no way to run"),
        "{stderr}"
    );
    let command = sosw(&[
        "local",
        "run",
        "--resume",
        "--config",
        text(&other_configs),
        "--state",
        text(&state),
    ]);
    let (code, stdout, stderr) = outcome_within(command, Duration::from_secs(30));
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stderr.contains("labourer `another` has no way to run here")
            && stderr.contains("sosw_local_config"),
        "{stderr}"
    );
}

#[test]
fn two_runs_on_one_state_file_count_each_task_once() {
    let dir = TempDir::new("two-runs");
    let state = dir.path("state.sqlite");
    let start = || {
        sosw(&[
            "local",
            "run",
            "examples/jobs/hashtags.json",
            "--state",
            text(&state),
            "--plain",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sosw starts")
    };
    let (first, second) = (start(), start());
    let mut closed = 0;
    for child in [first, second] {
        let (code, stdout, stderr) = wait_within(child, Duration::from_secs(120));
        assert_eq!(code, 0, "{stdout}\n{stderr}");
        let count: u64 = stdout
            .lines()
            .find_map(|l| {
                l.split(", ")
                    .nth(1)?
                    .strip_suffix(" tasks closed in this run")
            })
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count in {stdout}"));
        closed += count;
    }
    assert_eq!(closed, 36, "the two runs together closed each task once");
}

#[test]
fn no_command_panics_on_a_closed_stdout() {
    // The reading end is closed before sosw writes: every write fails with EPIPE.
    let mut child = sosw(&["plan", "examples/jobs/hashtags.json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sosw starts");
    drop(child.stdout.take());
    let (code, _, stderr) = wait_within(child, Duration::from_secs(30));
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    // As a user types it.
    let (code, stdout, stderr) = outcome({
        let mut shell = Command::new("bash");
        shell
            .args([
                "-c",
                &format!(
                    "set -o pipefail; {} plan examples/jobs/hashtags.json | head -1",
                    env!("CARGO_BIN_EXE_sosw")
                ),
            ])
            .current_dir(root());
        shell
    });
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The reading commands: `jobs`, `job`, `tasks`, `queue`, JSON output, `--watch`, completions.
#[path = "cli/inspect.rs"]
mod inspect;

/// `sosw dashboard`: refusals, pages on a real port, redrive with the CSRF token, the token, `--aws`.
#[path = "cli/dashboard.rs"]
mod dashboard;
/// The steering commands: `cancel`, `pause`, `resume`.
#[path = "cli/migrate.rs"]
mod migrate;

#[path = "cli/steer.rs"]
mod steer;
