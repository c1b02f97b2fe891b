//! Greenfield: sosw's one-number encoding of a task's place in its life.
//!
//! A task's `greenfield` is a number on the GSI `(labourer_id, greenfield)` of `sosw_tasks`:
//!
//! ```text
//!  queued            retries    |  now           invoked tasks: invocation time + DELTA
//!  ... 1000 2000 3000 ...  L-2 L-1 | ------------ [expired ........ | running ...... | invoked now
//!  (small integers, step 1000)     |              now        now+Δ-(duration+cooldown)   now+Δ
//! ```
//!
//! * queued tasks carry small integers (`newest + 1000`; the first task of an empty queue gets 2000);
//! * invoking sets `greenfield = now + 31,557,600` (one Julian year) and `attempts += 1`, on the condition
//!   `greenfield < now`, which is what stops two orchestrators from invoking the same task;
//! * a task invoked within the last `duration + cooldown` seconds is running; before that it is expired;
//! * retries re-enter just below the queue head: `oldest - 1`, `oldest - 2`, ...
//!
//! These numbers are sosw 0.7's, unchanged, so tables written by Python sosw read correctly here and
//! the other way round.
//!
//! **The one deliberate difference.** sosw 0.7 selects running tasks with `BETWEEN expired AND invoked` and
//! expired ones with `BETWEEN start AND expired`; both are inclusive, so a task whose greenfield equals the
//! `expired` marker (invoked exactly `duration + cooldown` seconds ago) is both running and expired in the
//! same run: it is counted against the labourer's slots *and* retried. Here the boundary belongs to
//! [`TaskState::Expired`] only: a task is running while `expired < greenfield`, and expired while
//! `now <= greenfield <= expired`.

use serde::{Deserialize, Serialize};

use super::{Labourer, Task};

/// Distance between consecutive queued tasks (`greenfield_task_step` in sosw 0.7).
pub const TASK_STEP: i64 = 1000;

/// Offset added to the invocation time (`greenfield_invocation_delta`): 365.25 days.
pub const INVOCATION_DELTA: i64 = 31_557_600;

/// The greenfield of the first task in an empty queue: the "newest" of an empty queue is taken as
/// [`TASK_STEP`], plus one step.
pub const FIRST_QUEUED: i64 = 2 * TASK_STEP;

/// Default assumed run time of a worker in seconds, when neither `duration` nor the worker's real timeout
/// is known (sosw 0.7's `Labourer.duration`).
pub const DEFAULT_DURATION: u64 = 900;

/// Default grace period after `duration` before a task counts as expired (sosw 0.7's `Labourer.cooldown`).
pub const DEFAULT_COOLDOWN: u64 = 300;

/// The greenfield a task gets when it is invoked at `now`.
pub fn invoked_at(now: i64) -> i64 {
    now.saturating_add(INVOCATION_DELTA)
}

/// The time a task with an invoked greenfield was invoked (the inverse of [`invoked_at`]).
pub fn invocation_time(greenfield: i64) -> i64 {
    greenfield.saturating_sub(INVOCATION_DELTA)
}

/// The greenfield for the next task to queue behind `newest` (the highest queued greenfield, or `None`
/// for an empty queue). Matches sosw 0.7: an empty queue yields [`FIRST_QUEUED`].
pub fn next_queued(newest: Option<i64>) -> i64 {
    newest.unwrap_or(TASK_STEP).saturating_add(TASK_STEP)
}

/// Greenfields for `count` tasks queued behind `newest`, in order: one read serves a whole batch.
pub fn queued_sequence(newest: Option<i64>, count: usize) -> impl Iterator<Item = i64> {
    let first = next_queued(newest);
    (0..count as i64).map(move |i| first.saturating_add(i.saturating_mul(TASK_STEP)))
}

/// Greenfields for `count` retried tasks placed ahead of the queue head `oldest` (`None` for an empty
/// queue, taken as [`TASK_STEP`] as sosw 0.7 does): `oldest - 1`, `oldest - 2`, ...
///
/// As in sosw 0.7, later items of one batch run earlier. Values may reach zero or below; that is fine.
pub fn retry_sequence(oldest: Option<i64>, count: usize) -> impl Iterator<Item = i64> {
    let head = oldest.unwrap_or(TASK_STEP);
    (1..=count as i64).map(move |i| head.saturating_sub(i))
}

/// Duration of a completed task: `completed_at` minus its last invocation time.
pub fn run_duration(greenfield: i64, completed_at: i64) -> i64 {
    completed_at.saturating_sub(invocation_time(greenfield))
}

/// The per-run markers of one labourer: sosw 0.7's `start`, `invoked` and `expired`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Markers {
    /// The run's "now" in Unix seconds. Tasks below it are queued.
    pub start: i64,
    /// `start + INVOCATION_DELTA`: the greenfield of a task invoked right now.
    pub invoked: i64,
    /// `invoked - (duration + cooldown)`: tasks at or below it (and at or above `start`) are expired.
    pub expired: i64,
}

impl Markers {
    /// Markers for a run at `now` with an expiry window of `window_secs` (duration + cooldown).
    pub fn new(now: i64, window_secs: u64) -> Self {
        let invoked = invoked_at(now);
        let window = i64::try_from(window_secs).unwrap_or(i64::MAX);
        Markers {
            start: now,
            invoked,
            expired: invoked.saturating_sub(window),
        }
    }

    /// Markers for `labourer` at `now`, using its effective duration and cooldown.
    pub fn for_labourer(now: i64, labourer: &Labourer) -> Self {
        Markers::new(now, labourer.expiry_window())
    }

    /// The state of a task with this greenfield and completion mark, at these markers.
    pub fn state(&self, greenfield: i64, completed: bool) -> TaskState {
        if greenfield < self.start {
            // A queued task that somehow carries a completion mark (a report that arrived while the task
            // was back in the queue) is done: it must not run again.
            if completed {
                TaskState::Completed
            } else {
                TaskState::Queued
            }
        } else if completed {
            TaskState::Completed
        } else if greenfield >= self.invoked {
            TaskState::Invoked
        } else if greenfield > self.expired {
            TaskState::Running
        } else {
            TaskState::Expired
        }
    }
}

/// Where a live task (a row of `sosw_tasks`) is in its life, derived from its greenfield.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Waiting to be invoked: `greenfield < now`.
    Queued,
    /// Invoked at or after `now` (during this run, or by a clock ahead of ours): `greenfield >= now + Δ`.
    /// Counts as busy, like [`TaskState::Running`].
    Invoked,
    /// Invoked within the last `duration + cooldown` seconds and not completed.
    Running,
    /// Invoked `duration + cooldown` seconds ago or earlier (but within a year) and not completed: the
    /// scavenger retries it or declares it dead.
    Expired,
    /// The worker reported completion (`completed_at` is set); the scavenger archives it.
    Completed,
}

impl TaskState {
    /// The state of `task` at `now` (Unix seconds) for `labourer`'s timings. Pure: no I/O, no clock.
    pub fn of(task: &Task, now: i64, labourer: &Labourer) -> TaskState {
        Markers::for_labourer(now, labourer).state(task.greenfield, task.completed_at.is_some())
    }

    /// Whether a task in this state occupies one of its labourer's invocation slots.
    pub fn is_busy(self) -> bool {
        matches!(self, TaskState::Invoked | TaskState::Running)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_060;

    fn labourer(duration: Option<u64>, cooldown: Option<u64>) -> Labourer {
        Labourer {
            duration,
            cooldown,
            ..Labourer::new("worker")
        }
    }

    #[test]
    fn constants_are_sosw_07s() {
        assert_eq!(INVOCATION_DELTA, 31_557_600);
        assert_eq!(TASK_STEP, 1000);
        assert_eq!(next_queued(None), 2000, "first task of an empty queue");
        assert_eq!(next_queued(Some(5000)), 6000);
        assert_eq!(
            queued_sequence(Some(2000), 3).collect::<Vec<_>>(),
            [3000, 4000, 5000]
        );
        assert_eq!(
            retry_sequence(Some(2000), 3).collect::<Vec<_>>(),
            [1999, 1998, 1997]
        );
        assert_eq!(
            retry_sequence(None, 2).collect::<Vec<_>>(),
            [999, 998],
            "empty queue head is taken as 1000"
        );
    }

    #[test]
    fn the_reference_worked_example_reads_the_same() {
        // sosw-python-reference §3: task created at T0, invoked at 1_700_000_060.
        let invoked = invoked_at(1_700_000_060);
        assert_eq!(invoked, 1_731_557_660);
        assert_eq!(invocation_time(invoked), 1_700_000_060);
        assert_eq!(run_duration(invoked, 1_700_000_300), 240);
        let lab = labourer(None, None);
        // Running until start reaches invocation + 1200; expired from then on.
        let m = Markers::for_labourer(1_700_001_259, &lab);
        assert_eq!(m.state(invoked, false), TaskState::Running);
        let m = Markers::for_labourer(1_700_001_260, &lab);
        assert_eq!(m.state(invoked, false), TaskState::Expired);
    }

    #[test]
    fn state_boundaries_table() {
        // Defaults: window = 900 + 300 = 1200.
        let m = Markers::new(NOW, 1200);
        assert_eq!(m.invoked, NOW + INVOCATION_DELTA);
        assert_eq!(m.expired, NOW + INVOCATION_DELTA - 1200);
        let cases: &[(i64, bool, TaskState, &str)] = &[
            (2000, false, TaskState::Queued, "small queued value"),
            (-5, false, TaskState::Queued, "retried below zero"),
            (NOW - 1, false, TaskState::Queued, "just below start"),
            (
                NOW,
                false,
                TaskState::Expired,
                "start itself: invoked a year ago",
            ),
            (m.expired - 1, false, TaskState::Expired, "below expired"),
            (
                m.expired,
                false,
                TaskState::Expired,
                "expired boundary: expired only (sosw 0.7: both)",
            ),
            (
                m.expired + 1,
                false,
                TaskState::Running,
                "just after the boundary",
            ),
            (
                m.invoked - 1,
                false,
                TaskState::Running,
                "invoked a second ago",
            ),
            (m.invoked, false, TaskState::Invoked, "invoked now"),
            (
                m.invoked + 10,
                false,
                TaskState::Invoked,
                "invoked by a clock ahead",
            ),
            (
                m.expired,
                true,
                TaskState::Completed,
                "completed wins over expired",
            ),
            (
                m.invoked,
                true,
                TaskState::Completed,
                "completed wins over invoked",
            ),
            (
                2000,
                true,
                TaskState::Completed,
                "completion reported while queued",
            ),
        ];
        for &(g, completed, want, why) in cases {
            assert_eq!(m.state(g, completed), want, "greenfield {g}: {why}");
        }
    }

    #[test]
    fn configured_duration_and_cooldown_move_the_expiry() {
        let lab = labourer(Some(60), Some(30));
        assert_eq!(lab.expiry_window(), 90);
        let invoked = invoked_at(NOW);
        let mut task = Task::new("t1", "worker", serde_json::json!({}), 2000, 0.0);
        task.greenfield = invoked;
        assert_eq!(TaskState::of(&task, NOW + 89, &lab), TaskState::Running);
        assert_eq!(TaskState::of(&task, NOW + 90, &lab), TaskState::Expired);
    }

    #[test]
    fn duration_defaults_to_the_workers_real_timeout() {
        let mut lab = labourer(None, None);
        assert_eq!(lab.expiry_window(), 1200);
        lab.max_duration = Some(60);
        assert_eq!(lab.expiry_window(), 360, "60 s timeout + 300 s cooldown");
        lab.duration = Some(30);
        assert_eq!(lab.expiry_window(), 330, "explicit duration wins");
    }

    #[test]
    fn busy_states_are_invoked_and_running() {
        assert!(TaskState::Invoked.is_busy());
        assert!(TaskState::Running.is_busy());
        assert!(!TaskState::Queued.is_busy());
        assert!(!TaskState::Expired.is_busy());
        assert!(!TaskState::Completed.is_busy());
    }
}
