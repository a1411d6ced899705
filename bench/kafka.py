"""Kafka plumbing of the bench: topics, a fast bulk producer, and how far a group has come.

The embedded broker (Tansu) answers ListOffsets(latest) with the base offset of a
partition's last record batch plus one, not the offset after its last record, so
``end_offsets`` undercounts whenever producers batch. The bench learns where a partition
ends from its own produce acknowledgements, or by reading that last batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import RecordMetadata

PRODUCER_SETTINGS: dict[str, object] = {
    "acks": "all",
    "linger_ms": 5,
    "max_batch_size": 256 * 1024,
}
"""The bench's own producers (preloads and the raw reference): acks from every replica, as
the services use, with batches big enough that the client is not the limit."""

Ends = dict[TopicPartition, int]
"""Offset just after the last record written, per partition."""


async def create_topics(bootstrap: str, names: Iterable[str], partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(n, partitions, 1) for n in names])
    finally:
        await admin.close()


def ends_of(acks: Iterable[RecordMetadata]) -> Ends:
    ends: Ends = {}
    for md in acks:
        tp = TopicPartition(md.topic, md.partition)
        ends[tp] = max(ends.get(tp, 0), md.offset + 1)
    return ends


async def produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> Ends:
    """Write ``(key, value)`` records without awaiting each, then wait for every ack."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_SETTINGS)
    await producer.start()
    try:
        pending = [await producer.send(topic, value, key=key) for key, value in records]
        return ends_of(await asyncio.gather(*pending))
    finally:
        await producer.stop()


async def true_ends(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> Ends:
    """The offset after each partition's last record. The broker's answer is the start of the
    last batch, so read that batch and take the offset after its last record (on Apache Kafka
    this reads the last record and agrees with ListOffsets). Assigns ``partitions``."""
    reported = await consumer.end_offsets(partitions)
    consumer.assign(partitions)
    ends: Ends = {}
    for tp in partitions:
        if reported[tp] == 0:
            ends[tp] = 0
            continue
        consumer.seek(tp, reported[tp] - 1)
        records = (await consumer.getmany(tp, timeout_ms=5000)).get(tp, [])
        if not records:
            raise RuntimeError(f"could not read the last batch of {tp}")
        ends[tp] = records[-1].offset + 1
    return ends


class Progress:
    """Committed offsets of consumer groups and true ends of topics, from clients that stay
    connected so polling every few milliseconds is cheap."""

    def __init__(self, bootstrap: str) -> None:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        self._consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)

    async def __aenter__(self) -> Progress:
        await self._admin.start()
        await self._consumer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def partitions(self, topic: str) -> list[TopicPartition]:
        await self._consumer.topics()
        ids = self._consumer.partitions_for_topic(topic) or set()
        return [TopicPartition(topic, p) for p in sorted(ids)]

    async def ends(self, topic: str) -> Ends:
        """Where each partition of ``topic`` ends now."""
        return await true_ends(self._consumer, await self.partitions(topic))

    async def committed(self, group: str, partitions: Iterable[TopicPartition]) -> Ends:
        offsets = await self._admin.list_consumer_group_offsets(group, partitions=list(partitions))
        return {tp: max(meta.offset, 0) for tp, meta in offsets.items()}

    async def behind(self, group: str, ends: Ends) -> int:
        """Records before ``ends`` that ``group`` has not committed yet."""
        done = await self.committed(group, ends)
        return sum(max(end - done.get(tp, 0), 0) for tp, end in ends.items())
