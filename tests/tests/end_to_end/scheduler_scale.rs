//! Large jobs end to end: 100,000 tasks into SQLite and into DynamoDB Local (both layouts), spooled to
//! a directory. `SOSW_SCALE_TASKS` sets another size for a run by hand (a million, say).
//! Each prints its wall time and write requests; nothing here is timed. (The DynamoDB run took about
//! 20 s to schedule plus 6 s to check here, well inside `make test`'s budget, so it is not ignored.)

use crate::scheduler_common;

use std::sync::Arc;
use std::time::Instant;

use chrono::{TimeDelta, Utc};
use serde_json::json;
use sosw::blob::DirBlobStore;
use sosw::essentials::scheduler::{JobOutcome, Scheduler, SpoolState};

use scheduler_common::{Kind, Store, TempDir, assert_exact_task_set, config, sections_job};

/// Schedules one job of `tasks` tasks on a fresh store of `kind` (spooled to a directory), checks the
/// queue holds exactly its tasks, and prints what it measured.
async fn schedule_large_job(kind: Kind, tasks: usize) {
    let Some(store) = Store::open(kind).await else {
        return;
    };
    let dir = TempDir::new("sosw-scale");
    let blobs = Arc::new(DirBlobStore::new(&dir.0).expect("a blob directory"));
    let scheduler = Scheduler::from_parts(
        config(&["bulk"], json!({})),
        store.store.clone(),
        store.store.clone(),
    )
    .with_blob_store(blobs);
    let job = sections_job("bulk", tasks);

    let started = Instant::now();
    let report = scheduler
        .run(&job, Utc::now() + TimeDelta::minutes(15))
        .await
        .expect("the job is scheduled");
    let elapsed = started.elapsed();

    assert_eq!(report.outcome, JobOutcome::Enqueued);
    assert_eq!(report.spool, SpoolState::Released);
    assert_eq!(
        (report.total, report.enqueued),
        (tasks as u64, tasks as u64)
    );
    assert_eq!((report.written, report.skipped_existing), (tasks, 0));
    let batches = tasks.div_ceil(scheduler.config().enqueue_batch_size);
    let per_task = report.write_requests as f64 / tasks as f64;
    let with_progress = (report.write_requests + batches) as f64 / tasks as f64;
    println!(
        "{kind:?}: {tasks} tasks in {:.2} s ({:.0} tasks/s); {} task write requests ({per_task:.4} \
         per task), {batches} progress records ({with_progress:.4} writes per task in all)",
        elapsed.as_secs_f64(),
        tasks as f64 / elapsed.as_secs_f64(),
        report.write_requests,
    );
    match kind {
        Kind::Sqlite => {}
        // Packs (the default): several tasks of a queue partition to an item, 25 items a request.
        Kind::Lean => assert!(
            report.write_requests * 3 <= tasks.div_ceil(25),
            "at least 3 tasks to a queued item on average: {} requests for {tasks} tasks",
            report.write_requests
        ),
        _ => assert_eq!(
            report.write_requests,
            tasks.div_ceil(25),
            "25 tasks per BatchWriteItem"
        ),
    }

    assert_exact_task_set(
        &store,
        "bulk",
        &report.job_id,
        tasks as u64,
        |i| json!({"isolate_sections": true, "sections": [format!("s{i}")]}),
    )
    .await;
    let record = store.record(&report.job_id).await;
    assert_eq!(
        (record.total, record.enqueued),
        (Some(tasks as u64), tasks as u64)
    );
    store.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100k_task_job_is_scheduled_into_sqlite() {
    schedule_large_job(Kind::Sqlite, scale_tasks()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100k_task_job_is_scheduled_into_dynamodb_local() {
    schedule_large_job(Kind::Dynamo, scale_tasks()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100k_task_job_is_scheduled_into_the_lean_layout_on_dynamodb_local() {
    schedule_large_job(Kind::Lean, scale_tasks()).await;
}

/// 100,000, or what `SOSW_SCALE_TASKS` says.
fn scale_tasks() -> usize {
    match std::env::var("SOSW_SCALE_TASKS") {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("SOSW_SCALE_TASKS={v:?} is not a number of tasks")),
        Err(_) => 100_000,
    }
}
