//! A store that carries a guard dropped after it: cleans up what a test created for the store (a
//! temporary database file, say) once the last case holding it is done.

use async_trait::async_trait;

use sosw_core::ecology::fair::FairnessKey;
use sosw_core::error::Result;
use sosw_core::store::{
    ClaimOutcome, ClosedStatus, EcologyRecord, EcologyState, EnqueueMode, EnqueueReport,
    KeyedQueue, MoveOutcome, OutcomeCounts, ReportOutcome, TaskArchive, TaskCancel, TaskClaims,
    TaskLookup, TaskQueue, TaskReport, TaskReports, TaskRetries, VersionedEcology,
};
use sosw_core::task::{Markers, Task, TaskId};

/// `store` with `guard`: behaves exactly as `store`, and drops `guard` after `store` (fields drop in
/// declaration order), so the guard may remove files the store had open.
#[derive(Debug)]
pub struct Guarded<S, G> {
    store: S,
    _guard: G,
}

impl<S, G> Guarded<S, G> {
    /// Wraps `store`; `guard` is dropped right after it.
    pub fn new(store: S, guard: G) -> Self {
        Guarded {
            store,
            _guard: guard,
        }
    }

    /// The wrapped store.
    pub fn store(&self) -> &S {
        &self.store
    }
}

#[async_trait]
impl<S: TaskQueue, G: Send + Sync> TaskQueue for Guarded<S, G> {
    async fn enqueue(&self, tasks: &[Task], mode: EnqueueMode) -> Result<EnqueueReport> {
        self.store.enqueue(tasks, mode).await
    }
    async fn next_queued(&self, labourer_id: &str, now: i64, limit: usize) -> Result<Vec<Task>> {
        self.store.next_queued(labourer_id, now, limit).await
    }
    async fn queue_length(&self, labourer_id: &str, now: i64) -> Result<u64> {
        self.store.queue_length(labourer_id, now).await
    }
    async fn oldest_queued_greenfield(&self, labourer_id: &str, now: i64) -> Result<Option<i64>> {
        self.store.oldest_queued_greenfield(labourer_id, now).await
    }
    async fn newest_queued_greenfield(&self, labourer_id: &str, now: i64) -> Result<Option<i64>> {
        self.store.newest_queued_greenfield(labourer_id, now).await
    }
    async fn queue_by_key(
        &self,
        labourer_id: &str,
        key: &FairnessKey,
        markers: &Markers,
        per_key: usize,
    ) -> Result<KeyedQueue> {
        self.store
            .queue_by_key(labourer_id, key, markers, per_key)
            .await
    }
}

#[async_trait]
impl<S: TaskLookup, G: Send + Sync> TaskLookup for Guarded<S, G> {
    async fn get_task(&self, task_id: &TaskId) -> Result<Option<Task>> {
        self.store.get_task(task_id).await
    }
    async fn get_closed_task(&self, task_id: &TaskId) -> Result<Option<Task>> {
        self.store.get_closed_task(task_id).await
    }
    async fn get_retry_task(&self, labourer_id: &str, task_id: &TaskId) -> Result<Option<Task>> {
        self.store.get_retry_task(labourer_id, task_id).await
    }
}

#[async_trait]
impl<S: TaskClaims, G: Send + Sync> TaskClaims for Guarded<S, G> {
    async fn claim(&self, task_id: &TaskId, now: i64) -> Result<ClaimOutcome> {
        self.store.claim(task_id, now).await
    }
    async fn release_claim(&self, claimed: &Task, claimed_at: i64) -> Result<bool> {
        self.store.release_claim(claimed, claimed_at).await
    }
    async fn count_running(&self, labourer_id: &str, markers: &Markers) -> Result<u64> {
        self.store.count_running(labourer_id, markers).await
    }
    fn counts_running_together(&self) -> bool {
        self.store.counts_running_together()
    }
    async fn count_running_many(
        &self,
        labourers: &[(String, Markers)],
    ) -> Result<std::collections::HashMap<String, u64>> {
        self.store.count_running_many(labourers).await
    }
    fn claim_receipt(&self, task_id: &TaskId) -> Option<serde_json::Value> {
        self.store.claim_receipt(task_id)
    }
}

#[async_trait]
impl<S: TaskReports, G: Send + Sync> TaskReports for Guarded<S, G> {
    async fn complete(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<ReportOutcome> {
        self.store.complete(task_id, report, now).await
    }
    async fn complete_and_close(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<(ReportOutcome, Option<MoveOutcome>)> {
        self.store.complete_and_close(task_id, report, now).await
    }
    async fn record_failure(
        &self,
        task_id: &TaskId,
        report: &TaskReport,
        now: i64,
    ) -> Result<ReportOutcome> {
        self.store.record_failure(task_id, report, now).await
    }
}

#[async_trait]
impl<S: TaskArchive, G: Send + Sync> TaskArchive for Guarded<S, G> {
    async fn list_completed(&self, labourer_id: &str, now: i64, limit: usize) -> Result<Vec<Task>> {
        self.store.list_completed(labourer_id, now, limit).await
    }
    async fn list_expired(
        &self,
        labourer_id: &str,
        markers: &Markers,
        limit: usize,
    ) -> Result<Vec<Task>> {
        self.store.list_expired(labourer_id, markers, limit).await
    }
    fn lists_closable_together(&self) -> bool {
        self.store.lists_closable_together()
    }
    async fn list_closable_many(
        &self,
        labourers: &[(String, Markers)],
        limit: usize,
    ) -> Result<std::collections::HashMap<String, sosw_core::store::Closable>> {
        self.store.list_closable_many(labourers, limit).await
    }
    async fn archive(
        &self,
        task: &Task,
        status: ClosedStatus,
        closed_at: i64,
    ) -> Result<MoveOutcome> {
        self.store.archive(task, status, closed_at).await
    }
    async fn closed_sample(
        &self,
        labourer_id: &str,
        status: ClosedStatus,
        limit: usize,
    ) -> Result<Vec<Task>> {
        self.store.closed_sample(labourer_id, status, limit).await
    }
    async fn count_closed(
        &self,
        labourer_id: &str,
        status: ClosedStatus,
        limit: usize,
    ) -> Result<u64> {
        self.store.count_closed(labourer_id, status, limit).await
    }
    async fn redrive(&self, task: &Task, greenfield: i64) -> Result<MoveOutcome> {
        self.store.redrive(task, greenfield).await
    }
}

#[async_trait]
impl<S: TaskCancel, G: Send + Sync> TaskCancel for Guarded<S, G> {
    async fn cancel_queued(&self, task: &Task, closed_at: i64) -> Result<MoveOutcome> {
        self.store.cancel_queued(task, closed_at).await
    }
    async fn cancel_retry(&self, task: &Task, closed_at: i64) -> Result<MoveOutcome> {
        self.store.cancel_retry(task, closed_at).await
    }
}

#[async_trait]
impl<S: TaskRetries, G: Send + Sync> TaskRetries for Guarded<S, G> {
    async fn move_to_retry(&self, task: &Task, desired_launch_time: i64) -> Result<MoveOutcome> {
        self.store.move_to_retry(task, desired_launch_time).await
    }
    async fn due_retries(&self, labourer_id: &str, now: i64, limit: usize) -> Result<Vec<Task>> {
        self.store.due_retries(labourer_id, now, limit).await
    }
    async fn return_to_queue(&self, task: &Task, greenfield: i64) -> Result<MoveOutcome> {
        self.store.return_to_queue(task, greenfield).await
    }
    async fn retry_length(&self, labourer_id: &str) -> Result<u64> {
        self.store.retry_length(labourer_id).await
    }
}

#[async_trait]
impl<S: EcologyState, G: Send + Sync> EcologyState for Guarded<S, G> {
    async fn read_ecology(&self, labourer_id: &str) -> Result<VersionedEcology> {
        self.store.read_ecology(labourer_id).await
    }
    async fn write_ecology(
        &self,
        labourer_id: &str,
        expected_version: u64,
        record: &EcologyRecord,
    ) -> Result<bool> {
        self.store
            .write_ecology(labourer_id, expected_version, record)
            .await
    }
    async fn add_outcomes(&self, labourer_id: &str, outcomes: &OutcomeCounts) -> Result<()> {
        self.store.add_outcomes(labourer_id, outcomes).await
    }
}
