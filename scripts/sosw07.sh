#!/usr/bin/env bash
# Installs Python sosw 0.7.47 from PyPI into an ignored virtualenv, for the benchmarks (`make bench`)
# that run it side by side with this implementation. Nothing of sosw is copied into this repository;
# bench/python/sosw07_driver.py drives the installed package.
#
#   scripts/sosw07.sh install   create <repo>/.tools/sosw07-venv and install sosw==0.7.47 if missing
#   scripts/sosw07.sh python    print the virtualenv's python (installs first)
#
# sosw 0.7.47 depends only on boto3; boto3 1.28.57 and newer read AWS_ENDPOINT_URL and
# AWS_ENDPOINT_URL_<SERVICE>, which is how the harness points it at the emulators (no code change).
set -euo pipefail

readonly SOSW_VERSION="0.7.47"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
readonly VENV="$REPO_ROOT/.tools/sosw07-venv"

die() {
    echo "sosw07: $*" >&2
    exit 1
}

installed() {
    [[ -x "$VENV/bin/python" ]] &&
        "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('sosw') != '$SOSW_VERSION')" 2>/dev/null
}

cmd_install() {
    installed && return 0
    command -v python3 >/dev/null 2>&1 || die "python3 is not installed; sosw 0.7 needs Python 3.8-3.11"
    mkdir -p "$REPO_ROOT/.tools"
    echo "sosw07: installing sosw==$SOSW_VERSION into $VENV" >&2
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "sosw==$SOSW_VERSION" >&2 ||
        die "pip install sosw==$SOSW_VERSION failed (see above); check the PyPI registry is reachable"
    # boto3 must honour AWS_ENDPOINT_URL_<SERVICE> (1.28.57 and newer).
    "$VENV/bin/python" - <<'PY' || die "the installed boto3 is too old to read AWS_ENDPOINT_URL_<SERVICE>"
import importlib.metadata as m
major, minor, patch = (int(x) for x in m.version("botocore").split(".")[:3])
raise SystemExit(0 if (major, minor, patch) >= (1, 31, 57) else 1)
PY
}

case "${1:-}" in
install) cmd_install ;;
python) cmd_install && echo "$VENV/bin/python" ;;
*) die "usage: scripts/sosw07.sh install|python" ;;
esac
