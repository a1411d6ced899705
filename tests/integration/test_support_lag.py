"""The tests' lag check sees every record of a batched produce on the embedded broker."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaProducer

from schemas import topics
from tests.support import EmbeddedBroker, drained, lag

pytestmark = pytest.mark.broker


async def test_lag_counts_every_record_of_a_batch(kafka: EmbeddedBroker) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap, linger_ms=50, max_batch_size=1024 * 1024
    )
    await producer.start()
    try:
        sent = [
            await producer.send(topics.REPORTS_RAW, b"x" * 100, partition=0) for _ in range(300)
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    # The broker reports the end of partition 0 as 1 (the start of its only batch, plus one).
    assert await lag(kafka.bootstrap, "nobody-yet", topics.REPORTS_RAW) == 300
    assert not await drained(kafka.bootstrap, ("nobody-yet", topics.REPORTS_RAW))
