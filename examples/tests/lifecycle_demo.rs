//! The README's first command runs this demo; it must finish the job with the documented outcome.

use std::process::Command;

#[test]
fn lifecycle_demo_closes_every_task_and_kills_the_silent_ones() {
    let out = Command::new(env!("CARGO_BIN_EXE_lifecycle-demo"))
        .output()
        .expect("the demo binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Tasks 0, 5 and 10 never report: each expires, is retried once (max_attempts 2) and dies.
    assert!(
        stdout.contains("all 12 tasks closed: 9 completed, 3 dead, 3 retried"),
        "{stdout}"
    );
}

#[test]
fn lifecycle_demo_state_survives_in_a_sqlite_file() {
    let path = std::env::temp_dir().join(format!("sosw-demo-{}.sqlite", std::process::id()));
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_lifecycle-demo"))
            .arg(&path)
            .output()
            .expect("the demo binary runs")
    };
    let first = run();
    assert!(first.status.success());
    // A second run over the same file finds the job's task ids already closed and enqueues nothing.
    let second = run();
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(second.status.success(), "second run failed: {stdout}");
    assert!(
        stdout.contains("enqueued 0 tasks (12 already there)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("all 12 tasks closed: 9 completed, 3 dead, 0 retried"),
        "{stdout}"
    );
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
