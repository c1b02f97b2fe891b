//! The scheduler essential (sosw 0.7's `sosw_scheduler`): turns a job into tasks in the queue,
//! idempotently, at any size.
//!
//! # One run
//!
//! 1. **Read the event** ([`Scheduler::run`]): a job (sosw 0.7's format, see [`crate::job::Job`]) with
//!    an optional `requester`, or a continuation ([`continuation_payload`]).
//! 2. **Chunk** the job with its schema and today's date (UTC), and check every task before anything is
//!    written: a bad job is an [`Error::InvalidJob`] and leaves no trace.
//! 3. **Record the job** ([`JobStore::create_job`]) under its id ([`scheduled_job_id`]): the given
//!    `job_id`, else a hash of the job. Task `i` of the job is [`TaskId::for_chunk`]`(job id, i)`.
//!    * *Created*: the tasks are written blindly ([`EnqueueMode::Fresh`]).
//!    * *Exists* (the same job again, or a run that died): the requester is added to the record. A job
//!      whose tasks are all in the store gets nothing more; otherwise this run resumes it (below).
//! 4. **Write** [`SchedulerConfig::enqueue_batch_size`] tasks per [`TaskQueue::enqueue`] (DynamoDB sends
//!    them 25 per `BatchWriteItem`), with greenfields from one `newest_queued_greenfield` read per
//!    run (a new job's made beside its creation; later batches go on from the run's last
//!    greenfield), payloads above [`SchedulerConfig::max_task_payload_bytes`] in the
//!    blob store ([`crate::blob::payload_ref`]), paced by [`SchedulerConfig::max_writes_per_second`].
//!    After each batch the job's `enqueued` cursor is recorded ([`JobStore::record_progress`]), so the
//!    cursor never passes a task that is not in the store.
//! 5. **Hand on** when the deadline comes within `shutdown_period`: the tasks left are written to the
//!    spool's remote key *first*, then the [`Continuation`] is spawned with the job id, labourer and key.
//!
//! # Resuming
//!
//! A resuming run starts at the record's cursor. The batch at the cursor may be partly written (the run
//! died between its write and its progress record), so it is written with
//! [`EnqueueMode::SkipExisting`], which skips ids found live, waiting for retry or closed. After it:
//!
//! * a run that holds the job (it claimed the spool, or it is the continuation the previous run
//!   spawned) writes [`EnqueueMode::Fresh`]: nobody else is writing this job;
//! * a resubmission without a spool cannot know whether the first run is still writing, so it keeps
//!   to `SkipExisting` (reads, not writes, and only on this rare path).
//!
//! Without a spool the job is chunked again from its record, with the day it was created, so the tasks
//! are the same; a different count (the schema changed since) is an error, not a guess.
//!
//! # Large jobs: the spool
//!
//! With a blob store, a job of more than [`SchedulerConfig::spool_min_tasks`] tasks is spooled: its rows
//! go to `locked_<queue file>` first, which also tells other runs that this one holds the job until its
//! deadline; see the protocol below. For `s3_prefix` `sosw/scheduler`, `queue_file` `tasks_queue.txt`
//! and job `j1` the keys are `sosw/scheduler/tasks_queue_j1.txt` (remote) and
//! `sosw/scheduler/locked_tasks_queue_j1.txt` (locked). The file is JSON lines: a [`SpoolHeader`], then
//! one row per task as sosw 0.7's queue file had them (`labourer_id` plus the payload keys).
//!
//! # The spool protocol
//!
//! sosw 0.7's `locked_` protocol, keyed by job instead of Lambda request: a run writes the locked file
//! while it works, deletes it when done, and when it stops early moves what is left to the remote key
//! (then spawns the continuation). A continuation or a resubmission claims the remote file, or a locked
//! file whose holder's deadline has passed. A failed write also moves the rest to the remote key, so a
//! retry of the same event continues at once.
//!
//! # Differences from sosw 0.7
//!
//! * Tasks are written in batches with one greenfield read per batch (sosw 0.7: a query and a put per
//!   task, B14); task ids derive from the job id, so nothing is ever duplicated.
//! * The sibling payload names the job, the labourer and the spool's key, and is sent after the upload
//!   (B12). The labourer must be configured, as in sosw 0.7.
//! * Keys that are task columns (`task_id`, `greenfield`, `attempts`, `created_at`) cannot be job keys
//!   (sosw 0.7 raised on them at write time); `requester` is never carried into tasks.
//! * A derived job id of a job with a `period` includes the day, so a daily job runs daily.
//!
//! # Example
//!
//! The scheduler over the SQLite store is an example in the `sosw-embedded` crate's documentation.

mod plan;
mod rows;
mod sibling;
#[doc(hidden)]
pub mod spool;
mod stream;
mod submission;
mod writer;

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

pub use plan::{JobPlan, PlanOutline, PlannedTask};
pub use sibling::SiblingContinuation;
pub use spool::{SPOOL_FORMAT, SpoolHeader};
pub use submission::{
    CONTINUATION_KEY, DEFAULT_REQUESTER, REQUESTER_KEY, continuation_payload, scheduled_job_id,
};

use self::spool::{Found, SpoolKeys};
use self::submission::Submission;
use self::writer::{Progress, Stop};
use crate::blob::{BlobStore, key_segment, payload_ref_key, resolve_payload, store_payload};
use crate::clock::{Clock, SystemClock};
use crate::config::SchedulerConfig;
use crate::error::{Error, Result};
use crate::job::{Chunker, Job, PeriodRegistry, TaskPayload};
use crate::processor::{Invocation, Processor};
use crate::siblings::SiblingsManager;
use crate::store::{
    CreateJobOutcome, EnqueueMode, JobCounts, JobRecord, JobStatus, JobStore, TaskQueue,
};
use crate::task::{TaskId, TaskManager};

/// Starts another run of the scheduler with a payload: on Lambda an asynchronous invocation of the
/// scheduler function itself (sosw 0.7's `SiblingsManager.spawn_sibling`; see
/// [`SiblingContinuation`]), locally [`LocalContinuation`].
#[async_trait]
pub trait Continuation: Send + Sync + fmt::Debug {
    /// Starts a run with `payload` as its event. An error means no run was started.
    async fn spawn(&self, payload: Value) -> Result<()>;
}

/// A [`Continuation`] that keeps the payloads for an in-process runner (local mode, tests), which feeds
/// them back to [`Scheduler::run`].
#[derive(Debug, Default)]
pub struct LocalContinuation {
    pending: Mutex<VecDeque<Value>>,
}

impl LocalContinuation {
    /// No pending continuation.
    pub fn new() -> Self {
        LocalContinuation::default()
    }

    /// The oldest pending payload, removed.
    pub fn take(&self) -> Option<Value> {
        self.queue().pop_front()
    }

    /// How many payloads are pending.
    pub fn len(&self) -> usize {
        self.queue().len()
    }

    /// Whether none is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Value>> {
        // A panic while holding the lock cannot leave the queue half-changed: take it as it is.
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl Continuation for LocalContinuation {
    async fn spawn(&self, payload: Value) -> Result<()> {
        self.queue().push_back(payload);
        Ok(())
    }
}

/// How a run came to work on its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubmissionKind {
    /// The job was seen for the first time.
    New,
    /// The job was recorded already (submitted again, or its run died).
    Resubmitted,
    /// A continuation handed on by an earlier run.
    Continuation,
}

/// Where the job stands after a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum JobOutcome {
    /// Every task of the job is in the store (some may have been written by earlier runs).
    Enqueued,
    /// Every task was in the store before this run: it wrote nothing.
    AlreadyEnqueued,
    /// The deadline came; the rest is handed on. `sibling_spawned` is false when no
    /// [`Continuation`] is configured: then submitting the job again continues it.
    HandedOff {
        /// Whether a continuation run was started.
        sibling_spawned: bool,
    },
    /// Another run holds the job until `lease_until` (Unix seconds): this run wrote nothing.
    HeldElsewhere {
        /// When the other run's deadline passes.
        lease_until: i64,
    },
}

/// What a run did with the spool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum SpoolState {
    /// The job was not spooled (small, or no blob store).
    NotUsed,
    /// The job was spooled and every task is written: the spool is deleted.
    Released,
    /// The tasks left wait at `key` for the next run.
    HandedOn {
        /// The remote key.
        key: String,
    },
}

/// What one run of the scheduler did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchedulerReport {
    /// The job's id.
    pub job_id: String,
    /// The job's labourer.
    pub labourer_id: String,
    /// How this run came to the job.
    pub submission: SubmissionKind,
    /// Where the job stands.
    pub outcome: JobOutcome,
    /// Tasks in the whole job.
    pub total: u64,
    /// Tasks of the job known to be in the store after this run (the job's cursor).
    pub enqueued: u64,
    /// Tasks this run wrote.
    pub written: usize,
    /// Tasks this run found in the store already and skipped.
    pub skipped_existing: usize,
    /// Write requests this run sent to the task store (a batch request counts once).
    pub write_requests: usize,
    /// Payloads this run stored in the blob store instead of the task row.
    pub payloads_stored: usize,
    /// What happened to the spool.
    pub spool: SpoolState,
}

/// The scheduler: the task queue and job records, and optionally a blob store (spool, large payloads)
/// and a [`Continuation`] or the [`SiblingsManager`] that continues each invocation as a sibling.
/// Cloning is cheap apart from the config; as a [`Processor`] with siblings, each invocation runs on a
/// clone with its own [`SiblingContinuation`].
#[derive(Clone)]
pub struct Scheduler {
    config: SchedulerConfig,
    tasks: TaskManager<dyn TaskQueue>,
    jobs: Arc<dyn JobStore>,
    blobs: Option<Arc<dyn BlobStore>>,
    continuation: Option<Arc<dyn Continuation>>,
    siblings: Option<Arc<SiblingsManager>>,
    clock: Arc<dyn Clock>,
    periods: PeriodRegistry,
    default_requester: String,
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("config", &self.config)
            .field("blobs", &self.blobs)
            .field("continuation", &self.continuation)
            .field("siblings", &self.siblings.is_some())
            .field("clock", &self.clock)
            .field("periods", &self.periods)
            .field("default_requester", &self.default_requester)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A scheduler over `store` (queue and job records), with the system clock, the built-in periods,
    /// no blob store and no continuation.
    pub fn new<S>(config: SchedulerConfig, store: Arc<S>) -> Self
    where
        S: TaskQueue + JobStore + 'static,
    {
        Scheduler::from_parts(config, store.clone(), store)
    }

    /// A scheduler over a task queue and a job store given separately.
    pub fn from_parts(
        config: SchedulerConfig,
        tasks: Arc<dyn TaskQueue>,
        jobs: Arc<dyn JobStore>,
    ) -> Self {
        Scheduler {
            config,
            tasks: TaskManager::new(tasks),
            jobs,
            blobs: None,
            continuation: None,
            siblings: None,
            clock: Arc::new(SystemClock),
            periods: PeriodRegistry::default(),
            default_requester: DEFAULT_REQUESTER.to_owned(),
        }
    }

    /// Spools large jobs and stores large payloads in `blobs` (the `queue_bucket`).
    pub fn with_blob_store(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.blobs = Some(blobs);
        self
    }

    /// Hands unfinished jobs on through `continuation` when the deadline comes.
    pub fn with_continuation(mut self, continuation: Arc<dyn Continuation>) -> Self {
        self.continuation = Some(continuation);
        self
    }

    /// As a [`Processor`], hands a job cut short on to a sibling invocation through `siblings`
    /// (sosw 0.7's `spawn_sibling`): each invocation gets a [`SiblingContinuation`] of its own event,
    /// invoked as the invocation's [`Invocation::function_arn`]. [`Scheduler::run`] does not use it.
    pub fn with_siblings(mut self, siblings: Arc<SiblingsManager>) -> Self {
        self.siblings = Some(siblings);
        self
    }

    /// Reads the time (and today's date) from `clock`.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Resolves `period` with `periods` (the built-in ones plus any registered in code).
    pub fn with_periods(mut self, periods: PeriodRegistry) -> Self {
        self.periods = periods;
        self
    }

    /// Records `requester` for jobs whose event names none (default [`DEFAULT_REQUESTER`]); a Lambda
    /// may pass the invoking function's name here.
    pub fn with_default_requester(mut self, requester: impl Into<String>) -> Self {
        self.default_requester = requester.into();
        self
    }

    /// The config.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Handles one event, writing tasks while `deadline` is more than `shutdown_period` away.
    pub async fn run(&self, event: &Value, deadline: DateTime<Utc>) -> Result<SchedulerReport> {
        match Submission::parse(event, &self.default_requester)? {
            Submission::Job { job, requester } => self.submit(job, &requester, deadline).await,
            Submission::Continuation { job_id, spool_key } => {
                let record = self.jobs.get_job(&job_id).await?.ok_or_else(|| {
                    Error::invalid_job(
                        "job_id",
                        format!(
                            "no job `{job_id}` is recorded: a continuation continues a recorded job"
                        ),
                    )
                })?;
                self.resume(record, SubmissionKind::Continuation, spool_key, deadline)
                    .await
            }
        }
    }

    /// A job from an event: checked, chunked, recorded, then written (or resumed if recorded already).
    async fn submit(
        &self,
        job: Job,
        requester: &str,
        deadline: DateTime<Utc>,
    ) -> Result<SchedulerReport> {
        self.config.task_config.labourer(job.labourer_id())?;
        let now = self.clock.now();
        let day = now.date_naive();
        let job_id = scheduled_job_id(&job, day);
        // Without a blob store (no spool) the tasks are counted and checked now and written as the
        // chunker makes them again, in bounded memory; with one, they are kept for the spool.
        let (total, rows) = if self.blobs.is_none() {
            (self.count_checked(&job, day)?, None)
        } else {
            let rows = self.chunk(&job, day)?;
            rows::check_rows(&rows, None)?;
            (rows.len() as u64, Some(rows))
        };
        let record = self
            .new_record(&job_id, &job, requester, total, now.timestamp())
            .await?;
        // The queue's tail is read beside the job's creation: a new job's first batch needs it, so
        // its answer comes a round trip sooner (a resubmission does not use it: half a read unit on
        // sosw 0.7's tables). A failed read is not the job's error: the first batch reads it again.
        let (created, tail) = futures::join!(
            self.jobs.create_job(&record),
            self.tasks
                .get_newest_greenfield_for_labourer(job.labourer_id(), now.timestamp())
        );
        match created? {
            CreateJobOutcome::Created => {
                tracing::info!(
                    job_id,
                    labourer = job.labourer_id(),
                    tasks = total,
                    requester,
                    "job accepted"
                );
                let work = Work {
                    job_id,
                    labourer_id: job.labourer_id().to_owned(),
                    total,
                    first_index: 0,
                    rows: Vec::new(),
                    first_mode: EnqueueMode::Fresh,
                    later_mode: EnqueueMode::Fresh,
                    submission: SubmissionKind::New,
                    windowed: false,
                    known_tail: tail
                        .inspect_err(|error| {
                            tracing::debug!(%error, "the queue's tail is read again for the first batch")
                        })
                        .ok(),
                };
                match rows {
                    Some(rows) => {
                        self.write_job(Work { rows, ..work }, 0, None, deadline)
                            .await
                    }
                    None => self.write_streamed(work, &job, day, 0, deadline).await,
                }
            }
            CreateJobOutcome::Exists(existing) => {
                tracing::info!(job_id, requester, "job recorded already");
                // Independent writes (the requester list; the tasks, the progress counters and the
                // spool), so both at once: one round trip less before the answer. Both run to their
                // end; the requester's error comes first, as when they ran in turn.
                let (added, resumed) = futures::join!(
                    self.jobs.add_requester(&job_id, requester),
                    self.resume(*existing, SubmissionKind::Resubmitted, None, deadline)
                );
                added?;
                resumed
            }
        }
    }

    /// Continues a recorded job from its cursor: from its spool if there is one to claim, else by chunking
    /// the recorded job again.
    async fn resume(
        &self,
        record: JobRecord,
        submission: SubmissionKind,
        spool_key: Option<String>,
        deadline: DateTime<Utc>,
    ) -> Result<SchedulerReport> {
        if record.total.is_some_and(|total| record.enqueued >= total) {
            self.clear_spool(&record.job_id).await;
            return Ok(idle_report(
                &record,
                submission,
                JobOutcome::AlreadyEnqueued,
            ));
        }
        self.config.task_config.labourer(&record.labourer_id)?;
        if let Some(blobs) = &self.blobs {
            let keys = self.spool_keys(&record.job_id)?;
            let remote = spool_key.unwrap_or_else(|| keys.remote.clone());
            let now = self.clock.now_secs();
            let found = spool::claim(
                blobs.as_ref(),
                &keys,
                &remote,
                &record.job_id,
                now,
                deadline.timestamp(),
            )
            .await?;
            match found {
                Found::Claimed(spool) => {
                    return self
                        .resume_from_spool(record, spool, keys, submission, deadline)
                        .await;
                }
                Found::HeldElsewhere { lease_until } => {
                    tracing::info!(
                        job_id = record.job_id,
                        lease_until,
                        "another run holds the job"
                    );
                    return Ok(idle_report(
                        &record,
                        submission,
                        JobOutcome::HeldElsewhere { lease_until },
                    ));
                }
                Found::Nothing => {}
            }
        }
        if self.blobs.is_none() {
            return self.resume_streamed(record, submission, deadline).await;
        }
        let rows = self.rechunk(&record).await?;
        let later_mode = later_mode(submission);
        let work = Work {
            job_id: record.job_id.clone(),
            labourer_id: record.labourer_id.clone(),
            total: rows.len() as u64,
            first_index: 0,
            rows,
            first_mode: EnqueueMode::SkipExisting,
            later_mode,
            submission,
            windowed: false,
            known_tail: None,
        };
        self.write_job(work, record.enqueued, None, deadline).await
    }

    /// Continues from a claimed spool, at the record's cursor or the spool's first row, whichever is later
    /// (each only counts tasks known to be in the store).
    async fn resume_from_spool(
        &self,
        record: JobRecord,
        spool: spool::Spool,
        keys: SpoolKeys,
        submission: SubmissionKind,
        deadline: DateTime<Utc>,
    ) -> Result<SchedulerReport> {
        let header = &spool.header;
        if record.total.is_some_and(|t| t != header.total)
            || record.labourer_id != header.labourer_id
        {
            return Err(Error::invalid(
                "job",
                format!(
                    "the spool `{}` of job `{}` ({} tasks of `{}`) disagrees with its record ({:?} tasks of `{}`)",
                    keys.locked,
                    record.job_id,
                    header.total,
                    header.labourer_id,
                    record.total,
                    record.labourer_id
                ),
            ));
        }
        let start = record.enqueued.max(header.next_index);
        let work = Work {
            job_id: record.job_id.clone(),
            labourer_id: record.labourer_id.clone(),
            total: header.total,
            first_index: header.next_index,
            rows: spool.rows,
            first_mode: EnqueueMode::SkipExisting,
            later_mode: EnqueueMode::Fresh,
            submission,
            windowed: false,
            known_tail: None,
        };
        self.write_job(work, start, Some(keys), deadline).await
    }

    /// Writes `work` from `start`, spooling it first if it is large and not spooled yet, and concludes.
    async fn write_job(
        &self,
        work: Work,
        start: u64,
        held: Option<SpoolKeys>,
        deadline: DateTime<Utc>,
    ) -> Result<SchedulerReport> {
        let lock = match held {
            Some(keys) => Some(keys),
            None => self.spool_if_large(&work, start, deadline).await?,
        };
        let mut progress = Progress::at(start).with_known_tail(work.known_tail);
        let result = self.write_batches(&work, deadline, &mut progress).await;
        self.conclude(work, progress, lock, result).await
    }

    /// Writes the locked spool file when the tasks left from `start` are more than `spool_min_tasks`.
    async fn spool_if_large(
        &self,
        work: &Work,
        start: u64,
        deadline: DateTime<Utc>,
    ) -> Result<Option<SpoolKeys>> {
        let Some(blobs) = &self.blobs else {
            return Ok(None);
        };
        let left = work.rows_from(start, usize::MAX);
        if left.len() <= self.config.spool_min_tasks {
            return Ok(None);
        }
        let keys = self.spool_keys(&work.job_id)?;
        let header = work.header(start, deadline.timestamp());
        spool::lock(blobs.as_ref(), &keys, &header, left).await?;
        Ok(Some(keys))
    }

    /// After writing: release the spool when done, hand on at the deadline, hand the rest back on error.
    async fn conclude(
        &self,
        work: Work,
        progress: Progress,
        lock: Option<SpoolKeys>,
        result: Result<Stop>,
    ) -> Result<SchedulerReport> {
        let spooled = self.blobs.as_ref().zip(lock.as_ref());
        match result {
            Ok(Stop::Done) => {
                if let Some((blobs, keys)) = spooled
                    && let Err(error) = blobs.delete(&keys.locked).await
                {
                    // Every task is written: the run succeeded. The leftover is deleted when the job
                    // is submitted again, and blocks nobody (the job is fully enqueued).
                    tracing::warn!(job_id = work.job_id, %error, "could not delete the locked spool");
                }
                if work.total == 0 {
                    // No task will ever close to finish it.
                    self.jobs
                        .finish_job(&work.job_id, JobStatus::Finished, self.clock.now_secs())
                        .await?;
                }
                let spool = match spooled {
                    Some(_) => SpoolState::Released,
                    None => SpoolState::NotUsed,
                };
                Ok(work.report(&progress, JobOutcome::Enqueued, spool))
            }
            Ok(Stop::Deadline) => self.hand_on(work, progress, lock).await,
            Err(error) => {
                if let Some((blobs, keys)) = spooled {
                    let left = work.rows_from(progress.cursor, usize::MAX);
                    let header = work.header(progress.cursor, 0);
                    if let Err(release) = spool::hand_on(blobs.as_ref(), keys, &header, left).await
                    {
                        // The locked file stays; its lease runs out at the deadline.
                        tracing::error!(job_id = work.job_id, %release, "could not hand the spool back");
                    }
                }
                Err(error)
            }
        }
    }

    /// Hands the tasks left on: to the remote spool key first, then to a continuation run.
    async fn hand_on(
        &self,
        work: Work,
        progress: Progress,
        lock: Option<SpoolKeys>,
    ) -> Result<SchedulerReport> {
        let mut spool = SpoolState::NotUsed;
        if let Some((blobs, keys)) = self.blobs.as_ref().zip(lock.as_ref()) {
            let left = work.rows_from(progress.cursor, usize::MAX);
            spool::hand_on(blobs.as_ref(), keys, &work.header(progress.cursor, 0), left).await?;
            spool = SpoolState::HandedOn {
                key: keys.remote.clone(),
            };
        }
        let key = match &spool {
            SpoolState::HandedOn { key } => Some(key.as_str()),
            _ => None,
        };
        let payload = continuation_payload(&work.job_id, &work.labourer_id, key);
        let sibling_spawned = match &self.continuation {
            Some(continuation) => {
                continuation.spawn(payload).await?;
                true
            }
            None => {
                tracing::warn!(
                    job_id = work.job_id,
                    "deadline reached and no continuation configured: submit the job again to continue it"
                );
                false
            }
        };
        tracing::info!(
            job_id = work.job_id,
            enqueued = progress.cursor,
            total = work.total,
            "handed on"
        );
        Ok(work.report(&progress, JobOutcome::HandedOff { sibling_spawned }, spool))
    }

    /// The job's tasks for the day `today`, with the schema it names (or the default one).
    #[doc(hidden)]
    pub fn chunk(&self, job: &Job, today: NaiveDate) -> Result<Vec<TaskPayload>> {
        let schema = self.config.job_schema_for(job.schema_name())?;
        Chunker::new(schema, &self.periods).chunk(job, today)
    }

    /// [`resume`](Self::resume) without a blob store: the recorded job counted again (its count must
    /// match the record's), then written from its cursor as the chunker makes its rows.
    async fn resume_streamed(
        &self,
        record: JobRecord,
        submission: SubmissionKind,
        deadline: DateTime<Utc>,
    ) -> Result<SchedulerReport> {
        let job = self.recorded_job(&record).await?;
        let day = record_day(&record)?;
        let total = self.count_checked(&job, day)?;
        check_recorded_total(&record, total)?;
        let work = Work {
            job_id: record.job_id.clone(),
            labourer_id: record.labourer_id.clone(),
            total,
            first_index: 0,
            rows: Vec::new(),
            first_mode: EnqueueMode::SkipExisting,
            later_mode: later_mode(submission),
            submission,
            windowed: false,
            known_tail: None,
        };
        self.write_streamed(work, &job, day, record.enqueued, deadline)
            .await
    }

    /// The recorded job chunked again as on the day it was recorded; its task count must match the
    /// record's.
    async fn rechunk(&self, record: &JobRecord) -> Result<Vec<TaskPayload>> {
        let job = self.recorded_job(record).await?;
        let rows = self.chunk(&job, record_day(record)?)?;
        check_recorded_total(record, rows.len() as u64)?;
        Ok(rows)
    }

    /// A new record: the job as submitted (in the blob store if it is larger than a task payload may be).
    #[doc(hidden)]
    pub async fn new_record(
        &self,
        job_id: &str,
        job: &Job,
        requester: &str,
        total: u64,
        now: i64,
    ) -> Result<JobRecord> {
        let mut submitted = Map::new();
        submitted.insert(
            "labourer_id".into(),
            Value::String(job.labourer_id().to_owned()),
        );
        submitted.extend(job.body().clone());
        let mut recorded = Value::Object(submitted);
        if let Some(blobs) = &self.blobs
            && rows::payload_size(&recorded) > self.config.max_task_payload_bytes
        {
            // A fresh key per attempt: an existing record of the same id may point to its own copy.
            let key = format!(
                "{}/jobs/{}-{}.json",
                self.config.s3_prefix.trim_matches('/'),
                key_segment(job_id),
                uuid::Uuid::new_v4().simple()
            );
            recorded = store_payload(blobs.as_ref(), &key, &recorded).await?;
        }
        Ok(JobRecord {
            job_id: job_id.to_owned(),
            labourer_id: job.labourer_id().to_owned(),
            status: JobStatus::Requested,
            total: Some(total),
            enqueued: 0,
            counts: JobCounts::default(),
            created_at: now,
            started_at: None,
            finished_at: None,
            requesters: vec![requester.to_owned()],
            job: recorded,
        })
    }

    /// The job a record holds (fetched from the blob store if stored there).
    async fn recorded_job(&self, record: &JobRecord) -> Result<Job> {
        let value = match (payload_ref_key(&record.job), &self.blobs) {
            (None, _) => record.job.clone(),
            (Some(_), Some(blobs)) => resolve_payload(blobs.as_ref(), record.job.clone()).await?,
            (Some(key), None) => {
                return Err(Error::invalid(
                    "job record",
                    format!(
                        "job `{}` is stored at `{key}` but no blob store is configured",
                        record.job_id
                    ),
                ));
            }
        };
        match value {
            Value::Object(job) => Job::from_job(job),
            _ => Err(Error::invalid(
                "job record",
                format!("job `{}` holds no job object to resume from", record.job_id),
            )),
        }
    }

    /// Deletes what a run that died after its last batch left of a finished job's spool. Best effort: a
    /// leftover file of a job whose tasks are all written harms nothing.
    async fn clear_spool(&self, job_id: &str) {
        let Some(blobs) = &self.blobs else {
            return;
        };
        let Ok(keys) = self.spool_keys(job_id) else {
            return;
        };
        // Both at once: this runs for every resubmission of a finished job.
        let keys = [&keys.locked, &keys.remote];
        let results = futures::future::join_all(keys.iter().map(|key| blobs.delete(key))).await;
        for (key, result) in keys.iter().zip(results) {
            if let Err(error) = result {
                tracing::warn!(job_id, key, %error, "could not delete a leftover spool file");
            }
        }
    }

    fn spool_keys(&self, job_id: &str) -> Result<SpoolKeys> {
        SpoolKeys::new(&self.config.s3_prefix, &self.config.queue_file, job_id)
    }
}

/// The job a run is writing: its rows (from chunk `first_index` on) and how to write them.
#[derive(Debug)]
struct Work {
    job_id: String,
    labourer_id: String,
    total: u64,
    first_index: u64,
    rows: Vec<TaskPayload>,
    /// The mode of the first batch of this run.
    first_mode: EnqueueMode,
    /// The mode of every later batch.
    later_mode: EnqueueMode,
    submission: SubmissionKind,
    /// `rows` is a window of the job, not all of it from `first_index`: writing stops at its end.
    windowed: bool,
    /// The queue's tail, read already (beside the job's creation): the first batch uses it instead
    /// of reading it again.
    known_tail: Option<Option<i64>>,
}

impl Work {
    /// The chunk index writing stops at: the total, or the end of the window.
    fn end(&self) -> u64 {
        if self.windowed {
            self.total
                .min(self.first_index.saturating_add(self.rows.len() as u64))
        } else {
            self.total
        }
    }

    /// Up to `n` rows from chunk `index` on (none if `index` is outside the rows).
    fn rows_from(&self, index: u64, n: usize) -> &[TaskPayload] {
        let offset = index
            .checked_sub(self.first_index)
            .and_then(|o| usize::try_from(o).ok());
        let rest = offset.and_then(|o| self.rows.get(o..)).unwrap_or(&[]);
        &rest[..rest.len().min(n)]
    }

    /// The spool header for the rows from `next_index` on.
    fn header(&self, next_index: u64, lease_until: i64) -> SpoolHeader {
        SpoolHeader {
            sosw_spool: SPOOL_FORMAT,
            job_id: self.job_id.clone(),
            labourer_id: self.labourer_id.clone(),
            next_index,
            total: self.total,
            lease_until,
        }
    }

    fn report(
        &self,
        progress: &Progress,
        outcome: JobOutcome,
        spool: SpoolState,
    ) -> SchedulerReport {
        SchedulerReport {
            job_id: self.job_id.clone(),
            labourer_id: self.labourer_id.clone(),
            submission: self.submission,
            outcome,
            total: self.total,
            enqueued: progress.cursor,
            written: progress.report.written,
            skipped_existing: progress.report.skipped_existing,
            write_requests: progress.report.write_requests,
            payloads_stored: progress.payloads_stored,
            spool,
        }
    }
}

/// The mode of a resumed run's batches after the first: a continuation holds the job (the run that
/// spawned it has stopped writing); anyone else cannot know whether another run still writes it.
fn later_mode(submission: SubmissionKind) -> EnqueueMode {
    match submission {
        SubmissionKind::Continuation => EnqueueMode::Fresh,
        _ => EnqueueMode::SkipExisting,
    }
}

/// The day a recorded job was chunked for: the day it was recorded.
fn record_day(record: &JobRecord) -> Result<NaiveDate> {
    DateTime::from_timestamp(record.created_at, 0)
        .map(|t| t.date_naive())
        .ok_or_else(|| {
            Error::invalid(
                "job record",
                format!("`created_at` {} is not a time", record.created_at),
            )
        })
}

/// A recorded job must chunk into as many tasks as it was recorded with.
fn check_recorded_total(record: &JobRecord, total: u64) -> Result<()> {
    match record.total {
        Some(recorded) if recorded != total => Err(Error::invalid(
            "job",
            format!(
                "job `{}` was recorded with {recorded} tasks but chunks into {total} now (its \
                 schema or periods changed): it cannot be resumed",
                record.job_id
            ),
        )),
        _ => Ok(()),
    }
}

/// The report of a run that wrote nothing.
fn idle_report(
    record: &JobRecord,
    submission: SubmissionKind,
    outcome: JobOutcome,
) -> SchedulerReport {
    SchedulerReport {
        job_id: record.job_id.clone(),
        labourer_id: record.labourer_id.clone(),
        submission,
        outcome,
        total: record.total.unwrap_or(0),
        enqueued: record.enqueued,
        written: 0,
        skipped_existing: 0,
        write_requests: 0,
        payloads_stored: 0,
        spool: SpoolState::NotUsed,
    }
}

/// Ids of a job's tasks, for callers checking a job's tasks in a store: chunks `0..total`.
pub fn job_task_ids(job_id: &str, total: u64) -> impl Iterator<Item = TaskId> + '_ {
    (0..total).map(move |i| TaskId::for_chunk(job_id, i))
}

#[async_trait]
impl Processor for Scheduler {
    /// A job (or a continuation), as [`Scheduler::run`] reads it.
    type Event = Value;
    type Output = SchedulerReport;

    /// [`Scheduler::run`] until the invocation's deadline, continued (with siblings, see
    /// [`Scheduler::with_siblings`]) as a sibling of this invocation.
    async fn process(&self, event: Value, invocation: &mut Invocation) -> Result<SchedulerReport> {
        let report = match &self.siblings {
            None => self.run(&event, invocation.deadline).await?,
            // The continuation carries this event's sibling generation, so it is built per event.
            Some(siblings) => {
                let continuation = SiblingContinuation::new(
                    Arc::clone(siblings),
                    event.clone(),
                    invocation.function_arn.clone(),
                    false,
                );
                self.clone()
                    .with_continuation(Arc::new(continuation))
                    .run(&event, invocation.deadline)
                    .await?
            }
        };
        tracing::info!(job_id = %report.job_id, labourer = %report.labourer_id,
            written = report.written, outcome = ?report.outcome, "job scheduled");
        let stats = &mut invocation.stats;
        stats.add("tasks_written", report.written as u64);
        stats.add("tasks_skipped", report.skipped_existing as u64);
        stats.add("write_requests", report.write_requests as u64);
        stats.add("payloads_stored", report.payloads_stored as u64);
        Ok(report)
    }
}
