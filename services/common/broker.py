"""Kafka broker construction and the batch publish used on every hot path."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from aiokafka import AIOKafkaProducer, ConsumerRecord
from faststream import AckPolicy, BaseMiddleware
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.message import KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.kafka.subscriber.usecase import BatchSubscriber
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, ValidationError

from schemas.deliveries import DeadLettered
from services.common.settings import Settings

M = TypeVar("M", bound=BaseModel)

ACK_POLICY = AckPolicy.NACK_ON_ERROR
"""Every subscriber's policy: commit after processing, and on an error rewind the batch for
redelivery. (``AckPolicy.ACK`` commits even when the handler raised: the batch would be lost.)"""


class BackoffOnError(BaseMiddleware):
    """Waits before a failed batch is rewound, so a broken dependency (database, broker) is
    retried with capped exponential backoff instead of in a hot loop."""

    failures = 0
    """Consecutive failures in this process."""

    async def consume_scope(self, call_next: Any, msg: Any) -> Any:
        try:
            result = await call_next(msg)
        except Exception:
            BackoffOnError.failures += 1
            await asyncio.sleep(min(0.2 * 2**BackoffOnError.failures, 30.0))
            raise
        BackoffOnError.failures = 0
        return result


FETCH_MAX_WAIT_MS = 20
"""For subscribers (``fetch_max_wait_ms=``). The embedded broker does not answer a waiting
fetch when records arrive, only when the wait ends: at aiokafka's default of 500 ms every
hop added about 200 ms; at 20 ms it adds about 7 ms (docs/benchmarks.md)."""


def batch_subscriber(
    router: KafkaRouter, topic: str, group_id: str, max_records: int
) -> BatchSubscriber:
    """The one way Tocsin subscribes: a consumer group reading batches from the earliest
    uncommitted offset, committing after processing (ACK_POLICY), with a short fetch wait."""
    return router.subscriber(
        topic,
        group_id=group_id,
        batch=True,
        max_records=max_records,
        auto_offset_reset="earliest",
        ack_policy=ACK_POLICY,
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )


def consuming(broker: KafkaBroker) -> bool:
    """Whether every subscriber has joined its group and holds partitions: until the first
    rebalance completes (seconds after start) records wait unread, so a service is not ready
    before. A replica beyond the partition count holds none and stays unready by design."""
    for subscriber in broker.subscribers:
        consumer = getattr(subscriber, "consumer", None)
        if consumer is None or not consumer.assignment():
            return False
    return True


def make_broker(
    settings: Settings,
    registry: CollectorRegistry,
    app_name: str,
    *,
    request_timeout_ms: int = 40_000,
) -> KafkaBroker:
    """``request_timeout_ms`` also bounds how long an unsent message waits in the producer's
    buffer: past it the send fails rather than going out late (ingest's 503)."""
    # acks="all" without idempotence: the embedded broker refuses InitProducerId.
    return KafkaBroker(
        settings.kafka_bootstrap,
        request_timeout_ms=request_timeout_ms,
        acks="all",
        client_id=f"tocsin-{app_name}",
        linger_ms=1,
        # 16 KB (aiokafka's default) holds about ten 1.2 KB reports, so a 500-record batch
        # took dozens of produce round trips; measured in docs/benchmarks.md.
        max_batch_size=256 * 1024,
        middlewares=[
            KafkaPrometheusMiddleware(registry=registry, app_name=app_name),
            BackoffOnError,
        ],
        logger=None,
    )


Partitioner = Callable[[str, int], int | None]
"""(key, partition count) → partition, or None to leave it to the producer's partitioner."""


async def publish_all(
    broker: KafkaBroker,
    topic: str,
    messages: Iterable[tuple[str | None, BaseModel]],
    partition_of: Partitioner | None = None,
) -> None:
    """Publish ``(key, message)`` pairs without waiting one by one, then wait for every ack.

    Handlers call this before returning, so the consumer commits only what Kafka has stored.
    On a running broker the records go straight to aiokafka's producer as FastStream would
    send them (JSON body, ``content-type`` and ``correlation_id`` headers) but without its
    per-message middleware and serialiser, which cost about 100 µs a message (a tenth of
    the classify stage); under ``TestKafkaBroker`` (no aiokafka producer) they go through
    FastStream.
    """
    producer = aiokafka_producer(broker)
    if producer is None:
        pending = [
            await broker.publish(
                message, topic=topic, key=key.encode() if key else None, no_confirm=True
            )
            for key, message in messages
        ]
        futures = [p for p in pending if isinstance(p, asyncio.Future)]
        if futures:
            await asyncio.gather(*futures)
        return
    partitions = len(await producer.partitions_for(topic)) if partition_of else 0
    acks: list[Awaitable[Any]] = []
    for key, message in messages:
        acks.append(
            await producer.send(
                topic,
                value=message.model_dump_json().encode(),
                key=key.encode() if key else None,
                partition=partition_of(key, partitions) if partition_of and key else None,
                headers=[
                    ("content-type", b"application/json"),
                    ("correlation_id", str(uuid.uuid4()).encode()),
                ],
            )
        )
    if acks:
        await asyncio.gather(*acks)


def aiokafka_producer(broker: KafkaBroker) -> AIOKafkaProducer | None:
    """The started aiokafka producer behind ``broker``, or None (not started, or a test
    broker). FastStream keeps it at ``config.producer._producer.producer``; a layout change
    in a FastStream upgrade falls back to FastStream's publish, slower but correct."""
    state = getattr(getattr(broker.config, "producer", None), "_producer", None)
    producer = getattr(state, "producer", None)
    return producer if isinstance(producer, AIOKafkaProducer) else None


def records_of(message: KafkaMessage) -> list[ConsumerRecord[bytes, bytes]]:
    """The raw records behind a batch message: handlers parse them one by one so a single
    poison record goes to the dead-letter topic instead of failing its whole batch."""
    raw = message.raw_message
    return list(raw) if isinstance(raw, list | tuple) else [raw]


def decode(
    records: Iterable[ConsumerRecord[bytes, bytes]], model: type[M], service: str
) -> tuple[list[M], list[DeadLettered]]:
    good: list[M] = []
    bad: list[DeadLettered] = []
    for record in records:
        try:
            good.append(model.model_validate_json(record.value or b""))
        except ValidationError as exc:
            bad.append(
                DeadLettered(
                    service=service,
                    topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key.decode(errors="replace") if record.key else None,
                    payload=(record.value or b"").decode(errors="replace"),
                    error=_describe(exc),
                    at=datetime.now(UTC),
                )
            )
    return good, bad


def _describe(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5]
    )
