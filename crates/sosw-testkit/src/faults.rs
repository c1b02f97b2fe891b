//! Deterministic, seeded faults around the ports, for reliability tests and simulations.
//!
//! * [`Dice`]: a seeded hash of (seed, kind of fault, key, counter) to a number in `[0, 1)`. The same
//!   seed and the same calls give the same faults; a fault keyed by task and attempt (a worker's fate)
//!   is the same whatever order the calls come in.
//! * [`FaultyStore`]: any task store, with throttling (a retryable [`Error::Store`] before the call
//!   reaches the store) at a rate, a crash at the N-th call (that call and every later one fail until
//!   [`FaultyStore::heal`]: an essential aborted between two steps), and a count of requests per
//!   operation.
//! * [`FaultyInvoker`]: any invoker, with throttling (the invocation is [`InvokeOutcome::Rejected`] and
//!   never reaches the worker), unknown outcomes (a timeout after which the worker may or may not have
//!   the task), and duplicate deliveries (the worker gets the same invocation twice, as an
//!   asynchronous Lambda event may be). Every delivery is recorded in a [`DeliveryLog`] for the
//!   [`checker`](super::checker).
//! * [`WorkerFaults`]: what a simulated worker does with one attempt: complete, fail, time out (never
//!   report), or complete with its report lost.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;

use super::checker::{Delivery, DeliveryLog};
use sosw_core::ecology::fair::FairnessKey;
use sosw_core::error::{Error, Result};
use sosw_core::invoke::{InvokeOutcome, Invoker};
use sosw_core::store::{
    ClaimOutcome, ClosedStatus, CreateJobOutcome, EcologyRecord, EcologyState, EnqueueMode,
    EnqueueReport, JobCounts, JobRecord, JobStatus, JobStore, KeyedQueue, LabourerControl,
    MoveOutcome, OutcomeCounts, PausedLabourer, ReportOutcome, TaskArchive, TaskCancel, TaskClaims,
    TaskLookup, TaskQueue, TaskReport, TaskReports, TaskRetries, VersionedEcology,
};
use sosw_core::task::{Markers, Task, TaskId};

/// A seeded source of fault decisions: a pure function of its inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dice {
    seed: u64,
}

impl Dice {
    /// Dice for `seed`.
    pub fn new(seed: u64) -> Self {
        Dice { seed }
    }

    /// A number in `[0, 1)` for this fault `kind`, `key` and counter `n`.
    pub fn roll(&self, kind: &str, key: &str, n: u64) -> f64 {
        // FNV-1a over the inputs, then splitmix64's finaliser to spread the bits.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ self.seed;
        for byte in kind
            .bytes()
            .chain([0xff])
            .chain(key.bytes())
            .chain(n.to_le_bytes())
        {
            h = (h ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
        (h >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether a fault of probability `rate` strikes for these inputs.
    pub fn hits(&self, rate: f64, kind: &str, key: &str, n: u64) -> bool {
        rate > 0.0 && self.roll(kind, key, n) < rate
    }

    /// A whole number in `0..bound` (0 when `bound` is 0).
    pub fn below(&self, bound: u64, kind: &str, key: &str, n: u64) -> u64 {
        ((self.roll(kind, key, n) * bound as f64) as u64).min(bound.saturating_sub(1))
    }
}

/// The store faults' state, shared by every capability of a [`FaultyStore`].
#[derive(Debug, Default)]
struct StoreState {
    calls: AtomicU64,
    throttled: AtomicU64,
    crash_at: AtomicU64,
    crashed: AtomicBool,
    per_operation: Mutex<BTreeMap<&'static str, u64>>,
}

/// A task store with injected throttling and crashes (see the module docs).
#[derive(Debug)]
pub struct FaultyStore<S> {
    inner: S,
    dice: Dice,
    throttle_rate: f64,
    /// When off, `complete_and_close` completes alone (the trait's provided behaviour), whatever the
    /// wrapped store can do: the archive is then a call of its own, which a crash can hit.
    one_move_close: bool,
    state: Arc<StoreState>,
}

impl<S> FaultyStore<S> {
    /// Wraps `inner` without faults; add them with the `with_*` methods.
    pub fn new(inner: S, seed: u64) -> Self {
        FaultyStore {
            inner,
            dice: Dice::new(seed),
            throttle_rate: 0.0,
            one_move_close: true,
            state: Arc::new(StoreState::default()),
        }
    }

    /// Completes without closing in the same call even when the wrapped store could (as stores
    /// without a one-move close do), so that a test can fail the archive that follows.
    pub fn without_one_move_close(mut self) -> Self {
        self.one_move_close = false;
        self
    }

    /// Fails this share of calls with a retryable throttling error, before they reach the store.
    pub fn with_throttling(mut self, rate: f64) -> Self {
        self.throttle_rate = rate;
        self
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The process "dies" at call number `n` from now (1-based): it and every later call fail with a
    /// non-retryable error until [`FaultyStore::heal`].
    pub fn crash_at(&self, n: u64) {
        self.state.crashed.store(false, Ordering::SeqCst);
        let base = self.state.calls.load(Ordering::SeqCst);
        self.state.crash_at.store(base + n, Ordering::SeqCst);
    }

    /// No crash armed, calls go through again (the process was restarted).
    pub fn heal(&self) {
        self.state.crash_at.store(0, Ordering::SeqCst);
        self.state.crashed.store(false, Ordering::SeqCst);
    }

    /// Whether an armed crash has happened.
    pub fn has_crashed(&self) -> bool {
        self.state.crashed.load(Ordering::SeqCst)
    }

    /// Calls made so far (including failed ones).
    pub fn calls(&self) -> u64 {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// Calls failed with injected throttling so far.
    pub fn throttled(&self) -> u64 {
        self.state.throttled.load(Ordering::SeqCst)
    }

    /// Calls so far, per operation name (`claim`, `complete`, ...).
    pub fn per_operation(&self) -> BTreeMap<&'static str, u64> {
        self.state
            .per_operation
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Counts a call; an error when it must fail.
    fn enter(&self, operation: &'static str) -> Result<()> {
        let n = self.state.calls.fetch_add(1, Ordering::SeqCst) + 1;
        *self
            .state
            .per_operation
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(operation)
            .or_default() += 1;
        let crash_at = self.state.crash_at.load(Ordering::SeqCst);
        if crash_at != 0 && n >= crash_at {
            self.state.crashed.store(true, Ordering::SeqCst);
            return Err(Error::store(
                "fault injection",
                operation,
                false,
                format!("the process was killed before call {n}"),
            ));
        }
        if self.dice.hits(self.throttle_rate, "store", operation, n) {
            self.state.throttled.fetch_add(1, Ordering::SeqCst);
            return Err(Error::store(
                "fault injection",
                operation,
                true,
                "ProvisionedThroughputExceededException (injected)",
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl<S: TaskQueue> TaskQueue for FaultyStore<S> {
    async fn enqueue(&self, tasks: &[Task], mode: EnqueueMode) -> Result<EnqueueReport> {
        self.enter("enqueue")?;
        self.inner.enqueue(tasks, mode).await
    }
    async fn next_queued(&self, labourer_id: &str, now: i64, limit: usize) -> Result<Vec<Task>> {
        self.enter("next_queued")?;
        self.inner.next_queued(labourer_id, now, limit).await
    }
    async fn queue_length(&self, labourer_id: &str, now: i64) -> Result<u64> {
        self.enter("queue_length")?;
        self.inner.queue_length(labourer_id, now).await
    }
    async fn oldest_queued_greenfield(&self, labourer_id: &str, now: i64) -> Result<Option<i64>> {
        self.enter("oldest_queued_greenfield")?;
        self.inner.oldest_queued_greenfield(labourer_id, now).await
    }
    async fn newest_queued_greenfield(&self, labourer_id: &str, now: i64) -> Result<Option<i64>> {
        self.enter("newest_queued_greenfield")?;
        self.inner.newest_queued_greenfield(labourer_id, now).await
    }
    async fn queue_by_key(
        &self,
        labourer_id: &str,
        key: &FairnessKey,
        markers: &Markers,
        per_key: usize,
    ) -> Result<KeyedQueue> {
        self.enter("queue_by_key")?;
        self.inner
            .queue_by_key(labourer_id, key, markers, per_key)
            .await
    }
}

#[async_trait]
impl<S: TaskLookup> TaskLookup for FaultyStore<S> {
    async fn get_task(&self, task_id: &TaskId) -> Result<Option<Task>> {
        self.enter("get_task")?;
        self.inner.get_task(task_id).await
    }
    async fn get_closed_task(&self, task_id: &TaskId) -> Result<Option<Task>> {
        self.enter("get_closed_task")?;
        self.inner.get_closed_task(task_id).await
    }
    async fn get_retry_task(&self, labourer_id: &str, task_id: &TaskId) -> Result<Option<Task>> {
        self.enter("get_retry_task")?;
        self.inner.get_retry_task(labourer_id, task_id).await
    }
}

#[async_trait]
impl<S: TaskClaims> TaskClaims for FaultyStore<S> {
    async fn claim(&self, task_id: &TaskId, now: i64) -> Result<ClaimOutcome> {
        self.enter("claim")?;
        self.inner.claim(task_id, now).await
    }
    async fn release_claim(&self, claimed: &Task, claimed_at: i64) -> Result<bool> {
        self.enter("release_claim")?;
        self.inner.release_claim(claimed, claimed_at).await
    }
    async fn count_running(&self, labourer_id: &str, markers: &Markers) -> Result<u64> {
        self.enter("count_running")?;
        self.inner.count_running(labourer_id, markers).await
    }
    fn counts_running_together(&self) -> bool {
        self.inner.counts_running_together()
    }
    async fn count_running_many(
        &self,
        labourers: &[(String, Markers)],
    ) -> Result<std::collections::HashMap<String, u64>> {
        self.enter("count_running_many")?;
        self.inner.count_running_many(labourers).await
    }
    fn claim_receipt(&self, task_id: &TaskId) -> Option<serde_json::Value> {
        self.inner.claim_receipt(task_id)
    }
}

#[async_trait]
impl<S: TaskReports> TaskReports for FaultyStore<S> {
    async fn complete(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<ReportOutcome> {
        self.enter("complete")?;
        self.inner.complete(task_id, report, now).await
    }
    async fn complete_and_close(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<(ReportOutcome, Option<MoveOutcome>)> {
        self.enter("complete")?;
        if !self.one_move_close {
            return Ok((self.inner.complete(task_id, report, now).await?, None));
        }
        self.inner.complete_and_close(task_id, report, now).await
    }
    async fn record_failure(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<ReportOutcome> {
        self.enter("record_failure")?;
        self.inner.record_failure(task_id, report, now).await
    }
}

#[async_trait]
impl<S: TaskArchive> TaskArchive for FaultyStore<S> {
    async fn list_completed(&self, labourer_id: &str, now: i64, limit: usize) -> Result<Vec<Task>> {
        self.enter("list_completed")?;
        self.inner.list_completed(labourer_id, now, limit).await
    }
    async fn list_expired(
        &self,
        labourer_id: &str,
        markers: &Markers,
        limit: usize,
    ) -> Result<Vec<Task>> {
        self.enter("list_expired")?;
        self.inner.list_expired(labourer_id, markers, limit).await
    }
    fn lists_closable_together(&self) -> bool {
        self.inner.lists_closable_together()
    }
    async fn list_closable_many(
        &self,
        labourers: &[(String, Markers)],
        limit: usize,
    ) -> Result<std::collections::HashMap<String, sosw_core::store::Closable>> {
        self.enter("list_closable_many")?;
        self.inner.list_closable_many(labourers, limit).await
    }
    async fn archive(
        &self,
        task: &Task,
        status: ClosedStatus,
        closed_at: i64,
    ) -> Result<MoveOutcome> {
        self.enter("archive")?;
        self.inner.archive(task, status, closed_at).await
    }
    async fn closed_sample(
        &self,
        labourer_id: &str,
        status: ClosedStatus,
        limit: usize,
    ) -> Result<Vec<Task>> {
        self.enter("closed_sample")?;
        self.inner.closed_sample(labourer_id, status, limit).await
    }
    async fn count_closed(
        &self,
        labourer_id: &str,
        status: ClosedStatus,
        limit: usize,
    ) -> Result<u64> {
        self.enter("count_closed")?;
        self.inner.count_closed(labourer_id, status, limit).await
    }
    async fn redrive(&self, task: &Task, greenfield: i64) -> Result<MoveOutcome> {
        self.enter("redrive")?;
        self.inner.redrive(task, greenfield).await
    }
}

/// Job records go straight to the inner store: faults are injected into task store calls only.
#[async_trait]
impl<S: JobStore> JobStore for FaultyStore<S> {
    async fn create_job(&self, record: &JobRecord) -> Result<CreateJobOutcome> {
        self.inner.create_job(record).await
    }
    async fn get_job(&self, job_id: &str) -> Result<Option<JobRecord>> {
        self.inner.get_job(job_id).await
    }
    async fn get_job_counters(&self, job_id: &str) -> Result<Option<JobRecord>> {
        self.inner.get_job_counters(job_id).await
    }
    async fn list_job_counters(&self, limit: usize) -> Result<Vec<JobRecord>> {
        self.inner.list_job_counters(limit).await
    }
    async fn add_requester(&self, job_id: &str, requester: &str) -> Result<Option<JobRecord>> {
        self.inner.add_requester(job_id, requester).await
    }
    async fn record_progress(
        &self,
        job_id: &str,
        enqueued: u64,
        total: Option<u64>,
        now: i64,
    ) -> Result<()> {
        self.inner
            .record_progress(job_id, enqueued, total, now)
            .await
    }
    async fn add_outcomes(&self, job_id: &str, delta: JobCounts) -> Result<Option<JobRecord>> {
        self.inner.add_outcomes(job_id, delta).await
    }
    fn counts_closed_tasks(&self) -> bool {
        self.inner.counts_closed_tasks()
    }
    async fn count_closed_tasks(&self, now: i64) -> Result<Vec<JobRecord>> {
        self.inner.count_closed_tasks(now).await
    }
    async fn finish_job(&self, job_id: &str, status: JobStatus, now: i64) -> Result<bool> {
        self.inner.finish_job(job_id, status, now).await
    }
    async fn list_jobs(&self, limit: usize) -> Result<Vec<JobRecord>> {
        self.inner.list_jobs(limit).await
    }
    async fn reopen_job(&self, job_id: &str, redriven: u64) -> Result<Option<JobRecord>> {
        self.inner.reopen_job(job_id, redriven).await
    }
}

/// Pauses go straight to the inner store.
#[async_trait]
impl<S: LabourerControl> LabourerControl for FaultyStore<S> {
    async fn pause_labourer(&self, labourer_id: &str, now: i64) -> Result<bool> {
        self.inner.pause_labourer(labourer_id, now).await
    }
    async fn resume_labourer(&self, labourer_id: &str) -> Result<bool> {
        self.inner.resume_labourer(labourer_id).await
    }
    async fn paused_labourers(&self) -> Result<Vec<PausedLabourer>> {
        self.inner.paused_labourers().await
    }
}

#[async_trait]
impl<S: TaskCancel> TaskCancel for FaultyStore<S> {
    async fn cancel_queued(&self, task: &Task, closed_at: i64) -> Result<MoveOutcome> {
        self.enter("cancel_queued")?;
        self.inner.cancel_queued(task, closed_at).await
    }
    async fn cancel_retry(&self, task: &Task, closed_at: i64) -> Result<MoveOutcome> {
        self.enter("cancel_retry")?;
        self.inner.cancel_retry(task, closed_at).await
    }
}

#[async_trait]
impl<S: TaskRetries> TaskRetries for FaultyStore<S> {
    async fn move_to_retry(&self, task: &Task, desired_launch_time: i64) -> Result<MoveOutcome> {
        self.enter("move_to_retry")?;
        self.inner.move_to_retry(task, desired_launch_time).await
    }
    async fn due_retries(&self, labourer_id: &str, now: i64, limit: usize) -> Result<Vec<Task>> {
        self.enter("due_retries")?;
        self.inner.due_retries(labourer_id, now, limit).await
    }
    async fn return_to_queue(&self, task: &Task, greenfield: i64) -> Result<MoveOutcome> {
        self.enter("return_to_queue")?;
        self.inner.return_to_queue(task, greenfield).await
    }
    async fn retry_length(&self, labourer_id: &str) -> Result<u64> {
        self.enter("retry_length")?;
        self.inner.retry_length(labourer_id).await
    }
}

#[async_trait]
impl<S: EcologyState> EcologyState for FaultyStore<S> {
    async fn read_ecology(&self, labourer_id: &str) -> Result<VersionedEcology> {
        self.enter("read_ecology")?;
        self.inner.read_ecology(labourer_id).await
    }
    async fn write_ecology(
        &self,
        labourer_id: &str,
        expected_version: u64,
        record: &EcologyRecord,
    ) -> Result<bool> {
        self.enter("write_ecology")?;
        self.inner
            .write_ecology(labourer_id, expected_version, record)
            .await
    }
    async fn add_outcomes(&self, labourer_id: &str, outcomes: &OutcomeCounts) -> Result<()> {
        self.enter("add_outcomes")?;
        self.inner.add_outcomes(labourer_id, outcomes).await
    }
}

/// Rates of the invoke faults. Each is the probability per invocation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct InvokeFaults {
    /// Rejected as throttled; the worker never gets it.
    pub throttle_rate: f64,
    /// Outcome unknown (a timeout); the worker gets it or not, half and half.
    pub unknown_rate: f64,
    /// Delivered twice.
    pub duplicate_rate: f64,
}

/// What the faulty invoker did, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InvokeCounts {
    /// Invocations asked for.
    pub invocations: u64,
    /// Rejected as throttled.
    pub throttled: u64,
    /// Answered with an unknown outcome.
    pub unknown: u64,
    /// Of those, delivered anyway.
    pub unknown_delivered: u64,
    /// Delivered a second time on purpose.
    pub duplicated: u64,
}

/// An invoker with injected throttling, unknown outcomes and duplicate deliveries; records every
/// delivery that reaches the inner invoker (see the module docs).
pub struct FaultyInvoker {
    inner: Arc<dyn Invoker>,
    faults: InvokeFaults,
    dice: Dice,
    log: Arc<DeliveryLog>,
    calls: AtomicU64,
    counts: Mutex<InvokeCounts>,
}

impl std::fmt::Debug for FaultyInvoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyInvoker")
            .field("faults", &self.faults)
            .field("dice", &self.dice)
            .finish_non_exhaustive()
    }
}

impl FaultyInvoker {
    /// Wraps `inner` with `faults` seeded by `seed`, recording deliveries in `log`.
    pub fn new(
        inner: Arc<dyn Invoker>,
        faults: InvokeFaults,
        seed: u64,
        log: Arc<DeliveryLog>,
    ) -> Self {
        FaultyInvoker {
            inner,
            faults,
            dice: Dice::new(seed),
            log,
            calls: AtomicU64::new(0),
            counts: Mutex::new(InvokeCounts::default()),
        }
    }

    /// What was injected so far.
    pub fn counts(&self) -> InvokeCounts {
        *self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, f: impl FnOnce(&mut InvokeCounts)) {
        f(&mut self.counts.lock().unwrap_or_else(|p| p.into_inner()));
    }

    async fn deliver(
        &self,
        function: &str,
        payload: &Value,
        delivery: Delivery,
    ) -> Result<InvokeOutcome> {
        self.log.record(delivery);
        self.inner.invoke(function, payload).await
    }
}

#[async_trait]
impl Invoker for FaultyInvoker {
    async fn invoke(&self, function: &str, payload: &Value) -> Result<InvokeOutcome> {
        let delivery = Delivery::from_payload(payload, false)?;
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        let key = delivery.task_id.clone();
        self.count(|c| c.invocations += 1);
        if self
            .dice
            .hits(self.faults.throttle_rate, "invoke throttle", &key, n)
        {
            self.count(|c| c.throttled += 1);
            return Ok(InvokeOutcome::Rejected(
                "TooManyRequestsException (injected)".into(),
            ));
        }
        if self
            .dice
            .hits(self.faults.unknown_rate, "invoke unknown", &key, n)
        {
            let delivered = self.dice.hits(0.5, "unknown delivered", &key, n);
            self.count(|c| {
                c.unknown += 1;
                c.unknown_delivered += u64::from(delivered);
            });
            if delivered {
                // What the worker makes of it is none of the orchestrator's business: it only ever
                // sees the timeout.
                let _ = self.deliver(function, payload, delivery).await;
            }
            return Ok(InvokeOutcome::Unknown(
                "the invocation timed out (injected)".into(),
            ));
        }
        let outcome = self.deliver(function, payload, delivery.clone()).await?;
        let attempt_key = format!("{key}#{}", delivery.attempt);
        if self
            .dice
            .hits(self.faults.duplicate_rate, "duplicate", &attempt_key, 0)
        {
            self.count(|c| c.duplicated += 1);
            let again = Delivery {
                injected: true,
                ..delivery
            };
            let _ = self.deliver(function, payload, again).await;
        }
        Ok(outcome)
    }
}

/// What a worker does with one attempt of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerFate {
    /// Works and reports completion.
    Complete,
    /// Fails and reports a retryable failure.
    Fail,
    /// Runs past its timeout: reports nothing; the task expires.
    Timeout,
    /// Does the work, but its completion report is lost: the task expires and runs again.
    CompletionLost,
}

/// Rates of the worker faults, per attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WorkerFaults {
    /// Reports a failure.
    pub fail_rate: f64,
    /// Reports nothing (timeout).
    pub timeout_rate: f64,
    /// Completes, but the report is lost.
    pub lost_report_rate: f64,
}

impl WorkerFaults {
    /// The fate of attempt `attempt` of `task_id`: the same for the same seed whatever the order of
    /// calls. Failure is decided first, then timeout, then a lost report, each with its own roll.
    pub fn fate(&self, dice: &Dice, task_id: &str, attempt: u32) -> WorkerFate {
        let n = u64::from(attempt);
        if dice.hits(self.fail_rate, "worker fails", task_id, n) {
            WorkerFate::Fail
        } else if dice.hits(self.timeout_rate, "worker times out", task_id, n) {
            WorkerFate::Timeout
        } else if dice.hits(self.lost_report_rate, "report lost", task_id, n) {
            WorkerFate::CompletionLost
        } else {
            WorkerFate::Complete
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use sosw_embedded::SqliteTaskStore;
    use sosw_embedded::invoke::inprocess::{InProcessInvoker, handler_fn};

    #[test]
    fn the_same_seed_rolls_the_same_and_rates_hold() {
        let dice = Dice::new(7);
        assert_eq!(dice.roll("k", "a", 1), Dice::new(7).roll("k", "a", 1));
        assert_ne!(dice.roll("k", "a", 1), Dice::new(8).roll("k", "a", 1));
        let hits = (0..100_000)
            .filter(|n| dice.hits(0.3, "k", "x", *n))
            .count();
        assert!((29_000..31_000).contains(&hits), "{hits} of 100000 at 30%");
        assert!((0..1000).all(|n| dice.below(10, "k", "x", n) < 10));
    }

    #[test]
    fn worker_fates_follow_their_rates() {
        let faults = WorkerFaults {
            fail_rate: 0.3,
            timeout_rate: 0.0,
            lost_report_rate: 0.1,
        };
        let dice = Dice::new(1);
        let fates: Vec<WorkerFate> = (0..10_000)
            .map(|i| faults.fate(&dice, &format!("t{i}"), 1))
            .collect();
        let failed = fates.iter().filter(|f| **f == WorkerFate::Fail).count();
        let lost = fates
            .iter()
            .filter(|f| **f == WorkerFate::CompletionLost)
            .count();
        assert!((2_800..3_200).contains(&failed), "{failed}");
        // 10% of the 70% that did not fail.
        assert!((600..800).contains(&lost), "{lost}");
        assert_eq!(faults.fate(&dice, "t1", 1), faults.fate(&dice, "t1", 1));
    }

    #[tokio::test]
    async fn a_crashed_store_fails_every_call_until_healed() {
        let store = FaultyStore::new(SqliteTaskStore::in_memory().expect("store"), 1);
        store.crash_at(2);
        assert!(store.queue_length("w", 0).await.is_ok());
        let err = store.queue_length("w", 0).await.expect_err("crashed");
        assert!(!err.is_retryable());
        assert!(err.to_string().contains("killed"), "{err}");
        assert!(store.queue_length("w", 0).await.is_err());
        assert!(store.has_crashed());
        store.heal();
        assert!(store.queue_length("w", 0).await.is_ok());
        assert_eq!(store.per_operation().get("queue_length"), Some(&4));
    }

    #[tokio::test]
    async fn a_throttled_store_fails_retryably_at_its_rate() {
        let store =
            FaultyStore::new(SqliteTaskStore::in_memory().expect("store"), 3).with_throttling(0.25);
        let mut failed = 0;
        for _ in 0..2000 {
            if let Err(e) = store.queue_length("w", 0).await {
                assert!(e.is_retryable(), "{e}");
                failed += 1;
            }
        }
        assert_eq!(failed, store.throttled());
        assert!((400..600).contains(&failed), "{failed}");
    }

    #[tokio::test]
    async fn the_invoker_records_deliveries_and_marks_injected_duplicates() {
        let inner =
            Arc::new(InProcessInvoker::new().register("w", handler_fn(|_p: Value| async {})));
        let log = Arc::new(DeliveryLog::default());
        let faults = InvokeFaults {
            throttle_rate: 0.2,
            unknown_rate: 0.2,
            duplicate_rate: 0.2,
        };
        let invoker = FaultyInvoker::new(inner.clone(), faults, 5, log.clone());
        for i in 0..1000 {
            let payload = json!({"task_id": format!("t{i}"), "attempts": 0});
            invoker.invoke("w", &payload).await.expect("invoked");
        }
        inner.wait_idle().await;
        let c = invoker.counts();
        assert_eq!(c.invocations, 1000);
        assert!(
            c.throttled > 100 && c.unknown > 100 && c.duplicated > 50,
            "{c:?}"
        );
        let deliveries = log.snapshot();
        let injected = deliveries.iter().filter(|d| d.injected).count() as u64;
        assert_eq!(injected, c.duplicated);
        assert_eq!(
            deliveries.len() as u64,
            c.invocations - c.throttled - c.unknown + c.unknown_delivered + c.duplicated
        );
    }
}
