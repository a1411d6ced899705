"""Consumer lag on the real broker: records waiting on a busy consumer show, then drain."""

from __future__ import annotations

import asyncio

import pytest
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry

from schemas import topics
from services.common.lag import ConsumerLag
from tests.support import EmbeddedBroker, wait_until

pytestmark = pytest.mark.broker


async def test_lag_counts_uncommitted_records_per_partition_then_drains(
    kafka: EmbeddedBroker,
) -> None:
    registry = CollectorRegistry()
    broker = KafkaBroker(kafka.bootstrap, logger=None)
    release = asyncio.Event()

    @broker.subscriber(
        topics.DEADLETTER,
        group_id="lag-test",
        batch=True,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.ACK,
    )
    async def busy(_: list[bytes]) -> None:
        await release.wait()

    lag = ConsumerLag(broker, registry)

    async def total() -> float:
        await lag.refresh(wait_s=10)
        return sum(
            s.value
            for metric in registry.collect()
            for s in metric.samples
            if s.name == "tocsin_consumer_lag_messages"
            and s.labels["group"] == "lag-test"
            and s.labels["topic"] == topics.DEADLETTER
        )

    async with broker:
        await broker.start()
        for i in range(5):
            await broker.publish(b"{}", topic=topics.DEADLETTER, key=str(i).encode())
        await wait_until(lambda: _equals(total(), 5), 30, "a lag of 5 while the handler is busy")
        partitions = {
            s.labels["partition"]
            for metric in registry.collect()
            for s in metric.samples
            if s.labels.get("topic") == topics.DEADLETTER
        }
        assert partitions <= {str(p) for p in range(kafka.partitions)}
        release.set()
        await wait_until(lambda: _equals(total(), 0), 30, "the lag to drain after commits")


async def _equals(value: asyncio.Future[float] | object, expected: float) -> bool:
    assert asyncio.iscoroutine(value)
    return bool(await value == expected)
