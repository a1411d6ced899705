"""The periodic resolution sweep, run by every replica for the countries it owns.

A country is owned by the replica whose alerting consumer holds that country's partition of
``reports.classified.v1``: the same replica that judges its reports, so batches and sweeps of
one fingerprint never run in two processes at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import timedelta

from aiokafka import TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from faststream.kafka.subscriber.usecase import BatchSubscriber

from schemas.alerts import AlertRaised
from services.classify.alerting import AlertEngine, Owns, Publish

log = logging.getLogger("tocsin.classify.sweeper")


def partition_owner(subscriber: BatchSubscriber, topic: str) -> Owns:
    """Whether ``subscriber``'s consumer is assigned the partition a country key hashes to."""
    partitioner = DefaultPartitioner()

    def owns(country: str) -> bool:
        consumer = subscriber.consumer
        if consumer is None:
            return False
        partitions = sorted(consumer.partitions_for_topic(topic) or ())
        if not partitions:
            return False
        partition = partitioner(country.encode(), partitions, partitions)
        return TopicPartition(topic, partition) in consumer.assignment()

    return owns


class Sweeper:
    """Runs ``engine.sweep`` every ``every`` until stopped; a failed sweep is logged and retried."""

    def __init__(
        self,
        engine: AlertEngine,
        publish: Publish,
        owns: Owns,
        every: timedelta,
        observe: Callable[[AlertRaised], None] = lambda _: None,
    ) -> None:
        self.engine = engine
        self.observe = observe
        self.publish = publish
        self.owns = owns
        self.every = every
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alert-resolution-sweep")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every.total_seconds())
            try:
                resolved = await self.engine.sweep(self.publish, self.owns)
            except Exception:
                log.exception("resolution sweep failed; retrying in %s", self.every)
                continue
            for alert in resolved.alerts:
                self.observe(alert)
                log.info("alert %s v%d resolved", alert.fingerprint, alert.version)
