//! The tutorial's task lifecycle demo (`cargo run -p sosw-tutorial --bin lifecycle-demo`) must finish
//! the job with the documented outcome.

use sosw_tutorial::lifecycle_demo::{Outcome, run};

#[tokio::test(flavor = "current_thread")]
async fn lifecycle_demo_closes_every_task_and_kills_the_silent_ones() {
    let outcome = run(None).await.expect("the demo runs");
    // Tasks 0, 5 and 10 never report: each expires, is retried once (max_attempts 2) and dies.
    assert_eq!(
        outcome,
        Outcome {
            enqueued: 12,
            already_there: 0,
            completed: 9,
            dead: 3,
            retried: 3,
        }
    );
}

#[tokio::test(flavor = "current_thread")]
async fn lifecycle_demo_state_survives_in_a_sqlite_file() {
    let path = std::env::temp_dir().join(format!("sosw-demo-{}.sqlite", std::process::id()));
    run(Some(&path)).await.expect("the first run");
    // A second run over the same file finds the job's task ids already closed and enqueues nothing.
    let second = run(Some(&path)).await.expect("the second run");
    assert_eq!(
        second,
        Outcome {
            enqueued: 0,
            already_there: 12,
            completed: 9,
            dead: 3,
            retried: 0,
        }
    );
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
