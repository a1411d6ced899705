"""promtool on deploy/prometheus: the config loads, the rules parse, the rule tests pass."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from services.classify.metrics import ClassifyMetrics
from services.ingest.metrics import IngestMetrics
from services.notify.metrics import NotifyMetrics

ROOT = Path(__file__).parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"


def _promtool(promtool: str, *args: str) -> str:
    done = subprocess.run(
        [promtool, *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_scrape_config_is_valid(promtool: str) -> None:
    out = _promtool(promtool, "check", "config", "prometheus.yml")
    assert "1 rule files found" in out


def test_alerting_rules_are_valid(promtool: str) -> None:
    _promtool(promtool, "check", "rules", *sorted(str(p) for p in PROMETHEUS.glob("rules/*.yml")))


def test_alerting_rules_pass_their_unit_tests(promtool: str) -> None:
    tests = sorted(str(p) for p in PROMETHEUS.glob("tests/*.test.yml"))
    assert tests
    _promtool(promtool, "test", "rules", *tests)


def test_every_rule_has_a_unit_test_and_a_runbook_section() -> None:
    rules = [
        r
        for f in PROMETHEUS.glob("rules/*.yml")
        for g in yaml.safe_load(f.read_text())["groups"]
        for r in g["rules"]
    ]
    tested = {
        case["alertname"]
        for f in PROMETHEUS.glob("tests/*.test.yml")
        for t in yaml.safe_load(f.read_text())["tests"]
        for case in t.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    docs = (ROOT / "docs" / "operations.md").read_text().lower()
    for rule in rules:
        assert rule["alert"] in tested, f"{rule['alert']} never fires in a rule test"
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert f"### {anchor}" in docs, f"docs/operations.md has no section for {anchor}"


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def _families() -> dict[str, str]:
    """Every metric family the services declare, by name, with its type."""
    registries = [m.registry for m in (IngestMetrics(), ClassifyMetrics(), NotifyMetrics())]
    families = {m.name: m.type for r in registries for m in r.collect()}
    return families | {"tocsin_consumer_lag_messages": "gauge"}


def _defined_metrics() -> set[str]:
    return {name + suffix for name, kind in _families().items() for suffix in SUFFIXES[kind]}


def test_rules_and_dashboards_use_only_metrics_the_services_define() -> None:
    defined = _defined_metrics()
    texts = [p.read_text() for p in PROMETHEUS.glob("rules/*.yml")]
    texts += [
        t["expr"]
        for p in DASHBOARDS.glob("*.json")
        for panel in json.loads(p.read_text())["panels"]
        for t in panel.get("targets", [])
    ]
    used = {m for text in texts for m in re.findall(r"\btocsin_[a-z_]+", text)}
    assert used, "no tocsin metric referenced"
    assert used <= defined, f"undefined metrics: {sorted(used - defined)}"


def test_every_metric_is_documented() -> None:
    docs = (ROOT / "docs" / "operations.md").read_text()
    names = {n + ("_total" if kind == "counter" else "") for n, kind in _families().items()}
    missing = sorted(n for n in names if f"`{n}`" not in docs)
    assert not missing, f"docs/operations.md does not describe {missing}"
