//! Writing a job in bounded memory when there is no blob store (local mode, `sosw submit`): the
//! chunker runs on a blocking thread and hands its rows over a bounded channel, and the writer takes
//! them a window at a time. The tasks, their ids and their order are those of the whole-job path: the
//! chunker makes the same rows in the same order, only it does not keep them.
//!
//! The job is chunked twice: once to count and check every task before anything is written (a bad
//! job still leaves no trace), once to write.

use chrono::{DateTime, NaiveDate, Utc};
use tokio::sync::mpsc;

use super::rows::check_row;
use super::writer::{Progress, Stop};
use super::{Scheduler, SchedulerReport, Work};
use crate::error::{Error, Result};
use crate::job::{Chunker, Job, TaskPayload};

/// Rows held at once: the window being written plus as many waiting in the channel.
const WINDOW: usize = 10_000;

impl Scheduler {
    /// The number of tasks of `job` on `day`, each checked as a run checks it; none is kept.
    pub(super) fn count_checked(&self, job: &Job, day: NaiveDate) -> Result<u64> {
        self.each_checked(job, day, &mut |_, _| Ok(()))
    }

    /// Hands every row of `job` on `day` to `each` with its chunk index, as the chunker makes it,
    /// after checking it as a run checks it. Returns how many there were.
    pub(super) fn each_checked(
        &self,
        job: &Job,
        day: NaiveDate,
        each: &mut dyn FnMut(u64, TaskPayload) -> Result<()>,
    ) -> Result<u64> {
        let limit = self
            .blobs
            .is_none()
            .then_some(self.config.max_task_payload_bytes);
        let schema = self.config.job_schema_for(job.schema_name())?;
        let mut index = 0u64;
        Chunker::new(schema, &self.periods).each(job, day, &mut |row| {
            check_row(index, &row, limit)?;
            index += 1;
            each(index - 1, row)
        })
    }

    /// The rows of `job` on `day` from chunk `skip` on, made on a blocking thread as they are taken.
    /// Dropping the receiver stops the chunker.
    fn row_stream(
        &self,
        job: &Job,
        day: NaiveDate,
        skip: u64,
    ) -> Result<mpsc::Receiver<Result<TaskPayload>>> {
        let schema = self.config.job_schema_for(job.schema_name())?.clone();
        let periods = self.periods.clone();
        let job = job.clone();
        let (tx, rx) = mpsc::channel(WINDOW);
        tokio::task::spawn_blocking(move || {
            let mut index = 0u64;
            let outcome = Chunker::new(&schema, &periods).each(&job, day, &mut |row| {
                index += 1;
                if index <= skip {
                    return Ok(());
                }
                tx.blocking_send(Ok(row))
                    .map_err(|_| Error::invalid("job", "the writer stopped taking rows"))
            });
            if let Err(error) = outcome {
                // Nobody listens if the writer stopped; otherwise it learns why the rows ended.
                let _ = tx.blocking_send(Err(error));
            }
        });
        Ok(rx)
    }

    /// Writes `work` (its `rows` empty: they come from chunking `job` on `day`) from `start`, a
    /// window at a time, then concludes as [`write_job`](Scheduler::write_job) does without a spool.
    pub(super) async fn write_streamed(
        &self,
        mut work: Work,
        job: &Job,
        day: NaiveDate,
        start: u64,
        deadline: DateTime<Utc>,
    ) -> Result<SchedulerReport> {
        let mut rows = self.row_stream(job, day, start)?;
        let mut progress = Progress::at(start).with_known_tail(work.known_tail.take());
        work.windowed = true;
        let result = loop {
            if progress.cursor >= work.total {
                break Ok(Stop::Done);
            }
            let mut window = Vec::with_capacity(WINDOW);
            let mut failed = None;
            while window.len() < WINDOW {
                match rows.recv().await {
                    Some(Ok(row)) => window.push(row),
                    Some(Err(error)) => {
                        failed = Some(error);
                        break;
                    }
                    None => break,
                }
            }
            if let Some(error) = failed {
                break Err(error);
            }
            if window.is_empty() {
                break Err(Error::invalid(
                    "job",
                    format!(
                        "job `{}` chunks into {} tasks, fewer than its {} (its schema or periods \
                         changed): it cannot be resumed",
                        work.job_id, progress.cursor, work.total
                    ),
                ));
            }
            work.first_index = progress.cursor;
            work.rows = window;
            match self.write_batches(&work, deadline, &mut progress).await {
                Ok(Stop::Done) => work.first_mode = work.later_mode,
                other => break other,
            }
        };
        drop(rows);
        work.rows = Vec::new();
        self.conclude(work, progress, None, result).await
    }
}
