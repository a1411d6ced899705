"""Creates Tocsin's topics on a broker, waiting until it answers."""

from __future__ import annotations

import asyncio
import time

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from schemas import topics


async def ensure_topics(bootstrap: str, partitions: int, deadline_s: float = 30.0) -> None:
    """Waits for the broker, then creates any missing topic with ``partitions`` partitions."""
    give_up = time.monotonic() + deadline_s
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [NewTopic(t, partitions, 1) for t in topics.ALL if t not in existing]
            if missing:
                await admin.create_topics(missing)
            return
        except (KafkaError, OSError):
            if time.monotonic() > give_up:
                raise
            await asyncio.sleep(0.2)
        finally:
            await admin.close()
