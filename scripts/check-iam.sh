#!/usr/bin/env bash
# Lints the templates' IAM inline policies with parliament (which actions accept which resources),
# installed from PyPI into <repo>/.tools (git-ignored). See scripts/check_iam.py.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/pytool.sh
source "$REPO_ROOT/scripts/lib/pytool.sh"
pytool_install parliament "parliament==1.6.3"
"$PYTOOL_VENV/bin/python" "$REPO_ROOT/scripts/check_iam.py" "$REPO_ROOT"/cloudformation/*.yaml
