#!/usr/bin/env bash
# `make reliability`: the reliability suite at full size (docs/reliability.md), release build, on
# SQLite and DynamoDB Local: four orchestrators racing over 10,000 tasks, worker/delivery faults,
# throttling everywhere, the scheduler killed at 20 points of a 10,000-task job, 1,200,000 hostile
# inputs, and the 1,000,000-task simulation. Prints every figure; the log is kept in
# target/reliability-output.log.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

# shellcheck source-path=SCRIPTDIR source=lib/emulators.sh
source scripts/lib/emulators.sh

emulators_up dynamodb-local
export SOSW_REQUIRE_EMULATORS=1 SOSW_RELIABILITY_FULL=1

t0=$(date +%s)
mkdir -p target
# One test at a time: each reports its own wall time, and the two cores are not split between them.
cargo test --release -p sosw-integration-tests --test reliability -- --nocapture --test-threads=1 "$@" \
  2>&1 | tee target/reliability-output.log
echo "wall time: $(( $(date +%s) - t0 )) s"
