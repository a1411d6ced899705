"""The reference: plain aiokafka moving the same records through the same broker, batched
the way a pass-through should be (getmany, send without awaiting each, flush, commit)."""

from __future__ import annotations

import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from bench.kafka import PRODUCER_SETTINGS, create_topics, produce
from bench.payloads import raw_records

MAX_RECORDS = 500


async def passthrough(bootstrap: str, count: int, partitions: int = 4) -> float:
    """Messages per second consumed, produced and committed, from the first fetch on."""
    run = uuid.uuid4().hex[:8]
    source, sink = f"bench.{run}.in", f"bench.{run}.out"
    await create_topics(bootstrap, [source, sink], partitions)
    await produce(bootstrap, source, raw_records(f"raw-{run}", count))

    consumer = AIOKafkaConsumer(
        source,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{run}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_SETTINGS)
    await consumer.start()
    await producer.start()
    try:
        moved = 0
        started: float | None = None
        while moved < count:
            batches = await consumer.getmany(timeout_ms=200, max_records=MAX_RECORDS)
            if not batches:
                continue
            if started is None:
                started = time.perf_counter()
            for records in batches.values():
                for r in records:
                    await producer.send(sink, r.value, key=r.key)
                moved += len(records)
            await producer.flush()
            await consumer.commit()
        assert started is not None
        return count / (time.perf_counter() - started)
    finally:
        await producer.stop()
        await consumer.stop()
