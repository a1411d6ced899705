"""A handler that fails must not commit: the batch is rewound and processed again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError

from schemas import topics
from services.classify import handlers
from services.classify.main import create_app
from services.common.broker import publish_all
from services.common.settings import Settings
from tests.alerting_support import T0, FakeClock, classified
from tests.integration.test_alerting import alerting_drained, published_alerts, send
from tests.support import EmbeddedBroker, wait_until, write_config

pytestmark = pytest.mark.broker


async def test_a_failed_alert_publish_redelivers_instead_of_losing_the_alert(
    kafka: EmbeddedBroker, tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = [KafkaTimeoutError()]

    async def flaky_publish_all(broker: Any, topic: str, messages: Any) -> None:
        if topic == topics.ALERTS and failures:
            raise failures.pop()
        await publish_all(broker, topic, messages)

    monkeypatch.setattr(handlers, "publish_all", flaky_publish_all)
    settings = Settings(
        kafka_bootstrap=kafka.bootstrap,
        config_dir=write_config(tmp_path / "config"),
        database_url=sqlite_url,
    )
    app = create_app(settings, FakeClock(T0))
    await app.start()
    try:
        await send(kafka.bootstrap, [classified("critical-1", country="LY", severity=3)])
        await wait_until(lambda: alerting_drained(kafka.bootstrap), 60, "the report committed")
    finally:
        await app.stop()
    assert not failures, "the first publish must have failed"
    alerts = await published_alerts(kafka.bootstrap)
    assert {a.fingerprint for a in alerts} == {alerts[0].fingerprint}
    assert alerts[0].country == "LY"
    assert alerts[0].report_ids == ["critical-1"]
