#!/usr/bin/env bash
# Installs, starts and stops a moto server: the emulator the tests use for S3, SNS and Lambda (DynamoDB
# uses DynamoDB Local; CloudWatch's Rust client speaks a protocol moto lacks, so it is pinned with
# aws-smithy-mocks). moto lives in a virtualenv under <repo>/.tools, which git ignores. The pid, port,
# wait and stop logic is scripts/lib/emulators.sh's, shared with scripts/dynamodb-local.sh.
#
#   scripts/moto.sh install    create the virtualenv and install the pinned moto if missing
#   scripts/moto.sh start      start on a free loopback port (installs first);
#                              prints SOSW_MOTO_ENDPOINT=http://127.0.0.1:<port>
#   scripts/moto.sh stop       stop the server started here (no-op when none runs)
#   scripts/moto.sh endpoint   print the URL of the running server
#
# Typical use:  eval "export $(scripts/moto.sh start)"
# A script that needs it calls `emulators_up moto` (scripts/lib/emulators.sh) instead.
set -euo pipefail

readonly MOTO_VERSION="5.2.5"
readonly START_TIMEOUT_SECS=30

# shellcheck source-path=SCRIPTDIR source=lib/emulators.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/emulators.sh"
emu_init moto "moto server" SOSW_MOTO_ENDPOINT "$START_TIMEOUT_SECS"
readonly VENV="$EMU_TOOLS/moto-venv"

emulator_install() {
    if [[ -x "$VENV/bin/moto_server" ]]; then
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || emu_die "python3 is not installed; it is needed for moto"
    mkdir -p "$EMU_TOOLS"
    echo "moto: installing moto[server]==$MOTO_VERSION into $VENV" >&2
    python3 -m venv "$VENV" || emu_die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2 ||
        emu_die "pip install moto[server]==$MOTO_VERSION failed (see above); check the PyPI registry is reachable"
}

emulator_launch() {
    emu_spawn "$EMU_REPO" "$VENV/bin/moto_server" -H 127.0.0.1 -p "$1"
}

emulator_ready() {
    emu_http "$1/moto-api/" >/dev/null
}

emu_main "$@"
