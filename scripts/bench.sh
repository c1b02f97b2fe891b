#!/usr/bin/env bash
# `make bench`: the side-by-side benchmarks of this implementation and Python sosw 0.7.47. Installs
# what they need (sosw 0.7 in a virtualenv, DynamoDB Local, moto), builds the harness and the essentials
# in release, runs every workload and writes docs/performance.md and docs/performance.csv.
# Arguments are passed to `sosw-bench run` (e.g. --quick, --reps 5, --only enqueue,lifecycle).
# Not part of `make test`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

started=()
cleanup() {
  for s in "${started[@]}"; do bash "scripts/$s.sh" stop || true; done
}
trap cleanup EXIT

python="$(bash scripts/sosw07.sh python)"

line="$(bash scripts/dynamodb-local.sh start)"
started+=(dynamodb-local)
export "${line?}"
line="$(bash scripts/moto.sh start)"
started+=(moto)
export "${line?}"

cargo build --release -p sosw-bench -p sosw-essentials --bins
target="${CARGO_TARGET_DIR:-$repo/target}"
"$target/release/sosw-bench" run --out docs --python "$python" --bins "$target/release" "$@"
