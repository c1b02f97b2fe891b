#!/usr/bin/env bash
# `make bench`: the side-by-side benchmarks of this implementation and Python sosw 0.7.47, then local
# mode against the machine's own limits. Installs what the side-by-side part needs (sosw 0.7 in a
# virtualenv, DynamoDB Local, moto), builds the harness and the essentials in release, runs every
# workload and writes docs/performance.md, docs/performance.csv and docs/performance-local.md.
# Arguments are passed to `sosw-bench run` and `sosw-bench local` (e.g. --quick, --reps 5,
# --only enqueue,lifecycle). `--only local` (or only the local workloads: true, inprocess, million)
# runs local mode alone: no Python, no emulators; `--only sustained` needs DynamoDB Local alone (no
# Python, no moto).
# Not part of `make test`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

# Whether --only names nothing but local workloads; whether it names nothing that needs Python sosw 0.7
# or moto (the `sustained` workload needs DynamoDB Local alone).
local_only=false
dynamodb_only=false
previous=""
for arg in "$@"; do
    if [ "$previous" = "--only" ]; then
        local_only=true
        dynamodb_only=true
        for workload in ${arg//,/ }; do
            case "$workload" in
            local | true | inprocess | million) ;;
            sustained) local_only=false ;;
            *)
                local_only=false
                dynamodb_only=false
                ;;
            esac
        done
    fi
    previous="$arg"
done

cargo build --release -p sosw-bench -p sosw-essentials --bins
target="${CARGO_TARGET_DIR:-$repo/target}"

# The sustained workload runs each case on a fresh DynamoDB Local (see bench/src/sustained.rs), but
# only one this script started: an instance that was already running is someone else's.
fresh_dynamodb_local() {
    if emulators_started_here dynamodb-local; then
        export SOSW_BENCH_DYNAMODB_RESTART="bash '$repo/scripts/dynamodb-local.sh' stop >&2 && bash '$repo/scripts/dynamodb-local.sh' start"
    fi
}

if [ "$local_only" = false ] && [ "$dynamodb_only" = true ]; then
    # shellcheck source-path=SCRIPTDIR source=lib/emulators.sh
    source scripts/lib/emulators.sh
    emulators_up dynamodb-local
    fresh_dynamodb_local
    "$target/release/sosw-bench" run --out docs --bins "$target/release" "$@"
elif [ "$local_only" = false ]; then
    # shellcheck source-path=SCRIPTDIR source=lib/emulators.sh
    source scripts/lib/emulators.sh
    python="$(bash scripts/sosw07.sh python)"
    emulators_up dynamodb-local moto
    fresh_dynamodb_local
    "$target/release/sosw-bench" run --out docs --python "$python" --bins "$target/release" "$@"
fi
"$target/release/sosw-bench" local --out docs --bins "$target/release" "$@"
