# sosw for Rust: the commands the README and CI use.
.PHONY: test check fmt clippy unit demo emulators-start emulators-stop

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

## The README's first command: the tutorial job through every essential on SQLite (state: sosw-local.sqlite).
demo:
	cargo run --release --bin sosw -- local run examples/jobs/hashtags.json

emulators-start:
	bash scripts/dynamodb-local.sh start

emulators-stop:
	bash scripts/dynamodb-local.sh stop
