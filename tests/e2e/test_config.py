"""Envoy refuses a bad filter configuration, both in `envoy --mode validate` and
on a real start, with an error in the log that names the offending field; the
repo's shipped Envoy configs pass `envoy --mode validate`.

Checked with Envoy 1.40: `--mode validate` does instantiate the wasm VM and
calls proxy_on_configure, so a filter whose on_configure returns false fails
validation (exit status 1, "Unable to create Wasm plugin ..."). The real-start
tests below do not depend on that."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from configs import config
from envoykit.paths import REPO
from envoykit.process import envoy_validate, log_tail, scan_log_for_panics
from envoykit.wait import wait_until
from filter_envoy import FilterEnvoy

BAD_CONFIGS = [
    # id, configuration (dict or raw string), text the log must contain (field name) or None
    ("unknown_field", config(bogus_field=1), "bogus_field"),
    ("unknown_field_typo", dict(config(), alb_arn=config()["alb_arns"]), "alb_arn"),
    ("missing_region", config(region=None), "region"),
    ("region_not_string", config(region=1), "region"),
    ("missing_alb_arns", config(alb_arns=None), "alb_arns"),
    ("empty_alb_arns", config(alb_arns=[]), "alb_arns"),
    ("alb_arns_not_strings", config(alb_arns=[1]), "alb_arns"),
    ("bypass_as_string", config(bypass_validation="true"), "bypass_validation"),
    ("allow_missing_as_string", config(allow_missing="yes"), "allow_missing"),
    ("bad_signature_backend", config(signature_backend="fast"), "signature_backend"),
    ("bad_exempt_path_relative", config(exempt_paths=["static/*"]), "exempt_paths"),
    ("bad_exempt_path_inner_star", config(exempt_paths=["/a*/b"]), "exempt_paths"),
    ("bad_exempt_path_empty", config(exempt_paths=[""]), "exempt_paths"),
    ("bad_exempt_path_dotdot", config(exempt_paths=["/static/../*"]), "exempt_paths"),
    ("exempt_paths_not_list", config(exempt_paths="/healthz"), "exempt_paths"),
    ("key_fetch_timeout_negative", config(key_fetch_timeout_ms=-1), "key_fetch_timeout_ms"),
    ("unknown_headers_key", config(headers={"usr": "x-u"}), "usr"),
    ("not_json", "region: us-east-1", None),
    ("json_array", "[]", None),
    ("empty_configuration", "", None),
]


# More refusals, checked with --mode validate only (same code path as a start).
EXTRA_BAD = [
    ("claim_header_pseudo_path", config(claim_headers={"sub": ":path"}), "claim_headers"),
    ("user_header_pseudo", config(headers={"user": ":authority"}), "headers"),
    ("claim_header_is_token_header", config(claim_headers={"sub": "x-amzn-oidc-data"}), "claim_headers"),
    ("token_header_is_injected", config(token_header="x-auth-user"), "x-auth-user"),
    ("exempt_everything_star", config(exempt_paths=["*"]), "exempt_paths"),
    ("alb_arn_empty_string", config(alb_arns=[""]), "alb_arns"),
    ("key_fetch_timeout_zero", config(key_fetch_timeout_ms=0), "key_fetch_timeout_ms"),
    ("clock_skew_negative", config(clock_skew_s=-5), "clock_skew_s"),
    ("signature_backend_case", config(signature_backend="Host"), "signature_backend"),
]


def _write(tmp_path: Path, cfg, wasm: Path) -> Path:
    e = FilterEnvoy(cfg, key_port=1, echo_port=1, wasm_path=wasm, workdir=tmp_path)
    return e.write_config()


@pytest.fixture(scope="module")
def validated(tmp_path_factory, wasm):
    """`envoy --mode validate` of every bad config, run a few at a time (each
    run compiles the .wasm, about 1-2 s): {case id: CompletedProcess}."""
    cases = [(c, cfg) for c, cfg, _ in BAD_CONFIGS + EXTRA_BAD]

    def run(item):
        case, cfg = item
        return case, envoy_validate(_write(tmp_path_factory.mktemp(f"validate-{case}"), cfg, wasm))

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(run, cases))


def test_validate_accepts_good_config(tmp_path, wasm):
    """Control for the tests below: the standard config passes validation."""
    out = envoy_validate(_write(tmp_path, config(), wasm))
    assert out.returncode == 0, out.stdout[-3000:]
    assert not scan_log_for_panics(out.stdout)


@pytest.mark.parametrize("case,cfg,field", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_validate_refuses_bad_config(validated, case, cfg, field):
    out = validated[case]
    assert out.returncode != 0, f"{case}: envoy --mode validate accepted it\n{out.stdout[-3000:]}"
    assert not scan_log_for_panics(out.stdout), f"{case}: panic instead of a clean refusal\n{out.stdout[-3000:]}"
    if field:
        assert field in out.stdout, f"{case}: no error naming {field!r}\n{out.stdout[-3000:]}"


# A real start for the cases the issue names (plus non-JSON); the rest are
# covered by --mode validate, which runs the same proxy_on_configure.
START_CASES = [
    "unknown_field",
    "missing_region",
    "missing_alb_arns",
    "bypass_as_string",
    "bad_signature_backend",
    "bad_exempt_path_relative",
    "bad_exempt_path_dotdot",
    "not_json",
]


_START = [c for c in BAD_CONFIGS if c[0] in START_CASES]


@pytest.mark.parametrize("case,cfg,field", _START, ids=[c[0] for c in _START])
def test_start_refuses_bad_config(tmp_path, wasm, key_server, echo, case, cfg, field):
    """Envoy exits with a non-zero status, never having served, and says why."""
    e = FilterEnvoy(cfg, key_port=key_server.port, echo_port=echo.port, wasm_path=wasm, workdir=tmp_path, name=case)
    e.spawn()
    try:
        served = []

        def exited() -> bool:
            served.append(e.listener_up())
            return e.proc.poll() is not None

        wait_until(exited, 20, what=f"{case}: envoy exiting on a bad filter config")
        text = e.log_text()
        assert not any(served), f"{case}: Envoy served with a bad filter config\n{log_tail(text)}"
        assert e.proc.returncode != 0, f"{case}: envoy exited 0\n{log_tail(text)}"
        assert not scan_log_for_panics(text), f"{case}: panic instead of a clean refusal\n{log_tail(text)}"
        if field:
            assert field in text, f"{case}: no error naming {field!r}\n{log_tail(text)}"
    finally:
        e.stop(check=False)


@pytest.mark.parametrize("case,cfg,field", EXTRA_BAD, ids=[c[0] for c in EXTRA_BAD])
def test_validate_refuses_more_bad_config(validated, case, cfg, field):
    out = validated[case]
    assert out.returncode != 0, f"{case}: envoy --mode validate accepted it\n{out.stdout[-3000:]}"
    assert not scan_log_for_panics(out.stdout)
    assert field in out.stdout, f"{case}: no error naming {field!r}\n{out.stdout[-3000:]}"


def test_bypass_without_alb_arns_is_valid(tmp_path, wasm):
    out = envoy_validate(_write(tmp_path, {"region": "us-east-1", "bypass_validation": True}, wasm))
    assert out.returncode == 0, out.stdout[-3000:]


def test_single_arn_string_is_valid(tmp_path, wasm):
    out = envoy_validate(_write(tmp_path, config(alb_arns=config()["alb_arns"][0]), wasm))
    assert out.returncode == 0, out.stdout[-3000:]


def _is_envoy_bootstrap(path: Path) -> bool:
    try:
        doc = yaml.safe_load(path.read_text())
    except Exception:
        return True  # let validation report it
    return isinstance(doc, dict) and "static_resources" in doc


# Every Envoy bootstrap under envoy/ (compose files and the like are skipped).
SHIPPED = sorted(p for p in (REPO / "envoy").glob("*.y*ml") if _is_envoy_bootstrap(p))


def test_shipped_envoy_configs_found():
    """The glob above finds the bootstraps the docs name (so the validation
    below cannot pass by checking nothing)."""
    names = {p.name for p in SHIPPED}
    assert {"envoy.yaml", "demo.yaml", "compose.yaml"} <= names, sorted(names)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_envoy_config_validates(path, wasm):
    out = envoy_validate(path, cwd=REPO)
    assert out.returncode == 0, f"{path.relative_to(REPO)} fails envoy --mode validate:\n{out.stdout[-4000:]}"
    assert not scan_log_for_panics(out.stdout)
