# alb-oidc: every command a developer or CI needs. Everything it uses is
# installed by these targets (rustup target, Python venv with a pinned Envoy).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
PY        := $(VENV)/bin/python
ENVOY     := $(VENV)/bin/envoy
WASM      := target/wasm32-wasip1/release/alb_oidc.wasm
CARGO     ?= cargo

.PHONY: help setup toolchain venv wasm build test test-unit test-e2e lint fmt demo bench fuzz clean

help:
	@echo "make demo   - build everything and run the local demo (Envoy + filter + user service + ALB stand-in)"
	@echo "make test   - everything CI runs: fmt, clippy (host and wasm32), unit tests, end-to-end tests"
	@echo "make bench  - benchmarks (not tests); results in bench/RESULTS.md"
	@echo "make fuzz   - bounded fuzzing of the parsers (nightly + cargo-fuzz, installed on demand)"

setup: toolchain venv

toolchain:
	@rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install 1.95.0 --profile minimal
	@rustup target add wasm32-wasip1 >/dev/null
	@rustup component add rustfmt clippy >/dev/null

$(VENV)/.installed: tests/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r tests/requirements.txt
	@touch $@

venv: $(VENV)/.installed

wasm: toolchain
	$(CARGO) build --release --target wasm32-wasip1 -p alb-oidc
	@ls -l $(WASM)

build: wasm
	$(CARGO) build --release -p alb-oidc-user-service -p alb-sim

lint: toolchain
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p alb-oidc --target wasm32-wasip1 -- -D warnings

test-unit: toolchain
	$(CARGO) test --workspace

test-e2e: venv build
	$(PY) -m pytest -q tests/e2e

test: lint test-unit test-e2e

fmt:
	$(CARGO) fmt --all

# Fuzzing: nightly (installed when missing) and cargo-fuzz (built once into
# the gitignored .tools/); each target runs FUZZ_SECONDS, see fuzz/run.sh.
FUZZ_SECONDS       ?= 180
TOOLS              := .tools
CARGO_FUZZ_VERSION := 0.13.2

$(TOOLS)/bin/cargo-fuzz:
	$(CARGO) install cargo-fuzz --locked --version $(CARGO_FUZZ_VERSION) --root $(TOOLS)

fuzz: $(TOOLS)/bin/cargo-fuzz
	@rustup run nightly rustc --version >/dev/null 2>&1 || rustup toolchain install nightly --profile minimal
	PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh

clean:
	$(CARGO) clean
	rm -rf $(VENV) .run
