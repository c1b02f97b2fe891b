//! Local mode as an engine (issue 16, items 1 and 2): a freed slot is refilled at once, not at the
//! next poll tick; `submit` writes a job as the chunker makes it, and a Ctrl-C during it leaves a
//! consistent state and says how to go on.

use super::*;

/// A job of `words` isolated words on HASHTAGS (one task each).
fn words_job(dir: &TempDir, words: usize) -> PathBuf {
    let words: Vec<String> = (0..words).map(|i| format!("w{i}")).collect();
    dir.write(
        "words.json",
        &json!({"job": {
            "lambda_name": HASHTAGS, "isolate_topics": true,
            "topics": {"t": {"isolate_words": true, "words": words}}
        }}),
    )
}

#[test]
fn a_task_that_ends_frees_its_slot_at_once_not_at_the_next_poll() {
    let dir = TempDir::new("event-driven");
    let job = words_job(&dir, 30);
    // One slot and a poll interval of 20 s: polling alone would take 30 x 20 s.
    let configs = command_configs(
        &dir,
        json!(["sh", "-c", "cat > /dev/null"]),
        json!({}),
        json!({"max_simultaneous_invocations": 1, "duration": 60, "cooldown": 1}),
    );
    let local = configs.join("sosw_local_config.json");
    let mut document: Value =
        serde_json::from_str(&std::fs::read_to_string(&local).expect("read")).expect("json");
    document["poll_interval_ms"] = json!(20_000);
    document["scavenge_interval_ms"] = json!(20_000);
    std::fs::write(&local, document.to_string()).expect("write");
    let state = dir.path("state.sqlite");
    let started = Instant::now();
    let (code, stdout, stderr) = outcome_within(
        sosw(&[
            "local",
            "run",
            text(&job),
            "--config",
            text(&configs),
            "--state",
            text(&state),
            "--plain",
        ]),
        Duration::from_secs(120),
    );
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("30 tasks closed in this run"),
        "{stdout}\n{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "30 tasks on one slot took {:?}: a freed slot waited for the poll interval",
        started.elapsed()
    );
}

#[tokio::test]
async fn ctrl_c_during_submit_leaves_a_consistent_state_and_submitting_again_finishes() {
    let dir = TempDir::new("submit-sigint");
    let total = 60_000;
    let job = words_job(&dir, total);
    let configs = command_configs(
        &dir,
        json!(["true"]),
        json!({}),
        json!({"max_simultaneous_invocations": 1}),
    );
    let state = dir.path("state.sqlite");
    let args = [
        "submit",
        text(&job),
        "--config",
        text(&configs),
        "--state",
        text(&state),
    ];
    let child = sosw(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sosw starts");
    // Interrupt once some batches are written and before the last.
    let started = Instant::now();
    let job_id = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the submission did not start writing"
        );
        std::thread::sleep(Duration::from_millis(20));
        if !state.exists() {
            continue;
        }
        let Ok(store) = SqliteTaskStore::open(&state) else {
            continue;
        };
        let Ok(jobs) = store.list_jobs(1).await else {
            continue;
        };
        if let Some(job) = jobs.first().filter(|job| job.enqueued > 0) {
            assert!(
                job.enqueued < total as u64,
                "the submission finished before the test could interrupt it"
            );
            break job.job_id.clone();
        }
    };
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let (code, stdout, stderr) = wait_within(child, Duration::from_secs(30));
    assert_eq!(code, 130, "{stdout}\n{stderr}");
    assert!(
        stderr.contains(&format!("of {total} tasks of job {job_id} are written")),
        "{stderr}"
    );
    assert!(stderr.contains("sosw local run --resume"), "{stderr}");

    // What is written is whole: the cursor never passes a task that is not in the store.
    let store = SqliteTaskStore::open(&state).expect("opens");
    let record = store.get_job(&job_id).await.expect("read").expect("job");
    let queued = store
        .queue_length(HASHTAGS, i64::MAX)
        .await
        .expect("counts");
    assert!(
        queued >= record.enqueued && queued < total as u64,
        "{queued} queued, cursor {}",
        record.enqueued
    );

    // Submitting the same file again writes the rest, each task once.
    let (code, stdout, stderr) = outcome_within(sosw(&args), Duration::from_secs(300));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("{total} tasks")), "{stdout}");
    let record = store.get_job(&job_id).await.expect("read").expect("job");
    assert_eq!(record.enqueued, total as u64);
    assert_eq!(
        store
            .queue_length(HASHTAGS, i64::MAX)
            .await
            .expect("counts"),
        total as u64
    );
}
