//! The read side of operations: what `sosw jobs`, `sosw job`, `sosw tasks`, `sosw queue` and the
//! dashboard show, in one place, over the store ports ([`TaskStore`] and [`JobStore`]). Every store
//! adapter (SQLite, DynamoDB with sosw 0.7's tables) answers it through the ports, so both surfaces
//! show the same numbers on both.
//!
//! The views serialise to the stable JSON schema of `--output json` (docs/guide.md): a field is never
//! renamed or removed, new fields may be added.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::Result;
use crate::store::{
    CANCELLED_KEY_SUFFIX, CLOSED_STATUS_ATTRIBUTE, ClosedStatus, JobRecord, JobStatus, JobStore,
    TaskStore,
};
use crate::task::{Labourer, Markers, Task, TaskId};

/// Where a task is, as the operations commands name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// In the live table, waiting to be invoked.
    Queued,
    /// In the live table, invoked and not reported completed (including expired invocations the
    /// scavenger has not handled yet).
    Running,
    /// Waiting in the retry table.
    Retry,
    /// Closed as dead.
    Dead,
    /// Reported completed (live or closed).
    Completed,
    /// Closed as cancelled (`sosw cancel`).
    Cancelled,
}

impl TaskStatus {
    /// Every status, in the order `sosw tasks --help` lists them.
    pub const ALL: [TaskStatus; 6] = [
        TaskStatus::Queued,
        TaskStatus::Running,
        TaskStatus::Retry,
        TaskStatus::Dead,
        TaskStatus::Completed,
        TaskStatus::Cancelled,
    ];

    /// The status's name in the JSON schema and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Retry => "retry",
            TaskStatus::Dead => "dead",
            TaskStatus::Completed => "completed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// The status of a live row at `now`.
    pub fn of_live(task: &Task, now: i64) -> TaskStatus {
        if task.completed_at.is_some() {
            TaskStatus::Completed
        } else if task.greenfield < now {
            TaskStatus::Queued
        } else {
            TaskStatus::Running
        }
    }

    /// The status of a closed row: its status key, else whether it was completed.
    pub fn of_closed(task: &Task) -> TaskStatus {
        let key = task
            .extra
            .get(CLOSED_STATUS_ATTRIBUTE)
            .and_then(Value::as_str)
            .unwrap_or_default();
        if key.ends_with("_1") || (key.is_empty() && task.completed_at.is_some()) {
            TaskStatus::Completed
        } else if key.ends_with(CANCELLED_KEY_SUFFIX) {
            TaskStatus::Cancelled
        } else {
            TaskStatus::Dead
        }
    }
}

impl std::fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TaskStatus {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|status| status.name() == s)
            .ok_or_else(|| {
                format!(
                    "`{s}` is not a task status; use one of {}",
                    TaskStatus::ALL.map(TaskStatus::name).join(", ")
                )
            })
    }
}

/// Longest payload preview, in characters: task payloads are shown only this far.
pub const PAYLOAD_PREVIEW_CHARS: usize = 200;

/// Most lines of a worker's output kept in a view.
pub const OUTPUT_TAIL_LINES: usize = 20;

/// Longest error text kept in a view, in characters.
pub const ERROR_CHARS: usize = 1_000;

/// How many rows a search for one job's tasks looks through per table.
pub const JOB_SEARCH: usize = 10_000;

/// One job, as `sosw jobs` lists it (schema `kind: "job"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    /// Always `"job"`.
    pub kind: String,
    /// The job's id.
    pub job_id: String,
    /// The labourers its tasks run on.
    pub labourers: Vec<String>,
    /// `requested`, `running`, `finished`, `finished_with_failures` or `cancelled`.
    pub status: JobStatus,
    /// Tasks in the job; `null` while it is still chunking.
    pub total: Option<u64>,
    /// Tasks written to the queue so far.
    pub enqueued: u64,
    /// Tasks closed (completed + dead + cancelled).
    pub closed: u64,
    /// Tasks closed as completed.
    pub completed: u64,
    /// Tasks closed as dead.
    pub dead: u64,
    /// Failure reports received.
    pub failed: u64,
    /// Tasks closed as cancelled (`sosw cancel`).
    #[serde(default)]
    pub cancelled: u64,
    /// `closed / total` between 0 and 1; `null` while the total is unknown.
    pub progress: Option<f64>,
    /// When the job was accepted (Unix seconds).
    pub created_at: i64,
    /// When its first tasks were queued.
    pub started_at: Option<i64>,
    /// When its last task closed.
    pub finished_at: Option<i64>,
    /// Seconds since `created_at`.
    pub age_secs: i64,
    /// Who submitted it.
    pub requesters: Vec<String>,
}

impl JobSummary {
    /// The summary of `job` at `now`.
    pub fn of(job: &JobRecord, now: i64) -> JobSummary {
        let closed = job.counts.closed();
        JobSummary {
            kind: "job".into(),
            job_id: job.job_id.clone(),
            labourers: vec![job.labourer_id.clone()],
            status: job.status,
            total: job.total,
            enqueued: job.enqueued,
            closed,
            completed: job.counts.completed,
            dead: job.counts.dead,
            failed: job.counts.failed,
            cancelled: job.counts.cancelled,
            progress: job.total.map(|total| {
                if total == 0 {
                    1.0
                } else {
                    (closed as f64 / total as f64).min(1.0)
                }
            }),
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            age_secs: now.saturating_sub(job.created_at).max(0),
            requesters: job.requesters.clone(),
        }
    }

    /// The job's status name.
    pub fn status_name(&self) -> &'static str {
        job_status_name(self.status)
    }
}

/// A job status's name in the JSON schema.
pub fn job_status_name(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Requested => "requested",
        JobStatus::Running => "running",
        JobStatus::Finished => "finished",
        JobStatus::FinishedWithFailures => "finished_with_failures",
        JobStatus::Cancelled => "cancelled",
    }
}

/// Which jobs [`list_jobs`] returns.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    /// Only jobs with this status.
    pub status: Option<JobStatus>,
    /// Only jobs running on this labourer.
    pub labourer: Option<String>,
}

impl JobFilter {
    fn accepts(&self, job: &JobRecord) -> bool {
        self.status.is_none_or(|s| s == job.status)
            && self
                .labourer
                .as_deref()
                .is_none_or(|l| l == job.labourer_id)
    }
}

/// Up to `limit` jobs that pass `filter`, newest first (with a filter: of the newest [`JOB_SEARCH`]
/// jobs).
pub async fn list_jobs(
    jobs: &dyn JobStore,
    filter: &JobFilter,
    limit: usize,
    now: i64,
) -> Result<Vec<JobSummary>> {
    let filtered = filter.status.is_some() || filter.labourer.is_some();
    let read = if filtered {
        JOB_SEARCH.max(limit)
    } else {
        limit
    };
    let all = jobs.list_job_counters(read).await?;
    Ok(all
        .iter()
        .filter(|job| filter.accepts(job))
        .take(limit)
        .map(|job| JobSummary::of(job, now))
        .collect())
}

/// One task, as `sosw tasks` and `sosw job` show it (schema `kind: "task"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskView {
    /// Always `"task"`.
    pub kind: String,
    /// The task's id.
    pub task_id: String,
    /// Its labourer.
    pub labourer_id: String,
    /// Its job, when the row names it.
    pub job_id: Option<String>,
    /// Where it is.
    pub status: TaskStatus,
    /// Invocations so far.
    pub attempts: u32,
    /// Failure reports so far.
    pub failed_attempts: u32,
    /// The row's greenfield.
    pub greenfield: i64,
    /// When the worker reported completion.
    pub completed_at: Option<i64>,
    /// When it was closed.
    pub closed_at: Option<i64>,
    /// When a task waiting for retry goes back to the queue.
    pub desired_launch_time: Option<i64>,
    /// How its last failed attempt ended (`result_error`, else `result_exit`), at most
    /// [`ERROR_CHARS`] characters.
    pub last_error: Option<String>,
    /// The last [`OUTPUT_TAIL_LINES`] lines its worker wrote (`result_output`).
    pub output_tail: Option<String>,
    /// The payload as JSON text, cut at [`PAYLOAD_PREVIEW_CHARS`] characters (`…` marks a cut).
    pub payload_preview: String,
}

impl TaskView {
    /// The view of `task` with `status`.
    pub fn of(task: &Task, status: TaskStatus) -> TaskView {
        let text = |key: &str| match task.extra.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        let last_error = text("result_error")
            .or_else(|| text("result_exit"))
            .map(|e| bounded(&e, ERROR_CHARS));
        let output_tail = text("result_output").map(|out| tail(&out, OUTPUT_TAIL_LINES));
        let payload = match &task.payload {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        TaskView {
            kind: "task".into(),
            task_id: task.task_id.to_string(),
            labourer_id: task.labourer_id.clone(),
            job_id: task.job_id.clone(),
            status,
            attempts: task.attempts,
            failed_attempts: task.failed_attempts.unwrap_or(0),
            greenfield: task.greenfield,
            completed_at: task.completed_at,
            closed_at: task.closed_at,
            desired_launch_time: task.desired_launch_time,
            last_error,
            output_tail,
            payload_preview: bounded(&payload, PAYLOAD_PREVIEW_CHARS),
        }
    }
}

/// `text` cut at `max` characters, `…` marking a cut.
pub fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

/// The last `lines` lines of `text`, each bounded.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    all[start..]
        .iter()
        .map(|l| bounded(l, ERROR_CHARS))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Markers that take in every claimed live task: greenfield from `now` up.
fn claimed_from(now: i64) -> Markers {
    Markers {
        start: now,
        invoked: now,
        expired: i64::MAX,
    }
}

/// Markers that take in every live task that is not completed.
fn every_live() -> Markers {
    Markers {
        start: i64::MIN,
        invoked: i64::MIN,
        expired: i64::MAX,
    }
}

/// A closed row as the closed table holds it: DynamoDB's status index projects only a few
/// attributes, so a sampled row without its job is read whole.
async fn whole_closed(store: &dyn TaskStore, task: Task) -> Result<Task> {
    if task.job_id.is_some() {
        return Ok(task);
    }
    Ok(store.get_closed_task(&task.task_id).await?.unwrap_or(task))
}

/// Up to `limit` tasks of `labourer` with `status` at `now`: queued lowest greenfield first, running
/// by greenfield, retry earliest due first, dead and completed newest closed first (live completed
/// ones before).
pub async fn list_tasks(
    store: &dyn TaskStore,
    labourer: &str,
    status: TaskStatus,
    limit: usize,
    now: i64,
) -> Result<Vec<TaskView>> {
    let views = |tasks: Vec<Task>| -> Vec<TaskView> {
        tasks
            .iter()
            .map(|t| TaskView::of(t, status))
            .take(limit)
            .collect()
    };
    Ok(match status {
        TaskStatus::Queued => views(store.next_queued(labourer, now, limit).await?),
        TaskStatus::Running => views(
            store
                .list_expired(labourer, &claimed_from(now), limit)
                .await?,
        ),
        TaskStatus::Retry => views(store.due_retries(labourer, i64::MAX, limit).await?),
        TaskStatus::Dead | TaskStatus::Cancelled => {
            let closed = if status == TaskStatus::Dead {
                ClosedStatus::Dead
            } else {
                ClosedStatus::Cancelled
            };
            let mut out = Vec::new();
            for task in store.closed_sample(labourer, closed, limit).await? {
                out.push(whole_closed(store, task).await?);
            }
            views(out)
        }
        TaskStatus::Completed => {
            let mut out = store.list_completed(labourer, now, limit).await?;
            if out.len() < limit {
                out.extend(
                    store
                        .closed_sample(labourer, ClosedStatus::Completed, limit - out.len())
                        .await?,
                );
            }
            views(out)
        }
    })
}

/// Whether `task` belongs to the job `job_id` (its `job_id`, or a chunk id of the job).
pub(crate) fn of_job(task: &Task, job_id: &str) -> bool {
    match &task.job_id {
        Some(id) => id == job_id,
        None => task
            .task_id
            .as_str()
            .strip_prefix(job_id)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
    }
}

/// The tasks of `job` that failed: dead ones, those waiting for retry, and live ones with a failure
/// report, at most `limit` (dead first, newest closed first). Looks through at most [`JOB_SEARCH`]
/// rows of the labourer per table.
pub async fn job_failures(
    store: &dyn TaskStore,
    job: &JobRecord,
    limit: usize,
) -> Result<Vec<TaskView>> {
    let labourer = job.labourer_id.as_str();
    let mut out = Vec::new();
    if job.counts.dead > 0 {
        for task in store
            .closed_sample(labourer, ClosedStatus::Dead, JOB_SEARCH)
            .await?
        {
            if out.len() >= limit {
                return Ok(out);
            }
            if of_job(&task, &job.job_id) {
                let task = whole_closed(store, task).await?;
                out.push(TaskView::of(&task, TaskStatus::Dead));
            }
        }
    }
    if job.status.is_finished() {
        return Ok(out);
    }
    for task in store.due_retries(labourer, i64::MAX, JOB_SEARCH).await? {
        if out.len() >= limit {
            return Ok(out);
        }
        if of_job(&task, &job.job_id) {
            out.push(TaskView::of(&task, TaskStatus::Retry));
        }
    }
    let now = chrono::Utc::now().timestamp();
    for task in store
        .list_expired(labourer, &every_live(), JOB_SEARCH)
        .await?
    {
        if out.len() >= limit {
            return Ok(out);
        }
        if of_job(&task, &job.job_id) && task.failed_attempts.unwrap_or(0) > 0 {
            out.push(TaskView::of(&task, TaskStatus::of_live(&task, now)));
        }
    }
    Ok(out)
}

/// Up to `limit` tasks of `job` in chunk order, each read where it is (live, retry or closed). Tasks
/// not written yet are left out.
pub async fn job_tasks(
    store: &dyn TaskStore,
    job: &JobRecord,
    limit: usize,
    now: i64,
) -> Result<Vec<TaskView>> {
    let count = job.total.unwrap_or(job.enqueued).max(job.enqueued);
    let mut out = Vec::new();
    for index in 0..count.min(limit as u64) {
        let id = TaskId::for_chunk(&job.job_id, index);
        if let Some(view) = find_task(store, &job.labourer_id, &id, now).await? {
            out.push(view);
        }
    }
    Ok(out)
}

/// The task `id` of `labourer` wherever it is: live, waiting for retry, or closed.
pub async fn find_task(
    store: &dyn TaskStore,
    labourer: &str,
    id: &TaskId,
    now: i64,
) -> Result<Option<TaskView>> {
    if let Some(task) = store.get_task(id).await? {
        return Ok(Some(TaskView::of(&task, TaskStatus::of_live(&task, now))));
    }
    if let Some(task) = store.get_retry_task(labourer, id).await? {
        return Ok(Some(TaskView::of(&task, TaskStatus::Retry)));
    }
    if let Some(task) = store.get_closed_task(id).await? {
        return Ok(Some(TaskView::of(&task, TaskStatus::of_closed(&task))));
    }
    Ok(None)
}

/// Most closed or expired tasks counted per labourer and status by [`labourer_counts`] on the state
/// file (SQLite counts them from an index).
pub const COUNT_CAP: usize = 100_000;

/// Most tasks counted per labourer and kind on AWS ([`CountCaps::aws`]): DynamoDB charges a count by
/// the items it reads, and the dashboard counts every few seconds.
pub const AWS_COUNT_CAP: usize = 1_000;

/// How far [`labourer_counts`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountCaps {
    /// Queued tasks: `None` counts them all.
    pub queued: Option<u64>,
    /// Expired, completed (live and closed, each) and dead tasks.
    pub listed: usize,
}

impl CountCaps {
    /// On the state file: queued tasks all, the others up to [`COUNT_CAP`].
    pub const LOCAL: CountCaps = CountCaps {
        queued: None,
        listed: COUNT_CAP,
    };

    /// On AWS: every kind up to [`AWS_COUNT_CAP`]. A count of 100,000 queued items of about 135
    /// bytes costs about 1,650 read units, and the dashboard repeats it every refresh; 1,000 costs
    /// about 17.
    pub fn aws() -> CountCaps {
        CountCaps {
            queued: Some(AWS_COUNT_CAP as u64),
            listed: AWS_COUNT_CAP,
        }
    }
}

/// One labourer's task counts (schema `kind: "labourer"`, with the eco status and pause the callers
/// add).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabourerCounts {
    /// Waiting to be invoked.
    pub queued: u64,
    /// Invoked within its duration + cooldown, not completed.
    pub running: u64,
    /// Invoked longer ago, not completed: the scavenger retries or buries them.
    pub expired: u64,
    /// Completed (live and closed), at most [`CountCaps::listed`] of each.
    pub completed: u64,
    /// Waiting in the retry table.
    pub retry: u64,
    /// Closed as dead, at most [`CountCaps::listed`].
    pub dead: u64,
    /// Which counts stopped at their cap ([`CountCaps`]: there are more). Left out of JSON when none
    /// did.
    #[serde(default, skip_serializing_if = "CappedCounts::is_none")]
    pub capped: CappedCounts,
}

/// The counts of [`LabourerCounts`] that stopped at their cap: the labourer has more such tasks
/// than the figure says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CappedCounts {
    /// Queued tasks counted up to the cap (on AWS).
    #[serde(default)]
    pub queued: bool,
    /// Expired tasks counted up to the cap.
    pub expired: bool,
    /// Completed tasks, live or closed, counted up to the cap.
    pub completed: bool,
    /// Dead tasks counted up to the cap.
    pub dead: bool,
}

impl CappedCounts {
    /// Whether every count is whole.
    pub fn is_none(&self) -> bool {
        *self == CappedCounts::default()
    }
}

/// `found` items of a listing asked for `cap` + 1: the count up to the cap, and whether there were
/// more.
fn up_to_cap(found: impl TryInto<u64>, cap: impl TryInto<u64>) -> (u64, bool) {
    let found = found.try_into().unwrap_or(u64::MAX);
    let cap = cap.try_into().unwrap_or(u64::MAX);
    (found.min(cap), found > cap)
}

/// The counts of `labourer` at `now`, each as far as `caps` says.
pub async fn labourer_counts(
    store: &dyn TaskStore,
    labourer: &Labourer,
    now: i64,
    caps: CountCaps,
) -> Result<LabourerCounts> {
    let markers = Markers::for_labourer(now, labourer);
    let id = labourer.id.as_str();
    // One more than the cap, to tell a count that stopped there from one that is exactly the cap.
    let cap = caps.listed;
    let listed = cap.saturating_add(1);
    let (queued, queued_capped) = match caps.queued {
        None => (store.queue_length(id, now).await?, false),
        Some(queued_cap) => up_to_cap(
            store
                .queue_length_up_to(id, now, queued_cap.saturating_add(1))
                .await?,
            queued_cap,
        ),
    };
    let (completed_live, live_capped) =
        up_to_cap(store.list_completed(id, now, listed).await?.len(), cap);
    let (completed_closed, closed_capped) = up_to_cap(
        store
            .count_closed(id, ClosedStatus::Completed, listed)
            .await?,
        cap,
    );
    let (expired, expired_capped) =
        up_to_cap(store.list_expired(id, &markers, listed).await?.len(), cap);
    let (dead, dead_capped) = up_to_cap(
        store.count_closed(id, ClosedStatus::Dead, listed).await?,
        cap,
    );
    Ok(LabourerCounts {
        queued,
        running: store.count_running(id, &markers).await?,
        expired,
        completed: completed_live + completed_closed,
        retry: store.retry_length(id).await?,
        dead,
        capped: CappedCounts {
            queued: queued_capped,
            expired: expired_capped,
            completed: live_capped || closed_capped,
            dead: dead_capped,
        },
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn previews_and_tails_are_bounded() {
        assert_eq!(bounded("abc", 5), "abc");
        assert_eq!(bounded("abcdef", 3), "abc…");
        assert_eq!(bounded("ééé", 2), "éé…");
        let out = (0..50).map(|i| format!("line {i}")).collect::<Vec<_>>();
        let t = tail(&out.join("\n"), 3);
        assert_eq!(t, "line 47\nline 48\nline 49");
    }

    #[test]
    fn a_view_carries_the_error_the_output_tail_and_a_bounded_payload() {
        let mut task = Task::new("j-0000001", "w", json!({"text": "x".repeat(500)}), 10, 0.0);
        task.extra
            .insert("result_exit".into(), json!("exit code 4"));
        task.extra.insert("result_output".into(), json!("a\nb\nc"));
        let view = TaskView::of(&task, TaskStatus::Dead);
        assert_eq!(view.last_error.as_deref(), Some("exit code 4"));
        assert_eq!(view.output_tail.as_deref(), Some("a\nb\nc"));
        assert_eq!(
            view.payload_preview.chars().count(),
            PAYLOAD_PREVIEW_CHARS + 1
        );
        let json = serde_json::to_value(&view).expect("json");
        assert_eq!(json["status"], "dead");
        assert_eq!(json["kind"], "task");
    }

    #[test]
    fn chunk_ids_belong_to_their_job_only() {
        let task = |id: &str| Task::new(id, "w", json!({}), 0, 0.0);
        assert!(of_job(&task("abc-0000003"), "abc"));
        assert!(!of_job(&task("abc-0000003"), "ab"));
        assert!(!of_job(&task("abcd-0000003"), "abc"));
        assert!(!of_job(&task("abc-x"), "abc"));
        assert_eq!("dead".parse::<TaskStatus>(), Ok(TaskStatus::Dead));
        assert!(
            "gone"
                .parse::<TaskStatus>()
                .expect_err("not a status")
                .contains("queued")
        );
    }
}
