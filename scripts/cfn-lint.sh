#!/usr/bin/env bash
# Lints every CloudFormation template with cfn-lint, installed from PyPI into <repo>/.tools (git-ignored).
set -euo pipefail
readonly CFN_LINT_VERSION="1.58.0"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly VENV="$REPO_ROOT/.tools/cfn-lint-venv"

if [[ ! -x "$VENV/bin/cfn-lint" ]]; then
    command -v python3 >/dev/null 2>&1 || { echo "cfn-lint: python3 is not installed" >&2; exit 1; }
    mkdir -p "$REPO_ROOT/.tools"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION" >&2 ||
        { echo "cfn-lint: pip install cfn-lint==$CFN_LINT_VERSION failed (see above)" >&2; exit 1; }
fi

shopt -s nullglob
templates=("$REPO_ROOT"/cloudformation/*.yaml)
((${#templates[@]})) || { echo "cfn-lint: no templates under cloudformation/" >&2; exit 1; }
"$VENV/bin/cfn-lint" "${templates[@]}"
echo "cfn-lint: ${#templates[@]} template(s) clean"
