"""The filter's counters as Prometheus metrics with labels.

A real FilterEnvoy runs with the `stats_config` of envoy/envoy.yaml; known denials are
caused, /stats/prometheus is parsed with prometheus_client's parser, and
`alb_oidc.requests.denied.<reason>` must be one metric with a `reason` label and
the exact counts. A second FilterEnvoy adds the stats matcher docs/istio.md gives
Istio users (proxyStatsMatcher inclusionPrefixes) and must keep these metrics.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from configs import config
from envoykit.echo import EchoServer
from envoykit.keyserver import KeyServer
from envoykit.paths import REPO
from filter_envoy import FilterEnvoy
from tokens import FOREIGN_ARN, Key, Minter

ENVOY_CONFIGS = [REPO / "envoy" / name for name in ("envoy.yaml", "demo.yaml", "compose.yaml")]
ISTIO_DOC = REPO / "docs" / "istio.md"


def stats_config(path: Path = ENVOY_CONFIGS[0]) -> dict:
    return yaml.safe_load(path.read_text())["stats_config"]


class StatsEnvoy(FilterEnvoy):
    """The suite's FilterEnvoy with a `stats_config` added to its bootstrap."""

    def __init__(self, stats: dict, **kw: Any) -> None:
        super().__init__(**kw)
        self.stats_config = stats

    def customize(self, boot: dict) -> None:
        boot["stats_config"] = self.stats_config


def prometheus(envoy: FilterEnvoy) -> dict[str, list[tuple[dict[str, str], float]]]:
    """family name -> [(labels, value)] of /stats/prometheus."""
    text = envoy.admin("/stats/prometheus")
    return {f.name: [(s.labels, s.value) for s in f.samples] for f in text_string_to_metric_families(text)}


@pytest.fixture(scope="module")
def minter(key_server: KeyServer) -> Minter:
    key = Key.generate()
    key_server.add_key(key.kid, key.pem)
    return Minter(key)


def cause_known_traffic(envoy: FilterEnvoy, minter: Minter) -> None:
    """2 allowed, 3 missing_token, 2 malformed, 1 untrusted_signer, 1 expired."""
    expect = [(minter.mint(), 200) for _ in range(2)]
    expect += [(None, 401)] * 3
    expect += [("garbage", 401), ("a.b", 401)]
    expect += [(Minter(minter.key, signer=FOREIGN_ARN).mint(), 401)]
    expect += [(minter.mint(exp=minter.now() - 600), 401)]
    for i, (token, status) in enumerate(expect):
        headers = [("x-amzn-oidc-data", token)] if token is not None else []
        r = envoy.request(f"/stats-tags/{i}", headers)
        assert r.status == status, (i, r.status, r.body[:200])


def _envoy(wasm: Path, key_server: KeyServer, echo: EchoServer, stats: dict, name: str) -> Iterator[FilterEnvoy]:
    e = StatsEnvoy(
        stats,
        filter_config=config(),
        key_port=key_server.port,
        echo_port=echo.port,
        wasm_path=wasm,
        name=name,
    )
    e.start()
    try:
        yield e
    finally:
        e.stop(check=True)


@pytest.fixture(scope="module")
def tagged(wasm: Path, key_server: KeyServer, echo: EchoServer) -> Iterator[FilterEnvoy]:
    yield from _envoy(wasm, key_server, echo, stats_config(), "stats-tags")


def test_denials_are_one_metric_with_a_reason_label(tagged: FilterEnvoy, minter: Minter) -> None:
    cause_known_traffic(tagged, minter)
    metrics = prometheus(tagged)
    denied = metrics["alb_oidc_requests_denied"]
    assert all(set(labels) == {"reason"} for labels, _ in denied), denied
    by_reason = {labels["reason"]: value for labels, value in denied}
    assert len(by_reason) == len(denied), "one series per reason"
    assert {r: v for r, v in by_reason.items() if v} == {
        "missing_token": 3,
        "malformed": 2,
        "untrusted_signer": 1,
        "expired": 1,
    }
    # Every reason is there from the start (at 0), and none is left as a metric of its own.
    for reason in (
        "bad_signature",
        "unknown_key",
        "key_unavailable",
        "user_service_unavailable",
    ):
        assert by_reason[reason] == 0
    assert not [name for name in metrics if name.startswith("alb_oidc_requests_denied_")]
    # Other counters keep their names, without labels.
    assert metrics["alb_oidc_requests_allowed"] == [({}, 2)]


def test_rule_tag_regex_names_the_rule() -> None:
    # No rule counters exist yet (authorization comes later): check what the
    # regex cuts and keeps, with FilterEnvoy's semantics (group 1 removed, group 2 the value).
    (rule,) = [t for t in stats_config()["stats_tags"] if t["tag_name"] == "rule"]
    for name, value, rest in [
        (
            "wasmcustom.alb_oidc.rule.admins.allowed",
            "admins",
            "wasmcustom.alb_oidc.rule.allowed",
        ),
        (
            "wasmcustom.alb_oidc.rule.read-only_2.denied",
            "read-only_2",
            "wasmcustom.alb_oidc.rule.denied",
        ),
    ]:
        m = re.search(rule["regex"], name)
        assert m and m.group(2) == value
        assert name[: m.start(1)] + name[m.end(1) :] == rest
    assert re.search(rule["regex"], "wasmcustom.alb_oidc.rule.admins.other") is None
    assert re.search(rule["regex"], "wasmcustom.alb_oidc.requests.denied.expired") is None


def test_every_envoy_config_tags_the_same_way() -> None:
    configs = [stats_config(p) for p in ENVOY_CONFIGS]
    assert configs[1:] == configs[:1] * 2
    # docs/istio.md shows the same tags for Istio's custom bootstrap.
    doc = ISTIO_DOC.read_text()
    m = re.search(r"custom_bootstrap\.json: \|\n((?:\s{4}.*\n)+)", doc)
    assert m, "docs/istio.md: no custom_bootstrap.json block"
    assert json.loads(m.group(1))["stats_config"] == configs[0]


def istio_inclusion_prefixes() -> list[str]:
    """The proxyStatsMatcher inclusionPrefixes docs/istio.md tells users to set."""
    m = re.search(r'"inclusionPrefixes":\s*(\[[^\]]*\])', ISTIO_DOC.read_text())
    assert m, "docs/istio.md: no proxyStatsMatcher inclusionPrefixes"
    return json.loads(m.group(1))


@pytest.fixture(scope="module")
def matched(wasm: Path, key_server: KeyServer, echo: EchoServer) -> Iterator[FilterEnvoy]:
    # What Istio makes of proxyStatsMatcher.inclusionPrefixes: an inclusion list of prefixes
    # (next to Istio's own defaults, left out here so anything not included really disappears).
    prefixes = istio_inclusion_prefixes()
    stats = dict(stats_config())
    stats["stats_matcher"] = {"inclusion_list": {"patterns": [{"prefix": p} for p in prefixes]}}
    yield from _envoy(wasm, key_server, echo, stats, "stats-matcher")


def test_istio_inclusion_prefix_keeps_the_counters(matched: FilterEnvoy, minter: Minter) -> None:
    cause_known_traffic(matched, minter)
    metrics = prometheus(matched)
    denied = {labels["reason"]: value for labels, value in metrics["alb_oidc_requests_denied"]}
    assert denied["missing_token"] == 3 and denied["expired"] == 1
    assert metrics["alb_oidc_requests_allowed"] == [({}, 2)]
    # Not included: gone (so the check above is the matcher's doing).
    assert "envoy_cluster_upstream_rq_total" not in metrics
