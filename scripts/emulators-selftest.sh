#!/usr/bin/env bash
# Self-test of the emulator helper (scripts/lib/emulators.sh), run by hand after changing it (about a
# minute once both emulators are installed; installs them first if missing). Not part of `make test`.
#   1. a script that calls `emulators_up dynamodb-local moto` gets both endpoints exported, both
#      answer, and once it exits (normally, or on a failed command under set -e) both processes are gone;
#      and a failure after the first emulator is up stops that one;
#   2. an emulator that was already running is reused and left running;
#   3. a start that never gets ready (DynamoDB Local with a start timeout of 0 s; a fake emulator that
#      never answers) fails naming the emulator and its log, and leaves no process behind;
#   4. a fake emulator that exits during start-up fails with its log's last lines;
#   5. stop sends SIGKILL to a process that ignores SIGTERM, after the grace period.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
# shellcheck source-path=SCRIPTDIR source=lib/emulators.sh
source scripts/lib/emulators.sh

fail() { echo "emulators-selftest: FAILED: $*" >&2; exit 1; }
ok() { echo "emulators-selftest: ok: $*"; }

work="$(mktemp -d)"
trap 'rm -rf "$work"; emu_stop selftest-fake; emu_stop dynamodb-local; emu_stop moto' EXIT

# Processes (not zombies) whose command line names this repo's .tools folder and $1.
live_procs() { pgrep -f "$EMU_TOOLS/$1" || true; }

for name in dynamodb-local moto; do
    emu_running_pid "$name" >/dev/null && fail "$name is running already; stop it first (bash scripts/$name.sh stop)"
done
bash scripts/dynamodb-local.sh install
bash scripts/moto.sh install

# 1. An entry script: both up and answering, both stopped at its exit, whatever the exit.
cat >"$work/entry.sh" <<'EOF'
set -euo pipefail
source "$1/scripts/lib/emulators.sh"
emulators_up dynamodb-local moto
curl --silent --fail --max-time 5 -X POST "$SOSW_DYNAMODB_ENDPOINT" \
    -H 'Content-Type: application/x-amz-json-1.0' -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=fakeKey123/20240101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
    -d '{}' | grep -q TableNames
curl --silent --fail --max-time 5 -o /dev/null "$SOSW_MOTO_ENDPOINT/moto-api/"
echo "pids $(emu_running_pid dynamodb-local) $(emu_running_pid moto)"
if [[ "${2:-}" == fail ]]; then false; fi
EOF
for how in pass fail; do
    status=0
    out="$(bash "$work/entry.sh" "$REPO_ROOT" "$how")" || status=$?
    echo "$out"
    grep -q '^SOSW_DYNAMODB_ENDPOINT=http://127.0.0.1:[0-9]*$' <<<"$out" || fail "no SOSW_DYNAMODB_ENDPOINT line"
    grep -q '^SOSW_MOTO_ENDPOINT=http://127.0.0.1:[0-9]*$' <<<"$out" || fail "no SOSW_MOTO_ENDPOINT line"
    read -r _ ddb_pid moto_pid < <(grep '^pids ' <<<"$out") || fail "the endpoints did not answer"
    if [[ "$how" == pass ]]; then ((status == 0)) || fail "the entry script exited $status"; fi
    if [[ "$how" == fail ]]; then ((status == 1)) || fail "the failing entry script exited $status, not 1"; fi
    for pid in "$ddb_pid" "$moto_pid"; do emu_alive "$pid" && fail "process $pid still runs after the entry script exited"; done
    [[ -z "$(live_procs dynamodb-local)$(live_procs moto-venv)" ]] || fail "an emulator process is left"
    [[ ! -e "$EMU_TOOLS/dynamodb-local.pid" && ! -e "$EMU_TOOLS/moto.pid" ]] || fail "a pid file is left"
    ok "emulators_up: both endpoints answered, both processes gone after an exit $status"
done

# 1b. A failure after the first emulator is up stops that one.
status=0
err="$(bash -c 'set -euo pipefail; source "$1/scripts/lib/emulators.sh"; emulators_up dynamodb-local no-such-emulator; echo not reached' _ "$REPO_ROOT" 2>&1)" || status=$?
echo "$err"
((status != 0)) || fail "emulators_up did not fail on an unknown emulator"
grep -q "not reached" <<<"$err" && fail "the script went on after emulators_up failed"
grep -q "no emulator 'no-such-emulator'" <<<"$err" || fail "no clear message for an unknown emulator"
[[ -z "$(live_procs dynamodb-local)" && ! -e "$EMU_TOOLS/dynamodb-local.pid" ]] || fail "DynamoDB Local was left running after a failed emulators_up"
ok "a failed emulators_up stops what it had started"

# 2. Already running: reused, not stopped.
bash scripts/dynamodb-local.sh start >/dev/null
before="$(emu_running_pid dynamodb-local)"
out="$(bash -c 'set -euo pipefail; source "$1/scripts/lib/emulators.sh"; emulators_up dynamodb-local' _ "$REPO_ROOT")"
grep -q 'already running; left running' <<<"$out" || fail "a running DynamoDB Local was not reported as reused: $out"
[[ "$(emu_running_pid dynamodb-local || true)" == "$before" ]] || fail "a DynamoDB Local started elsewhere was stopped"
bash scripts/dynamodb-local.sh stop
emu_alive "$before" && fail "scripts/dynamodb-local.sh stop left $before running"
ok "an emulator already running is reused and left running; stop stops it"

# 3a. A real start that cannot get ready in time.
status=0
err="$(SOSW_EMULATOR_START_TIMEOUT_SECS=0 bash -c 'set -euo pipefail; source "$1/scripts/lib/emulators.sh"; emulators_up dynamodb-local' _ "$REPO_ROOT" 2>&1)" || status=$?
echo "$err"
((status != 0)) || fail "a start with a 0 s timeout succeeded"
grep -q "DynamoDB Local did not answer on http://127.0.0.1:[0-9]* within 0s" <<<"$err" || fail "no clear timeout message"
grep -qF "$EMU_TOOLS/dynamodb-local.log" <<<"$err" || fail "the message does not name the log file"
[[ -z "$(live_procs dynamodb-local)" && ! -e "$EMU_TOOLS/dynamodb-local.pid" ]] || fail "a timed-out DynamoDB Local was left behind"
ok "a DynamoDB Local start past its timeout fails clearly and leaves no process"

# 3b, 4, 5: fake emulators, in subshells (emu_main exits).
fake() { # $1: the command the fake emulator runs; $2: its start timeout
    (
        fake_command="$1"
        emu_init selftest-fake "fake emulator" SOSW_FAKE_ENDPOINT "$2"
        emulator_install() { :; }
        emulator_launch() { emu_spawn "$work" bash -c "$fake_command"; }
        emulator_ready() { false; }
        emu_main start
    )
}
status=0
err="$(fake 'exec sleep 3601' 1 2>&1)" || status=$?
echo "$err"
((status != 0)) || fail "a fake emulator that never answers started"
grep -q "fake emulator did not answer on http://127.0.0.1:[0-9]* within 1s" <<<"$err" || fail "no clear timeout message"
[[ -z "$(pgrep -f '^sleep 3601$' || true)" ]] || fail "the fake emulator's process was left behind"
ok "a fake emulator that never answers fails after its timeout and leaves no process"

status=0
err="$(fake 'echo the fake broke; exit 3' 10 2>&1)" || status=$?
echo "$err"
((status != 0)) || fail "a fake emulator that exits started"
grep -q "fake emulator exited during start-up" <<<"$err" || fail "no clear message for an emulator that exits during start-up"
grep -q "the fake broke" <<<"$err" || fail "the message does not show the log's last lines"
ok "a fake emulator that exits during start-up fails with its log"

(
    emu_init selftest-fake "fake emulator" SOSW_FAKE_ENDPOINT 1
    emu_spawn "$work" bash -c 'trap "" TERM; exec sleep 3602'
)
pid="$(emu_running_pid selftest-fake)" || fail "the fake emulator did not start"
sleep 0.5
t0=$SECONDS
err="$(SOSW_EMULATOR_STOP_GRACE_SECS=1 emu_stop selftest-fake 2>&1)"
echo "$err"
emu_alive "$pid" && fail "a process that ignores SIGTERM survived stop"
grep -q "sending SIGKILL" <<<"$err" || fail "stop did not say it sent SIGKILL"
((SECONDS - t0 <= 4)) || fail "stop took $((SECONDS - t0)) s"
emu_stop selftest-fake
ok "stop sends SIGKILL after the grace period; a second stop is a no-op"

echo "emulators-selftest: all ok"
