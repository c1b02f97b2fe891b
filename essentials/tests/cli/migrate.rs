//! `sosw migrate-layout --aws` on DynamoDB Local: sosw 0.7's tables to the lean table, counted, run
//! twice (the second moves nothing and loses nothing), and with a sosw 0.7 orchestrator claiming from
//! the same queue during the move (every task ends exactly once in one of the two layouts).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use sosw::aws::dynamodb::lean::migrate::{Migration, MigrationSettings};
use sosw::aws::dynamodb::lean::{
    LeanOptions, LeanTaskStore, create_lean_tables_without_stream, delete_lean_tables,
};
use sosw::aws::dynamodb::{DynamoTaskStore, create_tables, delete_tables};
use sosw::config::{OrchestratorConfig, parse_config};
use sosw::ecology::fair::FairnessKey;
use sosw::invoke::inprocess::{InProcessInvoker, handler_fn};
use sosw::store::{EnqueueMode, TableNames, TaskClaims, TaskLookup, TaskQueue, TaskRetries};
use sosw::task::{Markers, Task, TaskId};

use super::{DynamoJob, HASHTAGS, run};

/// The lean table beside the 0.7 tables of `prefix` (same job and ecology tables).
fn lean_options(prefix: &str, tables: &TableNames) -> LeanOptions {
    LeanOptions {
        table: format!("{prefix}sosw_lean"),
        jobs_table: tables.jobs.clone(),
        ecology_table: tables.ecology.clone(),
        shards: 4,
        ..LeanOptions::default()
    }
}

/// The tutorial job scheduled into 0.7 tables of its own on DynamoDB Local, and the options of the
/// lean table beside them (not created); `None` without the emulator.
async fn scheduled_job(name: &str) -> Option<(DynamoJob, LeanOptions)> {
    let endpoint =
        sosw_integration_tests::emulator_endpoint(sosw_integration_tests::DYNAMODB_ENDPOINT_VAR)?;
    let job = DynamoJob::schedule(&endpoint, name).await;
    let prefix = job
        .tables
        .tasks
        .strip_suffix("sosw_tasks")
        .expect("prefixed")
        .to_owned();
    let options = lean_options(&prefix, &job.tables);
    Some((job, options))
}

/// Where each of `ids` is: (on the 0.7 side live, on the lean side live).
async fn whereabouts(
    old: &DynamoTaskStore,
    lean: &LeanTaskStore,
    ids: &[String],
) -> Vec<(String, Option<Task>, Option<Task>)> {
    let mut out = Vec::new();
    for id in ids {
        let task_id = TaskId::new(id.as_str()).expect("id");
        let on_old = old.get_task(&task_id).await.expect("0.7 lookup");
        let on_lean = lean.get_task(&task_id).await.expect("lean lookup");
        out.push((id.clone(), on_old, on_lean));
    }
    out
}

#[tokio::test]
async fn migrate_layout_moves_the_queue_once_and_a_second_run_moves_nothing() {
    let Some((job, options)) = scheduled_job("migrate").await else {
        return;
    };
    // Without --aws there is nothing to migrate: the state file has one layout.
    let (code, _, stderr) = run(&["migrate-layout"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("pass --aws"), "{stderr}");
    // A shard count out of range names the setting.
    // So does a concurrency out of range.
    let (code, _, stderr) = job.sosw(&["migrate-layout", "--concurrency", "0"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--concurrency") && stderr.contains("1..=256"),
        "{stderr}"
    );
    let (code, _, stderr) = job.sosw(&["migrate-layout", "--shards", "0"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--shards") && stderr.contains("1..=64"),
        "the flag is named, not SOSW_LEAN_SHARDS: {stderr}"
    );
    // Without the lean table the command says which table is missing.
    let (code, _, stderr) = job.sosw(&["migrate-layout"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&options.table) && stderr.contains("Layout=lean"),
        "{stderr}"
    );
    create_lean_tables_without_stream(&job.client, &options)
        .await
        .expect("lean table");
    // Two tasks invoked on the 0.7 side: they stay there. A third waits for a retry: it moves.
    let now = chrono::Utc::now().timestamp();
    let head = job.store.next_queued(HASHTAGS, now, 3).await.expect("head");
    for task in &head {
        job.store.claim(&task.task_id, now).await.expect("claim");
    }
    let retried = head[2].task_id.clone();
    let row = job
        .store
        .get_task(&retried)
        .await
        .expect("get")
        .expect("claimed");
    job.store
        .move_to_retry(&row, now + 3600)
        .await
        .expect("to retry");
    let ids: Vec<String> = job.report_ids().await;
    assert_eq!(ids.len(), 35);

    let (code, out, stderr) = job.sosw(&["migrate-layout", "--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        out.contains("would move 33 queued and 1 waiting-for-retry tasks; 2 invoked"),
        "{out}"
    );
    let (code, out, stderr) = job.sosw(&["migrate-layout", "--progress-every", "10"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        out.contains("moved     33 queued, 1 waiting for retry"),
        "{out}"
    );
    assert!(out.contains("running   2 invoked"), "{out}");
    // The task table is read before the retry table: until then the total is what was found so far.
    assert!(
        stderr.contains("moved or left 10 of 33 waiting tasks found so far"),
        "{stderr}"
    );
    assert!(
        stderr.contains("moved or left 34 of 34 waiting tasks\n"),
        "{stderr}"
    );
    let (code, out, stderr) = job.sosw(&["migrate-layout", "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let second: Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(
        (
            second["queued_found"].as_u64(),
            second["queued_moved"].as_u64()
        ),
        (Some(0), Some(0)),
        "{second}"
    );
    assert_eq!(second["left_running"], 2, "{second}");

    let lean = LeanTaskStore::new(job.client.clone(), options.clone()).expect("lean store");
    let later = chrono::Utc::now().timestamp() + 1;
    assert_eq!(lean.queue_length(HASHTAGS, later).await.expect("len"), 33);
    assert_eq!(
        job.store.queue_length(HASHTAGS, later).await.expect("len"),
        0
    );
    assert_eq!(lean.retry_length(HASHTAGS).await.expect("len"), 1);
    assert_eq!(job.store.retry_length(HASHTAGS).await.expect("len"), 0);
    let waiting = lean
        .get_retry_task(HASHTAGS, &retried)
        .await
        .expect("get")
        .expect("waiting on the lean side");
    assert_eq!(waiting.desired_launch_time, Some(now + 3600));
    let (mut lost, mut twice, mut on_old) = (0, 0, 0);
    for (_, old, new) in whereabouts(&job.store, &lean, &ids).await {
        match (old, new) {
            (None, None) => lost += 1,
            (Some(_), Some(_)) => twice += 1,
            (Some(_), None) => on_old += 1,
            (None, Some(_)) => {}
        }
    }
    assert_eq!((lost, twice, on_old), (0, 0, 2));

    // The lean table's shard count changes only with --reshard; a store set to another count is
    // refused by name.
    let (code, _, stderr) = job.sosw(&["migrate-layout", "--from-shards", "4"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--reshard"), "{stderr}");
    let (code, _, stderr) = job.sosw(&["migrate-layout", "--reshard"]);
    assert_eq!(code, 2, "the new count is never a default: {stderr}");
    assert!(stderr.contains("--shards"), "{stderr}");
    let (code, out, stderr) =
        job.sosw(&["migrate-layout", "--reshard", "--shards", "8", "--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        out.contains("of 33 queued tasks of 1 labourers from 4 to 8 shards; 0 running"),
        "{out}"
    );
    let (code, out, stderr) = job.sosw(&["migrate-layout", "--reshard", "--shards", "8"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        out.contains("of 33 queued tasks of 1 labourers from 4 to 8 shards in 2 passes")
            && out.contains("SOSW_LEAN_SHARDS=8"),
        "{out}"
    );
    let err = lean
        .queue_length(HASHTAGS, later)
        .await
        .expect_err("4 shards refused")
        .to_string();
    assert!(err.contains("under 8 shards"), "{err}");
    let eight = LeanTaskStore::new(job.client.clone(), options.clone().shards(8)).expect("lean");
    assert_eq!(eight.queue_length(HASHTAGS, later).await.expect("len"), 33);
    let (code, out, stderr) = job.sosw(&["migrate-layout", "--reshard", "--shards", "8"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.contains("nothing to do"), "{out}");

    // --refile-keys at the recorded count: once the orchestrator reads the labourer's queue by a
    // fairness path, the tasks queued before it move under their key's partitions.
    let (code, _, stderr) = job.sosw(&["migrate-layout", "--refile-keys"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--reshard"), "{stderr}");
    let refile = [
        "migrate-layout",
        "--reshard",
        "--shards",
        "8",
        "--refile-keys",
    ];
    let dry_run = [&refile[..], &["--dry-run"]].concat();
    let (code, out, stderr) = job.sosw(&dry_run);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        out.contains("no labourer of") && out.contains("(0 of them under their fairness keys)"),
        "before any path is recorded: {out}"
    );
    let by_section = FairnessKey::try_from("section".to_owned()).expect("a valid path");
    let markers = Markers::new(later, 3600);
    eight
        .queue_by_key(HASHTAGS, &by_section, &markers, 10)
        .await
        .expect("the path announced");
    for (args, said) in [
        (
            &dry_run[..],
            [
                "would move 33 of 33 queued tasks (33 of them",
                "the count stays",
            ],
        ),
        (
            &refile[..],
            [
                "moved 33 of 33 queued tasks (33 of them",
                "the shard count stays 8",
            ],
        ),
    ] {
        let (code, out, stderr) = job.sosw(args);
        assert_eq!(code, 0, "{stderr}");
        assert!(said.iter().all(|s| out.contains(s)), "{args:?}: {out}");
    }
    let keyed = eight
        .queue_by_key(HASHTAGS, &by_section, &markers, 100)
        .await
        .expect("queue by key");
    let filed: usize = keyed.values().map(|w| w.queued.len()).sum();
    assert_eq!(filed, 33, "every task read by key: {:?}", keyed.keys());
    assert_eq!(eight.queue_length(HASHTAGS, later).await.expect("len"), 33);

    delete_lean_tables(&job.client, &options)
        .await
        .expect("delete");
    job.delete_tables().await;
}

#[tokio::test]
async fn a_sosw07_orchestrator_claiming_during_the_move_leaves_every_task_in_one_layout_once() {
    let Some(client) = sosw_integration_tests::dynamodb_client().await else {
        return;
    };
    const LABOURER: &str = "migrating";
    const TASKS: usize = 300;
    let prefix = sosw_integration_tests::unique_prefix();
    let tables = TableNames::with_prefix(&prefix);
    create_tables(&client, &tables).await.expect("0.7 tables");
    let options = lean_options(&prefix, &tables);
    create_lean_tables_without_stream(&client, &options)
        .await
        .expect("lean table");
    let old = Arc::new(DynamoTaskStore::new(client.clone(), tables.clone()));
    let lean = LeanTaskStore::new(client.clone(), options.clone()).expect("lean store");
    let ids: Vec<String> = (0..TASKS).map(|i| format!("m{i:04}")).collect();
    let tasks: Vec<Task> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            Task::new(
                id.as_str(),
                LABOURER,
                json!({"n": i}),
                2000 + 1000 * i as i64,
                0.0,
            )
        })
        .collect();
    old.enqueue(&tasks, EnqueueMode::Fresh)
        .await
        .expect("enqueue");

    // A sosw 0.7 orchestrator (this implementation on the 0.7 tables) in a loop of single passes; its
    // worker records each invocation and never reports, so every claim stays on the 0.7 side.
    let invoked = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen = invoked.clone();
    let worker = handler_fn(move |payload: Value| {
        let seen = seen.clone();
        async move {
            if let (Some(id), Ok(mut seen)) = (payload["task_id"].as_str(), seen.lock()) {
                seen.push(id.to_owned());
            }
        }
    });
    let invoker = InProcessInvoker::new().register(LABOURER, worker);
    let config: OrchestratorConfig = parse_config(
        "sosw_orchestrator_config",
        json!({"task_config": {"table_prefix": prefix, "labourers": {LABOURER: {"max_simultaneous_invocations": TASKS}}}}),
    )
    .expect("config");
    let orchestrator = sosw_integration_tests::single_pass_orchestrator(
        old.clone(),
        Arc::new(invoker.clone()),
        config,
    );
    let start = Arc::new(tokio::sync::Notify::new());
    let stop = Arc::new(AtomicBool::new(false));
    let loop_task = {
        let (start, stop) = (start.clone(), stop.clone());
        tokio::spawn(async move {
            start.notified().await;
            let mut rounds = 0;
            while !stop.load(Ordering::SeqCst) {
                orchestrator
                    .run(chrono::Utc::now() + chrono::TimeDelta::seconds(30))
                    .await
                    .expect("orchestrator round");
                rounds += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            rounds
        })
    };

    // The orchestrator starts once the migration has moved its first tasks: the two race over the rest.
    let migration = Migration::new((*old).clone(), lean.clone());
    let now = chrono::Utc::now().timestamp();
    let report = migration
        .run(
            now,
            false,
            MigrationSettings {
                every: 5,
                concurrency: 16,
            },
            |p| {
                if p.done == 5 {
                    start.notify_one();
                }
            },
        )
        .await
        .expect("migration");
    start.notify_one();
    stop.store(true, Ordering::SeqCst);
    let rounds = loop_task.await.expect("orchestrator loop");
    invoker.wait_idle().await;

    let invoked = invoked.lock().expect("lock").clone();
    let invoked_set: BTreeSet<&String> = invoked.iter().collect();
    assert_eq!(invoked_set.len(), invoked.len(), "no task invoked twice");
    let (mut lost, mut twice, mut on_old, mut on_lean) = (0, 0, 0, 0);
    for (id, old_row, lean_row) in whereabouts(&old, &lean, &ids).await {
        match (old_row, lean_row) {
            (None, None) => lost += 1,
            (Some(_), Some(_)) => twice += 1,
            (Some(_), None) => on_old += 1,
            (None, Some(task)) => {
                on_lean += 1;
                assert!(!invoked_set.contains(&id), "{id} invoked on 0.7 and moved");
                assert_eq!(task.attempts, 0, "{id} moved unclaimed");
            }
        }
    }
    eprintln!(
        "migration during {rounds} orchestrator rounds: {report:?}; invoked on 0.7 {}, on the 0.7 side \
         {on_old}, on the lean side {on_lean}, lost {lost}, duplicated {twice}",
        invoked.len()
    );
    assert_eq!((lost, twice), (0, 0), "0 lost, 0 duplicated");
    assert_eq!(on_old + on_lean, TASKS);
    assert_eq!(on_lean as u64, report.queued_moved);
    assert!(
        report.queued_moved > 0,
        "the migration moved tasks: {report:?}"
    );
    assert!(
        !invoked.is_empty(),
        "the orchestrator claimed during the move"
    );
    // Every task left on the 0.7 side was claimed there or changed under the move.
    let later = chrono::Utc::now().timestamp() + 1;
    assert_eq!(
        old.queue_length(LABOURER, later).await.expect("len") + invoked.len() as u64,
        on_old as u64
    );
    delete_lean_tables(&client, &options)
        .await
        .expect("delete lean");
    let _ = delete_tables(&client, &tables).await;
}

/// A run killed (SIGKILL) in the middle of its moves, 16 at once, leaves some tasks half moved (the
/// lean item written, the 0.7 row not yet deleted); the next run finishes them, and every task ends in
/// exactly one layout, none lost, none twice.
#[tokio::test]
async fn a_migration_killed_mid_run_is_finished_by_the_next_run_with_every_task_once() {
    use std::io::{BufRead, BufReader};

    let Some((job, options)) = scheduled_job("migrate-killed").await else {
        return;
    };
    create_lean_tables_without_stream(&job.client, &options)
        .await
        .expect("lean table");
    // 2,000 more queued tasks behind the tutorial job's 36.
    let more: Vec<Task> = (0..2000)
        .map(|i| {
            Task::new(
                format!("killed-{i:04}").as_str(),
                HASHTAGS,
                json!({"n": i}),
                1_000_000 + 1000 * i64::from(i),
                0.0,
            )
        })
        .collect();
    job.store
        .enqueue(&more, EnqueueMode::Fresh)
        .await
        .expect("enqueue");
    let lean = LeanTaskStore::new(job.client.clone(), options.clone()).expect("lean store");
    let (ids, none) = queued_on_each_side(&job.store, &lean).await;
    assert_eq!((ids.len(), none.len()), (2036, 0));

    let mut command = super::sosw_on_aws(
        &[
            "migrate-layout",
            "--progress-every",
            "50",
            "--concurrency",
            "16",
        ],
        &job.endpoint,
    );
    command
        .args(["--config", super::text(&job.dir.0)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("sosw runs");
    let stderr = child.stderr.take().expect("stderr");
    let mut seen = Vec::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("stderr line");
        let killed = line.starts_with("moved or left 300 ");
        seen.push(line);
        if killed {
            child.kill().expect("kill");
            break;
        }
    }
    child.wait().expect("reaped");
    assert!(
        seen.iter().any(|l| l.starts_with("moved or left 300 ")),
        "the run got as far as 300 tasks before the kill: {seen:?}"
    );

    let (old_side, lean_side) = queued_on_each_side(&job.store, &lean).await;
    let half_moved = old_side.intersection(&lean_side).count();
    let missing: Vec<&String> = ids
        .iter()
        .filter(|id| !old_side.contains(*id) && !lean_side.contains(*id))
        .collect();
    assert!(missing.is_empty(), "lost by the kill: {missing:?}");
    assert!(
        lean_side.len() >= 300 && old_side.len() > half_moved,
        "killed mid-run: {} on the lean side ({half_moved} of them half moved), {} on the 0.7 side",
        lean_side.len(),
        old_side.len()
    );
    // One more half-moved task for certain: its lean item written as a move would, its 0.7 row kept.
    let not_moved = old_side
        .difference(&lean_side)
        .next()
        .expect("a task not moved yet");
    let half = job
        .store
        .get_task(&TaskId::new(not_moved.as_str()).expect("id"))
        .await
        .expect("get")
        .expect("on the 0.7 side");
    lean.enqueue(std::slice::from_ref(&half), EnqueueMode::Fresh)
        .await
        .expect("lean copy");

    let (code, out, stderr) = job.sosw(&["migrate-layout", "--output", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let second: Value = serde_json::from_str(out.trim()).expect("json");
    let finished = second["finished_earlier_moves"].as_u64().expect("count");
    assert!(finished >= 1, "the half-moved tasks are finished: {second}");
    assert_eq!(
        second["queued_moved"].as_u64().expect("count") + finished,
        second["queued_found"].as_u64().expect("count"),
        "{second}"
    );
    assert_eq!(second["left_changed"], 0, "{second}");
    let (old_side, lean_side) = queued_on_each_side(&job.store, &lean).await;
    assert!(old_side.is_empty(), "left on the 0.7 side: {old_side:?}");
    assert_eq!(lean_side, ids, "every task on the lean side");
    let later = chrono::Utc::now().timestamp() + 1;
    assert_eq!(
        lean.queue_length(HASHTAGS, later).await.expect("len"),
        2036,
        "no task twice in the lean queue"
    );
    delete_lean_tables(&job.client, &options)
        .await
        .expect("delete");
    job.delete_tables().await;
}

/// The ids of the tasks queued for the tutorial labourer on the 0.7 side and on the lean side.
async fn queued_on_each_side(
    old: &DynamoTaskStore,
    lean: &LeanTaskStore,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let later = chrono::Utc::now().timestamp() + 1;
    let ids = |tasks: Vec<Task>| {
        tasks
            .into_iter()
            .map(|t| t.task_id.as_str().to_owned())
            .collect::<BTreeSet<_>>()
    };
    (
        ids(old
            .next_queued(HASHTAGS, later, 10_000)
            .await
            .expect("0.7 queue")),
        ids(lean
            .next_queued(HASHTAGS, later, 10_000)
            .await
            .expect("lean queue")),
    )
}
