# shellcheck shell=bash
# Installs a pinned Python tool from PyPI into its own virtualenv under <repo>/.tools (git-ignored),
# once. Sourced by the scripts that run one (cfn-lint.sh, check-iam.sh, checkov.sh).
#
#   pytool_install NAME SPEC   e.g. pytool_install cfn-lint cfn-lint==1.58.0
#                              sets PYTOOL_VENV=<repo>/.tools/NAME-venv; exits 1 naming what failed

PYTOOL_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

pytool_install() {
    local name="$1" spec="$2"
    PYTOOL_VENV="$PYTOOL_REPO/.tools/$name-venv"
    if [[ -f "$PYTOOL_VENV/.installed-$spec" ]]; then
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || { echo "$name: python3 is not installed" >&2; exit 1; }
    mkdir -p "$PYTOOL_REPO/.tools"
    python3 -m venv "$PYTOOL_VENV"
    "$PYTOOL_VENV/bin/pip" install --quiet --disable-pip-version-check "$spec" >&2 ||
        { echo "$name: pip install $spec failed (see above)" >&2; exit 1; }
    touch "$PYTOOL_VENV/.installed-$spec"
}
