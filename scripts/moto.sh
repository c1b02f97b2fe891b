#!/usr/bin/env bash
# Installs, starts and stops a moto server: the emulator the tests use for S3, SNS and Lambda (DynamoDB
# uses DynamoDB Local; CloudWatch's Rust client speaks a protocol moto lacks, so it is pinned with
# aws-smithy-mocks). moto lives in a virtualenv under <repo>/.tools, which git ignores.
#
#   scripts/moto.sh install    create the virtualenv and install the pinned moto if missing
#   scripts/moto.sh start      start on a free loopback port (installs first);
#                              prints SOSW_MOTO_ENDPOINT=http://127.0.0.1:<port>
#   scripts/moto.sh stop       stop the server started here (no-op when none runs)
#   scripts/moto.sh endpoint   print the URL of the running server
#
# Typical use:  eval "export $(scripts/moto.sh start)"
set -euo pipefail

readonly MOTO_VERSION="5.2.5"
readonly START_TIMEOUT_SECS=30

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
readonly TOOLS_DIR="$REPO_ROOT/.tools"
readonly VENV="$TOOLS_DIR/moto-venv"
readonly PID_FILE="$TOOLS_DIR/moto.pid"
readonly PORT_FILE="$TOOLS_DIR/moto.port"
readonly LOG_FILE="$TOOLS_DIR/moto.log"

die() {
    echo "moto: $*" >&2
    exit 1
}

cmd_install() {
    if [[ -x "$VENV/bin/moto_server" ]]; then
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || die "python3 is not installed; it is needed for moto"
    mkdir -p "$TOOLS_DIR"
    echo "moto: installing moto[server]==$MOTO_VERSION into $VENV" >&2
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2 ||
        die "pip install moto[server]==$MOTO_VERSION failed (see above); check the PyPI registry is reachable"
}

running_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

cmd_endpoint() {
    running_pid >/dev/null || die "no moto server started by this script is running"
    echo "http://127.0.0.1:$(cat "$PORT_FILE")"
}

cmd_start() {
    if running_pid >/dev/null; then
        echo "SOSW_MOTO_ENDPOINT=$(cmd_endpoint)"
        return 0
    fi
    cmd_install
    local port
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
    nohup "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$LOG_FILE" 2>&1 &
    echo "$!" >"$PID_FILE"
    echo "$port" >"$PORT_FILE"
    local waited=0
    until python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/', timeout=1)" 2>/dev/null; do
        if ! running_pid >/dev/null; then
            tail -n 20 "$LOG_FILE" >&2 || true
            die "moto server exited during start-up (log above)"
        fi
        if ((waited >= START_TIMEOUT_SECS * 10)); then
            tail -n 20 "$LOG_FILE" >&2 || true
            cmd_stop
            die "moto server did not answer within ${START_TIMEOUT_SECS}s (log above)"
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    echo "SOSW_MOTO_ENDPOINT=http://127.0.0.1:$port"
}

cmd_stop() {
    local pid
    if pid="$(running_pid)"; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE" "$PORT_FILE"
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start ;;
stop) cmd_stop ;;
endpoint) cmd_endpoint ;;
*) die "usage: scripts/moto.sh install|start|stop|endpoint" ;;
esac
