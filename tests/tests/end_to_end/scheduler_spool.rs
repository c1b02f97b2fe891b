//! The spool protocol with the directory adapter and with S3 on moto: a deadline that comes mid-job makes
//! the scheduler hand the rest to the spool's remote key and only then spawn its continuation; the
//! continuation claims the spool, writes the rest and cleans up.

use crate::scheduler_common;

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use sosw::aws::s3::S3BlobStore;
use sosw::blob::{BlobStore, DirBlobStore};
use sosw::clock::{Clock, ManualClock};
use sosw::essentials::scheduler::{
    Continuation, JobOutcome, SPOOL_FORMAT, Scheduler, SpoolHeader, SpoolState, SubmissionKind,
};
use sosw_integration_tests::{moto_config, unique_prefix};

use scheduler_common::{
    Faulty, Kind, Store, T0, Trigger, assert_exact_task_set, config, sections_job,
};

const TASKS: usize = 50;
const BATCH: usize = 10;

/// Captures spawned payloads, noting whether the spool they name was already in the blob store.
#[derive(Debug)]
struct Capture {
    blobs: Arc<dyn BlobStore>,
    spawned: Mutex<Vec<(Value, bool)>>,
}

#[async_trait]
impl Continuation for Capture {
    async fn spawn(&self, payload: Value) -> sosw::Result<()> {
        let key = payload["file_name"].as_str().unwrap_or_default().to_owned();
        let uploaded = self.blobs.get(&key).await?.is_some();
        self.spawned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((payload, uploaded));
        Ok(())
    }
}

fn deadline(clock: &ManualClock) -> DateTime<Utc> {
    clock.now() + TimeDelta::seconds(900)
}

async fn hand_on_at_the_deadline_and_resume(blobs: Arc<dyn BlobStore>) {
    let store = Store::open(Kind::Sqlite)
        .await
        .expect("SQLite is always there");
    let clock = Arc::new(ManualClock::at_secs(T0));
    let faulty = Arc::new(Faulty::new(
        store.store.clone(),
        Some(blobs.clone()),
        clock.clone(),
    ));
    let capture = Arc::new(Capture {
        blobs: blobs.clone(),
        spawned: Mutex::new(Vec::new()),
    });
    let settings = json!({"enqueue_batch_size": BATCH, "spool_min_tasks": BATCH});
    let scheduler = Scheduler::new(config(&["w"], settings), faulty.clone())
        .with_clock(clock.clone())
        .with_blob_store(faulty.clone())
        .with_continuation(capture.clone());

    // The deadline comes after the second batch.
    faulty.arm(Trigger::DeadlineAfterEnqueue(2));
    let first = scheduler
        .run(&sections_job("w", TASKS), deadline(&clock))
        .await
        .expect("the first run hands on");
    let job_id = first.job_id.clone();
    let remote = format!("sosw/scheduler/tasks_queue_{job_id}.txt");
    let locked = format!("sosw/scheduler/locked_tasks_queue_{job_id}.txt");
    assert_eq!(
        first.outcome,
        JobOutcome::HandedOff {
            sibling_spawned: true
        }
    );
    assert_eq!(
        first.spool,
        SpoolState::HandedOn {
            key: remote.clone()
        }
    );
    assert_eq!((first.enqueued, first.written), (20, 20));
    let log = faulty.log();
    assert_eq!(log.first(), Some(&"create_job"));
    // The queue's tail is read beside the job's creation (a read, in either order with it).
    let writes: Vec<&str> = log
        .iter()
        .copied()
        .filter(|call| *call != "newest_queued_greenfield")
        .collect();
    assert_eq!(
        writes.get(1),
        Some(&"blob put"),
        "the job is locked before any task is written"
    );
    assert_eq!(
        log.iter()
            .filter(|call| **call == "newest_queued_greenfield")
            .count(),
        1,
        "one read of the queue's tail for the run"
    );
    assert_eq!(
        &log[log.len() - 2..],
        ["blob put", "blob delete"],
        "upload, then unlock"
    );

    let spawned = capture
        .spawned
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    assert_eq!(spawned.len(), 1);
    let (payload, uploaded_before_spawn) = spawned[0].clone();
    assert!(
        uploaded_before_spawn,
        "the spool is uploaded before the spawn (B12)"
    );
    assert_eq!(
        payload,
        json!({"sosw_continuation": true, "job_id": job_id, "lambda_name": "w", "file_name": remote})
    );
    assert_eq!(blobs.get(&locked).await.expect("reads"), None, "unlocked");
    let bytes = blobs.get(&remote).await.expect("reads").expect("handed on");
    let text = String::from_utf8(bytes).expect("UTF-8");
    let mut lines = text.lines();
    let header: SpoolHeader =
        serde_json::from_str(lines.next().expect("a header")).expect("a header line");
    assert_eq!(
        header,
        SpoolHeader {
            sosw_spool: SPOOL_FORMAT,
            job_id: job_id.clone(),
            labourer_id: "w".into(),
            next_index: 20,
            total: TASKS as u64,
            lease_until: 0,
        }
    );
    let first_row: Value = serde_json::from_str(lines.next().expect("a row")).expect("JSON");
    assert_eq!(
        first_row,
        json!({"labourer_id": "w", "isolate_sections": true, "sections": ["s20"]}),
        "rows are sosw 0.7's queue-file rows"
    );
    assert_eq!(lines.count(), TASKS - 21);

    // The continuation, in a later Lambda.
    faulty.heal();
    clock.advance_secs(5);
    let second = scheduler
        .run(&payload, deadline(&clock))
        .await
        .expect("the continuation finishes the job");
    assert_eq!(second.submission, SubmissionKind::Continuation);
    assert_eq!(second.outcome, JobOutcome::Enqueued);
    assert_eq!(second.spool, SpoolState::Released);
    assert_eq!(
        (second.enqueued, second.written, second.skipped_existing),
        (50, 30, 0)
    );
    let log = faulty.log();
    assert_eq!(
        log[..4],
        ["get_job", "blob get", "blob put", "blob delete"],
        "claim: read the remote spool, lock it, delete the remote key"
    );
    for key in [&remote, &locked] {
        assert_eq!(blobs.get(key).await.expect("reads"), None, "{key} is gone");
    }
    assert_exact_task_set(
        &store,
        "w",
        &job_id,
        TASKS as u64,
        |i| json!({"isolate_sections": true, "sections": [format!("s{i}")]}),
    )
    .await;
}

#[tokio::test]
async fn the_spool_hands_on_and_resumes_through_a_directory() {
    let dir = scheduler_common::TempDir::new("sosw-spool");
    let blobs = Arc::new(DirBlobStore::new(&dir.0).expect("a blob directory"));
    hand_on_at_the_deadline_and_resume(blobs).await;
}

/// A fresh bucket on moto, or `None` when moto is not configured.
async fn moto_bucket() -> Option<S3BlobStore> {
    let sdk = moto_config().await?;
    let bucket = format!("sosw-{}", unique_prefix().replace('_', "").to_lowercase());
    let store = S3BlobStore::new(S3BlobStore::client(&sdk, true), bucket);
    store
        .create_bucket()
        .await
        .expect("moto creates the bucket");
    Some(store)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spool_hands_on_and_resumes_through_s3() {
    let Some(bucket) = moto_bucket().await else {
        return;
    };
    hand_on_at_the_deadline_and_resume(Arc::new(bucket)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_blob_store_puts_gets_copies_and_deletes() {
    let Some(s3) = moto_bucket().await else {
        return;
    };
    assert_eq!(s3.get("a/missing.txt").await.expect("reads"), None);
    s3.put("a/b.txt", b"one".to_vec()).await.expect("puts");
    s3.put("a/b.txt", b"two".to_vec()).await.expect("replaces");
    assert_eq!(
        s3.get("a/b.txt").await.expect("reads"),
        Some(b"two".to_vec())
    );
    assert!(s3.copy("a/b.txt", "a/locked_b.txt").await.expect("copies"));
    assert_eq!(
        s3.get("a/locked_b.txt").await.expect("reads"),
        Some(b"two".to_vec())
    );
    assert!(
        !s3.copy("a/missing.txt", "a/c.txt")
            .await
            .expect("copy of nothing")
    );
    s3.delete("a/b.txt").await.expect("deletes");
    s3.delete("a/b.txt").await.expect("deleting again is fine");
    assert_eq!(s3.get("a/b.txt").await.expect("reads"), None);
    let err = s3.put("../escape", vec![1]).await.expect_err("a bad key");
    assert!(err.to_string().contains("blob key"), "{err}");
    s3.create_bucket().await.expect("creating it again is fine");
}
