"""Notify on the real broker and a real SMTP server: a redelivered alert is not sent twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from schemas import topics
from services.common.settings import Settings
from services.notify.handlers import NOTIFY_GROUP
from services.notify.main import create_app
from tests.factories import alert
from tests.support import EmbeddedBroker, SmtpSink, drained, wait_until, write_config

pytestmark = pytest.mark.broker


async def test_same_alert_version_twice_sends_one_email(
    kafka: EmbeddedBroker, smtp_sink: SmtpSink, tmp_path: Path, sqlite_url: str
) -> None:
    settings = Settings(
        kafka_bootstrap=kafka.bootstrap,
        smtp_port=smtp_sink.port,
        config_dir=write_config(tmp_path / "config"),
        database_url=sqlite_url,
    )
    app = create_app(settings)
    payload = alert().model_dump_json().encode()
    producer = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await producer.start()
    try:
        async with app.router.lifespan_context(app):
            await producer.send_and_wait(topics.ALERTS, payload, key=b"KG")
            await wait_until(lambda: len(smtp_sink.messages) == 1, 30, "the first email")
            await producer.send_and_wait(topics.ALERTS, payload, key=b"KG")
            await wait_until(
                lambda: drained(kafka.bootstrap, (NOTIFY_GROUP, topics.ALERTS)),
                30,
                "notify to commit",
            )
    finally:
        await producer.stop()
    assert len(smtp_sink.messages) == 1
    assert (
        smtp_sink.messages[0]["Message-ID"]
        == "<KG.state_incapacity_or_request_for_help.v1.test-desk@tocsin>"
    )
