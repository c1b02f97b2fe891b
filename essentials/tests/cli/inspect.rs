//! The reading commands (`jobs`, `job`, `tasks`, `queue`, `--output json`, `--watch`, `completions`)
//! on the state file after a run of the flaky tutorial job, and on DynamoDB Local.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use serde_json::{Value, json};
use sosw::store::{
    ClosedStatus, TaskArchive, TaskClaims, TaskLookup, TaskQueue, TaskReports, TaskRetries,
};

use super::{
    DynamoJob, FLAKY, HASHTAGS, TempDir, job_id, outcome, run, run_flaky_job, sosw, sosw_on_aws,
    text,
};

/// Every line of `stdout` parsed as one JSON object.
fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[tokio::test]
async fn jobs_job_tasks_and_queue_show_the_flaky_runs_dead_tasks_as_text_and_json() {
    let dir = TempDir::new("inspect");
    let state = dir.path("state.sqlite");
    let (code, stdout, stderr) = run_flaky_job(&state);
    assert_eq!(code, 3, "{stdout}\n{stderr}");
    let id = job_id(&stdout);
    assert!(
        stdout.contains(&format!(
            "2 dead tasks: `sosw job {id} --state {}` shows them with their errors",
            text(&state)
        )),
        "the summary names the command that shows the dead tasks: {stdout}"
    );
    let st = ["--state", text(&state)];
    let with = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(st);
        run(&all)
    };

    // `jobs`: one row, newest first, as text and as JSON lines.
    let (code, out, err) = with(&["jobs"]);
    assert_eq!(code, 0, "{err}");
    let row = out.lines().nth(1).expect("a row");
    assert!(row.starts_with(&id), "{out}");
    assert!(
        row.contains(FLAKY) && row.contains("finished_with_failures"),
        "{out}"
    );
    assert!(row.contains("36/36 100%"), "{out}");
    let (code, out, err) = with(&["jobs", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let jobs = json_lines(&out);
    assert_eq!(jobs.len(), 1, "{out}");
    let job = &jobs[0];
    assert_eq!(job["kind"], "job");
    assert_eq!(job["job_id"], json!(id));
    assert_eq!(job["labourers"], json!([FLAKY]));
    assert_eq!(job["status"], "finished_with_failures");
    assert_eq!(
        (job["total"].clone(), job["closed"].clone()),
        (json!(36), json!(36))
    );
    assert_eq!(
        (job["completed"].clone(), job["dead"].clone()),
        (json!(34), json!(2))
    );
    assert_eq!(job["progress"], json!(1.0));
    assert!(job["age_secs"].as_i64().is_some_and(|a| a >= 0), "{job}");
    for filter in [
        &["jobs", "--status", "running"][..],
        &["jobs", "--labourer", HASHTAGS],
    ] {
        let (code, out, err) = with(&[filter, &["--output", "json"]].concat());
        assert_eq!((code, out.as_str()), (0, ""), "{filter:?}: {err}");
    }
    let (_, out, _) = with(&[
        "jobs",
        "--status",
        "finished-with-failures",
        "--labourer",
        FLAKY,
    ]);
    assert!(out.contains(&id), "{out}");

    // `job`: the two dead tasks with their error; JSON carries them, `--tasks` every task.
    let (code, out, err) = with(&["job", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("failed tasks (2 shown, 2 of 2 dead"), "{out}");
    let dead_lines: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("  dead  attempts 3  "))
        .collect();
    assert_eq!(dead_lines.len(), 2, "{out}");
    assert!(
        dead_lines.iter().all(|l| !l.contains("no error recorded")),
        "each dead task shows its error: {out}"
    );
    let (code, out, err) = with(&["job", &id, "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let detail: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(detail["job_id"], json!(id));
    let failures = detail["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 2, "{detail}");
    for task in failures {
        assert_eq!(task["status"], "dead");
        assert_eq!(task["attempts"], 3);
        assert!(
            task["last_error"].as_str().is_some_and(|e| !e.is_empty()),
            "{task}"
        );
        assert!(
            task["payload_preview"]
                .as_str()
                .is_some_and(|p| p.contains("racing")),
            "{task}"
        );
    }
    assert!(detail.get("tasks").is_none(), "only with --tasks");
    let (code, out, err) = with(&["job", &id, "--tasks", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let detail: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    let tasks = detail["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 36);
    assert_eq!(
        tasks.iter().filter(|t| t["status"] == "completed").count(),
        34
    );
    assert_eq!(tasks.iter().filter(|t| t["status"] == "dead").count(), 2);
    let (code, out, _) = with(&["job", &id, "--tasks"]);
    assert_eq!(code, 0);
    assert!(out.contains("tasks (36 shown):"), "{out}");

    // `job --watch` on a finished job shows it once and returns.
    let (code, out, err) = with(&["job", &id, "--watch", "1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.matches("--- ").count(), 1, "{out}");

    // `tasks`: per status, bounded by --limit.
    let (code, out, err) = with(&["tasks", FLAKY, "--status", "dead", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let dead = json_lines(&out);
    assert_eq!(dead.len(), 2, "{out}");
    assert!(
        dead.iter()
            .all(|t| t["job_id"] == json!(id) && t["kind"] == "task")
    );
    let (code, out, err) = with(&[
        "tasks",
        FLAKY,
        "--status",
        "completed",
        "--limit",
        "5",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_lines(&out).len(), 5, "{out}");
    let (code, out, _) = with(&["tasks", FLAKY, "--status", "queued"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("no queued tasks of"), "{out}");
    let (code, _, err) = with(&["tasks", "nobody"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("`nobody` is not a configured labourer") && err.contains(FLAKY),
        "{err}"
    );
    let (code, _, err) = with(&["tasks", FLAKY, "--status", "gone"]);
    assert_eq!(code, 2);
    assert!(err.contains("`gone` is not a task status"), "{err}");

    // `queue --output json`: a line per labourer.
    let (code, out, err) = with(&["queue", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&out);
    let flaky = rows
        .iter()
        .find(|r| r["labourer_id"] == FLAKY)
        .expect("row");
    assert_eq!(
        (flaky["completed"].clone(), flaky["dead"].clone()),
        (json!(34), json!(2))
    );
    assert_eq!(flaky["kind"], "labourer");

    // `queue --watch 1` shows the queue again and again until stopped.
    let mut command = sosw(&["queue", "--watch", "1", "--state", text(&state)]);
    let mut child = command.stdout(Stdio::piped()).spawn().expect("starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut pictures = 0;
    while pictures < 2 {
        let line = lines.next().expect("more output").expect("a line");
        if line.starts_with("--- ") {
            pictures += 1;
        }
    }
    child.kill().expect("stopped");
    let _ = child.wait();

    // `redrive --job --stagger`: the job's two dead tasks back in rounds of one, a pause between them;
    // the job is running again.
    let (code, _, err) = with(&["redrive", FLAKY, "--stagger", "5 parsecs"]);
    assert_eq!(code, 2);
    assert!(err.contains("--stagger"), "{err}");
    let (code, _, err) = with(&["redrive", "--job", "no-such-job"]);
    assert_ne!(code, 0);
    assert!(err.contains("no job `no-such-job`"), "{err}");
    // By job (its dead count from the job record sets the rounds).
    let started = std::time::Instant::now();
    let (code, out, err) = with(&[
        "redrive",
        "--job",
        id.as_str(),
        "--limit",
        "1",
        "--stagger",
        "300ms",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out.matches("redriven  ").count(), 2, "{out}");
    assert_eq!(
        out.matches("waiting   300ms (--stagger) before the next 1 task(s)")
            .count(),
        1,
        "{out}"
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    assert!(out.contains("2 dead task(s) back in the queue"), "{out}");
    assert!(out.contains(&format!("reopened  job {id}")), "{out}");
    let (code, out, err) = with(&["tasks", FLAKY, "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let queued = json_lines(&out);
    assert_eq!(queued.len(), 2, "{out}");
    assert!(queued.iter().all(|t| t["status"] == "queued"), "{out}");
    let (_, out, _) = with(&["jobs", "--status", "running", "--output", "json"]);
    assert_eq!(json_lines(&out)[0]["job_id"], json!(id), "{out}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(
            out.contains("jobs") && out.contains("redrive"),
            "{shell}: {out}"
        );
    }
    let (code, _, err) = run(&["completions", "cmd"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid value 'cmd'"), "{err}");
    // `--output` belongs to the reading commands only.
    let (code, _, err) = run(&["submit", "examples/jobs/hashtags.json", "--output", "json"]);
    assert_eq!(code, 2);
    assert!(err.contains("unexpected argument '--output'"), "{err}");
}

/// An AWS call that fails says why, not only the SDK's top line (`dispatch failure`): here the
/// endpoint refuses the connection (a port nothing listens on).
#[test]
fn an_unreachable_endpoint_is_named_with_its_cause() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("address").port()
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    let (code, out, err) = outcome(sosw_on_aws(&["queue"], &endpoint));
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.starts_with("error: DynamoDB") && err.contains("Connection refused"),
        "{err}"
    );
}

/// The same commands on DynamoDB Local: the tutorial job scheduled into tables of this test's own,
/// one task dead with an error and its worker's output.
#[tokio::test]
async fn the_reading_commands_work_on_dynamodb_with_aws() {
    let Some(endpoint) =
        sosw_integration_tests::emulator_endpoint(sosw_integration_tests::DYNAMODB_ENDPOINT_VAR)
    else {
        return;
    };
    let aws_job = DynamoJob::schedule(&endpoint, "inspect-aws").await;
    let (store, report) = (&aws_job.store, &aws_job.report);
    // One task fails with output and is buried; the job counts it.
    let now = chrono::Utc::now().timestamp();
    let first = store.next_queued(HASHTAGS, now, 1).await.expect("next");
    let dead_id = first[0].task_id.clone();
    store.claim(&dead_id, now - 9000).await.expect("claim");
    let failure: sosw::store::TaskReport = serde_json::from_value(json!({
        "result": {"exit": "exit code 4", "output": "line one\nthe last words"}
    }))
    .expect("report");
    store
        .record_failure(&dead_id, &failure, now)
        .await
        .expect("failure");
    let row = store.get_task(&dead_id).await.expect("get").expect("live");
    store
        .archive(&row, ClosedStatus::Dead, now)
        .await
        .expect("archive");
    sosw::store::JobStore::add_outcomes(
        store.as_ref(),
        &report.job_id,
        sosw::store::JobCounts {
            completed: 0,
            failed: 1,
            dead: 1,
            cancelled: 0,
        },
    )
    .await
    .expect("counted");

    let aws = |args: &[&str]| aws_job.sosw(args);
    let (code, out, err) = aws(&["jobs", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let jobs = json_lines(&out);
    assert_eq!(jobs.len(), 1, "{out}");
    assert_eq!(jobs[0]["job_id"], json!(report.job_id));
    assert_eq!(
        (jobs[0]["total"].clone(), jobs[0]["dead"].clone()),
        (json!(36), json!(1))
    );
    let (code, out, err) = aws(&["jobs"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&report.job_id) && out.contains("running"),
        "{out}"
    );

    let (code, out, err) = aws(&["job", &report.job_id]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("{dead_id}  dead  attempts 1  exit code 4")),
        "{out}"
    );
    assert!(out.contains("    | the last words"), "{out}");
    let (code, out, err) = aws(&["job", &report.job_id, "--tasks", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let detail: Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(detail["failures"][0]["task_id"], json!(dead_id.to_string()));
    assert_eq!(
        detail["failures"][0]["output_tail"],
        "line one\nthe last words"
    );
    let tasks = detail["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 36);
    assert_eq!(tasks.iter().filter(|t| t["status"] == "queued").count(), 35);
    let dead_rows: Vec<&Value> = tasks.iter().filter(|t| t["status"] == "dead").collect();
    assert_eq!(dead_rows.len(), 1, "the closed row read as dead: {detail}");
    assert_eq!(dead_rows[0]["task_id"], json!(dead_id.to_string()));

    let (code, out, err) = aws(&["tasks", HASHTAGS, "--status", "dead", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let dead = json_lines(&out);
    assert_eq!(dead.len(), 1, "{out}");
    assert_eq!(dead[0]["last_error"], "exit code 4");
    assert_eq!(dead[0]["job_id"], json!(report.job_id));
    let (code, out, err) = aws(&["tasks", HASHTAGS, "--limit", "3", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(json_lines(&out).iter().all(|t| t["status"] == "queued"));
    assert_eq!(json_lines(&out).len(), 3);

    let (code, out, err) = aws(&["queue", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&out);
    assert_eq!(
        (rows[0]["queued"].clone(), rows[0]["dead"].clone()),
        (json!(35), json!(1))
    );
    assert!(rows[0].get("capped").is_none(), "every count whole: {out}");

    // One task claimed now is running; one moved to the retry table waits there; `job` of the
    // running job lists the one waiting for retry among its failures.
    let now = chrono::Utc::now().timestamp();
    let next = store.next_queued(HASHTAGS, now, 2).await.expect("next");
    store.claim(&next[0].task_id, now).await.expect("claim");
    let failure: sosw::store::TaskReport =
        serde_json::from_value(json!({"result": {"exit": "exit code 9"}})).expect("report");
    store
        .record_failure(&next[1].task_id, &failure, now)
        .await
        .expect("failure");
    let retry = store
        .get_task(&next[1].task_id)
        .await
        .expect("get")
        .expect("live");
    store
        .move_to_retry(&retry, now + 3600)
        .await
        .expect("to retry");
    for (status, id) in [("running", &next[0].task_id), ("retry", &next[1].task_id)] {
        let (code, out, err) = aws(&["tasks", HASHTAGS, "--status", status, "--output", "json"]);
        assert_eq!(code, 0, "{err}");
        let rows = json_lines(&out);
        assert_eq!(rows.len(), 1, "{status}: {out}");
        assert_eq!(rows[0]["task_id"], json!(id.to_string()), "{status}");
        assert_eq!(rows[0]["status"], status);
    }
    let (code, out, err) = aws(&["job", &report.job_id, "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let detail: Value = serde_json::from_str(out.trim()).expect("JSON");
    let statuses: Vec<&Value> = detail["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|t| &t["status"])
        .collect();
    assert_eq!(statuses, [&json!("dead"), &json!("retry")], "{detail}");
    assert_eq!(detail["failures"][1]["last_error"], "exit code 9");

    // On AWS a count stops at 1,000 (DynamoDB charges it by the items read), and says so.
    let more: Vec<sosw::task::Task> = (0..1_000)
        .map(|i| sosw::task::Task::new(format!("more-{i}"), HASHTAGS, json!({}), 1_000 + i, 1.0))
        .collect();
    store
        .enqueue(&more, sosw::store::EnqueueMode::Fresh)
        .await
        .expect("enqueued");
    let (code, out, err) = aws(&["queue", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&out);
    assert_eq!(rows[0]["queued"], json!(1_000), "{out}");
    assert_eq!(rows[0]["capped"]["queued"], json!(true), "{out}");
    let (code, out, err) = aws(&["queue"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(" 1000+ "), "{out}");
    aws_job.delete_tables().await;
}

/// `submit --aws` of a job over Lambda's 1 MB for an asynchronous invocation says so and sends
/// nothing (the endpoint is a closed port: a request made would fail with `Connection refused`).
#[test]
fn submit_with_aws_refuses_a_job_lambda_would_never_take() {
    let dir = TempDir::new("toolarge");
    let words: Vec<String> = (0..150_000).map(|i| format!("word{i}")).collect();
    let job = json!({"job": {"lambda_name": HASHTAGS, "topics": {"t": {"words": words}},
                             "isolate_topics": true, "isolate_words": true}});
    let file = dir.path("large.json");
    std::fs::write(&file, job.to_string()).expect("writes the job");
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("address").port()
    };
    let mut command = sosw_on_aws(
        &["submit", text(&file)],
        &format!("http://127.0.0.1:{port}"),
    );
    command.args(["--config", "examples/configs/local"]);
    let (code, out, err) = outcome(command);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("150000 tasks")
            && err.contains("over the 1048576 bytes (1 MB) AWS Lambda takes")
            && err.contains("nothing was sent"),
        "{err}"
    );
    assert!(!err.contains("Connection refused"), "nothing sent: {err}");
}
