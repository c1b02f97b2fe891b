#!/usr/bin/env bash
# Builds every Lambda bundle (the four essentials and the example workers) for provided.al2023 x86_64,
# tests the staged bundles, and only then promotes them (the brig way):
#
#   dist/builds/<build>/<function>.zip   one bundle per function (`bootstrap` in a zip)
#   dist/staged   -> builds/<build>      the latest candidate, tested or not
#   dist/current  -> builds/<build>      the latest build whose tests passed (what you upload)
#   dist/previous -> builds/<build>      the `current` before that one (to roll back)
#
# A failed build or test leaves `current` and `previous` untouched.
#
# Usage: scripts/package.sh              build with cargo-lambda, stage, test, promote
#        scripts/package.sh --from DIR   stage the <function>.zip files in DIR instead of building
#                                        (the self-test of this script uses it)
# Environment: SOSW_DIST_DIR (default <repo>/dist), SOSW_LAMBDA_TARGET_DIR (cargo-lambda's target
# dir, default <repo>/target/lambda: the cross build must not lock or evict the debug build's cache).
set -euo pipefail
readonly CARGO_LAMBDA_VERSION="1.9.2"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly VENV="$REPO_ROOT/.tools/cargo-lambda-venv"
readonly DIST="${SOSW_DIST_DIR:-$REPO_ROOT/dist}"
readonly LAMBDA_TARGET="${SOSW_LAMBDA_TARGET_DIR:-$REPO_ROOT/target/lambda}"
readonly ESSENTIALS=(sosw_scheduler sosw_orchestrator sosw_scavenger sosw_worker_assistant)
readonly WORKERS=(sosw_tutorial_pull_tweeter_hashtags sosw_tutorial_flaky_hashtags)

die() { echo "package: $*" >&2; exit 1; }

install_cargo_lambda() {
    if [[ -x "$VENV/bin/cargo-lambda" ]]; then return; fi
    command -v python3 >/dev/null 2>&1 || die "python3 is not installed (needed for pip install cargo-lambda)"
    mkdir -p "$REPO_ROOT/.tools"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "cargo-lambda==$CARGO_LAMBDA_VERSION" >&2 ||
        die "pip install cargo-lambda==$CARGO_LAMBDA_VERSION failed (see above)"
}

# Builds every bundle; prints the folder holding <function>/bootstrap.zip.
build() {
    install_cargo_lambda
    local bins=()
    for f in "${ESSENTIALS[@]}" "${WORKERS[@]}"; do bins+=(--bin "$f"); done
    echo "==> cargo lambda build (release, x86_64, provided.al2023) into $LAMBDA_TARGET" >&2
    # The venv's bin holds cargo-lambda and the zig it links with (glibc of Amazon Linux 2023).
    (cd "$REPO_ROOT" && PATH="$VENV/bin:$PATH" CARGO_TARGET_DIR="$LAMBDA_TARGET" \
        cargo lambda build --release --x86-64 --output-format zip \
        -p sosw-essentials -p sosw-tutorial "${bins[@]}") >&2 || die "the build failed; current is unchanged"
    echo "$LAMBDA_TARGET/lambda"
}

# Copies the bundles from $1 (<function>.zip or <function>/bootstrap.zip) into a new build folder;
# prints its path.
stage() {
    local from="$1" build f zip
    mkdir -p "$DIST/builds"
    build="$(mktemp -d "$DIST/builds/$(date -u +%Y%m%dT%H%M%SZ)-$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo local)-XXXX")"
    for zip in "$from"/*.zip "$from"/*/bootstrap.zip; do
        [[ -f "$zip" ]] || continue
        if [[ "$(basename "$zip")" == bootstrap.zip ]]; then f="$(basename "$(dirname "$zip")")"; else f="$(basename "$zip" .zip)"; fi
        cp "$zip" "$build/$f.zip"
    done
    compgen -G "$build/*.zip" >/dev/null || die "no bundles found in $from"
    ln -sfn "builds/$(basename "$build")" "$DIST/staged"
    echo "$build"
}

# Unzips each bundle of $1 and starts its bootstrap against the Runtime API test server.
test_bundles() {
    local build="$1" zip f unzipped="$1/.unzipped"
    for zip in "$build"/*.zip; do
        f="$(basename "$zip" .zip)"
        mkdir -p "$unzipped/$f"
        unzip -q -o "$zip" -d "$unzipped/$f" || return 1
    done
    echo "==> testing the staged bundles (each bootstrap answers an invocation)" >&2
    local status=0
    # Same packages and features as `make test`'s test step, so the test binary is reused, not rebuilt.
    (cd "$REPO_ROOT" && SOSW_BUNDLE_DIR="$unzipped" cargo test -q --workspace --all-features --test lambda \
        lambda::runtime_api::bundles_answer_an_invocation -- --exact --nocapture) >"$build/test.log" 2>&1 || status=1
    grep -E '^cold start|^sosw_|^thread|FAILED' "$build/test.log" >&2 || true
    rm -rf "$unzipped"
    return "$status"
}

# Moves current to previous and current to $1.
promote() {
    local build="$1"
    if [[ -L "$DIST/current" ]]; then
        ln -sfn "$(readlink "$DIST/current")" "$DIST/previous"
    fi
    ln -sfn "builds/$(basename "$build")" "$DIST/current"
}

# The table of bundle sizes and cold starts of $1.
report() {
    local build="$1" zip f size raw cold
    printf '%-38s %10s %12s %12s\n' function "zip (KiB)" "bootstrap" "cold start"
    for zip in "$build"/*.zip; do
        f="$(basename "$zip" .zip)"
        size=$(( $(stat -c %s "$zip") / 1024 ))
        raw="$(unzip -Z -t "$zip" 2>/dev/null | grep -Eo '[0-9]+ bytes uncompressed' | awk '{printf "%d KiB", $1/1024}')"
        cold="$(sed -n "s/^cold start $f: \\([0-9]*\\) ms$/\\1 ms/p" "$build/test.log" | head -1)"
        printf '%-38s %10s %12s %12s\n' "$f" "$size" "${raw:-?}" "${cold:-?}"
    done
}

main() {
    local from="" build
    case "${1:-}" in
        --from) [[ -d "${2:-}" ]] || die "--from needs a folder of <function>.zip files"; from="$2" ;;
        "") ;;
        *) die "unknown argument '$1' (usage: scripts/package.sh [--from DIR])" ;;
    esac
    command -v unzip >/dev/null 2>&1 || die "unzip is not installed"
    [[ -n "$from" ]] || from="$(build)"
    build="$(stage "$from")"
    echo "==> staged $build" >&2
    if ! test_bundles "$build"; then
        echo "package: the staged bundles failed their tests (log: $build/test.log); current is unchanged" >&2
        exit 1
    fi
    promote "$build"
    report "$build"
    echo "current -> $(readlink "$DIST/current")"
    if [[ -L "$DIST/previous" ]]; then echo "previous -> $(readlink "$DIST/previous")"; fi
}

main "$@"
