"""Sends due ledger rows: one claimed attempt at a time per row, retried with capped
exponential backoff and jitter through the ledger (never by sleeping in a handler), then
dead-lettered and handed to a fallback.

Each (notification, focal point, channel) row retries on its own, so a failing channel
never re-sends another.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from schemas import topics
from schemas.deliveries import DeadLettered, NotificationSent
from services.notify.acks import ack_url
from services.notify.alert_store import AlertStore
from services.notify.channels import Channel
from services.notify.grouping import Notice
from services.notify.ledger import Delivery, Ledger, Outcome, rows_of
from services.notify.metrics import NotifyMetrics
from services.notify.render import Outgoing
from services.notify.routing import FocalPointsConfig

log = logging.getLogger("tocsin.notify")

Clock = Callable[[], float]
"""Epoch seconds; injected so tests drive the timers."""
Publish = Callable[[str, Sequence[tuple[str, BaseModel]]], Awaitable[None]]
"""Publishes (key, message) pairs on a topic and waits for the acks."""
Attempt = tuple[NotificationSent | None, DeadLettered | None]
"""One attempt's audit record (none if nothing was attempted) and dead letter."""


class _AuditQueue:
    """The attempts' records for ``deliveries.v1`` (and ``deadletter.v1``), published in
    the background a batch at a time, like the ledger's group commit: the records that come
    in while a batch is being published go in the next one. The ledger is already
    committed, so a record lost to a crash loses no delivery (docs/notify.md)."""

    def __init__(self, publish: Publish) -> None:
        self._publish = publish
        self._sent: list[tuple[str, BaseModel]] = []
        self._dead: list[tuple[str, BaseModel]] = []
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self.attempted = 0

    def add(self, sent: NotificationSent | None, dead: DeadLettered | None) -> None:
        if sent is not None:
            self._sent.append((sent.fingerprint, sent))
            self.attempted += 1
        if dead is not None:
            self._dead.append((dead.key or "", dead))
        if (self._sent or self._dead) and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        while self._sent or self._dead:
            (sent, self._sent), (dead, self._dead) = (self._sent, []), (self._dead, [])
            try:
                if sent:
                    await self._publish(topics.DELIVERIES, sent)
                if dead:
                    await self._publish(topics.DEADLETTER, dead)
            except Exception as exc:
                self._error = self._error or exc

    async def close(self) -> None:
        """Wait until every record is published; raise the first failure."""
        if self._task is not None:
            await self._task
        if self._error is not None:
            raise self._error


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 10
    base_s: float = 2.0
    cap_s: float = 300.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Equal jitter: half the capped exponential delay, plus up to the other half."""
        capped = min(self.cap_s, self.base_s * 2 ** (attempt - 1))
        return float(capped / 2 + rng.uniform(0, capped / 2))


@dataclass
class AckLinks:
    base_url: str
    secret: bytes
    ttl_s: float

    def url(self, fingerprint: str, focal_point: str, now: float) -> str:
        return ack_url(self.base_url, self.secret, fingerprint, focal_point, int(now + self.ttl_s))


@dataclass
class Sender:
    ledger: Ledger
    alerts: AlertStore
    config: FocalPointsConfig
    channels: Sequence[Channel]
    metrics: NotifyMetrics
    links: AckLinks
    publish: Publish
    clock: Clock
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    lease_s: float = 60.0
    concurrency: int = 8
    rng: random.Random = field(default_factory=random.Random)

    async def send_due(self) -> int:
        """Attempt due rows until none is left, with up to ``concurrency`` sends in flight;
        returns how many this replica attempted.

        Whenever sends finish, the free slots are refilled from the rows due *then*: a
        version that became due meanwhile waits for a send to finish, not for a whole page
        of them, and a claim's lease only has to outlast its own send (bounded by the
        channel timeouts), never a backlog. The audit records are published in the
        background, so no send waits for Kafka either."""
        flight: set[asyncio.Task[Attempt]] = set()
        audit = _AuditQueue(self.publish)
        error: BaseException | None = None
        try:
            while True:
                if error is None and self._refill_now(len(flight)):
                    try:
                        flight |= await self._refill(self.concurrency - len(flight))
                    except Exception as exc:  # let the sends in flight finish and be recorded
                        error = exc
                if not flight:
                    break
                done, flight = await asyncio.wait(flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task.exception() is not None:
                        error = error or task.exception()
                    else:
                        audit.add(*task.result())
        except BaseException:  # cancelled: like a gather, take the sends with us
            for task in flight:
                task.cancel()
            raise
        await audit.close()
        if error is not None:
            raise error
        return audit.attempted

    def _refill_now(self, in_flight: int) -> bool:
        """Whether to read the ledger again: at once when idle; when busy, only once half
        the slots are free, so the reads are shared by several sends (each refill costs
        two reads and a write, which would cost a third of the delivery rate if made for
        every send) while a new version still waits for at most half the sends in flight
        (measured in docs/notify.md)."""
        return in_flight == 0 or self.concurrency - in_flight >= max(1, self.concurrency // 2)

    async def _refill(self, free: int) -> set[asyncio.Task[Attempt]]:
        """Supersede every waiting notice a newer version replaces, then claim up to
        ``free`` of the oldest due rows (one statement) and start their sends, oldest
        first. A slot's newest notice has taken the queue place of the oldest one it
        replaced, so the newest version of each alert goes out first."""
        superseded, claimed = await self.ledger.take(self.clock(), free, self.lease_s)
        for d in superseded:
            self.metrics.suppressed.labels(d.channel, "superseded").inc()
        return {asyncio.create_task(self._deliver(d)) for d in claimed}

    async def _deliver(self, d: Delivery) -> Attempt:
        """One attempt on a row this sender has claimed."""
        now = self.clock()
        attempt = d.attempts + 1
        alert = await self.alerts.get(d.alert_key)
        fp = self.config.get(d.focal_point)
        channel = next((c for c in self.channels if c.name == d.channel), None)
        if alert is None or fp is None or channel is None or not channel.applies(fp):
            error = f"cannot deliver: {d.focal_point}/{d.channel} is no longer configured"
            await self.ledger.record(Outcome(d, "deadlettered", self.clock(), error))
            return self._audit(d, attempt, "deadlettered", error), self._dead(d, error)
        if d.kind in ("repeat", "escalation") and await self.ledger.acknowledged(d.fingerprint):
            # Acknowledged after this reminder or escalation was queued (e.g. while retrying).
            await self.ledger.record(Outcome(d, "suppressed", self.clock()))
            self.metrics.suppressed.labels(d.channel, "acknowledged").inc()
            return None, None
        out = Outgoing(
            notification=d.notification,
            kind=d.kind,
            ack_url=self.links.url(alert.fingerprint, fp.id, now),
            note=d.note,
        )
        try:
            await channel.send(alert, fp, out)
        except Exception as exc:  # any channel failure is retried, then dead-lettered
            return await self._failed(d, attempt, exc)
        # Record at once: this row is the only thing between a crash here and a resend.
        done = self.clock()
        await self.ledger.record(Outcome(d, "sent", done))
        self.metrics.notifications.labels(d.channel, "sent").inc()
        self.metrics.latency.labels(d.channel).observe(max(done - now, 0.0))
        sent = self._audit(d, attempt, "sent", None)
        if d.kind == "notice":
            self.metrics.delivered([alert], [sent])
        log.info(
            "%s %s sent to %s",
            d.kind,
            d.channel,
            fp.id,
            extra={"alert_key": d.alert_key, "fingerprint": d.fingerprint},
        )
        return sent, None

    async def _failed(
        self, d: Delivery, attempt: int, exc: Exception
    ) -> tuple[NotificationSent, DeadLettered | None]:
        error = f"{type(exc).__name__}: {exc}"[:500]
        self.metrics.failed(d.channel, exc)
        now = self.clock()
        if attempt < self.retry.max_attempts:
            due = now + self.retry.delay(attempt, self.rng)
            await self.ledger.record(Outcome(d, "retry", now, error, due))
            self.metrics.notifications.labels(d.channel, "failed").inc()
            log.warning(
                "%s to %s failed (attempt %d), retry in %.1fs: %s",
                d.channel,
                d.focal_point,
                attempt,
                due - now,
                error,
                extra={"alert_key": d.alert_key, "fingerprint": d.fingerprint},
            )
            return self._audit(d, attempt, "failed", error), None
        fallback = await self._fallback(d, now)
        await self.ledger.dead_letter(Outcome(d, "deadlettered", now, error), fallback)
        self.metrics.notifications.labels(d.channel, "deadlettered").inc()
        if fallback:
            self.metrics.fallbacks.inc()
        log.error(
            "%s to %s dead-lettered after %d attempts: %s",
            d.channel,
            d.focal_point,
            attempt,
            error,
            extra={"alert_key": d.alert_key, "fingerprint": d.fingerprint},
        )
        return self._audit(d, attempt, "deadlettered", error), self._dead(d, error)

    async def _fallback(self, d: Delivery, now: float) -> list[dict[str, Any]]:
        """The ledger rows that hand a dead-lettered notice on. The focal point's other
        channel is the first fallback: if it delivered (or still may), none are needed.
        If not, its fallback recipient (or the desk) is told."""
        fp = self.config.get(d.focal_point)
        others = [c.name for c in self.channels if c.name != d.channel and fp and c.applies(fp)]
        for other in others:
            status = await self.ledger.status_of((d.notification, d.focal_point, other))
            if status is not None and status != "deadlettered":
                return []
        target = self.config.fallback_of(fp) if fp else self.config.get(self.config.desk or "")
        if target is None or target.id == d.focal_point:
            log.error("no fallback for %s: %s is lost", d.focal_point, d.notification)
            return []
        notice = Notice(
            f"{d.notification}~fallback~{d.focal_point}", d.alert_key, "fallback", target.id
        )
        note = (
            f"Tocsin could not deliver this alert to {fp.name if fp else d.focal_point} "
            "on any channel; you receive it as their fallback."
        )
        channels = [c.name for c in self.channels if c.applies(target)]
        return rows_of(notice, d.fingerprint, channels, now, note)

    def _audit(
        self, d: Delivery, attempt: int, outcome: str, error: str | None
    ) -> NotificationSent:
        return NotificationSent.model_validate(
            {
                "alert_key": d.alert_key,
                "fingerprint": d.fingerprint,
                "focal_point": d.focal_point,
                "channel": d.channel,
                "attempt": attempt,
                "outcome": outcome,
                "error": error,
                "at": datetime.fromtimestamp(self.clock(), UTC),
                "notification": d.notification,
                "kind": d.kind,
            }
        )

    def _dead(self, d: Delivery, error: str) -> DeadLettered:
        return DeadLettered(
            service="notify",
            topic=topics.DELIVERIES,
            key=f"{d.notification}|{d.focal_point}|{d.channel}",
            payload=self._audit(d, d.attempts + 1, "deadlettered", error).model_dump_json(),
            error=error,
            at=datetime.fromtimestamp(self.clock(), UTC),
        )
