"""Channel failures over the real path: SMTP down then back, Slack answering 500, and a
channel that never recovers (dead-letter, then the fallback recipient)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from schemas import topics
from tests.factories import alert
from tests.integration.notify_harness import FakeClock, focal_points, producer, running, to
from tests.support import EmbeddedBroker, SlackSink, SmtpSink, wait_until, write_config

pytestmark = pytest.mark.broker

RETRIES = {"notify_backoff_base_s": 2.0, "notify_backoff_cap_s": 10.0, "notify_max_attempts": 10}
ALERTS = [alert(country="KG", indicator=f"indicator_{i}") for i in range(5)]


async def test_smtp_down_for_30s_then_back_delivers_every_email_and_no_second_slack(
    kafka: EmbeddedBroker, slack_sink: SlackSink, tmp_path: Path, sqlite_url: str
) -> None:
    smtp = SmtpSink()  # its port is chosen but nothing listens yet: SMTP is down
    clock = FakeClock()
    config = write_config(tmp_path / "config", slack_url=slack_sink.url)
    try:
        async with (
            running(kafka, smtp, config, sqlite_url, clock, **RETRIES) as notify,
            producer(kafka) as p,
        ):
            await notify.publish(p, *ALERTS)
            await notify.settle()
            assert len(slack_sink.requests) == 5
            for _ in range(6):  # 30 s of outage, retried with backoff
                await notify.tick_to(5)
            failed = notify.app.state.scheduler.metrics.registry.get_sample_value(
                "tocsin_notifications_failed_total", {"channel": "email", "reason": "connection"}
            )
            assert failed >= 10  # every email retried at least once more during the outage
            assert smtp.messages == []

            smtp.start()
            await notify.tick_to(10)  # the longest backoff: every email is due again
            await wait_until(lambda: len(smtp.messages) == 5, 30, "five emails")
            await notify.tick_to(3600)
        assert sorted(m["Message-ID"] for m in smtp.messages) == sorted(
            f"<KG.indicator_{i}.v1.test-desk@tocsin>" for i in range(5)
        )
        assert len(slack_sink.requests) == 5
    finally:
        with contextlib.suppress(AssertionError):  # never started if the test failed early
            smtp.stop()


async def test_slack_answering_500_does_not_resend_email(
    kafka: EmbeddedBroker,
    smtp_sink: SmtpSink,
    slack_sink: SlackSink,
    tmp_path: Path,
    sqlite_url: str,
) -> None:
    clock = FakeClock()
    config = write_config(tmp_path / "config", slack_url=slack_sink.url)
    slack_sink.status = 500
    async with (
        running(kafka, smtp_sink, config, sqlite_url, clock, **RETRIES) as notify,
        producer(kafka) as p,
    ):
        await notify.publish(p, *ALERTS)
        await notify.settle()
        for _ in range(4):
            await notify.tick_to(10)
        assert len(smtp_sink.messages) == 5
        assert slack_sink.requests == []
        slack_sink.status = 200
        await notify.tick_to(10)
        await notify.tick_to(3600)
    assert len(slack_sink.requests) == 5
    assert len(smtp_sink.messages) == 5


async def test_dead_channel_goes_to_deadletter_and_the_fallback_recipient(
    kafka: EmbeddedBroker,
    smtp_sink: SmtpSink,
    slack_sink: SlackSink,
    tmp_path: Path,
    sqlite_url: str,
) -> None:
    config = focal_points(
        tmp_path / "config",
        f"""
focal_points:
  - id: slack-only
    name: Slack-only desk
    slack_webhook: {slack_sink.url}
    countries: [KG]
    fallback: mail-desk
  - id: mail-desk
    name: Mail desk
    email: [mail@example.org]
    countries: [LY]
""",
    )
    clock = FakeClock()
    slack_sink.status = 500
    retries = {**RETRIES, "notify_max_attempts": 3}
    async with (
        running(kafka, smtp_sink, config, sqlite_url, clock, **retries) as notify,
        producer(kafka) as p,
    ):
        await notify.publish(p, alert())
        await notify.settle()
        await notify.tick_to(10)
        await notify.tick_to(10)
        [mail] = to(smtp_sink.messages, "mail@example.org")
        assert " ".join(str(mail["Subject"]).split()).startswith("[FALLBACK] ")
        registry = notify.app.state.scheduler.metrics.registry
        assert (
            registry.get_sample_value(
                "tocsin_notifications_total", {"channel": "slack", "outcome": "deadlettered"}
            )
            == 1
        )
        assert registry.get_sample_value("tocsin_notify_fallbacks_total") == 1

    consumer = AIOKafkaConsumer(
        topics.DEADLETTER,
        topics.DELIVERIES,
        bootstrap_servers=kafka.bootstrap,
        auto_offset_reset="earliest",
        group_id="test-reader",
    )
    await consumer.start()
    seen: dict[str, list[dict[str, object]]] = {topics.DEADLETTER: [], topics.DELIVERIES: []}
    try:

        async def read() -> bool:
            batch = await consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                seen[tp.topic] += [json.loads(r.value or b"") for r in records]
            return len(seen[topics.DELIVERIES]) >= 4 and len(seen[topics.DEADLETTER]) >= 1

        await wait_until(read, 30, "the audit and dead-letter records")
    finally:
        await consumer.stop()
    [dead] = seen[topics.DEADLETTER]
    assert dead["service"] == "notify"
    assert dead["key"] == "KG:state_incapacity_or_request_for_help@1|slack-only|slack"
    assert [(d["channel"], d["outcome"], d["kind"]) for d in seen[topics.DELIVERIES]] == [
        ("slack", "failed", "notice"),
        ("slack", "failed", "notice"),
        ("slack", "deadlettered", "notice"),
        ("email", "sent", "fallback"),
    ]
