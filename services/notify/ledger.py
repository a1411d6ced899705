"""The delivery ledger: one row per (notification, focal point, channel), which is also the
work queue of deliveries.

A row is created once (insert-if-absent), claimed by one sender at a time (a conditional
UPDATE on ``status`` and ``attempts``, with a lease so a crashed sender's claim runs out),
and marked ``sent`` right after the channel accepted it. Nothing else sends, so a
redelivered alert, a restart or a second replica cannot produce a second message; the one
window left is between the channel accepting and the ``sent`` row committing (docs/notify.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Update, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.notify import tables
from services.notify.grouping import Notice

Status = Literal["pending", "sending", "retry", "sent", "deadlettered", "suppressed"]

L = tables.ledger


@dataclass(frozen=True)
class Delivery:
    notification: str
    focal_point: str
    channel: str
    alert_key: str
    fingerprint: str
    kind: str
    status: str
    attempts: int
    note: str | None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.notification, self.focal_point, self.channel)


def _where(d: Delivery) -> Any:
    return and_(
        L.c.notification == d.notification,
        L.c.focal_point == d.focal_point,
        L.c.channel == d.channel,
    )


async def enqueue(
    conn: AsyncConnection,
    notice: Notice,
    fingerprint: str,
    channels: Sequence[str],
    now: float,
    note: str | None = None,
) -> int:
    """Create the notice's rows (due now) unless they exist; returns how many are new."""
    rows = [
        {
            "notification": notice.notification,
            "focal_point": notice.focal_point,
            "channel": channel,
            "alert_key": notice.alert_key,
            "fingerprint": fingerprint,
            "kind": notice.kind,
            "status": "pending",
            "attempts": 0,
            "due_at": now,
            "note": note,
            "created_at": now,
            "updated_at": now,
        }
        for channel in channels
    ]
    return await tables.insert_ignore(conn, L, rows)


class Ledger:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def due(self, now: float, limit: int = 200) -> list[Delivery]:
        ready = or_(
            and_(L.c.status.in_(("pending", "retry")), L.c.due_at <= now),
            and_(L.c.status == "sending", L.c.lease_until <= now),
        )
        query = select(L).where(ready).order_by(L.c.due_at).limit(limit)
        async with self.engine.connect() as conn:
            return [_delivery(r._mapping) for r in await conn.execute(query)]

    async def claim(self, d: Delivery, now: float, lease_s: float) -> bool:
        """Take the row for one send attempt; False if another sender got there first."""
        async with self.engine.begin() as conn:
            result = await conn.execute(_claim(d, now, lease_s))
            return result.rowcount == 1

    async def claim_many(
        self, rows: Sequence[Delivery], now: float, lease_s: float
    ) -> list[Delivery]:
        """Claim several rows in one transaction (in key order, so replicas racing on
        PostgreSQL lock them in the same order); returns those this sender got."""
        got = []
        async with self.engine.begin() as conn:
            for d in sorted(rows, key=lambda r: r.key):
                result = await conn.execute(_claim(d, now, lease_s))
                if result.rowcount == 1:
                    got.append(d)
        return got

    async def finish(
        self,
        d: Delivery,
        status: Status,
        now: float,
        *,
        error: str | None = None,
        due_at: float | None = None,
    ) -> None:
        """Record the attempt's outcome; guarded by our own claim (attempt number)."""
        values: dict[str, Any] = {
            "status": status,
            "last_error": error,
            "lease_until": None,
            "updated_at": now,
        }
        if status == "sent":
            values["sent_at"] = now
        if due_at is not None:
            values["due_at"] = due_at
        async with self.engine.begin() as conn:
            await conn.execute(
                update(L)
                .where(_where(d), L.c.status == "sending", L.c.attempts == d.attempts + 1)
                .values(**values)
            )

    async def status_of(self, key: tuple[str, str, str]) -> str | None:
        notification, fp, channel = key
        async with self.engine.connect() as conn:
            return (
                await conn.execute(
                    select(L.c.status).where(
                        L.c.notification == notification,
                        L.c.focal_point == fp,
                        L.c.channel == channel,
                    )
                )
            ).scalar_one_or_none()

    async def acknowledged(self, fingerprint: str) -> bool:
        g = tables.groups
        query = select(func.count()).where(
            g.c.fingerprint == fingerprint, g.c.acked_at.is_not(None)
        )
        async with self.engine.connect() as conn:
            return bool(await conn.scalar(query))

    async def history(self, fingerprint: str) -> list[dict[str, Any]]:
        query = select(L).where(L.c.fingerprint == fingerprint).order_by(L.c.created_at)
        async with self.engine.connect() as conn:
            return [dict(r._mapping) for r in await conn.execute(query)]

    async def counts(self) -> dict[str, int]:
        query = select(L.c.status, func.count()).group_by(L.c.status)
        async with self.engine.connect() as conn:
            return {status: n for status, n in await conn.execute(query)}


def _delivery(r: Any) -> Delivery:
    return Delivery(
        notification=r["notification"],
        focal_point=r["focal_point"],
        channel=r["channel"],
        alert_key=r["alert_key"],
        fingerprint=r["fingerprint"],
        kind=r["kind"],
        status=r["status"],
        attempts=r["attempts"],
        note=r["note"],
    )


def _claim(d: Delivery, now: float, lease_s: float) -> Update:
    """Take a row only if it is still as ``d`` saw it: the compare-and-set replicas race on."""
    return (
        update(L)
        .where(_where(d), L.c.status == d.status, L.c.attempts == d.attempts)
        .values(
            status="sending", attempts=d.attempts + 1, lease_until=now + lease_s, updated_at=now
        )
    )
