# boo.nvim — the two commands a fresh clone needs are `make demo` and `make test`.
.PHONY: all bootstrap build release test demo bench fmt check clean

all: build

bootstrap:
	@./scripts/bootstrap

build: bootstrap
	cargo build

release: bootstrap
	cargo build --release

# Everything: Rust unit tests, backend tests against the real opencode, end-to-end tests in the
# real Neovim. The tools come from scripts/bootstrap (.deps/).
test: bootstrap
	cargo build --workspace --bins
	./scripts/test

# Try it out: a sample repository, the real opencode and a local scripted model (no API key).
demo: release
	cargo run --release -p boo-testkit --bin boo-demo

bench: bootstrap
	cargo bench

fmt:
	cargo fmt --all

check:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets

clean:
	cargo clean
