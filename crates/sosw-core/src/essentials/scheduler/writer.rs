//! Writing a job's tasks: batches, greenfields, large payloads, pacing, progress records.

use std::time::Duration;

use serde_json::Value;

use super::rows::{payload_size, task_payload};
use super::{Scheduler, Work};
use crate::blob::{payload_key, store_payload};
use crate::error::{Error, Result};
use crate::job::TaskPayload;
use crate::store::{EnqueueMode, EnqueueReport};
use crate::task::greenfield::queued_sequence;
use crate::task::{Task, TaskId};

/// How far a run got. Updated after every batch, so the caller knows the cursor even on an error.
#[derive(Debug, Clone, Default)]
pub(super) struct Progress {
    /// The chunk index of the first task not yet known to be in the store.
    pub cursor: u64,
    /// The enqueue reports of this run, summed.
    pub report: EnqueueReport,
    /// Payloads written to the blob store instead of the task row.
    pub payloads_stored: usize,
    /// The highest greenfield this run gave a task: where the next batch goes on from (the queue's
    /// tail is read for the run's first batch only).
    last_greenfield: Option<i64>,
    /// The queue's tail as read before the first batch (`Some`), which that batch takes instead of
    /// reading it.
    known_tail: Option<Option<i64>>,
    /// Tasks this run wrote, and when it began writing: for pacing.
    paced_writes: u64,
    pacing_since: Option<tokio::time::Instant>,
}

impl Progress {
    /// Progress starting at `cursor`.
    pub(super) fn at(cursor: u64) -> Self {
        Progress {
            cursor,
            ..Progress::default()
        }
    }

    /// The same progress, with the queue's tail known for its first batch.
    pub(super) fn with_known_tail(self, known_tail: Option<Option<i64>>) -> Self {
        Progress { known_tail, ..self }
    }
}

/// Why writing stopped without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// Every task of the job is in the store.
    Done,
    /// The deadline came within the shutdown period with tasks left.
    Deadline,
}

impl Scheduler {
    /// Writes `work`'s tasks from `progress.cursor` in batches while the deadline allows, recording the
    /// job's progress after each batch.
    pub(super) async fn write_batches(
        &self,
        work: &Work,
        deadline: chrono::DateTime<chrono::Utc>,
        progress: &mut Progress,
    ) -> Result<Stop> {
        let batch_size = self.config.enqueue_batch_size.max(1);
        let mut mode = work.first_mode;
        progress
            .pacing_since
            .get_or_insert_with(tokio::time::Instant::now);
        let end = work.end();
        while progress.cursor < end {
            if !self.may_write(deadline) {
                return Ok(Stop::Deadline);
            }
            let batch = work.rows_from(progress.cursor, batch_size);
            if batch.is_empty() {
                // Spools and re-chunked jobs are checked against `total` when read, so this is a bug;
                // an error keeps the job resumable instead of calling it done.
                return Err(Error::invalid(
                    "job",
                    format!(
                        "job `{}` has no row for task {} of {}",
                        work.job_id, progress.cursor, work.total
                    ),
                ));
            }
            let written = self.write_batch(work, batch, mode, progress).await?;
            progress.cursor += batch.len() as u64;
            let now = self.clock.now_secs();
            self.jobs
                .record_progress(&work.job_id, progress.cursor, Some(work.total), now)
                .await?;
            mode = work.later_mode;
            self.pace(progress, written, deadline).await;
        }
        Ok(Stop::Done)
    }

    /// Writes one batch starting at chunk `progress.cursor`. Returns how many tasks were written.
    async fn write_batch(
        &self,
        work: &Work,
        batch: &[TaskPayload],
        mode: EnqueueMode,
        progress: &mut Progress,
    ) -> Result<usize> {
        let now = self.clock.now_secs();
        // One read of the queue tail serves the whole run (sosw 0.7 read it once per task, B14):
        // later batches go on from this run's last greenfield. Tasks another writer queues
        // meanwhile may then share greenfields with these, which sosw 0.7's concurrent schedulers
        // did too: the queue orders ties by task id, and nothing is lost or doubled.
        let newest = match (progress.known_tail.take(), progress.last_greenfield) {
            (_, Some(last)) => Some(last),
            (Some(known), None) => known,
            (None, None) => {
                self.tasks
                    .get_newest_greenfield_for_labourer(&work.labourer_id, now)
                    .await?
            }
        };
        let greenfields: Vec<i64> = queued_sequence(newest, batch.len()).collect();
        let created_at = self.clock.now_f64();
        let mut tasks = Vec::with_capacity(batch.len());
        for (offset, (row, greenfield)) in batch.iter().zip(&greenfields).enumerate() {
            let id = TaskId::for_chunk(&work.job_id, progress.cursor + offset as u64);
            let payload = self.stored_payload(&id, row, progress).await?;
            let mut task = Task::new(
                id.as_str(),
                &work.labourer_id,
                payload,
                *greenfield,
                created_at,
            );
            task.job_id = Some(work.job_id.clone());
            tasks.push(task);
        }
        let report = self.tasks.create_tasks(&tasks, mode).await?;
        progress.last_greenfield = greenfields.last().copied().max(progress.last_greenfield);
        progress.report.written += report.written;
        progress.report.skipped_existing += report.skipped_existing;
        progress.report.write_requests += report.write_requests;
        Ok(report.written)
    }

    /// The payload to put in the task row: the payload itself, or, above `max_task_payload_bytes`, a
    /// pointer to it in the blob store (written first, so a task never points to nothing).
    async fn stored_payload(
        &self,
        id: &TaskId,
        row: &TaskPayload,
        progress: &mut Progress,
    ) -> Result<Value> {
        let payload = task_payload(row);
        let Some(blobs) = &self.blobs else {
            // Sizes were checked before the job was accepted.
            return Ok(payload);
        };
        if payload_size(&payload) <= self.config.max_task_payload_bytes {
            return Ok(payload);
        }
        let key = payload_key(&self.config.s3_prefix, id);
        let pointer = store_payload(blobs.as_ref(), &key, &payload).await?;
        progress.payloads_stored += 1;
        Ok(pointer)
    }

    /// Whether there is time for another batch: more than `shutdown_period` before the deadline.
    pub(super) fn may_write(&self, deadline: chrono::DateTime<chrono::Utc>) -> bool {
        self.time_left(deadline) > self.shutdown_period()
    }

    fn time_left(&self, deadline: chrono::DateTime<chrono::Utc>) -> Duration {
        (deadline - self.clock.now())
            .to_std()
            .unwrap_or(Duration::ZERO)
    }

    fn shutdown_period(&self) -> Duration {
        Duration::from_secs(self.config.shutdown_period)
    }

    /// Sleeps as long as `max_writes_per_second` asks after `written` more writes, but never into the
    /// shutdown period.
    async fn pace(
        &self,
        progress: &mut Progress,
        written: usize,
        deadline: chrono::DateTime<chrono::Utc>,
    ) {
        let Some(rate) = self.config.max_writes_per_second else {
            return;
        };
        let since = *progress
            .pacing_since
            .get_or_insert_with(tokio::time::Instant::now);
        // The pace is over the whole run, so a slow batch makes room for a faster next one.
        progress.paced_writes += written as u64;
        let due = Duration::from_secs_f64(progress.paced_writes as f64 / rate);
        let wait = due.saturating_sub(since.elapsed());
        let spare = self
            .time_left(deadline)
            .saturating_sub(self.shutdown_period());
        let wait = wait.min(spare);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}
