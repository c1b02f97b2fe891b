# sosw for Rust: the commands the README and CI use.
.PHONY: test check fmt clippy unit demo emulators-start emulators-stop reliability package bench rehearse

## Everything CI runs: installs and starts DynamoDB Local, then fmt check, clippy and every test.
test:
	bash scripts/test.sh

## The reliability suite at full size (release build, DynamoDB Local started and stopped): the queue
## checker's scenarios, 1,200,000 hostile inputs and the 1,000,000-task simulation. See docs/reliability.md.
reliability:
	bash scripts/reliability.sh

## The deploy rehearsal: the three CloudFormation stacks created on moto server with docs/deploy.md's
## parameters, pre-flight checks and checks of what they made (docs/deploy.md, "Rehearsal").
rehearse:
	bash scripts/rehearse.sh

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

## Side-by-side benchmarks with Python sosw 0.7.47 (release build; minutes, not part of `make test`).
## Writes docs/performance.md and docs/performance.csv. Options: make bench BENCH_ARGS="--quick --reps 5"
bench:
	bash scripts/bench.sh $(BENCH_ARGS)

emulators-start:
	bash scripts/dynamodb-local.sh start

emulators-stop:
	bash scripts/dynamodb-local.sh stop

## Lambda bundles of the essentials and example workers (release, x86_64): build, test, promote
## dist/current (see docs/deploy.md). Not part of `make test`.
package:
	bash scripts/package.sh
