# boo.nvim — the two commands a fresh clone needs are `make demo` and `make test`.
.PHONY: all bootstrap build release test demo bench contract fmt check docs clean

all: build

bootstrap:
	@./scripts/bootstrap

build: bootstrap
	cargo build

release: bootstrap
	cargo build --release

# Everything: the checks, Rust unit tests, backend tests against the real opencode, end-to-end
# tests in the real Neovim, by layer (scripts/test). The tools come from scripts/bootstrap (.deps/).
test: bootstrap check
	cargo build --workspace --bins
	./scripts/test

# Try it out: a sample repository, the real opencode and a local scripted model (no API key).
demo: release
	cargo run --release -p boo-testkit --bin boo-demo

bench: bootstrap
	BOO_BENCH_RUNS=3 cargo bench

# The opencode contract test (event types and key structure vs tests/data/opencode_contract.txt)
# against another opencode binary: `make contract OPENCODE=/path/to/opencode`.
OPENCODE ?=
contract: bootstrap
	BOO_OPENCODE="$(OPENCODE)" cargo test --test it -- opencode_contract --nocapture

# The configuration keys of doc/boo.txt, from the schema in lua/boo/config.lua.
docs: bootstrap
	.deps/bin/nvim --headless --clean -u NONE -l scripts/config_doc.lua

LUA_FILES = $(shell git ls-files '*.lua')

fmt: bootstrap
	cargo fmt --all
	node scripts/stylua.cjs $(LUA_FILES)

# Formatting (Rust and Lua), clippy with warnings as errors, and a Lua check: every file loads
# in Neovim's LuaJIT without a syntax error and the help tags build.
check: bootstrap
	cargo fmt --all -- --check
	node scripts/stylua.cjs --check $(LUA_FILES)
	cargo clippy --workspace --all-targets -- -D warnings
	./scripts/lua-lint
	.deps/bin/nvim --headless --clean -u NONE -l scripts/config_doc.lua --check

clean:
	cargo clean
