#!/usr/bin/env bash
# The deploy rehearsal (`make rehearse`): the project's three CloudFormation stacks created unchanged,
# with docs/deploy.md's parameters, on moto server's CloudFormation, with the pre-flight checks moto
# skips and checks of what the stacks made (scripts/rehearse.py; docs/deploy.md, "Rehearsal").
#
# Bundles: SOSW_REHEARSE_BUNDLES (a folder of <function>.zip), else dist/current, else
# `scripts/package.sh` builds them first (a release cross build: minutes). `--debug` zips the debug
# bootstraps `cargo test` built instead (what `make test` does: the stacks on moto do not run the code).
# Environment: SOSW_REHEARSE_REPORT (default <repo>/target/rehearsal.json, rehearsal-lean.json with
# the lean layout) for the JSON report;
# SOSW_REHEARSE_LAYOUT (sosw07, the default, or lean) for the stacks' Layout parameter.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
# shellcheck source-path=SCRIPTDIR source=lib/emulators.sh
source scripts/lib/emulators.sh
t0=$(date +%s)

bundles="${SOSW_REHEARSE_BUNDLES:-}"
if [[ "${1:-}" == --debug ]]; then
    # The debug bootstraps, the tutorial workers' and the sosw CLI included (`cargo test` builds only
    # the binaries of packages with integration tests).
    # --all-targets: the same feature resolution as `cargo test` (dev-dependencies included), so only
    # the missing binaries are built, not the SDK again.
    cargo build -q --workspace --all-features --all-targets
    # The operator's `sosw --aws` calls run the CLI of the same build.
    export SOSW_REHEARSE_CLI="${CARGO_TARGET_DIR:-$repo/target}/debug/sosw"
    bundles="$(mktemp -d)"
    tmp="$bundles"
    trap 'rm -rf "$tmp"' EXIT
    for f in sosw_scheduler sosw_orchestrator sosw_scavenger sosw_worker_assistant \
        sosw_tutorial_pull_tweeter_hashtags sosw_tutorial_flaky_hashtags; do
        bin="${CARGO_TARGET_DIR:-$repo/target}/debug/$f"
        [[ -x "$bin" ]] || { echo "rehearse: $bin is missing (cargo test --workspace --all-features --no-run)" >&2; exit 1; }
        mkdir -p "$bundles/$f" && cp "$bin" "$bundles/$f/bootstrap"
        (cd "$bundles/$f" && zip -q -1 "../$f.zip" bootstrap) && rm -rf "${bundles:?}/$f"
    done
elif [[ -n "${1:-}" ]]; then
    echo "rehearse: unknown argument '$1' (usage: scripts/rehearse.sh [--debug])" >&2; exit 1
fi
if [[ -z "$bundles" ]]; then
    if [[ ! -d dist/current ]]; then
        echo "==> no dist/current: scripts/package.sh builds the bundles" >&2
        bash scripts/package.sh
    fi
    bundles="$repo/dist/current"
fi
[[ -d "$bundles" ]] && compgen -G "$bundles/*.zip" >/dev/null ||
    { echo "rehearse: no <function>.zip in $bundles" >&2; exit 1; }

# The Invoke API's own semantics first (the standard library only; no emulator needed).
python3 scripts/rehearsal_lambda_selftest.py
# parliament's venv (scripts/check-iam.sh installs it) has boto3 and the IAM action definitions.
bash scripts/check-iam.sh >/dev/null
emulators_up moto
trap 'emulators_down; [[ -z "${tmp:-}" ]] || rm -rf "$tmp"' EXIT
layout="${SOSW_REHEARSE_LAYOUT:-sosw07}"
suffix=""
[[ "$layout" == sosw07 ]] || suffix="-$layout"
report="${SOSW_REHEARSE_REPORT:-$repo/target/rehearsal$suffix.json}"
mkdir -p "$(dirname "$report")"
.tools/parliament-venv/bin/python scripts/rehearse.py --endpoint "$SOSW_MOTO_ENDPOINT" \
    --bundles "$bundles" --report "$report" --layout "$layout"
echo "rehearse: passed in $(($(date +%s) - t0)) s (report: $report)"
