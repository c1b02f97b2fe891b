#!/usr/bin/env bash
# Tests the promotion rules of scripts/package.sh without a release build: bundles made from the
# debug essentials (built by `cargo test`) are staged with `--from`:
#   1. good bundles        -> promoted: current is the new build, no previous yet;
#   2. one broken bundle   -> the tests fail: current and previous are untouched, staged is the bad one;
#   3. good bundles again  -> promoted: current is the new build, previous is build 1.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
ESSENTIALS=(sosw_scheduler sosw_orchestrator sosw_scavenger sosw_worker_assistant)

fail() { echo "package-selftest: FAILED: $*" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export SOSW_DIST_DIR="$work/dist"

# The same command (features included) as the test step of `make test`, so in CI it builds nothing new:
# the integration tests of sosw-essentials need its binaries, so they are in target/debug already. (A
# `cargo build -p sosw-essentials` resolves features differently and would rebuild much of the SDK.)
(cd "$REPO_ROOT" && cargo test -q --workspace --all-features --no-run)

# $1: folder to fill; $2: the function whose bootstrap is broken (or none).
make_bundles() {
    local out="$1" broken="${2:-}" f
    mkdir -p "$out"
    for f in "${ESSENTIALS[@]}"; do
        rm -rf "$work/zip" && mkdir -p "$work/zip"
        if [[ "$f" == "$broken" ]]; then
            printf '#!/bin/sh\necho "a broken bootstrap" >&2\nexit 3\n' >"$work/zip/bootstrap"
            chmod +x "$work/zip/bootstrap"
        else
            cp "$TARGET/debug/$f" "$work/zip/bootstrap"
        fi
        (cd "$work/zip" && zip -q "$out/$f.zip" bootstrap)
    done
}

make_bundles "$work/good"
make_bundles "$work/bad" sosw_scavenger

link() { readlink "$SOSW_DIST_DIR/$1" 2>/dev/null || echo none; }

bash "$REPO_ROOT/scripts/package.sh" --from "$work/good" >/dev/null || fail "good bundles were not promoted"
first="$(link current)"
[[ "$first" != none && "$(link previous)" == none ]] || fail "after build 1: current=$first previous=$(link previous)"

if bash "$REPO_ROOT/scripts/package.sh" --from "$work/bad" >/dev/null 2>&1; then
    fail "a broken bundle was promoted"
fi
[[ "$(link current)" == "$first" ]] || fail "a failed test moved current to $(link current)"
[[ "$(link previous)" == none ]] || fail "a failed test moved previous to $(link previous)"
[[ "$(link staged)" != "$first" ]] || fail "the failed build was not staged"
grep -q "sosw_scavenger" "$SOSW_DIST_DIR/$(link staged)/test.log" || fail "the failure log does not name the bundle"

bash "$REPO_ROOT/scripts/package.sh" --from "$work/good" >/dev/null || fail "good bundles after a failure were not promoted"
[[ "$(link previous)" == "$first" ]] || fail "previous is $(link previous), expected $first"
[[ "$(link current)" != "$first" && "$(link current)" == "$(link staged)" ]] || fail "current is $(link current)"

echo "package-selftest: promote on pass, current untouched on failure, previous kept: ok"
