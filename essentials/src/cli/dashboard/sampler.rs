//! The charts' data: the dashboard's own server samples, every few seconds, how many tasks wait
//! (queued and waiting for retry, over every labourer) and how many have closed (over the newest
//! jobs), into a ring buffer that keeps the last hour.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::Dashboard;
use crate::cli::CliResult;

/// How long the charts look back, in seconds.
pub(crate) const WINDOW_SECS: i64 = 3_600;

/// Jobs whose closed tasks the throughput counts (the newest ones).
const JOBS_COUNTED: usize = 1_000;

/// One sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    /// When (Unix seconds).
    pub at: i64,
    /// Tasks queued or waiting for retry, over every labourer.
    pub waiting: u64,
    /// Tasks closed (completed or dead) so far, over the newest jobs.
    pub closed: u64,
}

/// The last hour of samples: a ring buffer of at most an hour's worth at the sampling interval.
#[derive(Debug)]
pub(crate) struct Samples {
    points: VecDeque<Sample>,
    capacity: usize,
}

impl Samples {
    /// An empty buffer for samples `every` apart.
    pub(crate) fn new(every: Duration) -> Self {
        let every = every.as_secs().max(1) as usize;
        let capacity = WINDOW_SECS as usize / every + 1;
        Samples {
            points: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Adds `sample`, dropping the oldest when full and any older than an hour.
    pub(crate) fn push(&mut self, sample: Sample) {
        if self.points.len() == self.capacity {
            self.points.pop_front();
        }
        self.points.push_back(sample);
        while self
            .points
            .front()
            .is_some_and(|p| p.at < sample.at - WINDOW_SECS)
        {
            self.points.pop_front();
        }
    }

    /// The samples, oldest first.
    pub(crate) fn points(&self) -> Vec<Sample> {
        self.points.iter().copied().collect()
    }
}

/// Tasks closed per minute between consecutive samples, at each later sample's time (a redrive,
/// which takes closed tasks back, counts as none).
pub(crate) fn throughput(points: &[Sample]) -> Vec<(i64, f64)> {
    points
        .windows(2)
        .filter(|w| w[1].at > w[0].at)
        .map(|w| {
            let closed = w[1].closed.saturating_sub(w[0].closed) as f64;
            (w[1].at, closed * 60.0 / (w[1].at - w[0].at) as f64)
        })
        .collect()
}

/// One sample of `dashboard`'s store now.
pub(crate) async fn sample(dashboard: &Dashboard) -> CliResult<Sample> {
    let now = Utc::now().timestamp();
    let tasks = dashboard.store.tasks.as_ref();
    // On AWS a count reads every item it counts: each labourer's queue only as far as the cap.
    let cap = dashboard.store.count_caps.queued.unwrap_or(u64::MAX);
    let mut waiting = 0u64;
    for labourer in dashboard.labourer_ids() {
        waiting += tasks.queue_length_up_to(&labourer, now, cap).await?;
        waiting += tasks.retry_length(&labourer).await?;
    }
    let closed = dashboard
        .store
        .jobs
        .list_job_counters(JOBS_COUNTED)
        .await?
        .iter()
        .map(|job| job.counts.completed + job.counts.dead)
        .sum();
    Ok(Sample {
        at: now,
        waiting,
        closed,
    })
}

/// Samples `dashboard` every `every` until aborted; a failed sample is logged and skipped.
pub(crate) async fn run(dashboard: Arc<Dashboard>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match sample(&dashboard).await {
            Ok(point) => {
                if let Ok(mut samples) = dashboard.samples.lock() {
                    samples.push(point);
                }
            }
            Err(err) => tracing::warn!("dashboard sample failed: {err}"),
        }
    }
}
