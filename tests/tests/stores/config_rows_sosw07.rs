//! Every example config row (examples/configs/*.json) loads in Python sosw 0.7.47's essentials (issue 20,
//! item 4): `scripts/sosw07_config_rows.py` constructs the Orchestrator, Scavenger, Scheduler and
//! WorkerAssistant with those rows as their config source, offline, and registers the labourers.
//!
//! Needs Python sosw 0.7.47, which `scripts/sosw07.sh` installs from PyPI into `.tools/`; skipped when it
//! cannot be installed (failing instead when `SOSW_REQUIRE_EMULATORS=1`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is in the repository")
        .to_path_buf()
}

fn sosw07_python(root: &Path) -> Option<String> {
    let out = Command::new("bash")
        .arg(root.join("scripts/sosw07.sh"))
        .arg("python")
        .output()
        .ok()?;
    let python = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() && !python.is_empty() {
        return Some(python);
    }
    let why = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        std::env::var("SOSW_REQUIRE_EMULATORS").as_deref() != Ok("1"),
        "sosw 0.7.47 could not be installed: {why}"
    );
    eprintln!("skipped: sosw 0.7.47 could not be installed: {why}");
    None
}

#[test]
fn every_example_config_row_loads_in_python_sosw_07_essentials() {
    let root = repo_root();
    let Some(python) = sosw07_python(&root) else {
        return;
    };
    let out = Command::new(python)
        .arg(root.join("scripts/sosw07_config_rows.py"))
        .arg(root.join("examples/configs"))
        .output()
        .expect("the check runs");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for essential in [
        "sosw_orchestrator",
        "sosw_scavenger",
        "sosw_scheduler",
        "sosw_worker_assistant",
    ] {
        assert!(
            report.contains(&format!("ok   {essential}: constructed")),
            "{report}"
        );
    }
    assert_eq!(
        report.matches("2 labourer(s) registered").count(),
        2,
        "{report}"
    );
}
