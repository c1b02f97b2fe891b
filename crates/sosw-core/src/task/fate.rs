//! A task's fate when an attempt ends without success: run it again later, or declare it dead. The
//! scavenger (a task that expired) and the worker assistant (a task whose worker reported a failure)
//! both decide here, with the same rule, the same `max_attempts` and the same retry delay, and a dead
//! task is announced with the same alert.
//!
//! # The rule
//!
//! An attempt ends in one of two ways ([`Ending`]):
//! * **expired**: the worker never reported, and `duration + cooldown` has passed (the scavenger);
//! * **failed**: the worker reported a failure, saying whether running it again may succeed
//!   (`retryable`, default `true`; the worker assistant).
//!
//! The task is **retried** when the ending is retryable (an expiry always is: nobody said otherwise)
//! and it has been invoked fewer than `max_attempts` times; it waits in the retry table until `now`
//! plus the labourer's retry delay ([`crate::task::retry::desired_launch_time`]). Otherwise it is
//! **dead**: archived as `<labourer>_0`, with a [`DEAD_TASK_SUBJECT`] alert.
//!
//! # Why one rule
//!
//! sosw 0.7 had one decision, the scavenger's `should_retry_task`: `task.attempts < lab.max_attempts`;
//! its worker assistant only counted `failed_attempts` and let the task expire. This implementation
//! also moves a failed task at once, in the worker assistant, where the decision was written a second
//! time as its negation, `!retryable || attempts >= max_attempts` → dead. The two agree on every
//! expired or retryable task; they differ only by the worker's `retryable: false`, which an expiry
//! cannot carry. That difference is on purpose (a worker that knows the input is bad should not burn
//! the remaining attempts), so it is kept, as a property of the [`Ending`] rather than a second
//! condition. `attempts` counts invocations, so the same task gets the same number of tries whether
//! its attempts end by expiring or by failing.
//!
//! # `max_attempts`
//!
//! A labourer's `max_attempts` is its own setting, else the task config's `max_attempts_<id>`, else
//! the task config's `max_attempts` (default [`DEFAULT_MAX_ATTEMPTS`], 3): [`resolve_max_attempts`],
//! applied when the task config resolves its labourers. [`max_attempts`] reads a resolved labourer.

use super::labourer::DEFAULT_MAX_ATTEMPTS;
use super::retry::{Jitter, desired_launch_time};
use super::{Labourer, TaskId};

/// Subject of dead-task alerts (sosw 0.7's).
pub const DEAD_TASK_SUBJECT: &str = "``sosw`` Dead Task";

/// The alert body for a dead task (sosw 0.7's text, trailing space included).
pub fn dead_task_message(task_id: &TaskId) -> String {
    format!("Closing dead task: {task_id} ")
}

/// How an attempt ended without success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The worker never reported and the task expired (the scavenger).
    Expired,
    /// The worker reported a failure (the worker assistant).
    Failed {
        /// Whether the worker says running it again may succeed.
        retryable: bool,
    },
}

impl Ending {
    /// Whether another attempt may succeed: an expiry always may; a failure when the worker says so.
    pub fn is_retryable(self) -> bool {
        match self {
            Ending::Expired => true,
            Ending::Failed { retryable } => retryable,
        }
    }
}

/// What happens to the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Into the retry table, back to the queue at `desired_launch_time` (Unix seconds).
    Retry {
        /// When it may run again.
        desired_launch_time: i64,
    },
    /// Dead: archived as `<labourer>_0` with a [`DEAD_TASK_SUBJECT`] alert.
    Dead,
}

/// The one `max_attempts` fallback: the labourer's own setting, else `max_attempts_<id>`, else the
/// task config's `max_attempts`.
pub fn resolve_max_attempts(own: Option<u32>, per_labourer: Option<u32>, task_config: u32) -> u32 {
    own.or(per_labourer).unwrap_or(task_config)
}

/// The invocations `labourer` allows a task. A labourer from the task config is resolved (see
/// [`resolve_max_attempts`]); a bare [`Labourer::new`] gets [`DEFAULT_MAX_ATTEMPTS`].
pub fn max_attempts(labourer: &Labourer) -> u32 {
    labourer.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS)
}

/// The rule: retry when `ending` is retryable and the task has been invoked fewer than
/// `max_attempts` times.
pub fn should_retry(attempts: u32, max_attempts: u32, ending: Ending) -> bool {
    ending.is_retryable() && attempts < max_attempts
}

/// The fate of a task of `labourer`, invoked `attempts` times, whose attempt ended as `ending` at
/// `now` (Unix seconds). A retry waits the labourer's retry delay, drawn from `jitter`.
pub fn decide(
    labourer: &Labourer,
    attempts: u32,
    ending: Ending,
    now: i64,
    jitter: &mut Jitter,
) -> Fate {
    if should_retry(attempts, max_attempts(labourer), ending) {
        Fate::Retry {
            desired_launch_time: desired_launch_time(labourer, attempts, now, jitter),
        }
    } else {
        Fate::Dead
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::RetryPolicy;

    const FAILED: Ending = Ending::Failed { retryable: true };
    const REFUSED: Ending = Ending::Failed { retryable: false };

    #[test]
    fn retry_below_max_attempts_when_retryable_else_dead() {
        // (attempts, max_attempts, ending, retried)
        let cases = [
            (0, 3, Ending::Expired, true),
            (2, 3, Ending::Expired, true),
            (3, 3, Ending::Expired, false),
            (4, 3, Ending::Expired, false),
            (2, 3, FAILED, true),
            (3, 3, FAILED, false),
            (1, 3, REFUSED, false),
            (0, 3, REFUSED, false),
            (0, 0, Ending::Expired, false),
            (0, 1, FAILED, true),
            (1, 1, FAILED, false),
            (u32::MAX - 1, u32::MAX, Ending::Expired, true),
            (u32::MAX, u32::MAX, FAILED, false),
        ];
        for (attempts, max, ending, retried) in cases {
            assert_eq!(
                should_retry(attempts, max, ending),
                retried,
                "attempts {attempts}, max {max}, {ending:?}"
            );
        }
    }

    #[test]
    fn an_expired_and_a_failed_task_get_the_same_fate_and_delay() {
        let mut labourer = Labourer::new("w");
        labourer.max_attempts = Some(2);
        labourer.retry = Some(RetryPolicy::Linear);
        labourer.max_duration = Some(60);
        // (attempts, fate)
        let cases = [
            (
                1,
                Fate::Retry {
                    desired_launch_time: 1_060,
                },
            ),
            (2, Fate::Dead),
        ];
        for (attempts, fate) in cases {
            for ending in [Ending::Expired, FAILED] {
                let got = decide(&labourer, attempts, ending, 1_000, &mut Jitter::seeded(0));
                assert_eq!(got, fate, "attempts {attempts}, {ending:?}");
            }
            let refused = decide(&labourer, attempts, REFUSED, 1_000, &mut Jitter::seeded(0));
            assert_eq!(refused, Fate::Dead, "a refused task never retries");
        }
    }

    #[test]
    fn max_attempts_falls_back_from_own_to_family_to_config() {
        // (own, max_attempts_<id>, task config, resolved)
        let cases = [
            (Some(9), Some(7), 4, 9),
            (None, Some(7), 4, 7),
            (None, None, 4, 4),
            (Some(0), Some(7), 4, 0),
        ];
        for (own, family, config, resolved) in cases {
            assert_eq!(resolve_max_attempts(own, family, config), resolved);
        }
        assert_eq!(max_attempts(&Labourer::new("bare")), DEFAULT_MAX_ATTEMPTS);
    }

    #[test]
    fn the_dead_task_alert_is_sosw_07s_text() -> crate::Result<()> {
        assert_eq!(
            dead_task_message(&TaskId::new("t-1")?),
            "Closing dead task: t-1 "
        );
        assert_eq!(DEAD_TASK_SUBJECT, "``sosw`` Dead Task");
        Ok(())
    }
}
