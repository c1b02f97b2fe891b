#!/usr/bin/env bash
# The dashboard's real-browser test (part of `make test`): headless Chromium from Debian's packages,
# driven over the DevTools protocol by scripts/dashboard_browser_test.py during a local run of the flaky
# tutorial job. Installs what is missing: Chromium with apt-get, websocket-client into .tools/ (pinned).
# Skips, saying so loudly, only where apt-get cannot install Chromium (not root, no apt-get).
#
#   scripts/dashboard-browser-test.sh                 screenshot to target/dashboard.png
#   scripts/dashboard-browser-test.sh --update-docs   screenshot to docs/dashboard.png (the guide's)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
# shellcheck source-path=SCRIPTDIR source=lib/pytool.sh
source scripts/lib/pytool.sh

screenshot="target/dashboard.png"
[[ "${1:-}" == --update-docs ]] && screenshot="docs/dashboard.png"

chromium="$(command -v chromium || command -v chromium-browser || true)"
if [[ -z "$chromium" ]]; then
    if command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == 0 ]]; then
        echo "installing Chromium (Debian's package) for the dashboard's browser test"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        chromium="$(command -v chromium)"
    else
        echo "!!! SKIPPED: the dashboard's browser test needs Chromium, and apt-get cannot install it here" >&2
        echo "!!! (not root, or no apt-get). Install the chromium package and run $0 again." >&2
        exit 0
    fi
fi

pytool_install dashboard-browser-test websocket-client==1.9.2

# The sosw binary with `cargo test`'s feature resolution (--all-targets: no SDK rebuild).
cargo build -q --workspace --all-features --all-targets
target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
mkdir -p "$(dirname "$screenshot")"
"$PYTOOL_VENV/bin/python" scripts/dashboard_browser_test.py \
    --sosw "$target_dir/debug/sosw" --chromium "$chromium" --screenshot "$screenshot"
