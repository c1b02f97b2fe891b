#!/usr/bin/env bash
# `make bench`: the side-by-side benchmarks of this implementation and Python sosw 0.7.47. Installs
# what they need (sosw 0.7 in a virtualenv, DynamoDB Local, moto), builds the harness and the essentials
# in release, runs every workload and writes docs/performance.md and docs/performance.csv.
# Arguments are passed to `sosw-bench run` (e.g. --quick, --reps 5, --only enqueue,lifecycle).
# Not part of `make test`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

# shellcheck source-path=SCRIPTDIR source=lib/emulators.sh
source scripts/lib/emulators.sh

python="$(bash scripts/sosw07.sh python)"

emulators_up dynamodb-local moto

cargo build --release -p sosw-bench -p sosw-essentials --bins
target="${CARGO_TARGET_DIR:-$repo/target}"
"$target/release/sosw-bench" run --out docs --python "$python" --bins "$target/release" "$@"
