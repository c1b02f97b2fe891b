//! The sosw tutorial job (`examples/jobs/hashtags.json`: 3 topics x 6 words, `last_2_days`, isolating
//! days, topics and words) scheduled with the sample configs yields 36 tasks of the documented shape,
//! on SQLite and on DynamoDB Local.

use crate::scheduler_common;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use sosw::clock::ManualClock;
use sosw::config::{FileConfigSource, SchedulerConfig, load_essential_config};
use sosw::essentials::scheduler::{JobOutcome, Scheduler};

use scheduler_common::{Kind, Store, T0, assert_exact_task_set};

const LABOURER: &str = "sosw_tutorial_pull_tweeter_hashtags";

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

/// The documented task payloads in chunk order: dates outermost, then topics, then words. The task's
/// `labourer_id` is a column of the row, not part of the payload (as in sosw 0.7).
fn documented_tasks(job: &Value) -> Vec<Value> {
    // T0 is 2026-11-18: `last_2_days` is the 16th and the 17th.
    let mut tasks = Vec::new();
    for date in ["2026-11-16", "2026-11-17"] {
        for (topic, settings) in job["job"]["topics"].as_object().expect("topics") {
            for word in settings["words"].as_array().expect("words") {
                tasks.push(json!({
                    "date_list": [date],
                    "topics": [topic],
                    "words": [word],
                    "isolate_topics": true,
                    "isolate_words": true,
                }));
            }
        }
    }
    tasks
}

async fn schedule_the_tutorial_job(kind: Kind) {
    let Some(store) = Store::open(kind).await else {
        return;
    };
    let text =
        std::fs::read_to_string(examples().join("jobs/hashtags.json")).expect("the job file");
    let job: Value = serde_json::from_str(&text).expect("the job is JSON");
    let configs = FileConfigSource::new(examples().join("configs"));
    let config: SchedulerConfig =
        load_essential_config(&configs, "sosw_scheduler", json!({}), None)
            .await
            .expect("the sample scheduler config loads");
    let clock = Arc::new(ManualClock::at_secs(T0));
    let scheduler =
        Scheduler::from_parts(config, store.store.clone(), store.store.clone()).with_clock(clock);

    let report = scheduler
        .run(&job, Utc::now() + TimeDelta::minutes(15))
        .await
        .expect("the tutorial job is scheduled");
    assert_eq!(report.outcome, JobOutcome::Enqueued);
    assert_eq!((report.total, report.written), (36, 36));
    assert_eq!(report.labourer_id, LABOURER);

    let expected = documented_tasks(&job);
    assert_eq!(expected.len(), 36);
    assert_exact_task_set(&store, LABOURER, &report.job_id, 36, |i| {
        expected[i as usize].clone()
    })
    .await;
    store.cleanup().await;
}

#[tokio::test]
async fn the_hashtag_tutorial_job_yields_36_documented_tasks_in_sqlite() {
    schedule_the_tutorial_job(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hashtag_tutorial_job_yields_36_documented_tasks_in_dynamodb_local() {
    schedule_the_tutorial_job(Kind::Dynamo).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hashtag_tutorial_job_yields_36_documented_tasks_in_the_lean_layout() {
    schedule_the_tutorial_job(Kind::Lean).await;
}
