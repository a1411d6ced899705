"""Consumer lag per topic partition, measured when Prometheus scrapes.

A scrape starts a measurement (unless one is still running) and waits for it only briefly:
a scrape is never held up by a slow group coordinator, and values are at most one scrape old.
Each replica reports only the partitions assigned to it, so ``sum`` across replicas is the
group's lag and a revoked partition disappears from the replica that lost it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry, Gauge

log = logging.getLogger("tocsin.lag")

SCRAPE_WAIT_S = 0.5
"""How long a scrape waits for a fresh measurement before serving the previous values."""
MEASURE_TIMEOUT_S = 10.0
"""A measurement stuck longer (a group rebalancing) is abandoned; the next scrape retries."""


class ConsumerLag:
    """``tocsin_consumer_lag_messages{group,topic,partition}``: highwater minus committed."""

    def __init__(self, broker: KafkaBroker, registry: CollectorRegistry) -> None:
        self.broker = broker
        self.gauge = Gauge(
            "tocsin_consumer_lag_messages",
            "Records on a partition this replica consumes that its group has not committed yet.",
            ["group", "topic", "partition"],
            registry=registry,
        )
        self._running: asyncio.Task[None] | None = None

    async def refresh(self, wait_s: float = SCRAPE_WAIT_S) -> None:
        """Start a measurement if none is running; wait at most ``wait_s`` for it."""
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._update(), name="consumer-lag")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._running), wait_s)

    async def _update(self) -> None:
        """Measure every consumer, then swap the gauge's series in one step; never raises."""
        try:
            values = await asyncio.wait_for(self._measure(), MEASURE_TIMEOUT_S)
        except Exception as exc:  # a rebalance, a stopped consumer: keep the last values
            log.warning("consumer lag not measured: %r", exc)
            return
        self.gauge.clear()
        for labels, value in values.items():
            self.gauge.labels(*labels).set(value)

    async def _measure(self) -> dict[tuple[str, str, str], int]:
        values: dict[tuple[str, str, str], int] = {}
        for group, consumer in self._consumers():
            tps = sorted(consumer.assignment())
            lags = await asyncio.gather(*(_lag(consumer, tp) for tp in tps))
            for tp, lag in zip(tps, lags, strict=True):
                values[(group, tp.topic, str(tp.partition))] = lag
        return values

    def _consumers(self) -> list[tuple[str, AIOKafkaConsumer]]:
        found = []
        for sub in self.broker.subscribers:
            consumer: Any = getattr(sub, "consumer", None)
            group = getattr(sub, "group_id", None)
            if isinstance(consumer, AIOKafkaConsumer) and group:
                found.append((str(group), consumer))
        return found


async def _lag(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
    """Unprocessed records: the partition's end minus the group's commit.

    A group that never committed starts from the log start (every Tocsin group reads from
    ``earliest``), so records fetched but still being processed count as lag.
    """
    end = consumer.highwater(tp)
    if end is None:  # nothing fetched on this partition yet
        return 0
    done = await consumer.committed(tp)
    if done is None:
        done = (await consumer.beginning_offsets([tp]))[tp]
    return max(int(end) - int(done), 0)
