//! The steering commands (`cancel`, `pause`, `resume`) on the state file and, with `--aws`, on
//! DynamoDB Local: their messages, exit statuses and what they leave in the store.

use serde_json::{Value, json};
use sosw::store::{JobStatus, JobStore, LabourerControl, TaskLookup};

use super::{DynamoJob, HASHTAGS, TempDir, job_id, outcome, run, sosw_on_aws, text};

/// Every line of `stdout` parsed as one JSON object.
fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A state file with the tutorial job submitted (36 queued tasks of `HASHTAGS`); its job id.
fn submitted(dir: &TempDir, name: &str) -> (std::path::PathBuf, String) {
    let state = dir.path(name);
    let (code, out, err) = run(&[
        "submit",
        "examples/jobs/hashtags.json",
        "--state",
        text(&state),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    (state, job_id(&out))
}

#[tokio::test]
async fn cancel_closes_a_submitted_jobs_tasks_once_and_names_an_unknown_job() {
    let dir = TempDir::new("cancel");
    let (state, id) = submitted(&dir, "state.sqlite");
    let with = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--state", text(&state)]);
        run(&all)
    };

    let (code, out, err) = with(&["cancel", &id]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "cancelled job {id}: 36 queued and 0 waiting task(s) closed as cancelled, 0 running \
             task(s) left to finish"
        )),
        "{out}"
    );
    assert!(out.contains("notified  sosw submit"), "{out}");

    let (code, out, err) = with(&["cancel", &id]);
    assert_eq!(code, 0, "a second cancel is a no-op: {err}");
    assert_eq!(
        out.trim(),
        format!("job {id} was already cancelled: nothing to do")
    );
    let (code, out, err) = with(&["cancel", &id, "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(report["kind"], "cancel");
    assert_eq!(report["outcome"], "already_cancelled");
    assert_eq!(report["already_closed"], 36);

    let (code, out, err) = with(&["jobs", "--status", "cancelled", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let jobs = json_lines(&out);
    assert_eq!(jobs.len(), 1, "{out}");
    assert_eq!(jobs[0]["job_id"], json!(id));
    assert_eq!(jobs[0]["status"], "cancelled");
    assert_eq!(
        (jobs[0]["cancelled"].clone(), jobs[0]["closed"].clone()),
        (json!(36), json!(36))
    );
    let (code, out, err) = with(&[
        "tasks",
        HASHTAGS,
        "--status",
        "cancelled",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let tasks = json_lines(&out);
    assert_eq!(tasks.len(), 36, "{out}");
    assert!(tasks.iter().all(|t| t["status"] == "cancelled"), "{out}");
    let (code, out, _) = with(&["tasks", HASHTAGS, "--output", "json"]);
    assert_eq!((code, out.as_str()), (0, ""), "nothing is queued any more");
    let (code, out, err) = with(&["job", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("status     cancelled") && out.contains("cancelled  36"),
        "{out}"
    );

    let store = sosw::embedded::SqliteTaskStore::open(&state).expect("state");
    let job = store.get_job(&id).await.expect("read").expect("job");
    assert_eq!(job.status, JobStatus::Cancelled);
    assert_eq!(job.counts.cancelled, 36);
    assert!(job.finished_at.is_some());

    let (code, out, err) = with(&["cancel", "no-such-job"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("there is no job `no-such-job`") && err.contains("sosw jobs"),
        "{err}"
    );
}

#[tokio::test]
async fn pause_and_resume_a_labourer_on_the_state_file() {
    let dir = TempDir::new("pause");
    let (state, id) = submitted(&dir, "state.sqlite");
    let with = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--state", text(&state)]);
        run(&all)
    };

    let (code, out, err) = with(&["pause", HASHTAGS]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.starts_with(&format!("paused labourer {HASHTAGS} ("))
            && out.contains(&format!("`sosw resume {HASHTAGS}` undoes it")),
        "{out}"
    );
    let (code, out, err) = with(&["pause", HASHTAGS]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("labourer {HASHTAGS} was already paused since "))
            && out.contains("nothing to do"),
        "{out}"
    );

    let (code, out, err) = with(&["queue", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&out);
    let row = rows
        .iter()
        .find(|r| r["labourer_id"] == HASHTAGS)
        .expect("a row");
    assert_eq!(row["paused"], true, "{out}");
    assert_eq!(row["queued"], 36);
    assert!(
        rows.iter()
            .filter(|r| r["labourer_id"] != HASHTAGS)
            .all(|r| r["paused"] == false),
        "{out}"
    );
    let (_, out, _) = with(&["queue"]);
    let line = out
        .lines()
        .find(|l| l.starts_with(HASHTAGS))
        .expect("a line");
    assert!(line.contains("PAUSED"), "{out}");

    // A local run of the paused labourer's job says why it cannot progress and how to go on.
    let (code, out, err) = with(&["local", "run", "--resume", "--timeout", "60"]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains(&format!("labourer `{HASHTAGS}` is paused (`sosw pause`)"))
            && err.contains(&format!("job {id}"))
            && err.contains(&format!("sosw resume {HASHTAGS} --state {}", text(&state))),
        "{err}"
    );

    let (code, out, err) = with(&["pause", "no_such_labourer"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("`no_such_labourer` is not a configured labourer") && err.contains(HASHTAGS),
        "{err}"
    );

    let (code, out, err) = with(&["resume", HASHTAGS]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("resumed labourer {HASHTAGS} (")),
        "{out}"
    );
    let (code, out, err) = with(&["resume", HASHTAGS]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.trim(),
        format!("labourer {HASHTAGS} was not paused: nothing to do")
    );
    let (code, _, err) = with(&["resume", "no_such_labourer"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("`no_such_labourer` is not a configured labourer")
            && err.contains("not paused"),
        "{err}"
    );

    let store = sosw::embedded::SqliteTaskStore::open(&state).expect("state");
    assert!(store.paused_labourers().await.expect("read").is_empty());
}

#[tokio::test]
async fn cancel_pause_and_resume_work_on_dynamodb_with_aws() {
    let Some(endpoint) =
        sosw_integration_tests::emulator_endpoint(sosw_integration_tests::DYNAMODB_ENDPOINT_VAR)
    else {
        return;
    };
    let aws_job = DynamoJob::schedule(&endpoint, "steer-aws").await;
    let config_table = format!("{}config", sosw_integration_tests::unique_prefix());
    sosw::aws::config_source::create_config_table(&aws_job.client, &config_table)
        .await
        .expect("config table");
    let aws = |args: &[&str]| {
        let mut command = sosw_on_aws(args, &endpoint);
        command
            .args(["--config", text(&aws_job.dir.0)])
            .env("SOSW_CONFIG_TABLE", &config_table);
        outcome(command)
    };
    let id = aws_job.report.job_id.clone();

    let (code, out, err) = aws(&["pause", HASHTAGS]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.starts_with(&format!("paused labourer {HASHTAGS} (AWS)")),
        "{out}"
    );
    let (code, out, _) = aws(&["pause", HASHTAGS]);
    assert_eq!(code, 0);
    assert!(out.contains("was already paused since"), "{out}");
    let control = sosw::aws::config_source::DynamoConfigSource::new(aws_job.client.clone())
        .with_table(&config_table);
    let paused = control.paused_labourers().await.expect("read");
    assert_eq!(paused.len(), 1, "{paused:?}");
    assert_eq!(paused[0].labourer_id, HASHTAGS);
    let (code, out, err) = aws(&["queue", "--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let rows = json_lines(&out);
    assert_eq!(rows[0]["labourer_id"], HASHTAGS);
    assert_eq!(rows[0]["paused"], true, "{out}");
    let (code, _, err) = aws(&["pause", "no_such_labourer"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("`no_such_labourer` is not a configured labourer"),
        "{err}"
    );
    let (code, out, err) = aws(&["resume", HASHTAGS]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(&format!("resumed labourer {HASHTAGS} (AWS)")),
        "{out}"
    );
    let (code, out, _) = aws(&["resume", HASHTAGS]);
    assert_eq!(code, 0);
    assert!(out.contains("was not paused: nothing to do"), "{out}");
    assert!(control.paused_labourers().await.expect("read").is_empty());

    let (code, out, err) = aws(&["cancel", &id]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains(&format!(
            "cancelled job {id}: 36 queued and 0 waiting task(s) closed as cancelled, 0 running \
             task(s) left to finish (AWS)"
        )),
        "{out}"
    );
    let (code, out, _) = aws(&["cancel", &id]);
    assert_eq!(code, 0);
    assert_eq!(
        out.trim(),
        format!("job {id} was already cancelled: nothing to do")
    );
    let job = aws_job
        .store
        .get_job(&id)
        .await
        .expect("read")
        .expect("job");
    assert_eq!(job.status, JobStatus::Cancelled);
    assert_eq!(job.counts.cancelled, 36);
    let first = sosw::task::TaskId::for_chunk(&id, 0);
    let closed = aws_job
        .store
        .get_closed_task(&first)
        .await
        .expect("read")
        .expect("closed");
    assert_eq!(
        closed.extra.get("labourer_id_task_status"),
        Some(&json!(format!("{HASHTAGS}_cancelled")))
    );
    let (code, out, err) = aws(&[
        "tasks",
        HASHTAGS,
        "--status",
        "cancelled",
        "--output",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(json_lines(&out).len(), 36, "{out}");
    let (code, _, err) = aws(&["cancel", "no-such-job"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("there is no job `no-such-job`") && err.contains("(in AWS)"),
        "{err}"
    );
    aws_job.delete_tables().await;
}
