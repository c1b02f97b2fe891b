//! A queue checker in the spirit of Jepsen's total-queue check: given the tasks submitted, every
//! delivery to a worker, and the store's final state, it accounts for every task and reports what went
//! wrong.
//!
//! Each submitted task must end in exactly one place: **completed** (live with `completed_at`, or
//! archived as `<labourer>_1`), **dead** (archived as `<labourer>_0`) or **pending** (still queued,
//! invoked or waiting for retry). The checker reports:
//!
//! * **lost**: submitted, but found nowhere in the store;
//! * **unexpected**: found in the store or delivered, but never submitted; and tasks recorded
//!   completed that no worker ever received;
//! * **in several places**: one id in more than one table (completed twice, say);
//! * **duplicated deliveries**, per attempt: the invocation numbered `attempt` reached a worker more
//!   than once. A redelivery that was injected on purpose (a Lambda event delivered twice) is counted
//!   as *explained*; any other is *unexplained*. A delivery of a later attempt (after a retry) is
//!   at-least-once, not a duplicate;
//! * the fraction of submitted tasks **delivered exactly once** (one delivery in all).
//!
//! The inputs have plain, serialisable forms so a test that only holds an SQLite state file and a
//! delivery log (for instance the `sosw local run` SIGKILL-and-resume test) can check a run:
//!
//! ```no_run
//! use sosw_testkit::checker::{Delivery, FinalState, check};
//!
//! # fn demo(submitted: Vec<String>) -> sosw_core::Result<()> {
//! let log = std::fs::read_to_string("deliveries.jsonl").map_err(|e| sosw_core::Error::Io {
//!     path: "deliveries.jsonl".into(),
//!     source: e,
//! })?;
//! let deliveries = Delivery::parse_jsonl(&log)?;
//! let state = FinalState::from_sqlite_file(std::path::Path::new("sosw.db"))?;
//! let report = check(submitted, &deliveries, &state);
//! assert!(report.is_sound(), "{report}");
//! # Ok(())
//! # }
//! ```
//!
//! A delivery log line is `{"task_id": "...", "attempt": 1}` (plus `"injected": true` for a
//! duplicate delivered on purpose); [`Delivery::from_payload`] derives one from a worker payload
//! (`attempt` = the payload's `attempts` + 1).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use sosw_core::error::{Error, Result};
use sosw_core::store::TaskLookup;
use sosw_core::task::{Task, TaskId};

/// One invocation that reached a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// The task delivered.
    pub task_id: String,
    /// Which invocation of the task this was (1 for the first).
    pub attempt: u32,
    /// A repeat delivery injected on purpose (at-least-once delivery of the invoke service).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub injected: bool,
}

impl Delivery {
    /// The delivery of a sosw worker payload: `task_id`, and `attempts + 1` as the attempt (the payload
    /// carries the row as it was before the claim).
    pub fn from_payload(payload: &Value, injected: bool) -> Result<Self> {
        let task_id = payload
            .get("task_id")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid("worker payload", "no string `task_id`"))?;
        let attempts = match payload.get("attempts") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    Error::invalid("worker payload", format!("`attempts` is not a count: {v}"))
                })?,
        };
        Ok(Delivery {
            task_id: task_id.to_owned(),
            attempt: attempts.saturating_add(1),
            injected,
        })
    }

    /// Reads a delivery log: one JSON object per line, blank lines ignored. An unreadable line is an
    /// error naming its number.
    pub fn parse_jsonl(text: &str) -> Result<Vec<Delivery>> {
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                serde_json::from_str(line)
                    .map_err(|e| Error::invalid("delivery log", format!("line {}: {e}", i + 1)))
            })
            .collect()
    }

    /// The log line of this delivery (no newline).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A thread-safe delivery log for tests that run workers in-process.
#[derive(Debug, Default)]
pub struct DeliveryLog(Mutex<Vec<Delivery>>);

impl DeliveryLog {
    /// Records one delivery.
    pub fn record(&self, delivery: Delivery) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(delivery);
    }

    /// Every delivery so far, in order.
    pub fn snapshot(&self) -> Vec<Delivery> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many deliveries were recorded.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether nothing was delivered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where a task was found at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// Live, not completed: queued or invoked.
    Live,
    /// Live and reported completed, not archived yet.
    LiveCompleted,
    /// Waiting in the retry table.
    Retry,
    /// Archived as completed (`<labourer>_1`).
    ClosedCompleted,
    /// Archived as dead (`<labourer>_0`).
    ClosedDead,
    /// Closed as cancelled (`<labourer>_cancelled`, `sosw cancel`).
    ClosedCancelled,
}

impl Place {
    /// Where a closed row belongs, from its `labourer_id_task_status` (`..._1` completed, `..._0` dead).
    pub fn of_closed_status(status: &str) -> Result<Place> {
        if status.ends_with("_1") {
            Ok(Place::ClosedCompleted)
        } else if status.ends_with("_0") {
            Ok(Place::ClosedDead)
        } else if status.ends_with(sosw_core::store::CANCELLED_KEY_SUFFIX) {
            Ok(Place::ClosedCancelled)
        } else {
            Err(Error::invalid(
                "closed task status",
                format!(
                    "`{status}` ends neither in `_1` (completed), `_0` (dead) nor `_cancelled`"
                ),
            ))
        }
    }

    fn is_completed(self) -> bool {
        matches!(self, Place::LiveCompleted | Place::ClosedCompleted)
    }
}

/// The store's final state: every place each task id was found in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FinalState {
    places: BTreeMap<String, Vec<Place>>,
}

impl FinalState {
    /// An empty state.
    pub fn new() -> Self {
        FinalState::default()
    }

    /// Records that `task_id` was found in `place`.
    pub fn add(&mut self, task_id: impl Into<String>, place: Place) {
        self.places.entry(task_id.into()).or_default().push(place);
    }

    /// Records a live row.
    pub fn add_live(&mut self, task: &Task) {
        let place = if task.completed_at.is_some() {
            Place::LiveCompleted
        } else {
            Place::Live
        };
        self.add(task.task_id.as_str(), place);
    }

    /// Adds every place found in `other`.
    pub fn merge(&mut self, other: FinalState) {
        for (id, places) in other.places {
            self.places.entry(id).or_default().extend(places);
        }
    }

    /// The places of `task_id`.
    pub fn places(&self, task_id: &str) -> &[Place] {
        self.places.get(task_id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// How many distinct ids were found.
    pub fn len(&self) -> usize {
        self.places.len()
    }

    /// Whether no task was found.
    pub fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    /// Looks up each of `ids` (tasks of `labourer_id`) in the live, closed and retry tables of
    /// `store`. Finds only the ids asked for: a store that may hold other rows needs a scan (as
    /// [`FinalState::from_sqlite_file`] does) to report them as unexpected.
    pub async fn look_up<S>(store: &S, labourer_id: &str, ids: &[TaskId]) -> Result<FinalState>
    where
        S: TaskLookup + ?Sized,
    {
        let mut state = FinalState::new();
        for id in ids {
            if let Some(task) = store.get_task(id).await? {
                state.add_live(&task);
            }
            if let Some(task) = store.get_closed_task(id).await? {
                let status = task
                    .extra
                    .get("labourer_id_task_status")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                state.add(id.as_str(), Place::of_closed_status(status)?);
            }
            if store.get_retry_task(labourer_id, id).await?.is_some() {
                state.add(id.as_str(), Place::Retry);
            }
        }
        Ok(state)
    }

    /// Reads every task row of a `sosw` SQLite state file (its `tasks`, `closed_tasks` and
    /// `retry_tasks` tables), read-only. For a run that has stopped (or was killed): rows written by a
    /// still running process may or may not be seen.
    pub fn from_sqlite_file(path: &Path) -> Result<FinalState> {
        use rusqlite::{Connection, OpenFlags};
        let failed =
            |what: &'static str| move |e: rusqlite::Error| Error::store("SQLite", what, false, e);
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(failed("open the state file"))?;
        let mut state = FinalState::new();
        let mut live = conn
            .prepare("SELECT task_id, completed_at IS NOT NULL FROM tasks")
            .map_err(failed("read tasks"))?;
        let rows = live
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)))
            .map_err(failed("read tasks"))?;
        for row in rows {
            let (id, completed) = row.map_err(failed("read tasks"))?;
            let place = if completed {
                Place::LiveCompleted
            } else {
                Place::Live
            };
            state.add(id, place);
        }
        let mut closed = conn
            .prepare("SELECT task_id, labourer_id_task_status FROM closed_tasks")
            .map_err(failed("read closed tasks"))?;
        let rows = closed
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(failed("read closed tasks"))?;
        for row in rows {
            let (id, status) = row.map_err(failed("read closed tasks"))?;
            state.add(id, Place::of_closed_status(&status)?);
        }
        let mut retry = conn
            .prepare("SELECT task_id FROM retry_tasks")
            .map_err(failed("read retry tasks"))?;
        let rows = retry
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(failed("read retry tasks"))?;
        for row in rows {
            state.add(row.map_err(failed("read retry tasks"))?, Place::Retry);
        }
        Ok(state)
    }
}

/// What the checker found. [`QueueCheck::is_sound`] is the verdict; `Display` prints a summary.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueueCheck {
    /// Tasks submitted.
    pub submitted: u64,
    /// Submitted tasks found completed, once.
    pub completed: u64,
    /// Submitted tasks found dead, once.
    pub dead: u64,
    /// Submitted tasks found closed as cancelled (`sosw cancel`), once.
    pub cancelled: u64,
    /// Submitted tasks still live (queued or invoked) or waiting for retry.
    pub pending: u64,
    /// The pending tasks with where each is (`<id> (<place>)`), for a failure's message.
    pub pending_places: Vec<String>,
    /// Submitted tasks found nowhere.
    pub lost: Vec<String>,
    /// Ids found in the store or delivered that were never submitted, and completed tasks no worker
    /// received.
    pub unexpected: Vec<String>,
    /// Ids found in more than one place.
    pub in_several_places: Vec<String>,
    /// `(task id, attempt, deliveries)` of attempts delivered more than once without an injected
    /// cause.
    pub duplicated: Vec<(String, u32, u32)>,
    /// Repeat deliveries injected on purpose (each one a second delivery of the same attempt).
    pub explained_duplicates: u64,
    /// Deliveries of attempt 2 or later: at-least-once after a retry.
    pub redeliveries: u64,
    /// Deliveries in all.
    pub deliveries: u64,
    /// Submitted tasks delivered exactly once (one delivery in all, of attempt 1).
    pub delivered_exactly_once: u64,
}

impl QueueCheck {
    /// `delivered_exactly_once / submitted` (1.0 when nothing was submitted).
    pub fn exactly_once_fraction(&self) -> f64 {
        if self.submitted == 0 {
            1.0
        } else {
            self.delivered_exactly_once as f64 / self.submitted as f64
        }
    }

    /// No task lost, none unexpected, none in two places, no unexplained duplicate delivery.
    pub fn is_sound(&self) -> bool {
        self.lost.is_empty()
            && self.unexpected.is_empty()
            && self.in_several_places.is_empty()
            && self.duplicated.is_empty()
    }
}

fn head(ids: &[String]) -> String {
    let shown: Vec<&str> = ids.iter().take(5).map(String::as_str).collect();
    let more = if ids.len() > 5 { ", ..." } else { "" };
    format!("{} [{}{more}]", ids.len(), shown.join(", "))
}

impl fmt::Display for QueueCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "submitted {}, completed {}, dead {}, cancelled {}, pending {}; lost {}, unexpected {}, \
             in several places {}; deliveries {}, redeliveries after retry {}, duplicates \
             explained {}, unexplained {}; delivered exactly once {:.4}",
            self.submitted,
            self.completed,
            self.dead,
            self.cancelled,
            head(&self.pending_places),
            head(&self.lost),
            head(&self.unexpected),
            head(&self.in_several_places),
            self.deliveries,
            self.redeliveries,
            self.explained_duplicates,
            self.duplicated.len(),
            self.exactly_once_fraction(),
        )
    }
}

/// Accounts every submitted task against `deliveries` and `state` (see the module docs).
pub fn check(
    submitted: impl IntoIterator<Item = impl Into<String>>,
    deliveries: &[Delivery],
    state: &FinalState,
) -> QueueCheck {
    let submitted: BTreeSet<String> = submitted.into_iter().map(Into::into).collect();
    let mut out = QueueCheck {
        submitted: submitted.len() as u64,
        deliveries: deliveries.len() as u64,
        ..QueueCheck::default()
    };
    // Per task, per attempt: (ordinary deliveries, injected ones).
    let mut per_attempt: BTreeMap<&str, BTreeMap<u32, (u32, u32)>> = BTreeMap::new();
    for d in deliveries {
        let counts = per_attempt
            .entry(d.task_id.as_str())
            .or_default()
            .entry(d.attempt)
            .or_default();
        if d.injected {
            counts.1 += 1;
        } else {
            counts.0 += 1;
        }
        if d.attempt > 1 && !d.injected {
            out.redeliveries += 1;
        }
    }
    let mut unexpected = BTreeSet::new();
    for (id, attempts) in &per_attempt {
        if !submitted.contains(*id) {
            unexpected.insert((*id).to_owned());
        }
        for (attempt, (ordinary, injected)) in attempts {
            if *ordinary > 1 {
                out.duplicated.push(((*id).to_owned(), *attempt, *ordinary));
            }
            out.explained_duplicates += u64::from(*injected);
        }
        let total: u32 = attempts.values().map(|(o, i)| o + i).sum();
        if total == 1 && attempts.contains_key(&1) && submitted.contains(*id) {
            out.delivered_exactly_once += 1;
        }
    }
    for (id, places) in &state.places {
        if !submitted.contains(id) {
            unexpected.insert(id.clone());
        }
        if places.len() > 1 {
            out.in_several_places.push(id.clone());
        }
    }
    for id in &submitted {
        match state.places(id) {
            [] => out.lost.push(id.clone()),
            [place] if place.is_completed() => {
                out.completed += 1;
                if !per_attempt.contains_key(id.as_str()) {
                    unexpected.insert(id.clone());
                }
            }
            [Place::ClosedDead] => out.dead += 1,
            [Place::ClosedCancelled] => out.cancelled += 1,
            [place] => {
                out.pending += 1;
                out.pending_places.push(format!("{id} ({place:?})"));
            }
            _ => {}
        }
    }
    out.unexpected = unexpected.into_iter().collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn d(id: &str, attempt: u32) -> Delivery {
        Delivery {
            task_id: id.into(),
            attempt,
            injected: false,
        }
    }

    fn state(rows: &[(&str, Place)]) -> FinalState {
        let mut s = FinalState::new();
        for (id, place) in rows {
            s.add(*id, *place);
        }
        s
    }

    #[test]
    fn a_clean_run_is_sound_and_fully_exactly_once() {
        let report = check(
            ["a", "b"],
            &[d("a", 1), d("b", 1)],
            &state(&[("a", Place::ClosedCompleted), ("b", Place::LiveCompleted)]),
        );
        assert!(report.is_sound(), "{report}");
        assert_eq!((report.completed, report.dead, report.pending), (2, 0, 0));
        assert_eq!(report.exactly_once_fraction(), 1.0);
    }

    #[test]
    fn a_task_found_nowhere_is_lost() {
        let report = check(["a", "b"], &[d("a", 1)], &state(&[("a", Place::Live)]));
        assert_eq!(report.lost, vec!["b".to_string()]);
        assert_eq!(report.pending, 1);
        assert!(!report.is_sound());
    }

    #[test]
    fn a_second_delivery_of_one_attempt_is_a_duplicate_unless_injected() {
        let rows = state(&[("a", Place::ClosedCompleted)]);
        let report = check(["a"], &[d("a", 1), d("a", 1)], &rows);
        assert_eq!(report.duplicated, vec![("a".to_string(), 1, 2)]);
        assert!(!report.is_sound());

        let injected = Delivery {
            injected: true,
            ..d("a", 1)
        };
        let report = check(["a"], &[d("a", 1), injected], &rows);
        assert!(report.is_sound(), "{report}");
        assert_eq!(report.explained_duplicates, 1);
        assert_eq!(report.delivered_exactly_once, 0);
    }

    #[test]
    fn a_redelivery_after_a_retry_is_at_least_once_not_a_duplicate() {
        let report = check(
            ["a"],
            &[d("a", 1), d("a", 2)],
            &state(&[("a", Place::ClosedCompleted)]),
        );
        assert!(report.is_sound(), "{report}");
        assert_eq!(report.redeliveries, 1);
        assert_eq!(report.exactly_once_fraction(), 0.0);
    }

    #[test]
    fn rows_and_deliveries_never_submitted_are_unexpected() {
        let report = check(
            ["a"],
            &[d("a", 1), d("ghost", 1)],
            &state(&[("a", Place::ClosedDead), ("stray", Place::Live)]),
        );
        assert_eq!(report.unexpected, vec!["ghost".to_string(), "stray".into()]);
        assert_eq!(report.dead, 1);
    }

    #[test]
    fn a_completion_without_any_delivery_is_unexpected() {
        let report = check(["a"], &[], &state(&[("a", Place::LiveCompleted)]));
        assert_eq!(report.unexpected, vec!["a".to_string()]);
    }

    #[test]
    fn a_task_in_two_tables_is_reported_and_counted_in_neither() {
        let report = check(
            ["a"],
            &[d("a", 1)],
            &state(&[("a", Place::ClosedCompleted), ("a", Place::Live)]),
        );
        assert_eq!(report.in_several_places, vec!["a".to_string()]);
        assert_eq!(report.completed + report.pending, 0);
        assert!(!report.is_sound());
    }

    #[test]
    fn deliveries_come_from_worker_payloads_and_log_lines() {
        let delivery = Delivery::from_payload(&json!({"task_id": "t", "attempts": 2}), false)
            .expect("a payload");
        assert_eq!(delivery, d("t", 3));
        let line = delivery.to_json_line();
        assert_eq!(
            Delivery::parse_jsonl(&format!("{line}\n\n{line}\n")).expect("parses"),
            vec![d("t", 3), d("t", 3)]
        );
        let err = Delivery::parse_jsonl("{\"task_id\": \"t\"}\nnot json")
            .expect_err("bad lines are refused");
        assert!(err.to_string().contains("line 1"), "{err}");
        let err = Delivery::from_payload(&json!({"attempts": 1}), false).expect_err("no id");
        assert!(err.to_string().contains("task_id"), "{err}");
    }

    #[test]
    fn closed_status_suffixes_decide_the_place() {
        assert_eq!(
            Place::of_closed_status("w_1").expect("completed"),
            Place::ClosedCompleted
        );
        assert_eq!(
            Place::of_closed_status("w_0").expect("dead"),
            Place::ClosedDead
        );
        assert_eq!(
            Place::of_closed_status("w_cancelled").expect("cancelled"),
            Place::ClosedCancelled
        );
        let err = Place::of_closed_status("w_x").expect_err("neither");
        assert!(err.to_string().contains("`w_x`"), "{err}");
    }

    #[tokio::test]
    async fn the_final_state_reads_a_sqlite_file_and_a_store_alike() {
        use sosw_core::store::{
            ClaimOutcome, ClosedStatus, EnqueueMode, ReportOutcome, TaskArchive, TaskClaims,
            TaskQueue, TaskReport, TaskReports,
        };
        use sosw_embedded::SqliteTaskStore;
        let dir = std::env::temp_dir().join(format!("sosw-checker-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let path = dir.join("state.db");
        let store = SqliteTaskStore::open(&path).expect("a file store");
        let tasks: Vec<Task> = (0..3)
            .map(|n| Task::new(format!("t{n}"), "w", json!({}), 2000 + n, 0.0))
            .collect();
        store
            .enqueue(&tasks, EnqueueMode::Fresh)
            .await
            .expect("enqueue");
        let now = 1_700_000_000;
        let ClaimOutcome::Claimed(_) = store.claim(&tasks[0].task_id, now).await.expect("claim")
        else {
            panic!("the queued task is claimed");
        };
        let ReportOutcome::Recorded(done) = store
            .complete(&tasks[0].task_id, &TaskReport::default(), now)
            .await
            .expect("complete")
        else {
            panic!("the claimed task completes");
        };
        store
            .archive(&done, ClosedStatus::Completed, now)
            .await
            .expect("archive");
        let ids: Vec<TaskId> = tasks.iter().map(|t| t.task_id.clone()).collect();
        let looked_up = FinalState::look_up(&store, "w", &ids)
            .await
            .expect("lookups");
        let from_file = FinalState::from_sqlite_file(&path).expect("reads the file");
        assert_eq!(looked_up, from_file);
        assert_eq!(from_file.places("t0"), &[Place::ClosedCompleted]);
        assert_eq!(from_file.places("t1"), &[Place::Live]);
        let report = check(["t0", "t1", "t2"], &[d("t0", 1)], &from_file);
        assert!(report.is_sound(), "{report}");
        assert_eq!((report.completed, report.pending), (1, 2));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
