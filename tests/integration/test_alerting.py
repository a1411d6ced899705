"""Alerting on the real broker and real databases: counts survive a restart (SQLite and
PostgreSQL), redeliveries publish nothing, and quiet alerts resolve."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas import topics
from schemas.alerts import AlertRaised
from schemas.classification import ReportClassified
from services.classify.handlers import ALERTING_GROUP
from services.classify.main import create_app
from services.common.settings import Settings
from tests.alerting_support import T0, FakeClock, classified
from tests.support import EmbeddedBroker, drained, wait_until, write_config

pytestmark = pytest.mark.broker


async def send(bootstrap: str, reports: Sequence[ReportClassified]) -> None:
    """Publish as classify does: keyed by first country."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for r in reports:
            key = r.classification.countries[0].encode()
            await producer.send_and_wait(
                topics.REPORTS_CLASSIFIED, r.model_dump_json().encode(), key=key
            )
    finally:
        await producer.stop()


async def published_alerts(bootstrap: str) -> list[AlertRaised]:
    """Everything on alerts.v1 so far, read from the start."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topics.ALERTS, p)
            for p in consumer.partitions_for_topic(topics.ALERTS) or ()
        ] or [TopicPartition(topics.ALERTS, p) for p in range(4)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        out: list[AlertRaised] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batch = await consumer.getmany(timeout_ms=1000)
            out += [
                AlertRaised.model_validate_json(m.value or b"") for ms in batch.values() for m in ms
            ]
        return out
    finally:
        await consumer.stop()


async def alerting_drained(bootstrap: str) -> bool:
    return await drained(bootstrap, (ALERTING_GROUP, topics.REPORTS_CLASSIFIED))


async def test_restart_mid_window_keeps_counts_and_redelivery_publishes_nothing(
    kafka: EmbeddedBroker, tmp_path: Path, database_url: str
) -> None:
    settings = Settings(
        kafka_bootstrap=kafka.bootstrap,
        config_dir=write_config(tmp_path / "config"),
        database_url=database_url,
    )
    clock = FakeClock(T0 + timedelta(minutes=30))
    spike = [classified(f"s{i}", severity=1, at=T0 + timedelta(minutes=i)) for i in range(5)]

    first = create_app(settings, clock)
    await first.start()
    try:
        await send(kafka.bootstrap, spike[:4])
        await wait_until(lambda: alerting_drained(kafka.bootstrap), 60, "four reports counted")
    finally:
        await first.stop()
    assert await published_alerts(kafka.bootstrap) == []

    second = create_app(settings, clock)
    await second.start()
    try:
        await send(kafka.bootstrap, spike[:4])  # redelivered after the restart: counted once
        await send(kafka.bootstrap, spike[4:])
        await wait_until(lambda: alerting_drained(kafka.bootstrap), 60, "the fifth report")
        await send(kafka.bootstrap, spike)  # the whole window again
        await wait_until(lambda: alerting_drained(kafka.bootstrap), 60, "the redelivery")
    finally:
        await second.stop()
    [alert] = await published_alerts(kafka.bootstrap)
    assert (alert.rule, alert.version, alert.report_count) == ("spike", 1, 5)


async def test_quiet_alert_is_resolved_by_the_sweep(
    kafka: EmbeddedBroker, tmp_path: Path, sqlite_url: str
) -> None:
    config = write_config(tmp_path / "config")
    with (config / "rules.yaml").open("a") as rules:
        rules.write("\nsweep_every: 0.05s\n")
    clock = FakeClock(T0)
    app = create_app(
        Settings(kafka_bootstrap=kafka.bootstrap, config_dir=config, database_url=sqlite_url),
        clock,
    )
    await app.start()
    try:
        await send(kafka.bootstrap, [classified("c1", country="LY", severity=3)])

        async def versions() -> list[tuple[int, str]]:
            return [(a.version, a.status) for a in await published_alerts(kafka.bootstrap)]

        await wait_until(lambda: _equals(versions(), [(1, "firing")]), 60, "the alert")
        clock.advance(hours=72)
        await wait_until(
            lambda: _equals(versions(), [(1, "firing"), (2, "resolved")]), 60, "its resolution"
        )
    finally:
        await app.stop()


async def _equals(value: object, expected: object) -> bool:
    return await value == expected  # type: ignore[misc]
