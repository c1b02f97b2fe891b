# sosw for Rust: the commands the README and CI use.
.PHONY: test check fmt clippy unit demo bench emulators-start emulators-stop

## Everything CI runs: installs and starts DynamoDB Local, then fmt check, clippy and every test.
test:
	bash scripts/test.sh

## fmt + clippy only (no emulators).
check: fmt clippy

fmt:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets --all-features -- -D warnings

## Tests without emulators (emulator-backed tests print "skipped").
unit:
	cargo test --workspace --all-features

## The embedded demo: a job's tasks through their whole life on SQLite.
demo:
	cargo run --release -p sosw-examples --bin lifecycle-demo

## Side-by-side benchmarks with Python sosw 0.7.47 (release build; minutes, not part of `make test`).
## Writes docs/performance.md and docs/performance.csv. Options: make bench BENCH_ARGS="--quick --reps 5"
bench:
	bash scripts/bench.sh $(BENCH_ARGS)

emulators-start:
	bash scripts/dynamodb-local.sh start

emulators-stop:
	bash scripts/dynamodb-local.sh stop
