#!/usr/bin/env bash
# The project's one test command (`make test`, `.ci/run`): installs and starts the emulators the tests
# need, runs the format check, clippy, rustdoc and every test of the workspace, and stops what it started.
# Exits non-zero on any failure.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

# shellcheck source-path=SCRIPTDIR source=lib/emulators.sh
source scripts/lib/emulators.sh

step() { printf '\n==> %s\n' "$*"; }
t0=$(date +%s)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cfn-lint (informational checks included), wildcard and IAM checks on every CloudFormation template"
bash scripts/cfn-lint.sh
bash scripts/check-template-wildcards.sh
bash scripts/check-iam.sh
bash scripts/checkov.sh

step "DynamoDB Local, and moto server for S3, SNS and Lambda (install if missing, start; stopped at exit)"
emulators_up dynamodb-local moto

# Emulator-backed tests fail instead of skipping when their emulator is missing.
export SOSW_REQUIRE_EMULATORS=1

step "cargo clippy (all targets, -D warnings)"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo doc (workspace, no dependencies, -D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --quiet

step "cargo test (workspace; DynamoDB Local at $SOSW_DYNAMODB_ENDPOINT, moto at $SOSW_MOTO_ENDPOINT)"
mkdir -p target
cargo test --workspace --all-features 2>&1 | tee target/test-output.log
# `tee` hides cargo's exit status; pipefail brings it back.

step "the sustained run under the partition model, alone, on a fresh DynamoDB Local (runs over fixed windows)"
# The tests above leave DynamoDB Local hundreds of tables; it answers several times slower then, and a
# pipeline held back by the emulator is not what this run looks at.
emulators_restart dynamodb-local
cargo test --workspace --all-features --test stores -- --ignored a_sustained_run 2>&1 |
    tee -a target/test-output.log

step "the dashboard in a real browser: headless Chromium during a local run of the flaky job"
bash scripts/dashboard-browser-test.sh

step "packaging: staged bundles are tested before promotion (debug bundles, no release build)"
bash scripts/package-selftest.sh

step "deploy rehearsal: the three stacks on moto's CloudFormation (debug bundles; make rehearse)"
bash scripts/rehearse.sh --debug
step "deploy rehearsal with the lean table layout (Layout=lean on both stacks)"
SOSW_REHEARSE_LAYOUT=lean bash scripts/rehearse.sh --debug

step "summary"
# One line per test binary that runs emulator-backed tests, so the DynamoDB run is visible in the log.
emulator_binaries='Running tests/(stores|end_to_end|reliability|cli|lambda)\.rs'
grep -E "^\s+${emulator_binaries}" target/test-output.log || true
re="$emulator_binaries" awk '$0 ~ ENVIRON["re"] {name=$2} /^test result:/{ if (name) { print "  " name ": " $0; name="" } }' \
  target/test-output.log
passed=$(grep -Eo '[0-9]+ passed' target/test-output.log | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' target/test-output.log | awk '{s+=$1} END {print s+0}')
echo "wall time: $(( $(date +%s) - t0 )) s"
echo "total: ${passed} passed, ${failed} failed"
