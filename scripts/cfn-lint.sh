#!/usr/bin/env bash
# Lints every CloudFormation template with cfn-lint, installed from PyPI into <repo>/.tools (git-ignored).
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source-path=SCRIPTDIR source=lib/pytool.sh
source "$REPO_ROOT/scripts/lib/pytool.sh"
pytool_install cfn-lint "cfn-lint==1.58.0"

shopt -s nullglob
templates=("$REPO_ROOT"/cloudformation/*.yaml)
((${#templates[@]})) || { echo "cfn-lint: no templates under cloudformation/" >&2; exit 1; }
# Informational checks too (I3011: stateful resources say what deletion does).
"$PYTOOL_VENV/bin/cfn-lint" --include-checks I -- "${templates[@]}"
echo "cfn-lint: ${#templates[@]} template(s) clean"
