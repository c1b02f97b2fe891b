# shellcheck shell=bash
# The emulator helper of the scripts, sourced (not run). Two users:
#
# * an emulator's own script (scripts/dynamodb-local.sh, scripts/moto.sh) defines its pinned install,
#   its command line and its readiness probe, then hands its arguments to `emu_main`, which gives it
#   `install|start|stop|endpoint`;
# * an entry script (scripts/test.sh, bench.sh, reliability.sh) calls `emulators_up NAME...`: each
#   emulator is started through its script (installed first if missing), its `VAR=value` line is
#   printed and exported, and one EXIT trap stops, when the entry script exits for any reason, the
#   emulators this call started (not one that was already running, e.g. from `make emulators-start`).
#
# State lives under <repo>/.tools (git-ignored): NAME.pid, NAME.port, NAME.log.
#
# Environment:
#   SOSW_EMULATOR_START_TIMEOUT_SECS  seconds to wait for an emulator to answer after its start
#                                     (default: the emulator's own, 60 for DynamoDB Local, 30 for moto)
#   SOSW_EMULATOR_STOP_GRACE_SECS     seconds between SIGTERM and SIGKILL on stop (default 5)
#
# Functions print errors to stderr. `emu_main` and its commands exit on error (they run as their own
# process); `emulators_up` returns non-zero instead, which ends a caller that runs under `set -e`.

if [[ -n "${EMU_LIB_LOADED:-}" ]]; then
    return 0
fi
EMU_LIB_LOADED=1

EMU_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EMU_SCRIPTS="$EMU_REPO/scripts"
EMU_TOOLS="$EMU_REPO/.tools"

emu_pid_file() { echo "$EMU_TOOLS/$1.pid"; }
emu_port_file() { echo "$EMU_TOOLS/$1.port"; }
emu_log_file() { echo "$EMU_TOOLS/$1.log"; }

# The start time of process $1 in clock ticks since boot (Linux), or nothing where /proc has no such
# field. Written next to the pid so that a stop never signals an unrelated process that reused the pid.
emu_proc_start() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
    stat="${stat##*) }"
    local fields
    read -r -a fields <<<"$stat"
    echo "${fields[19]:-}"
}

# Whether process $1 is alive (a zombie, reaped by nobody yet, counts as gone).
emu_alive() {
    kill -0 "$1" 2>/dev/null || return 1
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 0
    stat="${stat##*) }"
    [[ "${stat:0:1}" != Z ]]
}

# Prints the pid of emulator $1 started from this repo if it is still that process; fails otherwise.
emu_running_pid() {
    local file pid recorded_start start
    file="$(emu_pid_file "$1")"
    [[ -f "$file" ]] || return 1
    { read -r pid && read -r recorded_start; } <"$file" || true
    [[ "${pid:-}" =~ ^[0-9]+$ ]] || return 1
    emu_alive "$pid" || return 1
    if [[ -n "${recorded_start:-}" ]]; then
        start="$(emu_proc_start "$pid")"
        [[ -z "$start" || "$start" == "$recorded_start" ]] || return 1
    fi
    echo "$pid"
}

# The URL of running emulator $1; fails when it does not run.
emu_endpoint() {
    local port_file
    port_file="$(emu_port_file "$1")"
    emu_running_pid "$1" >/dev/null && [[ -f "$port_file" ]] || return 1
    echo "http://127.0.0.1:$(cat "$port_file")"
}

# A loopback port that nothing listens on.
emu_free_port() {
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
    echo "emulators: found no free loopback port" >&2
    return 1
}

# emu_http URL [METHOD [BODY [HEADER...]]]: prints the body of a 2xx answer received within 2 s; fails
# on anything else. curl, or python3 where curl is missing.
emu_http() {
    local url="$1" method="${2:-GET}" body="${3:-}"
    local headers=("${@:4}") h
    if command -v curl >/dev/null 2>&1; then
        local args=(--silent --fail --max-time 2 -X "$method")
        for h in "${headers[@]}"; do args+=(-H "$h"); done
        if [[ -n "$body" ]]; then args+=(--data-binary "$body"); fi
        curl "${args[@]}" "$url" 2>/dev/null
    else
        python3 - "$url" "$method" "$body" "${headers[@]}" 2>/dev/null <<'PY'
import sys, urllib.request
url, method, body, headers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
req = urllib.request.Request(url, data=body.encode() if body else None, method=method,
                             headers=dict(h.split(": ", 1) for h in headers))
sys.stdout.buffer.write(urllib.request.urlopen(req, timeout=2).read())
PY
    fi
}

# emu_spawn DIR COMMAND...: starts COMMAND in DIR in the background (stdin closed, stdout and stderr to
# .tools/$EMU_NAME.log, SIGHUP ignored so it outlives a closed terminal) and records its pid.
emu_spawn() {
    local dir="$1"
    shift
    local pid
    (trap '' HUP && cd "$dir" && exec "$@") </dev/null >"$(emu_log_file "$EMU_NAME")" 2>&1 &
    pid=$!
    printf '%s\n%s\n' "$pid" "$(emu_proc_start "$pid")" >"$(emu_pid_file "$EMU_NAME")"
}

# emu_stop NAME: SIGTERM to the emulator started from this repo, SIGKILL after the grace period; a
# no-op when none runs. Removes its pid and port files either way.
emu_stop() {
    local name="$1" pid grace="${SOSW_EMULATOR_STOP_GRACE_SECS:-5}"
    if pid="$(emu_running_pid "$name")"; then
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + grace))
        while emu_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
        if emu_alive "$pid"; then
            echo "$name: no exit ${grace}s after SIGTERM; sending SIGKILL to $pid" >&2
            kill -KILL "$pid" 2>/dev/null || true
            for _ in $(seq 1 20); do
                emu_alive "$pid" || break
                sleep 0.1
            done
        fi
    fi
    rm -f "$(emu_pid_file "$name")" "$(emu_port_file "$name")"
}

# The last lines of emulator $1's log, for an error message.
emu_log_tail() {
    local log
    log="$(emu_log_file "$1")"
    if [[ -s "$log" ]]; then
        echo "last lines of $log:"
        tail -n 20 "$log"
    else
        echo "$log is empty"
    fi
}

# ---------------------------------------------------------------------------------------------------
# An emulator's own script calls `emu_init NAME TITLE VAR START_TIMEOUT_SECS` (NAME: the script's name,
# which names its files under .tools; TITLE: what messages call it; VAR: the variable its start line
# sets), defines
#   emulator_install        install the pinned version if missing (exits with a message on failure)
#   emulator_launch PORT    `emu_spawn DIR COMMAND...` with the command line that serves on PORT
#   emulator_ready URL      succeed once the emulator answers on URL
#   emulator_preflight      (optional) check what start needs before anything is installed
# and ends with `emu_main "$@"`.

emu_init() {
    EMU_NAME="$1"
    EMU_TITLE="$2"
    EMU_VAR="$3"
    EMU_START_TIMEOUT_SECS="$4"
}

emu_die() {
    echo "$EMU_NAME: $*" >&2
    exit 1
}

emu_cmd_start() {
    local timeout="${SOSW_EMULATOR_START_TIMEOUT_SECS:-$EMU_START_TIMEOUT_SECS}" url pid port
    [[ "$timeout" =~ ^[0-9]+$ ]] || emu_die "SOSW_EMULATOR_START_TIMEOUT_SECS must be a whole number of seconds, not '$timeout'"
    command -v curl >/dev/null 2>&1 || command -v python3 >/dev/null 2>&1 ||
        emu_die "neither curl nor python3 is installed; one is needed to check $EMU_TITLE is up"
    if url="$(emu_endpoint "$EMU_NAME")"; then
        pid="$(emu_running_pid "$EMU_NAME" || true)"
    else
        if declare -F emulator_preflight >/dev/null; then emulator_preflight; fi
        emulator_install
        port="$(emu_free_port)" || emu_die "found no free loopback port"
        emulator_launch "$port"
        echo "$port" >"$(emu_port_file "$EMU_NAME")"
        pid="$(head -n 1 "$(emu_pid_file "$EMU_NAME")")"
        url="http://127.0.0.1:$port"
    fi
    local deadline=$((SECONDS + timeout))
    until emulator_ready "$url"; do
        if ! emu_alive "$pid"; then
            rm -f "$(emu_pid_file "$EMU_NAME")" "$(emu_port_file "$EMU_NAME")"
            emu_die "$EMU_TITLE exited during start-up; $(emu_log_tail "$EMU_NAME")"
        fi
        if ((SECONDS >= deadline)); then
            emu_stop "$EMU_NAME"
            emu_die "$EMU_TITLE did not answer on $url within ${timeout}s (stopped it); $(emu_log_tail "$EMU_NAME")"
        fi
        sleep 0.3
    done
    echo "$EMU_VAR=$url"
}

emu_main() {
    local usage="usage: scripts/$EMU_NAME.sh install|start|stop|endpoint"
    [[ $# -eq 1 ]] || { echo "$usage" >&2; exit 2; }
    mkdir -p "$EMU_TOOLS"
    case "$1" in
    install) emulator_install ;;
    start) emu_cmd_start ;;
    stop) emu_stop "$EMU_NAME" ;;
    endpoint)
        emu_endpoint "$EMU_NAME" ||
            emu_die "$EMU_TITLE is not running; start it with: bash scripts/$EMU_NAME.sh start"
        ;;
    *) echo "$usage" >&2; exit 2 ;;
    esac
}

# ---------------------------------------------------------------------------------------------------
# Entry scripts.

EMU_STARTED=()

# Stops, newest first, the emulators that emulators_up started. The EXIT trap.
emulators_down() {
    local i
    for ((i = ${#EMU_STARTED[@]} - 1; i >= 0; i--)); do
        emu_stop "${EMU_STARTED[i]}" || true
    done
    EMU_STARTED=()
}

# emulators_started_here NAME: whether emulators_up started emulator NAME in this shell (one that was
# already running belongs to someone else).
emulators_started_here() {
    local i
    for i in "${EMU_STARTED[@]}"; do
        if [[ "$i" == "$1" ]]; then return 0; fi
    done
    return 1
}

# emulators_restart NAME: replaces emulator NAME, if emulators_up started it here, with a fresh, empty
# instance (on a new port; its VAR=value line is printed and exported again). One that was already
# running belongs to someone else and is left as it is. For a step that measures: DynamoDB Local
# holding the hundreds of tables a whole test run leaves is several times slower than a fresh one.
emulators_restart() {
    local name="$1" line
    if ! emulators_started_here "$name"; then
        echo "emulators: $name was already running before this script; not restarted" >&2
        return 0
    fi
    emu_stop "$name"
    if ! line="$(bash "$EMU_SCRIPTS/$name.sh" start)"; then
        echo "emulators: $name did not start again (the reason is above)" >&2
        return 1
    fi
    export "${line?}"
    echo "$line (restarted: a fresh, empty instance)"
}

# emulators_up NAME...: starts each emulator scripts/NAME.sh (installing it if missing), prints and
# exports its `VAR=value` line, and stops at exit the ones it started. This sets the shell's EXIT trap:
# a caller with cleanup of its own runs emulators_down from its trap instead.
emulators_up() {
    local name line was_running
    trap emulators_down EXIT
    for name in "$@"; do
        if [[ ! -f "$EMU_SCRIPTS/$name.sh" ]]; then
            echo "emulators: no emulator '$name' (no scripts/$name.sh)" >&2
            return 1
        fi
        was_running=""
        if emu_endpoint "$name" >/dev/null; then
            was_running=1
        else
            # Registered before the start: an interrupted start leaves nothing behind either.
            EMU_STARTED+=("$name")
        fi
        if ! line="$(bash "$EMU_SCRIPTS/$name.sh" start)"; then
            echo "emulators: $name did not start (the reason is above)" >&2
            return 1
        fi
        if [[ ! "$line" =~ ^[A-Z][A-Z0-9_]*=[^[:space:]]+$ ]]; then
            echo "emulators: scripts/$name.sh start printed '$line', not one VAR=value line" >&2
            return 1
        fi
        export "${line?}"
        if [[ -n "$was_running" ]]; then
            echo "$line (already running; left running)"
        else
            echo "$line"
        fi
    done
}
