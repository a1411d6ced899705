"""The delivery ledger: one row per (notification, focal point, channel), which is also the
work queue of deliveries.

A row is created once (insert-if-absent), claimed by one sender at a time (a conditional
UPDATE on ``status`` and ``attempts``, with a lease so a crashed sender's claim runs out),
and marked ``sent`` right after the channel accepted it. Nothing else sends, so a
redelivered alert, a restart or a second replica cannot produce a second message; the one
window left is between the channel accepting and the ``sent`` row committing (docs/notify.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Update, and_, bindparam, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.notify import tables
from services.notify.grouping import Notice

Status = Literal["pending", "sending", "retry", "sent", "deadlettered", "suppressed", "superseded"]

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

    @property
    def version(self) -> int:
        return int(self.alert_key.rsplit("@", 1)[1])


@dataclass(frozen=True)
class Outcome:
    """One attempt's result, to record under the sender's claim."""

    delivery: Delivery
    status: Status
    now: float
    error: str | None = None
    due_at: float | None = None


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
    return await tables.insert_ignore(conn, L, rows_of(notice, fingerprint, channels, now, note))


def rows_of(
    notice: Notice,
    fingerprint: str,
    channels: Sequence[str],
    now: float,
    note: str | None = None,
) -> list[dict[str, Any]]:
    """A notice's ledger rows, one per channel, due now."""
    return [
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


class Ledger:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._pending: list[tuple[Outcome, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

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
        """Claim several rows in one statement, each still as it was read (the same
        compare-and-set as ``claim``); returns those this sender got, as claimed."""
        if not rows:
            return []
        seen = {d.key: d for d in rows}
        guard = or_(
            *(and_(_where(d), L.c.status == d.status, L.c.attempts == d.attempts) for d in rows)
        )
        query = (
            update(L)
            .where(guard)
            .values(
                status="sending",
                attempts=L.c.attempts + 1,
                lease_until=now + lease_s,
                updated_at=now,
            )
            .returning(L.c.notification, L.c.focal_point, L.c.channel)
        )
        async with self.engine.begin() as conn:
            got = {(r.notification, r.focal_point, r.channel) for r in await conn.execute(query)}
        return sorted((seen[k] for k in got), key=lambda d: d.key)

    async def supersede(self, rows: Sequence[Delivery], now: float) -> list[Delivery]:
        """Mark waiting notices ``superseded`` where a newer version's notice for the same
        focal point and channel exists (it lists every report of the older one); returns
        the rows so marked. Same compare-and-set as a claim, so a row another sender has
        taken meanwhile is left alone."""
        waiting = [d for d in rows if d.kind == "notice" and d.status in ("pending", "retry")]
        if not waiting:
            return []
        fingerprints = sorted({d.fingerprint for d in waiting})
        query = select(L.c.alert_key, L.c.fingerprint, L.c.focal_point, L.c.channel).where(
            L.c.fingerprint.in_(fingerprints),
            L.c.kind == "notice",
            L.c.status.in_(("pending", "retry", "sending", "sent")),
        )
        newest: dict[tuple[str, str, str], int] = {}
        async with self.engine.connect() as conn:  # a read: no write lock unless needed
            for r in await conn.execute(query):
                slot = (r.fingerprint, r.focal_point, r.channel)
                version = int(r.alert_key.rsplit("@", 1)[1])
                newest[slot] = max(newest.get(slot, 0), version)
        older = sorted(
            (
                d
                for d in waiting
                if d.version < newest.get((d.fingerprint, d.focal_point, d.channel), 0)
            ),
            key=lambda d: d.key,
        )
        done = []
        if older:
            async with self.engine.begin() as conn:
                for d in older:
                    result = await conn.execute(
                        update(L)
                        .where(_where(d), L.c.status == d.status, L.c.attempts == d.attempts)
                        .values(status="superseded", lease_until=None, updated_at=now)
                    )
                    if result.rowcount == 1:
                        done.append(d)
        return done

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
        async with self.engine.begin() as conn:
            await _record(conn, [Outcome(d, status, now, error, due_at)])

    async def record(self, outcome: Outcome) -> None:
        """Record an outcome as soon as possible, together with those of the other sends
        that finished meanwhile: group commit. Returns once it is committed. Under load one
        transaction carries many outcomes; alone, an outcome waits for no one."""
        done = asyncio.get_running_loop().create_future()
        self._pending.append((outcome, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(done)

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self.engine.begin() as conn:
                    await _record(conn, [o for o, _ in batch])
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)

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


_RECORD = (
    update(L)
    .where(
        L.c.notification == bindparam("k_notification"),
        L.c.focal_point == bindparam("k_focal_point"),
        L.c.channel == bindparam("k_channel"),
        L.c.status == "sending",
        L.c.attempts == bindparam("k_attempts"),
    )
    .values(
        status=bindparam("v_status"),
        last_error=bindparam("v_error"),
        lease_until=None,
        updated_at=bindparam("v_now"),
        sent_at=func.coalesce(bindparam("v_sent_at"), L.c.sent_at),
        due_at=func.coalesce(bindparam("v_due_at"), L.c.due_at),
    )
)
"""One statement for every outcome (built once, run as an executemany)."""


async def _record(conn: AsyncConnection, outcomes: Sequence[Outcome]) -> None:
    """Each update is guarded by the claim it records (status ``sending``, attempt
    number), so a sender whose lease ran out cannot overwrite its successor's outcome."""
    params = [
        {
            "k_notification": o.delivery.notification,
            "k_focal_point": o.delivery.focal_point,
            "k_channel": o.delivery.channel,
            "k_attempts": o.delivery.attempts + 1,
            "v_status": o.status,
            "v_error": o.error,
            "v_now": o.now,
            "v_sent_at": o.now if o.status == "sent" else None,
            "v_due_at": o.due_at,
        }
        for o in sorted(outcomes, key=lambda o: o.delivery.key)
    ]
    if params:
        await conn.execute(_RECORD, params)
