# alb-oidc: every command a developer or CI needs. Everything it uses is
# installed by these targets (rustup target, Python venv with a pinned Envoy).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
PY        := $(VENV)/bin/python
ENVOY     := $(VENV)/bin/envoy
WASM      := target/wasm32-wasip1/release/alb_oidc.wasm
CARGO     ?= cargo

.PHONY: help setup toolchain venv wasm build test test-unit test-e2e lint fmt demo bench fuzz clean \
        demo-check istio-plugin test-deploy

help:
	@echo "make demo   - build everything and run the local demo (Envoy + filter + user service + ALB stand-in)"
	@echo "make demo-check   - the demo non-interactively: start, one authenticated request, one exempt health check, stop"
	@echo "make istio-plugin - build the .wasm into deploy/istio/plugin.wasm (OCI image context) and print its sha256"
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

# ---- local kit (docs/local-kit.md) and Istio packaging (docs/istio.md) ----
# Demo ports: DEMO_PROXY_PORT=8000 DEMO_ENVOY_PORT=10000 DEMO_ADMIN_PORT=9901
# DEMO_KEYS_PORT=8081 DEMO_USERS_PORT=50051 DEMO_UPSTREAM_PORT=8080; state in .run/.
demo: build venv
	@$(PY) scripts/demo.py

demo-check: build venv
	$(PY) scripts/demo.py --check

ISTIO_PLUGIN := deploy/istio/plugin.wasm

istio-plugin: wasm
	cp $(WASM) $(ISTIO_PLUGIN)
	@echo "sha256 of $(ISTIO_PLUGIN) (WasmPlugin sha256 for a file:// or https:// url):"
	@sha256sum $(ISTIO_PLUGIN) 2>/dev/null || shasum -a 256 $(ISTIO_PLUGIN)
	@echo "next: docker build -t REGISTRY/alb-oidc-plugin:TAG deploy/istio && docker push REGISTRY/alb-oidc-plugin:TAG"

# Compose file, Istio manifests and the demo's Envoy configs, checked without Docker.
test-deploy: venv
	$(CARGO) build --release -p alb-sim
	$(PY) -m pytest -q tests/e2e/test_deploy_files.py

lint: toolchain
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p alb-oidc --target wasm32-wasip1 -- -D warnings

# The user service's PostgreSQL tests are #[ignore]d in `cargo test`; the script
# runs them when PostgreSQL answers, else reports them SKIPPED (docs/user-service.md#tests).
test-unit: toolchain
	$(CARGO) test --workspace
	CARGO="$(CARGO)" bash user-service/tests/run-postgres-tests.sh

# bench-build: the bench harness's smoke test (tests/e2e/test_bench_smoke.py) runs in the suite.
test-e2e: venv build bench-build
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

# ---- benchmarks (bench/README.md): not tests, nothing asserts a time --------
# bench-build installs wrk (Debian) when missing and builds the no-op filter,
# the token minter and the user-service load client (bench/tools).
.PHONY: bench-build bench-smoke bench-micro

bench-build: wasm venv
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
	$(CARGO) build --release -p alb-oidc-user-service -p alb-sim -p alb-oidc-bench-tools
	$(CARGO) build --release --target wasm32-wasip1 -p alb-oidc-bench-noop

$(VENV)/.bench-installed: bench/requirements.txt $(VENV)/.installed
	$(VENV)/bin/pip install -q -r bench/requirements.txt
	@touch $@

# Criterion micro-benchmarks of the pure core (native). Own target dir: a
# bench build of the filter crate (panic=unwind) must not overwrite the
# release rlib other builds link from target/.
BENCH_TARGET := target-bench

bench-micro: toolchain
	CARGO_TARGET_DIR=$(BENCH_TARGET) $(CARGO) bench -p alb-oidc --bench core

# Full run (about 10 minutes): BENCH_ARGS="--rounds 5" etc., see bench/run_bench.py --help.
bench: bench-build bench-micro $(VENV)/.bench-installed
	$(PY) bench/run_bench.py --micro $(BENCH_TARGET)/criterion $(BENCH_ARGS)

# Correctness only (CI): every variant validated, a few hundred requests each.
bench-smoke: bench-build
	$(PY) bench/run_bench.py --smoke
