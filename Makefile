# alb-oidc: every command a developer or CI needs. Everything it uses is
# installed by these targets (rustup target, Python venv with a pinned Envoy).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
PY        := $(VENV)/bin/python
ENVOY     := $(VENV)/bin/envoy
WASM      := target/wasm32-wasip1/release/alb_oidc.wasm
CARGO     ?= cargo
# Native release binaries (user service, alb-sim, bench tools) for the demo,
# the benches and `make build`; `make test` runs its end-to-end tests with
# the dev-profile ones (E2E_BIN_DIR below). Thin LTO and
# parallel codegen. Fat LTO with one codegen unit over tonic and sqlx took
# minutes of a 2-core CI run for no difference the benches can see; the
# .wasm keeps the full release profile (Cargo.toml), where size and speed
# are the product.
NATIVE_RELEASE := CARGO_PROFILE_RELEASE_LTO=thin CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 $(CARGO) build --release

.PHONY: help setup toolchain venv wasm build e2e-bins test test-unit test-e2e lint lint-python fmt demo bench fuzz clean \
        demo-check istio-plugin test-deploy node-tools screenshot

help:
	@echo "make demo   - build everything and run the local demo (Envoy + filter + user service + ALB stand-in)"
	@echo "make demo-check   - the demo non-interactively: start, one authenticated request, one exempt health check, stop"
	@echo "make istio-plugin - build the plugin's reproducible OCI image (target/istio-plugin), pin its digest in the WasmPlugins"
	@echo "make screenshot - refresh docs/demo.png (the demo page in headless Chromium, after signing in as alice)"
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
	$(NATIVE_RELEASE) -p alb-oidc-user-service -p alb-sim

# ---- local kit (docs/local-kit.md) and Istio packaging (docs/istio.md) ----
# Demo ports: DEMO_PROXY_PORT=8000 DEMO_ENVOY_PORT=10000 DEMO_ADMIN_PORT=9901
# DEMO_KEYS_PORT=8081 DEMO_USERS_PORT=50051 DEMO_UPSTREAM_PORT=8080; state in .run/.
demo: build venv
	@$(PY) -m scripts.demo

demo-check: build venv
	$(PY) -m scripts.demo --check

ISTIO_PLUGIN   := deploy/istio/plugin.wasm
ISTIO_IMAGE    := target/istio-plugin
PLUGIN_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
WASM_PLUGINS   := deploy/istio/wasmplugin.yaml deploy/istio/gateway-api/wasmplugin.yaml

# The OCI image Istio pulls (docs/istio.md): one layer with plugin.wasm, no
# timestamps, so the same .wasm always gives the same digest; no Docker needed.
istio-plugin: wasm
	cp $(WASM) $(ISTIO_PLUGIN)
	@echo "sha256 of $(ISTIO_PLUGIN) (WasmPlugin sha256 for a file:// or https:// url only):"
	@sha256sum $(ISTIO_PLUGIN) 2>/dev/null || shasum -a 256 $(ISTIO_PLUGIN)
	python3 deploy/istio/oci_image.py --wasm $(ISTIO_PLUGIN) --out $(ISTIO_IMAGE) --tag $(PLUGIN_VERSION) \
	  $(foreach m,$(WASM_PLUGINS),--manifest $(m))
	@echo "push: skopeo copy --preserve-digests oci:$(ISTIO_IMAGE):$(PLUGIN_VERSION) docker://REGISTRY/alb-oidc-plugin:$(PLUGIN_VERSION)"

# npm packages with the schemas the manifest tests check against (package.json,
# package-lock.json), in ./node_modules. Without npm nothing is installed and
# those tests skip (fail under ALB_OIDC_NO_SKIP=1).
NODE_TOOLS := node_modules/.installed

$(NODE_TOOLS): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm not found: the schema tests of the manifests will be skipped"; fi

node-tools: $(NODE_TOOLS)

# The README's picture of the demo page: the browser test, told to keep its screenshot.
screenshot: build venv
	ALB_OIDC_SCREENSHOT=docs/demo.png $(PY) -m pytest -q tests/e2e/test_browser_login.py

# Compose file, Istio manifests and the demo's Envoy configs, checked without Docker.
test-deploy: venv node-tools e2e-bins
	ALB_OIDC_BIN_DIR=$(E2E_BIN_DIR) $(PY) -m pytest -q tests/e2e/test_deploy_files.py tests/e2e/test_manifest_schemas.py tests/e2e/test_plugin_image.py

# Every Python file in the repo (settings in pyproject.toml).
lint-python: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

lint: toolchain lint-python
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p alb-oidc --target wasm32-wasip1 -- -D warnings

# The user service's PostgreSQL tests are #[ignore]d in `cargo test`; the script
# runs them when PostgreSQL answers, else reports them SKIPPED (docs/user-service.md#tests).
test-unit: toolchain
	$(CARGO) test --workspace
	CARGO="$(CARGO)" bash user-service/tests/run-postgres-tests.sh

# The native binaries of the end-to-end tests (alb-sim, the user service,
# bench-mint; envoykit/paths.py): the dev-profile ones that `cargo test
# --workspace` builds for the packages' own CLI tests, so after test-unit this
# builds nothing. Not `cargo build -p ...`: without the workspace's
# dev-dependencies its features differ and it rebuilds dozens of dependencies.
# The .wasm under test is always the release build (`make wasm`).
E2E_BIN_DIR := target/debug

e2e-bins: toolchain
	$(CARGO) test --workspace --no-run --quiet

# bench-wasm: the bench harness's smoke test (tests/e2e/test_bench_smoke.py)
# runs in the suite; it checks answers only, so the dev binaries do.
test-e2e: venv wasm e2e-bins bench-wasm node-tools
	ALB_OIDC_BIN_DIR=$(E2E_BIN_DIR) $(PY) -m pytest -q tests/e2e

test: lint test-unit test-e2e

fmt: venv
	$(CARGO) fmt --all
	$(VENV)/bin/ruff format .

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
# bench-build builds the no-op filter (bench-wasm), and in release the token
# minter and the user-service load client (bench/tools) with alb-sim and the
# user service. The load generator, wrk, is a system package that
# no make target installs (.ci/run does, as root): without it the bench smoke
# test is SKIPPED, and `make bench` stops and says so.
.PHONY: bench-build bench-wasm bench-smoke bench-micro bench-instructions

bench-wasm: toolchain
	$(CARGO) build --release --target wasm32-wasip1 -p alb-oidc-bench-noop

bench-build: wasm venv bench-wasm
	$(NATIVE_RELEASE) -p alb-oidc-user-service -p alb-sim -p alb-oidc-bench-tools

$(VENV)/.bench-installed: bench/requirements.txt $(VENV)/.installed
	$(VENV)/bin/pip install -q -r bench/requirements.txt
	@touch $@

# Criterion micro-benchmarks of the pure core (native). Own target dir: a
# bench build of the filter crate (panic=unwind) must not overwrite the
# release rlib other builds link from target/.
BENCH_TARGET := target-bench

bench-micro: toolchain
	CARGO_TARGET_DIR=$(BENCH_TARGET) $(CARGO) bench -p alb-oidc --bench core

# Instructions per request of the core's hot path (examples/flow_cost.rs),
# per configuration, under valgrind's callgrind: a count that does not move
# with the machine's load, for differences wall-clock benches cannot resolve
# on a shared machine. Needs valgrind (a system package no target installs).
FLOW_COST_N := 2000
bench-instructions: toolchain
	@command -v valgrind >/dev/null || { echo "valgrind not found: install it (Debian: valgrind)"; exit 1; }
	CARGO_TARGET_DIR=$(BENCH_TARGET) $(CARGO) build --release --example flow_cost
	@for v in rules_none groups_claim_only rules_20; do \
	  base=$$(valgrind --tool=callgrind --callgrind-out-file=/dev/null $(BENCH_TARGET)/release/examples/flow_cost $$v 0 2>&1 | sed -n 's/.*refs: *//p' | tr -d ,); \
	  runs=$$(valgrind --tool=callgrind --callgrind-out-file=/dev/null $(BENCH_TARGET)/release/examples/flow_cost $$v $(FLOW_COST_N) 2>&1 | sed -n 's/.*refs: *//p' | tr -d ,); \
	  echo "$$v: $$(( (runs - base) / $(FLOW_COST_N) )) instructions per request"; \
	done

# Full run (about 10 minutes): BENCH_ARGS="--rounds 5" etc., see `$(PY) -m bench.run_bench --help`.
bench: bench-build bench-micro $(VENV)/.bench-installed
	$(PY) -m bench.run_bench --micro $(BENCH_TARGET)/criterion $(BENCH_ARGS)

# Correctness only (CI): every variant validated, a few hundred requests each.
bench-smoke: bench-build
	$(PY) -m bench.run_bench --smoke
