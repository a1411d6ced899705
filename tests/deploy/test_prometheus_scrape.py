"""A real Prometheus scrapes the running stack; its HTTP API shows a report's way through.

The stack runs as separate processes (`tocsin run`, as in tests/e2e), Prometheus from
Debian's package on a free port with a temporary config (1 s scrapes, the pipeline's own
alerting rules loaded) and a temporary storage directory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.support import SEEDS, SmtpSink, free_port, service_client, wait_until, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

ROOT = Path(__file__).parents[2]
TOKEN = "dev-token-reliefweb"
SERVICES = ("ingest", "classify", "notify")
CLI = (sys.executable, "-m", "services.cli")


class Stack:
    def __init__(self, tmp: Path, smtp: SmtpSink) -> None:
        self.ports = {name: free_port() for name in SERVICES}
        env = dict(
            os.environ,
            TOCSIN_SMTP_PORT=str(smtp.port),
            TOCSIN_CONFIG_DIR=str(write_config(tmp / "config")),
            TOCSIN_DATABASE_URL=f"sqlite+aiosqlite:///{tmp / 'tocsin.db'}",
            **{f"TOCSIN_{n.upper()}_PORT": str(p) for n, p in self.ports.items()},
        )
        self.log = (tmp / "stack.log").open("wb")
        self.process = subprocess.Popen(
            [*CLI, "run", "--no-smtp-sink", "--broker-port", str(free_port())],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(30)
        self.log.close()
        return code


class Prometheus:
    def __init__(self, binary: str, tmp: Path, stack: Stack) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ROOT / "deploy" / "prometheus" / "rules" / "*.yml")],
            "scrape_configs": [
                {
                    "job_name": f"tocsin-{name}",
                    "static_configs": [{"targets": [stack.url(name).removeprefix("http://")]}],
                }
                for name in SERVICES
            ],
        }
        path = tmp / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        self.log = (tmp / "prometheus.log").open("wb")
        self.process = subprocess.Popen(
            [
                binary,
                f"--config.file={path}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address={self.url.removeprefix('http://')}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log.close()


@pytest.fixture
def stack(tmp_path: Path, smtp_sink: SmtpSink) -> Iterator[Stack]:
    s = Stack(tmp_path, smtp_sink)
    try:
        yield s
    finally:
        if s.process.poll() is None:
            assert s.stop() == 0, (tmp_path / "stack.log").read_text()


@pytest.fixture
def prometheus_server(prometheus: str, tmp_path: Path, stack: Stack) -> Iterator[Prometheus]:
    p = Prometheus(prometheus, tmp_path, stack)
    try:
        yield p
    finally:
        p.stop()


async def _query(client: httpx.AsyncClient, url: str, promql: str) -> list[dict[str, Any]]:
    r = await client.get(f"{url}/api/v1/query", params={"query": promql})
    r.raise_for_status()
    body = r.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def test_prometheus_sees_a_report_pass_every_stage(
    stack: Stack, prometheus_server: Prometheus, smtp_sink: SmtpSink
) -> None:
    prom = prometheus_server.url
    async with service_client() as client:

        async def ready() -> bool:
            assert stack.process.poll() is None, "the stack exited during start-up"
            assert prometheus_server.process.poll() is None, "prometheus exited"
            try:
                stack_ready = (await client.get(f"{stack.url('ingest')}/readyz")).is_success
                return stack_ready and (await client.get(f"{prom}/-/ready")).is_success
            except httpx.TransportError:
                return False

        await wait_until(ready, 60, "ingest /readyz and prometheus /-/ready")

        async def value(promql: str) -> float:
            result = await _query(client, prom, promql)
            return sum(float(r["value"][1]) for r in result)

        async def at_least(promql: str, minimum: float) -> bool:
            return await value(promql) >= minimum

        try:
            await wait_until(
                lambda: at_least('sum(up{job=~"tocsin-.*"})', 3),
                120,  # classify joins two consumer groups before it serves: slow when busy
                "Prometheus to see ingest, classify and notify up",
            )
        except AssertionError as exc:
            targets = (await client.get(f"{prom}/api/v1/targets")).json()["data"]
            health = [(t["scrapeUrl"], t["lastError"]) for t in targets["activeTargets"]]
            tail = _tail(stack.log.name)
            raise AssertionError(f"{exc}\ntargets: {health}\nstack log:\n{tail}") from None
        text = (SEEDS / "kyrgyzstan-open-statement-2010.txt").read_text()
        try:
            r = await client.post(
                f"{stack.url('ingest')}/v1/reports",
                json={"text": text, "title": "Open Statement on Kyrgyzstan", "kind": "official"},
                headers={"Authorization": f"Bearer {TOKEN}"},
            )
        except httpx.TransportError as exc:
            raise AssertionError(
                f"POST failed: {exc!r}\nstack log:\n{_tail(stack.log.name)}"
            ) from exc
        assert r.status_code == 202, r.text
        await wait_until(lambda: smtp_sink.messages, 60, "the alert email")

        for promql, what in [
            ('tocsin_ingest_reports_total{feed="reliefweb", outcome="accepted"}', "ingest"),
            ('tocsin_reports_classified_total{job="tocsin-classify", severity="3"}', "classify"),
            (
                'tocsin_indicators_found_total{indicator="state_incapacity_or_request_for_help"}',
                "indicators",
            ),
            ('tocsin_alerts_total{country="KG", severity="3", change="raised"}', "alerting"),
            ('tocsin_notifications_total{channel="email", outcome="sent"}', "notify"),
            ('tocsin_end_to_end_latency_seconds_count{channel="email"}', "end to end"),
        ]:
            await wait_until(lambda q=promql: at_least(q, 1), 30, f"{what}: {promql}")

        # Consumer lag is measured on every scrape, per group and partition, and drains to 0.
        async def lag_drained() -> bool:
            result = await _query(client, prom, "tocsin_consumer_lag_messages")
            groups = {r["metric"]["group"] for r in result}
            return {"tocsin-classify", "tocsin-alerting", "tocsin-notify"} <= groups and all(
                float(r["value"][1]) == 0 for r in result
            )

        await wait_until(lag_drained, 30, "lag series for every group, all at 0")
        latency = await value(
            'tocsin_end_to_end_latency_seconds_sum{channel="email"}'
            ' / tocsin_end_to_end_latency_seconds_count{channel="email"}'
        )
        assert 0 < latency < 60
        # The pipeline's own alerting rules load and evaluate on live data without errors.
        rules = (await client.get(f"{prom}/api/v1/rules")).json()["data"]["groups"]
        assert rules
        assert all(r["health"] == "ok" for g in rules for r in g["rules"]), rules
        # The classification latency histogram and FastStream's own metrics are there too.
        assert await value("tocsin_classification_seconds_count") >= 1
        assert await value("faststream_received_processed_messages_total") >= 1
        for name in SERVICES:  # `curl :port/metrics` answers with the metrics, no redirect
            direct = await client.get(f"{stack.url(name)}/metrics")
            assert direct.status_code == 200, (name, direct.status_code)
            assert "tocsin_" in direct.text
    assert stack.stop() == 0
    _assert_ids_logged_at_every_stage(stack.log.name, r.json()["id"])


def _tail(path: str) -> str:
    return Path(path).read_text()[-3000:]


def _assert_ids_logged_at_every_stage(log_path: str, report_id: str) -> None:
    """Each service logs JSON lines (its output is not a terminal) carrying the ids."""
    entries: dict[str, list[dict[str, Any]]] = {name: [] for name in SERVICES}
    for line in Path(log_path).read_text().splitlines():
        name, _, rest = line.partition(" | ")
        if name.strip() in entries and rest.startswith("{"):
            entries[name.strip()].append(json.loads(rest))
    assert any(e.get("report_id") == report_id for e in entries["ingest"]), entries["ingest"]
    classify = entries["classify"]
    assert any(report_id in e.get("report_ids", ()) for e in classify), classify  # classified
    alerts = [e for e in classify if e.get("report_id") == report_id]  # the alert it raised
    fingerprints = {e["fingerprint"] for e in alerts if e.get("fingerprint")}
    assert fingerprints, classify
    assert any(e.get("fingerprint") in fingerprints for e in entries["notify"]), entries["notify"]
