"""Deduplicate, publish to ``reports.raw.v1`` and wait for Kafka's acks, or fail as a whole.

Used by the HTTP endpoints and the poller. A report counts as accepted only once Kafka
acknowledged it; anything else raises ``Unavailable`` and nothing of the request counts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Literal

from aiokafka.errors import KafkaError
from faststream.kafka import KafkaBroker
from sqlalchemy.exc import SQLAlchemyError

from schemas import topics
from schemas.reports import ReportReceived
from services.common.broker import publish_all
from services.ingest.dedup import SeenReports
from services.ingest.metrics import IngestMetrics

log = logging.getLogger("tocsin.ingest")

Status = Literal["accepted", "duplicate"]


class Unavailable(RuntimeError):
    """Kafka (or the dedup database) could not take the reports; retry after ``retry_after``."""

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class ReportPublisher:
    def __init__(
        self,
        broker: KafkaBroker,
        seen: SeenReports,
        metrics: IngestMetrics,
        *,
        timeout_s: float,
        max_in_flight: int,
    ) -> None:
        self.broker = broker
        self.seen = seen
        self.metrics = metrics
        self.timeout_s = timeout_s
        self.max_in_flight = max_in_flight
        self._in_flight = 0

    async def submit(self, feed: str, reports: list[ReportReceived]) -> list[Status]:
        """One status per report, in order; repeats (in the batch or seen before) are
        duplicates and are not published again."""
        now = time.time()
        try:
            already = await self.seen.already((r.id for r in reports), now)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("dedup database unavailable: %r", exc)
            self.metrics.reports.labels(feed, "unavailable").inc(len(reports))
            raise Unavailable("the deduplication database is unavailable", 5) from exc
        statuses: list[Status] = []
        fresh: dict[str, ReportReceived] = {}
        for r in reports:
            if r.id in already or r.id in fresh:
                statuses.append("duplicate")
            else:
                fresh[r.id] = r
                statuses.append("accepted")
        if fresh:
            await self._publish(feed, list(fresh.values()))
            try:
                await self.seen.mark(((i, feed) for i in fresh), time.time())
            except (SQLAlchemyError, OSError) as exc:  # on Kafka: accepted; a retry may re-send
                log.error("could not mark %d published reports as seen: %r", len(fresh), exc)
        self.metrics.reports.labels(feed, "accepted").inc(len(fresh))
        self.metrics.reports.labels(feed, "duplicate").inc(len(reports) - len(fresh))
        return statuses

    async def _publish(self, feed: str, reports: list[ReportReceived]) -> None:
        if self._in_flight + len(reports) > self.max_in_flight:
            self.metrics.reports.labels(feed, "unavailable").inc(len(reports))
            raise Unavailable("the Kafka producer is saturated", 1)
        self._in_flight += len(reports)
        self.metrics.in_flight.set(self._in_flight)
        started = time.perf_counter()
        try:
            await asyncio.wait_for(
                self._send_all(reports),
                self.timeout_s + 1.0,  # a backstop: the producer's own timeout fires first
            )
        except (KafkaError, OSError, TimeoutError) as exc:
            self.metrics.reports.labels(feed, "unavailable").inc(len(reports))
            log.warning("kafka write failed for feed %s: %r", feed, exc)
            raise Unavailable("reports could not be written to Kafka", 5) from exc
        finally:
            self._in_flight -= len(reports)
            self.metrics.in_flight.set(self._in_flight)
        self.metrics.publish_seconds.observe(time.perf_counter() - started)
        if len(reports) == 1:
            log.info("accepted report", extra={"report_id": reports[0].id, "feed": feed})
        else:  # one line per request: a line per report cost a tenth of a batch's CPU
            log.info(
                "accepted %d reports",
                len(reports),
                extra={"report_ids": [r.id for r in reports], "feed": feed},
            )

    async def _send_all(self, reports: list[ReportReceived]) -> None:
        await publish_all(self.broker, topics.REPORTS_RAW, ((r.id, r) for r in reports), _partition)


def _partition(report_id: str, partitions: int) -> int | None:
    """The partition of a report: its id is already a uniform hash (hex SHA-256), so its
    first 32 bits pick the partition directly. aiokafka's default, a pure-Python murmur2
    of the key, cost 7 % of a batch's CPU. Any fixed function keeps every copy of one
    report id in one partition, which is all the key is for on ``reports.raw.v1``."""
    try:
        return int(report_id[:8], 16) % partitions
    except ValueError:  # not an id of ours: the producer's partitioner decides
        return None
