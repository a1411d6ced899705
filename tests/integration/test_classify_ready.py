"""Classify is ready once its consumers hold partitions, not merely once Kafka answers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from services.classify.main import create_app
from services.common.settings import Settings
from tests.support import EmbeddedBroker, wait_until, write_config

pytestmark = pytest.mark.broker


async def test_readyz_waits_for_partitions(
    kafka: EmbeddedBroker, tmp_path: Path, sqlite_url: str
) -> None:
    settings = Settings(
        kafka_bootstrap=kafka.bootstrap,
        config_dir=write_config(tmp_path / "config"),
        database_url=sqlite_url,
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://classify") as client:
        assert (await client.get("/readyz")).status_code == 503  # not started: no consumer

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 204

        await app.start()
        try:
            await wait_until(ready, 60, "classify holds its partitions")
        finally:
            await app.stop()
