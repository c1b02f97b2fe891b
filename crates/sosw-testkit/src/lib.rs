//! The conformance suite every [`TaskStore`](sosw_core::store::TaskStore) passes.
//!
//! [`cases`] holds one async function per behaviour of the store port, written against the trait docs in
//! [`sosw_core::store`], never against one adapter. Each case uses labourer and task ids of its own, random
//! per run, so several cases can share one store, and a store that outlives the run (an emulator's
//! tables) does not leak one run into the next. Times are explicit `now` values around 1,700,000,000.
//!
//! [`task_store_conformance!`](crate::task_store_conformance) turns every case into a test of its own,
//! for the store its setup expression builds. The job record cases have a macro of their own,
//! [`job_store_conformance!`](crate::job_store_conformance): [`JobStore`](sosw_core::store::JobStore) is a
//! port of its own, so a task store that keeps no job records still runs the task suite, and a job store
//! is tested without being a task store. A store that is both invokes both macros.
//!
//! The SQLite store, for instance, runs the task suite like this:
//!
//! ```
//! use std::sync::Arc;
//! use sosw_embedded::SqliteTaskStore;
//!
//! sosw_testkit::task_store_conformance!(async {
//!     Some(Arc::new(SqliteTaskStore::in_memory().expect("an in-memory SQLite store")))
//! });
//! # fn main() {}
//! ```
//!
//! With the `http` feature, `partition` holds the partition model (a proxy in front of DynamoDB Local
//! enforcing DynamoDB's per-partition-key limits), and `lambda_api` the HTTP test servers of the
//! end-to-end tests and the bench: a fake Lambda Runtime API, a fake Lambda Invoke API, and a
//! forwarding client for proxies.

pub mod cases;
pub mod checker;
pub mod faults;
mod guarded;
#[cfg(feature = "http")]
pub mod lambda_api;
#[cfg(feature = "http")]
pub mod partition;

pub use guarded::Guarded;

/// Generates one `#[tokio::test]` per conformance case (multi-threaded runtime, 4 workers), each named
/// after its case in [`crate::cases`], for the store built by `$setup`.
///
/// `$setup` is an `async` block evaluating to `Option<Arc<S>>` where `S: TaskStore + 'static`. It is
/// evaluated once per test, so each test gets a fresh store unless the block shares one. `None` skips
/// the test (it returns early and passes): an emulator-backed store returns it, after printing why, when
/// its endpoint is not configured.
///
/// The calling crate needs `tokio` with the `macros` and `rt-multi-thread` features, and `sosw` with
/// `test-util`. Invoke it inside a module per store, since the test names are the case names:
///
/// ```
/// mod sqlite_in_memory {
///     use std::sync::Arc;
///     sosw_testkit::task_store_conformance!(async {
///         Some(Arc::new(sosw_embedded::SqliteTaskStore::in_memory().expect("store")))
///     });
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! task_store_conformance {
    ($setup:expr $(,)?) => {
        $crate::__task_store_conformance_tests! {
            setup = $setup;
            next_queued_returns_lowest_greenfield_first_within_limit,
            queue_excludes_other_labourers_unqueued_and_completed_tasks,
            queue_length_and_ends_follow_the_queue,
            enqueue_validates_every_task_before_writing_any,
            enqueue_fresh_writes_every_task_of_a_large_batch,
            enqueue_skip_existing_skips_ids_that_exist_anywhere,
            claim_returns_the_pre_claim_task_and_marks_it_invoked,
            claim_of_a_missing_completed_or_retried_task_is_already_claimed,
            concurrent_claimers_claim_every_task_exactly_once,
            a_claim_racing_a_move_of_the_same_queued_task_leaves_one_winner,
            release_claim_puts_the_task_back_in_the_queue,
            release_claim_refuses_when_the_row_changed,
            count_running_counts_only_busy_tasks,
            count_running_many_matches_count_running,
            complete_records_completion_and_report,
            complete_twice_is_already_completed_and_changes_nothing,
            complete_of_a_task_that_is_not_live_is_not_found,
            complete_takes_a_queued_task_out_of_the_queue,
            record_failure_counts_failures,
            list_expired_returns_exactly_the_expired_tasks,
            list_completed_returns_only_completed_tasks,
            list_closable_many_matches_the_single_listings,
            archive_moves_tasks_to_the_closed_table,
            archive_conflicts_on_stale_copies_and_repeats,
            concurrent_archivers_move_a_completed_task_once,
            closed_sample_is_newest_first_by_status,
            redrive_returns_only_dead_tasks_to_the_queue,
            move_to_retry_moves_tasks_and_rejects_stale_copies,
            due_retries_are_due_ones_earliest_first,
            return_to_queue_restores_the_task,
            requeue_due_retries_places_retries_ahead_of_the_queue_head,
            lookups_find_rows_only_where_they_are,
            a_rich_task_survives_its_whole_life,
            large_queues_are_read_completely,
            task_manager_creates_tasks_and_reads_the_queue,
            task_manager_invokes_tasks_and_counts_running,
            task_manager_closes_retries_and_redrives_tasks,
            ecology_record_is_written_only_on_the_version_read,
            concurrent_rate_takers_never_grant_more_than_the_limit,
            outcome_counters_add_up_and_survive_record_writes,
            cancel_closes_queued_and_waiting_tasks_as_cancelled,
            queue_by_key_gives_each_keys_running_count_and_queue_head,
        }
    };
}

/// Generates one `#[tokio::test]` per `sosw cancel` case that needs the tasks and the job records in
/// one store (a [`TaskStore`](sosw_core::store::TaskStore) that is also a
/// [`JobStore`](sosw_core::store::JobStore), as both adapters are), built by `$setup` as for
/// [`task_store_conformance!`](crate::task_store_conformance).
#[macro_export]
macro_rules! cancel_conformance {
    ($setup:expr $(,)?) => {
        $crate::__task_store_conformance_tests! {
            setup = $setup;
            cancel_job_closes_waiting_tasks_and_leaves_running_ones,
            cancel_job_is_idempotent_and_leaves_finished_jobs_alone,
        }
    };
}

/// Generates the `sosw pause` cases for the [`LabourerControl`](sosw_core::store::LabourerControl)
/// built by `$setup` (an `async` block giving `Option<Arc<S>>`, `None` to skip).
#[macro_export]
macro_rules! labourer_control_conformance {
    ($setup:expr $(,)?) => {
        $crate::__task_store_conformance_tests! {
            setup = $setup;
            pause_and_resume_are_stored_per_labourer,
        }
    };
}

/// Generates one `#[tokio::test]` per job record case (multi-threaded runtime, 4 workers), each named
/// after its case in [`crate::cases`], for the [`JobStore`](sosw_core::store::JobStore) built by
/// `$setup`.
///
/// Works exactly as [`task_store_conformance!`](crate::task_store_conformance), with
/// `S: JobStore + 'static`; its test names differ from the task cases', so both macros can be invoked in
/// one module:
///
/// ```
/// mod sqlite_jobs {
///     use std::sync::Arc;
///     sosw_testkit::job_store_conformance!(async {
///         Some(Arc::new(sosw_embedded::SqliteTaskStore::in_memory().expect("store")))
///     });
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! job_store_conformance {
    ($setup:expr $(,)?) => {
        $crate::__task_store_conformance_tests! {
            setup = $setup;
            create_job_writes_once_and_keeps_the_original,
            create_job_refuses_an_empty_job_id,
            every_job_field_round_trips,
            add_requester_appends_each_requester_once_in_order,
            concurrent_requesters_are_each_listed_once,
            record_progress_grows_enqueued_and_starts_the_job_once,
            add_outcomes_adds_to_the_counters,
            reopen_job_takes_redriven_tasks_out_of_dead,
            concurrent_outcomes_lose_no_increment,
            finish_job_finishes_an_unfinished_job_once,
            concurrent_finishers_finish_a_job_once,
            list_jobs_is_newest_first_within_limit,
        }
    };
}

/// The expansion of [`task_store_conformance!`] and [`job_store_conformance!`]: one test per listed
/// case.
#[doc(hidden)]
#[macro_export]
macro_rules! __task_store_conformance_tests {
    (setup = $setup:expr; $($case:ident),+ $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(store) = $setup.await else {
                    return;
                };
                $crate::cases::$case(store).await;
            }
        )+
    };
}
