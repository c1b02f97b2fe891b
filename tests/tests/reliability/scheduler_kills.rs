//! The scheduler killed at 20 seeded points of one large job, then run again: the job's tasks are all
//! in the queue exactly once, with the right payloads, and nothing else is (the queue checker's
//! figures over the labourer's whole queue). On SQLite and on DynamoDB Local.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::TimeDelta;
use serde_json::json;
use sosw::clock::{Clock, ManualClock};
use sosw::essentials::scheduler::{JobOutcome, Scheduler, job_task_ids};
use sosw::testing::checker::{FinalState, check};
use sosw::testing::faults::Dice;

use crate::scheduler_common::{
    Faulty, Kind, Store, T0, Trigger, assert_exact_task_set, config, sections_job,
};
use crate::size;

const KILLS: usize = 20;

async fn killed_at_twenty_points_and_resumed(kind: Kind) {
    let tasks = size(1_000, 10_000) as usize;
    // 20 enqueue calls per run at either size, plus the job record calls around them.
    let batch = tasks / 20;
    let Some(store) = Store::open(kind).await else {
        return;
    };
    let clock = Arc::new(ManualClock::at_secs(T0));
    let faulty = Arc::new(Faulty::new(store.store.clone(), None, clock.clone()));
    let names: Vec<String> = (0..=KILLS).map(|i| format!("k{i}")).collect();
    let labourers: Vec<&str> = names.iter().map(String::as_str).collect();
    let scheduler = Scheduler::new(
        config(&labourers, json!({"enqueue_batch_size": batch})),
        faulty.clone(),
    )
    .with_clock(clock.clone());
    let deadline = || clock.now() + TimeDelta::seconds(900);

    // A clean run of the same job shape: its calls are where the kills may land.
    faulty.heal();
    let reference = sections_job("k0", tasks);
    scheduler
        .run(&reference, deadline())
        .await
        .expect("a clean run");
    let calls = faulty.log();
    let payloads: Vec<serde_json::Value> = store
        .tasks("k0")
        .await
        .into_values()
        .map(|t| t.payload)
        .collect();
    assert_eq!(payloads.len(), tasks, "the clean run wrote the job");
    let dice = Dice::new(44);
    let started = std::time::Instant::now();
    let mut points = BTreeSet::new();
    for case in 1..=KILLS {
        let labourer = format!("k{case}");
        let job = sections_job(&labourer, tasks);
        // Mid-enqueue kills (half a batch written) on odd cases, kills before a call on even ones.
        // Twenty distinct points (the clean run makes more than twenty calls).
        let mut n = 0;
        let at = loop {
            let at = 1 + dice.below(calls.len() as u64, "kill point", &labourer, n) as usize;
            if !points.contains(&at) {
                break at;
            }
            n += 1;
        };
        let trigger = if case % 2 == 1 && calls[at - 1] == "enqueue" {
            Trigger::CrashMidEnqueueAt(at)
        } else {
            Trigger::CrashAt(at)
        };
        points.insert(at);
        clock.set_secs(T0);
        faulty.arm(trigger);
        let killed = scheduler.run(&job, deadline()).await;
        assert!(killed.is_err(), "{trigger:?} kills the run");
        faulty.heal();
        clock.set_secs(T0 + 1000);
        let mut job_id = None;
        for _ in 0..3 {
            let report = scheduler
                .run(&job, deadline())
                .await
                .expect("a healthy run");
            if matches!(
                report.outcome,
                JobOutcome::Enqueued | JobOutcome::AlreadyEnqueued
            ) {
                job_id = Some(report.job_id);
                break;
            }
        }
        let job_id = job_id.expect("the job is enqueued within three healthy runs");
        assert_exact_task_set(&store, &labourer, &job_id, tasks as u64, |i| {
            payloads[i as usize].clone()
        })
        .await;
        let mut state = FinalState::new();
        for task in store.tasks(&labourer).await.values() {
            state.add_live(task);
        }
        let submitted = job_task_ids(&job_id, tasks as u64).map(|id| id.as_str().to_owned());
        let report = check(submitted, &[], &state);
        assert!(report.is_sound(), "{trigger:?}: {report}");
        assert_eq!(report.pending, tasks as u64, "{trigger:?}: {report}");
        assert_eq!(store.record(&job_id).await.enqueued, tasks as u64);
    }
    println!(
        "{kind:?}: {KILLS} kills of a {tasks}-task job ({} calls per clean run; kill points {points:?}) \
         resumed to the exact task set in {:.1} s",
        calls.len(),
        started.elapsed().as_secs_f64()
    );
    store.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_scheduler_killed_at_twenty_points_resumes_to_the_exact_task_set() {
    killed_at_twenty_points_and_resumed(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_scheduler_killed_at_twenty_points_resumes_to_the_exact_task_set() {
    killed_at_twenty_points_and_resumed(Kind::Dynamo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lean_scheduler_killed_at_twenty_points_resumes_to_the_exact_task_set() {
    killed_at_twenty_points_and_resumed(Kind::Lean).await;
}
