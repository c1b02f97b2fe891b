//! A virtual-clock simulation at a scale this machine cannot host for real: many labourers with
//! realistic durations, failures and health swings, through the real orchestrator, worker assistant
//! and scavenger over an in-memory SQLite store (counted by the fault wrapper, with no faults of its
//! own). Reports completion time (virtual), retries, dead tasks, store requests per task, and the
//! peak claim rate per labourer against DynamoDB's 1,000 writes/s per partition.
//!
//! Sizes: 10 labourers x 300 tasks by default (`make test`); `SOSW_RELIABILITY_FULL=1` runs 100
//! labourers x 10,000 tasks (1,000,000); `SOSW_SIM_TASKS_PER_LABOURER` overrides the per-labourer
//! count (for measuring what a size costs).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use sosw::clock::Clock;
use sosw::ecology::{Datapoint, MetricRequest, MetricsSource};
use sosw::embedded::SqliteTaskStore;
use sosw::testing::faults::{Dice, InvokeFaults, WorkerFaults};

use super::rig::{Durations, Rig, Setup, T0, labourer_settings};
use crate::{full, size};

/// Seconds per simulation step.
const STEP_SECS: i64 = 10;

/// DynamoDB's write limit per partition (write units per second).
const PARTITION_WCU: f64 = 1_000.0;

/// Per labourer: mean duration (ms) and a spread; each attempt's time is log-normal around the mean.
struct Realistic {
    mean_ms: BTreeMap<String, f64>,
}

impl Durations for Realistic {
    fn millis(&self, dice: &Dice, labourer: &str, task_id: &str, attempt: u32) -> i64 {
        let mean = self.mean_ms.get(labourer).copied().unwrap_or(30_000.0);
        // Box-Muller from two rolls; sigma 0.5 gives a long right tail, as real task times have.
        let u1 = dice
            .roll("duration u1", task_id, u64::from(attempt))
            .max(1e-12);
        let u2 = dice.roll("duration u2", task_id, u64::from(attempt));
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        (mean * (0.5 * z - 0.125).exp()) as i64
    }
}

/// Health that swings: a per-labourer sine wave of "load" with a seeded period and phase, and rare
/// dips to overload (status 0: the labourer gets nothing while it lasts).
#[derive(Debug)]
struct Swings {
    clock: Arc<dyn Clock>,
    dice: Dice,
}

#[async_trait]
impl MetricsSource for Swings {
    async fn datapoints(&self, request: &MetricRequest) -> sosw::Result<Vec<Datapoint>> {
        let labourer = request
            .dimensions
            .first()
            .map(|d| d.value.as_str())
            .unwrap_or_default();
        let t = (self.clock.now_secs() - T0) as f64;
        let period = 600.0 + 3_000.0 * self.dice.roll("period", labourer, 0);
        let phase = 2.0 * std::f64::consts::PI * self.dice.roll("phase", labourer, 0);
        let mut load = 45.0 + 40.0 * (2.0 * std::f64::consts::PI * t / period + phase).sin();
        // One ten-minute window in twenty is an outage of what the labourer depends on.
        let window = (t / 600.0) as u64;
        if self.dice.hits(0.05, "outage", labourer, window) {
            load = 99.0;
        }
        Ok(vec![Datapoint {
            timestamp: None,
            value: load,
        }])
    }
}

fn labourer(id: &str, slots: u32, duration_secs: u64) -> Value {
    let mut settings = labourer_settings(slots, duration_secs);
    settings["health_metrics"] = json!({
        "Load": {
            "details": {
                "Name": "Load", "Namespace": "Simulation", "Period": 60, "Statistics": ["Average"],
                "Dimensions": [{"Name": "Labourer", "Value": id}]
            },
            "feelings": {"4": 60, "3": 75, "2": 90},
            "feeling_comparison_operator": "<="
        }
    });
    settings
}

fn tasks_per_labourer() -> u64 {
    std::env::var("SOSW_SIM_TASKS_PER_LABOURER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| size(300, 10_000))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_labourers_finish_every_task_with_the_real_essentials() {
    let labourers = if full() { 100 } else { 10 };
    let per_labourer = tasks_per_labourer();
    let dice = Dice::new(55);
    let mut mean_ms = BTreeMap::new();
    let mut settings = Vec::new();
    // The fastest steady claim rate of any labourer: all slots busy, tasks of mean length.
    let mut steady = (String::new(), 0.0f64);
    for i in 0..labourers {
        let id = format!("l{i:02}");
        // Slots 10-200; mean task time 2 s - 5 min; the worker timeout 4x the mean, at least 60 s.
        let slots = 10 + dice.below(191, "slots", &id, 0) as u32;
        let mean = 2_000.0 + 298_000.0 * dice.roll("mean", &id, 0).powi(2);
        let timeout = ((mean * 4.0 / 1000.0) as u64).max(60);
        mean_ms.insert(id.clone(), mean);
        let rate = f64::from(slots) / (mean / 1000.0);
        if rate > steady.1 {
            steady = (id.clone(), rate);
        }
        settings.push((id.clone(), labourer(&id, slots, timeout)));
    }
    let setup = Setup {
        seed: 55,
        labourers: settings.clone(),
        orchestrators: 1,
        store_throttle: 0.0,
        invoke: InvokeFaults {
            throttle_rate: 0.01,
            unknown_rate: 0.005,
            duplicate_rate: 0.01,
        },
        worker: WorkerFaults {
            fail_rate: 0.05,
            timeout_rate: 0.01,
            lost_report_rate: 0.01,
        },
        step_secs: STEP_SECS,
        scavenge_every: 60,
        max_steps: 1_000_000,
        crash_every: None,
        write_failures: 0.0,
        clock: None,
    };
    let started = std::time::Instant::now();
    let store = SqliteTaskStore::in_memory().expect("SQLite in memory");
    let mut rig = Rig::with_metrics(store, setup, Box::new(Realistic { mean_ms }), |clock| {
        Arc::new(Swings {
            clock,
            dice: Dice::new(56),
        })
    });
    for (id, _) in &settings {
        rig.submit(id, per_labourer).await;
    }
    let enqueued_at = started.elapsed().as_secs_f64();
    let figures = rig.drive().await;
    let wall = started.elapsed().as_secs_f64();
    let check = rig.check().await;
    let total = per_labourer * labourers as u64;
    let ops = rig.store.per_operation();
    let requests: u64 = ops.values().sum();
    let writes: u64 = [
        "enqueue",
        "claim",
        "release_claim",
        "complete",
        "record_failure",
    ]
    .iter()
    .map(|k| ops.get(k).copied().unwrap_or(0))
    .sum::<u64>()
        + 2 * ["archive", "move_to_retry", "return_to_queue"]
            .iter()
            .map(|k| ops.get(k).copied().unwrap_or(0))
            .sum::<u64>();
    let (peak_labourer, peak_step) = figures
        .peak_claims_per_step
        .iter()
        .max_by_key(|(_, n)| **n)
        .map(|(l, n)| (l.clone(), *n))
        .unwrap_or_default();
    let peak_per_sec = peak_step as f64 / STEP_SECS as f64;
    let writes_per_task = writes as f64 / total as f64;
    println!(
        "simulation: {labourers} labourers x {per_labourer} = {total} tasks; wall {wall:.1} s \
         (enqueue {enqueued_at:.1} s); virtual completion {} s ({:.2} h) in {} steps of {STEP_SECS} s\n  \
         {check}\n  claims {}, scavenger retries {}, dead by scavenger {}, reports {} (dropped {})\n  \
         store requests {requests} = {:.2} per task; writes (transactions x2) {writes} = \
         {writes_per_task:.2} per task; per operation {ops:?}\n  \
         peak claims in one step: {peak_step} ({peak_labourer}) = {peak_per_sec:.1}/s, x {writes_per_task:.2} \
         writes per task = {:.0} WCU/s against {PARTITION_WCU} per partition; fastest steady \
         labourer {} at {:.1} claims/s = {:.0} WCU/s\n  \
         invoke faults {:?}; worker fates {:?}",
        figures.virtual_secs,
        figures.virtual_secs as f64 / 3600.0,
        figures.steps,
        figures.claims,
        figures.scavenger_retries,
        figures.scavenger_dead,
        figures.reports,
        figures.reports_dropped,
        requests as f64 / total as f64,
        peak_per_sec * writes_per_task,
        steady.0,
        steady.1,
        steady.1 * writes_per_task,
        rig.invoker.counts(),
        rig.workers.fates(),
    );
    assert!(check.is_sound(), "{check}");
    assert_eq!(check.pending, 0, "{check}");
    assert_eq!(check.completed + check.dead, total, "{check}");
}
