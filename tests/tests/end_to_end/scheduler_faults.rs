//! Killing the scheduler at every store and blob call of a run, then running the job again, leaves
//! exactly the job's tasks in the queue: none lost, none twice, every payload right. On SQLite and on
//! DynamoDB Local, with and without a spool.

use crate::scheduler_common;

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use sosw::blob::{BlobStore, DirBlobStore};
use sosw::clock::{Clock, ManualClock};
use sosw::essentials::scheduler::{JobOutcome, Scheduler, SubmissionKind};

use scheduler_common::{
    Faulty, Kind, Store, T0, TempDir, Trigger, assert_exact_task_set, config, sections_job,
};

/// Tasks per job: 4 batches of 3.
const TASKS: usize = 12;

/// One scheduler over the faulty wrapper, for every case of a run.
struct Rig {
    store: Store,
    faulty: Arc<Faulty>,
    clock: Arc<ManualClock>,
    scheduler: Scheduler,
    blobs: Option<Arc<dyn BlobStore>>,
    _dir: TempDir,
}

impl Rig {
    async fn new(kind: Kind, spooled: bool) -> Option<Rig> {
        let store = Store::open(kind).await?;
        let dir = TempDir::new("sosw-faults");
        let blobs: Option<Arc<dyn BlobStore>> = if spooled {
            Some(Arc::new(
                DirBlobStore::new(&dir.0).expect("a blob directory"),
            ))
        } else {
            None
        };
        let clock = Arc::new(ManualClock::at_secs(T0));
        let faulty = Arc::new(Faulty::new(
            store.store.clone(),
            blobs.clone(),
            clock.clone(),
        ));
        let labourers: Vec<String> = (0..64).map(|i| format!("k{i}")).collect();
        let names: Vec<&str> = labourers.iter().map(String::as_str).collect();
        let settings = json!({"enqueue_batch_size": 3, "spool_min_tasks": 5});
        let mut scheduler =
            Scheduler::new(config(&names, settings), faulty.clone()).with_clock(clock.clone());
        if spooled {
            scheduler = scheduler.with_blob_store(faulty.clone());
        }
        Some(Rig {
            store,
            faulty,
            clock,
            scheduler,
            blobs,
            _dir: dir,
        })
    }

    fn deadline(&self) -> DateTime<Utc> {
        self.clock.now() + TimeDelta::seconds(900)
    }

    /// Runs `job` until the job reports every task enqueued (a resumed run may find another run's
    /// leftovers first).
    async fn run_to_the_end(&self, job: &Value) -> String {
        for _ in 0..3 {
            let report = self
                .scheduler
                .run(job, self.deadline())
                .await
                .expect("a healthy run succeeds");
            if matches!(
                report.outcome,
                JobOutcome::Enqueued | JobOutcome::AlreadyEnqueued
            ) {
                return report.job_id;
            }
        }
        panic!("the job did not finish in three healthy runs");
    }
}

async fn kill_everywhere_and_resume(kind: Kind, spooled: bool) {
    let Some(rig) = Rig::new(kind, spooled).await else {
        return;
    };
    // A clean run: its calls are the kill points, its tasks the expected payloads.
    rig.faulty.heal();
    let reference_id = rig.run_to_the_end(&sections_job("k0", TASKS)).await;
    let calls = rig.faulty.log();
    let reference: BTreeMap<u64, Value> = rig
        .store
        .tasks("k0")
        .await
        .values()
        .enumerate()
        .map(|(i, t)| (i as u64, t.payload.clone()))
        .collect();
    assert_eq!(reference.len(), TASKS, "the reference run wrote the job");
    assert_eq!(rig.store.record(&reference_id).await.enqueued, TASKS as u64);

    let mut triggers: Vec<Trigger> = (1..=calls.len()).map(Trigger::CrashAt).collect();
    triggers.extend(
        calls
            .iter()
            .enumerate()
            .filter(|(_, name)| **name == "enqueue")
            .map(|(i, _)| Trigger::CrashMidEnqueueAt(i + 1)),
    );
    eprintln!(
        "{kind:?} spooled={spooled}: {} kill points over the calls {calls:?}",
        triggers.len()
    );
    assert!(triggers.len() >= 10);

    for (case, trigger) in triggers.into_iter().enumerate() {
        let labourer = format!("k{}", case + 1);
        let job = sections_job(&labourer, TASKS);
        rig.clock.set_secs(T0);
        rig.faulty.arm(trigger);
        let killed = rig.scheduler.run(&job, rig.deadline()).await;
        // Dying at the last call of a spooled run (deleting the locked spool) is after the job is
        // written: that run reports success and leaves the file for the next submission to delete.
        let after_the_work = spooled
            && trigger == Trigger::CrashAt(calls.len())
            && calls.last() == Some(&"blob delete");
        assert!(killed.is_err() != after_the_work, "{trigger:?}: {killed:?}");
        rig.faulty.heal();
        // After the dead run's Lambda deadline, so its lease on the spool has run out.
        rig.clock.set_secs(T0 + 1000);
        let job_id = rig.run_to_the_end(&job).await;

        assert_exact_task_set(&rig.store, &labourer, &job_id, TASKS as u64, |i| {
            reference[&i].clone()
        })
        .await;
        let record = rig.store.record(&job_id).await;
        assert_eq!(
            (record.total, record.enqueued),
            (Some(TASKS as u64), TASKS as u64),
            "{trigger:?}"
        );
        if let Some(blobs) = &rig.blobs {
            for name in ["tasks_queue", "locked_tasks_queue"] {
                let key = format!("sosw/scheduler/{name}_{job_id}.txt");
                let left = blobs.get(&key).await.expect("the blob store reads");
                assert_eq!(left, None, "{trigger:?}: {key} is cleaned up");
            }
        }
    }
    rig.store.cleanup().await;
}

#[tokio::test]
async fn sqlite_without_spool_resumes_to_the_exact_task_set_after_a_kill_at_any_call() {
    kill_everywhere_and_resume(Kind::Sqlite, false).await;
}

#[tokio::test]
async fn sqlite_with_spool_resumes_to_the_exact_task_set_after_a_kill_at_any_call() {
    kill_everywhere_and_resume(Kind::Sqlite, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_without_spool_resumes_to_the_exact_task_set_after_a_kill_at_any_call() {
    kill_everywhere_and_resume(Kind::Dynamo, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_with_spool_resumes_to_the_exact_task_set_after_a_kill_at_any_call() {
    kill_everywhere_and_resume(Kind::Dynamo, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lean_without_spool_resumes_to_the_exact_task_set_after_a_kill_at_any_call() {
    kill_everywhere_and_resume(Kind::Lean, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lean_with_spool_resumes_to_the_exact_task_set_after_a_kill_at_any_call() {
    kill_everywhere_and_resume(Kind::Lean, true).await;
}

#[tokio::test]
async fn a_resubmission_is_recorded_as_such_and_adds_its_requester() {
    let Some(rig) = Rig::new(Kind::Sqlite, false).await else {
        return;
    };
    let job = sections_job("k1", TASKS);
    rig.faulty.arm(Trigger::CrashAt(5));
    assert!(rig.scheduler.run(&job, rig.deadline()).await.is_err());
    rig.faulty.heal();
    let again = json!({"job": job, "requester": "retry-bot"});
    let report = rig
        .scheduler
        .run(&again, rig.deadline())
        .await
        .expect("resumes");
    assert_eq!(report.submission, SubmissionKind::Resubmitted);
    assert_eq!(report.outcome, JobOutcome::Enqueued);
    let record = rig.store.record(&report.job_id).await;
    assert_eq!(record.requesters, ["anonymous", "retry-bot"]);
}
