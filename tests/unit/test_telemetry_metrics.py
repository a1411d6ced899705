"""The operations metrics: bounded labels, end-to-end latency, scrape-time refresh."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from schemas.deliveries import NotificationSent
from services.classify.metrics import ClassifyMetrics
from services.common.telemetry import metrics_app
from services.notify.metrics import NotifyMetrics, failure_reason
from tests.factories import T0, alert


def _sent(key: str, channel: str = "email", outcome: str = "sent") -> NotificationSent:
    return NotificationSent(
        alert_key=key,
        fingerprint=key.split("@")[0],
        focal_point="desk",
        channel=channel,
        attempt=1,
        outcome=outcome,
        at=T0,
    )


def test_end_to_end_latency_runs_from_the_newest_report_to_each_successful_delivery() -> None:
    m = NotifyMetrics()
    a = alert()
    m.delivered([a], [_sent(a.key), _sent(a.key, "slack", "failed")], now=T0 + timedelta(seconds=3))

    def sample(name: str, channel: str) -> float | None:
        return m.registry.get_sample_value(name, {"channel": channel})

    assert sample("tocsin_end_to_end_latency_seconds_count", "email") == 1
    assert sample("tocsin_end_to_end_latency_seconds_sum", "email") == 3
    assert sample("tocsin_end_to_end_latency_seconds_count", "slack") == 0


def test_resolutions_are_not_end_to_end_latency() -> None:
    m = NotifyMetrics()
    a = alert().model_copy(update={"change": "resolved", "status": "resolved"})
    m.delivered([a], [_sent(a.key)], now=T0 + timedelta(hours=72))
    labels = {"channel": "email"}
    assert m.registry.get_sample_value("tocsin_end_to_end_latency_seconds_count", labels) == 0


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (TimeoutError(), "timeout"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (ConnectionRefusedError(), "connection"),
        (httpx.ConnectError("refused"), "connection"),
        (
            httpx.HTTPStatusError(
                "500",
                request=httpx.Request("POST", "http://x"),
                response=httpx.Response(500),
            ),
            "rejected",
        ),
        (ValueError("report text <script>"), "other"),
    ],
)
def test_failure_reasons_are_a_bounded_set(exc: BaseException, reason: str) -> None:
    m = NotifyMetrics()
    assert failure_reason(exc) == reason
    m.failed("slack", exc)
    labels = {"channel": "slack", "reason": reason}
    assert m.registry.get_sample_value("tocsin_notifications_failed_total", labels) == 1


def test_alert_versions_are_counted_by_rule_severity_country_and_change() -> None:
    m = ClassifyMetrics()
    m.alert_published(alert())
    m.alert_published(alert(version=2).model_copy(update={"change": "updated"}))
    labels = {"rule": "immediate", "severity": "3", "country": "KG"}
    assert m.registry.get_sample_value("tocsin_alerts_total", {**labels, "change": "raised"}) == 1
    assert m.registry.get_sample_value("tocsin_alerts_total", {**labels, "change": "updated"}) == 1


async def test_metrics_endpoint_refreshes_measured_values_before_each_scrape() -> None:
    m = NotifyMetrics()
    scrapes = 0

    async def refresh() -> None:
        nonlocal scrapes
        scrapes += 1
        m.notifications.labels("email", "sent").inc()
        await asyncio.sleep(0)

    app = metrics_app(m.registry, refresh)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        first = await client.get("/")
        second = await client.get("/")
    assert scrapes == 2
    assert 'tocsin_notifications_total{channel="email",outcome="sent"} 1.0' in first.text
    assert 'tocsin_notifications_total{channel="email",outcome="sent"} 2.0' in second.text


async def test_a_slow_lag_measurement_never_holds_up_a_scrape() -> None:
    """A coordinator that does not answer: scrapes return with the last values, and only one
    measurement is in flight however many scrapes come in meanwhile."""
    from faststream.kafka import KafkaBroker
    from prometheus_client import CollectorRegistry

    from services.common.lag import ConsumerLag

    answer = asyncio.Event()
    calls = 0

    class Stuck(ConsumerLag):
        async def _measure(self) -> dict[tuple[str, str, str], int]:
            nonlocal calls
            calls += 1
            await answer.wait()
            return {("tocsin-notify", "alerts.v1", "0"): 7}

    registry = CollectorRegistry()
    lag = Stuck(KafkaBroker("127.0.0.1:1"), registry)
    labels = {"group": "tocsin-notify", "topic": "alerts.v1", "partition": "0"}
    lag.gauge.labels("tocsin-notify", "alerts.v1", "0").set(3)
    for _ in range(3):
        await lag.refresh(wait_s=0.01)
    assert calls == 1
    assert registry.get_sample_value("tocsin_consumer_lag_messages", labels) == 3
    answer.set()
    await lag.refresh(wait_s=5)
    assert registry.get_sample_value("tocsin_consumer_lag_messages", labels) == 7


async def test_metrics_are_served_at_metrics_itself_not_behind_a_redirect() -> None:
    """``curl :8000/metrics`` must show the metrics: FastAPI mounts redirect to ``/metrics/``."""
    from fastapi import FastAPI

    from services.common.telemetry import serve_metrics

    m = NotifyMetrics()
    app = FastAPI()
    serve_metrics(app, m.registry)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        r = await client.get("/metrics")
    assert r.status_code == 200
    assert "tocsin_notifications_total" in r.text
    assert "/metrics" not in app.openapi()["paths"]
