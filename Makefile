# Shortcuts for the commands the README describes.
.PHONY: run test test-postgres openapi lint ci bench bench-ingest bench-analytics demo

run:
	cargo run --release -- serve

demo:
	cargo run --release -- demo

test:
	cargo test --workspace

test-postgres:
	VITALFARM_TEST_DATABASE_URL=$${VITALFARM_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres} cargo test --workspace

openapi:
	cargo run -q -- openapi --out openapi/openapi.json

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

ci:
	bash .ci/run

bench:
	cargo run --release -- bench farm

bench-ingest:
	cargo run --release -- bench ingest --database-url $${VITALFARM_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres} --store $${STORE:-10000000}

bench-analytics:
	cargo run --release -- bench analytics --database-url $${VITALFARM_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
