#!/usr/bin/env bash
# Regenerates the extended differential chunking corpus with Python sosw 0.7.47 itself (installed from PyPI
# by scripts/sosw07.sh): random jobs, chunked by sosw's own Scheduler under three hash seeds, kept where
# sosw chunked them without an error and identically each time. The fixture is what
# crates/sosw-core/src/job/chunking/tests.rs compares our chunker with, byte for byte (key order included).
#
#   scripts/sosw07-chunking-corpus.sh [SEED] [COUNT]     (defaults: 47 800)
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
readonly OUT="$REPO_ROOT/crates/sosw-core/src/job/testdata/sosw-0.7.47-chunking-extended.jsonl"
SEED="${1:-47}"
COUNT="${2:-800}"

PY="$(bash "$REPO_ROOT/scripts/sosw07.sh" python)"
GEN="$REPO_ROOT/scripts/sosw07_chunking_corpus.py"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

"$PY" "$GEN" generate --seed "$SEED" --count "$COUNT" >"$WORK/jobs.jsonl"
for hash_seed in 0 1 2; do
    PYTHONHASHSEED="$hash_seed" "$PY" "$GEN" chunk <"$WORK/jobs.jsonl" >"$WORK/out$hash_seed.jsonl"
done
"$PY" "$GEN" keep "$WORK/out0.jsonl" "$WORK/out1.jsonl" "$WORK/out2.jsonl" >"$OUT"
echo "sosw07-chunking-corpus: wrote ${OUT#"$REPO_ROOT"/}" >&2
