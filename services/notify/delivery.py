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

from pydantic import BaseModel

from schemas import topics
from schemas.deliveries import DeadLettered, NotificationSent
from services.notify.acks import ack_url
from services.notify.alert_store import AlertStore
from services.notify.channels import Channel
from services.notify.grouping import Notice
from services.notify.ledger import Delivery, Ledger, Outcome, enqueue
from services.notify.metrics import NotifyMetrics
from services.notify.render import Outgoing
from services.notify.routing import FocalPointsConfig

log = logging.getLogger("tocsin.notify")

PAGE_ROUNDS = 4
"""Due rows read at a time, in rounds of ``concurrency``."""

Clock = Callable[[], float]
"""Epoch seconds; injected so tests drive the timers."""
Publish = Callable[[str, Sequence[tuple[str, BaseModel]]], Awaitable[None]]
"""Publishes (key, message) pairs on a topic and waits for the acks."""


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
        """Attempt the due rows, a short page at a time (so rows that became due meanwhile
        are not queued behind a long one) until none is left; returns how many were
        attempted by this replica."""
        total = 0
        while True:
            attempted, progressed = await self._send_page()
            total += attempted
            if not progressed:
                return total

    async def _send_page(self) -> tuple[int, bool]:
        """Attempt one page of due rows once; returns how many were attempted, and whether
        any row was taken or superseded (if not, the rest belongs to another replica).

        Rows are claimed ``concurrency`` at a time in one statement and sent with at most
        ``concurrency`` sends in flight, so a claim's lease only has to outlast about two
        sends (bounded by the channel timeouts), never a whole backlog. Older notices that
        a newer version replaces are marked ``superseded`` instead of sent."""
        page = await self.ledger.due(self.clock(), limit=PAGE_ROUNDS * self.concurrency)
        due = sorted(page, key=lambda d: d.key)
        superseded = await self.ledger.supersede(due, self.clock())
        for d in superseded:
            self.metrics.suppressed.labels(d.channel, "superseded").inc()
            due.remove(d)
        slots = asyncio.Semaphore(self.concurrency)
        sends: list[asyncio.Task[tuple[NotificationSent | None, DeadLettered | None]]] = []

        async def deliver(d: Delivery) -> tuple[NotificationSent | None, DeadLettered | None]:
            try:
                return await self._deliver(d)
            finally:
                slots.release()

        error: BaseException | None = None
        try:
            for start in range(0, len(due), self.concurrency):
                chunk = due[start : start + self.concurrency]
                for d in await self.ledger.claim_many(chunk, self.clock(), self.lease_s):
                    await slots.acquire()
                    sends.append(asyncio.create_task(deliver(d)))
        except Exception as exc:  # let the sends already started finish and be recorded
            error = exc
        results = []
        for r in await asyncio.gather(*sends, return_exceptions=True):
            if isinstance(r, BaseException):
                error = error or r
            else:
                results.append(r)
        audit = [(n.fingerprint, n) for n, _ in results if n is not None]
        dead = [(x.key or "", x) for _, x in results if x is not None]
        if audit:
            await self.publish(topics.DELIVERIES, audit)
        if dead:
            await self.publish(topics.DEADLETTER, dead)
        if error is not None:
            raise error
        return len(audit), bool(sends or superseded)

    async def attempt(self, d: Delivery) -> tuple[NotificationSent | None, DeadLettered | None]:
        """Claim one row and make one attempt (nothing if another sender has it)."""
        if not await self.ledger.claim(d, self.clock(), self.lease_s):
            return None, None
        return await self._deliver(d)

    async def _deliver(self, d: Delivery) -> tuple[NotificationSent | None, DeadLettered | None]:
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
        await self.ledger.record(Outcome(d, "deadlettered", now, error))
        self.metrics.notifications.labels(d.channel, "deadlettered").inc()
        log.error(
            "%s to %s dead-lettered after %d attempts: %s",
            d.channel,
            d.focal_point,
            attempt,
            error,
            extra={"alert_key": d.alert_key, "fingerprint": d.fingerprint},
        )
        await self._fall_back(d, now)
        return self._audit(d, attempt, "deadlettered", error), self._dead(d, error)

    async def _fall_back(self, d: Delivery, now: float) -> None:
        """The focal point's other channel is the first fallback: if it delivered (or still
        may), the focal point is told. If not, its fallback recipient (or the desk) is."""
        fp = self.config.get(d.focal_point)
        others = [c.name for c in self.channels if c.name != d.channel and fp and c.applies(fp)]
        for other in others:
            status = await self.ledger.status_of((d.notification, d.focal_point, other))
            if status is not None and status != "deadlettered":
                return
        target = self.config.fallback_of(fp) if fp else self.config.get(self.config.desk or "")
        if target is None or target.id == d.focal_point:
            log.error("no fallback for %s: %s is lost", d.focal_point, d.notification)
            return
        notice = Notice(
            f"{d.notification}~fallback~{d.focal_point}", d.alert_key, "fallback", target.id
        )
        note = (
            f"Tocsin could not deliver this alert to {fp.name if fp else d.focal_point} "
            "on any channel; you receive it as their fallback."
        )
        channels = [c.name for c in self.channels if c.applies(target)]
        async with self.ledger.engine.begin() as conn:
            await enqueue(conn, notice, d.fingerprint, channels, now, note)
        self.metrics.fallbacks.inc()

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
