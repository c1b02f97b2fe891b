//! Every example config row (examples/configs/*.json) loads in Python sosw 0.7.47's essentials (issue 20,
//! item 4): `scripts/sosw07_config_rows.py` constructs the Orchestrator, Scavenger, Scheduler and
//! WorkerAssistant with those rows as their config source, offline, and registers the labourers.
//!
//! Needs Python sosw 0.7.47, which `scripts/sosw07.sh` installs from PyPI into `.tools/`; skipped when it
//! cannot be installed (failing instead when `SOSW_REQUIRE_EMULATORS=1`).

use std::process::Command;

use sosw_integration_tests::{repo_root, sosw07_python};

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
