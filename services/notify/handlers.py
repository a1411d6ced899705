"""Notify's subscriber: decode alerts and hand them to the scheduler's tables.

Nothing is sent here. The handler returns once the alert versions and their timers are in
the database, so the commit that follows can never lose an alert, and a redelivered batch
only finds its versions already there.
"""

from __future__ import annotations

import asyncio
import logging

from faststream.exceptions import NackMessage
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.annotations import KafkaMessage

from schemas import topics
from schemas.alerts import AlertRaised
from services.common.broker import batch_subscriber, decode, publish_all, records_of
from services.notify.scheduler import Scheduler

NOTIFY_GROUP = "tocsin-notify"
STORE_ATTEMPTS = 5

log = logging.getLogger("tocsin.notify")


async def _store(scheduler: Scheduler, alerts: list[AlertRaised]) -> None:
    """Retry a failing database a few times; then nack, so Kafka redelivers the batch (an
    error must never commit offsets; see ACK_POLICY)."""
    for attempt in range(1, STORE_ATTEMPTS + 1):
        try:
            await scheduler.accept(alerts)
            return
        except Exception:
            log.exception("storing %d alerts failed (attempt %d)", len(alerts), attempt)
            if attempt < STORE_ATTEMPTS:
                await asyncio.sleep(min(0.5 * 2**attempt, 8.0))
    raise NackMessage()


def build_router(broker: KafkaBroker, scheduler: Scheduler) -> KafkaRouter:
    router = KafkaRouter()

    @batch_subscriber(router, topics.ALERTS, NOTIFY_GROUP, max_records=200)
    async def on_alert_raised(message: KafkaMessage) -> None:
        alerts, bad = decode(records_of(message), AlertRaised, "notify")
        await _store(scheduler, alerts)
        await publish_all(broker, topics.DEADLETTER, ((d.key, d) for d in bad))

    return router
