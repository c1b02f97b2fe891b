//! `sosw cancel` and `sosw pause` under racing orchestrators, on SQLite and on DynamoDB Local: a job
//! cancelled while four orchestrators claim its tasks (and its workers fail and retry), and a labourer
//! paused while they run. The queue checker's figures hold (nothing lost, nothing in two places, no
//! unexplained duplicate), no task of the cancelled job is invoked once the cancel has returned, the
//! paused labourer gets no invocation once the pause is stored, and the job counters add up to what
//! the tables hold.

use std::collections::HashMap;
use std::sync::Arc;

use sosw::aws::config_source::{DynamoConfigSource, create_config_table};
use sosw::aws::dynamodb::{DynamoTaskStore, create_tables, delete_tables};
use sosw::clock::Clock;
use sosw::embedded::SqliteTaskStore;
use sosw::essentials::cancel::{CancelOutcome, cancel_job, pause_labourer, resume_labourer};
use sosw::notify::{MemoryNotifier, NotificationQueue};
use sosw::query::TaskStatus;
use sosw::store::{JobStatus, JobStore, LabourerControl, TableNames, TaskStore};
use sosw::task::TaskId;
use sosw::testing::faults::WorkerFaults;

use super::rig::{Constant, Rig, RunFigures, Setup, labourer_settings};
use super::scenarios::Kind;
use crate::size;

/// A rig over `store`, steered by `control` (the store itself on SQLite, the config table on AWS).
fn rig<S: TaskStore + JobStore + 'static>(
    store: S,
    setup: Setup,
    control: impl FnOnce(&Rig<S>) -> Arc<dyn LabourerControl>,
) -> Rig<S> {
    let rig = Rig::new(store, setup, Box::new(Constant(1_000)));
    let control = control(&rig);
    rig.steered(control)
}

/// Runs `scenario` on `kind`'s store; nothing (a skip) when DynamoDB Local is not configured.
macro_rules! on_store {
    ($kind:expr, $setup:expr, $scenario:ident) => {
        match $kind {
            Kind::Sqlite => {
                let r = rig(SqliteTaskStore::in_memory().expect("SQLite"), $setup, |r| {
                    r.store.clone() as Arc<dyn LabourerControl>
                });
                $scenario(r).await;
            }
            Kind::Dynamo => {
                let Some(client) = sosw_integration_tests::dynamodb_client().await else {
                    return;
                };
                let prefix = sosw_integration_tests::unique_prefix();
                let tables = TableNames::with_prefix(&prefix);
                create_tables(&client, &tables).await.expect("tables");
                let config_table = format!("{prefix}config");
                create_config_table(&client, &config_table)
                    .await
                    .expect("config table");
                let control: Arc<dyn LabourerControl> =
                    Arc::new(DynamoConfigSource::new(client.clone()).with_table(config_table));
                let r = rig(
                    DynamoTaskStore::new(client.clone(), tables.clone()),
                    $setup,
                    |_| control,
                );
                $scenario(r).await;
                delete_tables(&client, &tables)
                    .await
                    .expect("tables deleted");
            }
            Kind::Lean => {
                let Some(client) = sosw_integration_tests::dynamodb_client().await else {
                    return;
                };
                let prefix = sosw_integration_tests::unique_prefix();
                let options = sosw::aws::dynamodb::lean::LeanOptions::with_prefix(&prefix);
                sosw::aws::dynamodb::lean::create_lean_tables(&client, &options)
                    .await
                    .expect("lean tables");
                let config_table = format!("{prefix}config");
                create_config_table(&client, &config_table)
                    .await
                    .expect("config table");
                let control: Arc<dyn LabourerControl> =
                    Arc::new(DynamoConfigSource::new(client.clone()).with_table(config_table));
                // Job counters in batches from the stream, as a lean deployment keeps them.
                let store =
                    sosw::aws::dynamodb::lean::LeanTaskStore::new(client.clone(), options.clone())
                        .expect("lean options")
                        .with_job_counts_from_stream(crate::lean_streams().await);
                let r = rig(store, $setup, |_| control);
                $scenario(r).await;
                sosw::aws::dynamodb::lean::delete_lean_tables(&client, &options)
                    .await
                    .expect("lean tables deleted");
            }
        }
    };
}

/// Where each task of `job_id` ended, by status.
async fn closed_by_status<S: TaskStore>(
    store: &S,
    job_id: &str,
    total: u64,
) -> HashMap<TaskStatus, u64> {
    let mut out = HashMap::new();
    for n in 0..total {
        let id = TaskId::for_chunk(job_id, n);
        let row = store
            .get_closed_task(&id)
            .await
            .expect("read")
            .unwrap_or_else(|| panic!("`{id}` is closed"));
        *out.entry(TaskStatus::of_closed(&row)).or_default() += 1;
    }
    out
}

fn four_orchestrators(seed: u64) -> Setup {
    Setup {
        orchestrators: 4,
        worker: WorkerFaults {
            fail_rate: 0.2,
            ..WorkerFaults::default()
        },
        ..Setup::one_labourer(seed, 100)
    }
}

/// Fails unless at least two orchestrators claimed tasks over `runs`.
fn assert_raced(runs: &[&RunFigures]) {
    let mut per_orchestrator = vec![0u64; 4];
    for run in runs {
        for (i, claims) in run.claims_per_orchestrator.iter().enumerate() {
            per_orchestrator[i] += claims;
        }
    }
    let busy = per_orchestrator.iter().filter(|c| **c > 0).count();
    assert!(busy >= 2, "the orchestrators raced: {per_orchestrator:?}");
}

async fn cancel_scenario<S: TaskStore + JobStore + 'static>(mut rig: Rig<S>) {
    let (cancelled_job, other_job) = ("cancelled-job", "other-job");
    let total = size(2_000, 20_000);
    rig.submit_job("w", cancelled_job, total).await;
    rig.submit_job("w", other_job, total / 3).await;
    let mut figures = RunFigures::default();
    for _ in 0..6 {
        rig.step(&mut figures).await;
    }
    // The cancel races a step of the four orchestrators and the worker assistant.
    let notifier = Arc::new(MemoryNotifier::default());
    let mut queue = NotificationQueue::new(notifier.clone(), Some("alerts".into()));
    let now = rig.clock.now_secs();
    let inner = rig.store.inner();
    let (_, report) = tokio::join!(
        rig.step(&mut figures),
        cancel_job(inner, inner, &mut queue, cancelled_job, now)
    );
    let report = report.expect("cancel succeeds");
    queue.commit().await.expect("sent");
    let after_cancel = rig.log.snapshot().len();
    assert_eq!(report.outcome, CancelOutcome::Cancelled, "{report:?}");
    assert!(
        report.cancelled() > 0,
        "the job had waiting tasks: {report:?}"
    );
    assert!(
        report.cancelled() < total,
        "some of the job ran before it was cancelled: {report:?}"
    );
    assert_eq!(notifier.sent().len(), 1, "its requester is told once");

    let rest = rig.drive().await;
    let check = rig.check().await;
    println!("cancel: {report:?}\n  {check}\n  before {figures:?}\n  after {rest:?}");
    assert_raced(&[&figures, &rest]);
    assert!(check.is_sound(), "{check}");
    assert_eq!(check.pending, 0, "every task closed: {check}");
    assert_eq!(
        check.completed + check.dead + check.cancelled,
        check.submitted,
        "{check}"
    );
    let prefix = format!("{cancelled_job}-");
    let late: Vec<_> = rig.log.snapshot()[after_cancel..]
        .iter()
        .filter(|d| d.task_id.starts_with(&prefix))
        .cloned()
        .collect();
    assert!(
        late.is_empty(),
        "no task of the cancelled job is invoked after the cancel: {late:?}"
    );

    // A store that counts closed tasks itself (the lean layout): its last pass, as the next
    // scavenger run makes it.
    inner
        .count_closed_tasks(rig.clock.now().timestamp())
        .await
        .expect("counting pass");
    let job = inner
        .get_job(cancelled_job)
        .await
        .expect("read")
        .expect("job");
    assert_eq!(job.status, JobStatus::Cancelled);
    let found = closed_by_status(inner, cancelled_job, total).await;
    let count = |status| found.get(&status).copied().unwrap_or(0);
    assert_eq!(
        (job.counts.completed, job.counts.dead, job.counts.cancelled),
        (
            count(TaskStatus::Completed),
            count(TaskStatus::Dead),
            count(TaskStatus::Cancelled)
        ),
        "the job's counters are the closed table's: {found:?}"
    );
    assert_eq!(job.counts.closed(), total, "{:?}", job.counts);
    assert!(count(TaskStatus::Cancelled) >= report.cancelled());

    let other = inner.get_job(other_job).await.expect("read").expect("job");
    assert!(
        matches!(
            other.status,
            JobStatus::Finished | JobStatus::FinishedWithFailures
        ),
        "the other job runs to its end: {other:?}"
    );
    assert_eq!(other.counts.cancelled, 0);
    assert_eq!(other.counts.closed(), total / 3);
    assert_eq!(
        check.cancelled,
        count(TaskStatus::Cancelled),
        "only the cancelled job's tasks are cancelled"
    );
}

async fn pause_scenario<S: TaskStore + JobStore + 'static>(mut rig: Rig<S>) {
    let tasks = size(1_000, 10_000);
    rig.submit("w", tasks).await;
    rig.submit("p", tasks).await;
    let mut figures = RunFigures::default();
    for _ in 0..3 {
        rig.step(&mut figures).await;
    }
    let control = rig.steering_control();
    let now = rig.clock.now_secs();
    // The pause races a step of the four orchestrators.
    let (_, paused) = tokio::join!(
        rig.step(&mut figures),
        pause_labourer(control.as_ref(), "p", now)
    );
    assert!(paused.expect("pause stored"), "p was not paused before");
    let after_pause = rig.log.snapshot().len();
    let p_before = rig.log.snapshot()[..after_pause]
        .iter()
        .filter(|d| d.task_id.starts_with("p-"))
        .count();
    assert!(p_before > 0, "p ran before the pause");
    for _ in 0..30 {
        rig.step(&mut figures).await;
    }
    let during: Vec<_> = rig.log.snapshot()[after_pause..].to_vec();
    let p_during = during
        .iter()
        .filter(|d| d.task_id.starts_with("p-"))
        .count();
    let w_during = during
        .iter()
        .filter(|d| d.task_id.starts_with("w-"))
        .count();
    assert_eq!(
        p_during, 0,
        "no invocation of the paused labourer after the pause is stored"
    );
    assert!(w_during > 0, "the other labourer goes on: {figures:?}");

    assert!(
        resume_labourer(control.as_ref(), "p")
            .await
            .expect("resume")
    );
    let rest = rig.drive().await;
    let check = rig.check().await;
    println!("pause: {check}\n  before {figures:?}\n  after {rest:?}");
    assert_raced(&[&figures, &rest]);
    assert!(check.is_sound(), "{check}");
    assert_eq!(
        check.pending, 0,
        "every task closed after the resume: {check}"
    );
    assert_eq!(check.completed + check.dead, check.submitted, "{check}");
    assert_eq!(check.cancelled, 0);
}

fn two_labourers(seed: u64) -> Setup {
    Setup {
        labourers: vec![
            ("w".into(), labourer_settings(50, 60)),
            ("p".into(), labourer_settings(50, 60)),
        ],
        ..four_orchestrators(seed)
    }
}

async fn a_job_cancelled_under_racing_orchestrators(kind: Kind) {
    on_store!(kind, four_orchestrators(31), cancel_scenario);
}

async fn a_labourer_paused_under_racing_orchestrators(kind: Kind) {
    on_store!(kind, two_labourers(37), pause_scenario);
}

on_every_store!(
    a_job_cancelled_under_racing_orchestrators,
    a_labourer_paused_under_racing_orchestrators,
);
