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

from sqlalchemy import (
    Integer,
    Select,
    and_,
    bindparam,
    cast,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.notify import tables
from services.notify.grouping import Notice

Status = Literal["pending", "sending", "retry", "sent", "deadlettered", "suppressed", "superseded"]

L = tables.ledger

WAITING = ("pending", "retry")
"""A row that may still be sent and nobody is sending."""
SUPERSEDE_SCAN = 2_000
"""Outdated notices marked at most in one pass (a longer backlog takes several)."""


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


@dataclass(frozen=True)
class Outdated:
    """A waiting notice that a newer version's replaces, and when it became due."""

    delivery: Delivery
    due_at: float


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
        async with self.engine.connect() as conn:
            return await _due(conn, now, limit)

    async def claim(self, d: Delivery, now: float, lease_s: float) -> bool:
        """Take the row for one send attempt; False if another sender got there first."""
        async with self.engine.begin() as conn:
            return bool(await _claim_many(conn, [d], now, lease_s))

    async def take(
        self, now: float, limit: int, lease_s: float
    ) -> tuple[list[Delivery], list[Delivery]]:
        """A sender's refill: supersede every due waiting notice that a newer version's
        replaces, and claim up to ``limit`` of the other due rows, oldest first. Returns
        (superseded, claimed). Two short transactions, the reads then the writes (on
        SQLite each takes the write lock: ``tables.serialise_sqlite_writes``)."""
        async with self.engine.connect() as conn:
            older = await _outdated(conn, now)
            due = await _due(conn, now, limit + len(older))
        outdated = {o.delivery.key for o in older}
        wanted = [d for d in due if d.key not in outdated][:limit]
        async with self.engine.begin() as conn:
            superseded = await _supersede(conn, older, now)
            claimed = {d.key for d in await _claim_many(conn, wanted, now, lease_s)}
        return superseded, [d for d in wanted if d.key in claimed]

    async def record(self, outcome: Outcome) -> None:
        """Record an outcome as soon as possible, together with those of the other sends
        that finished meanwhile: group commit. Returns once it is committed. Under load one
        transaction carries many outcomes; alone, an outcome waits for no one."""
        done = asyncio.get_running_loop().create_future()
        self._pending.append((outcome, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await asyncio.shield(done)

    async def dead_letter(self, outcome: Outcome, fallback: Sequence[dict[str, Any]]) -> None:
        """Record a dead-lettered attempt and enqueue its fallback rows in one transaction,
        so that no moment (and no crash) sees the row given up with nobody told."""
        async with self.engine.begin() as conn:
            await _record(conn, [outcome])
            if fallback:
                await tables.insert_ignore(conn, L, list(fallback))

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


_DELIVERY_COLUMNS = (
    L.c.notification,
    L.c.focal_point,
    L.c.channel,
    L.c.alert_key,
    L.c.fingerprint,
    L.c.kind,
    L.c.status,
    L.c.attempts,
    L.c.note,
)


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


async def _due(conn: AsyncConnection, now: float, limit: int) -> list[Delivery]:
    """The rows to attempt now, oldest first: waiting and due, or claimed by a sender whose
    lease ran out."""
    ready = or_(
        and_(L.c.status.in_(WAITING), L.c.due_at <= now),
        and_(L.c.status == "sending", L.c.lease_until <= now),
    )
    query = select(L).where(ready).order_by(L.c.due_at).limit(limit)
    return [_delivery(r._mapping) for r in await conn.execute(query)]


async def _claim_many(
    conn: AsyncConnection, rows: Sequence[Delivery], now: float, lease_s: float
) -> list[Delivery]:
    """Take the rows still as they were read (``_as_seen``), in one statement: the
    compare-and-set replicas race on. Returns those this sender got."""
    if not rows:
        return []
    seen = {d.key: d for d in rows}
    query = (
        update(L)
        .where(_as_seen(rows))
        .values(
            status="sending",
            attempts=L.c.attempts + 1,
            lease_until=now + lease_s,
            updated_at=now,
        )
        .returning(L.c.notification, L.c.focal_point, L.c.channel)
    )
    got = {(r.notification, r.focal_point, r.channel) for r in await conn.execute(query)}
    return sorted((seen[k] for k in got), key=lambda d: d.key)


async def _outdated(conn: AsyncConnection, now: float) -> list[Outdated]:
    """Every due notice still waiting (``pending`` or ``retry``) whose focal point and
    channel already have a newer version's notice that may still go out or went out (it
    lists every report of the older one), oldest first: one read, however long the backlog
    (up to ``SUPERSEDE_SCAN``), so a sender never spends rounds on old versions."""
    found = await conn.execute(_OUTDATED, {"now": now, "limit": SUPERSEDE_SCAN})
    return [Outdated(_delivery(r._mapping), r.due_at) for r in found]


async def _supersede(
    conn: AsyncConnection, older: Sequence[Outdated], now: float
) -> list[Delivery]:
    """Mark the rows ``superseded`` in one statement, guarded like a claim, so a row
    another sender has taken meanwhile is left alone; returns those marked. The newest
    waiting notice of each slot then takes the place in the queue (``due_at``) of the
    oldest one it replaced: it carries that one's reports, which have waited the longest,
    so it goes out first."""
    if not older:
        return []
    seen = tuple_(L.c.notification, L.c.focal_point, L.c.channel, L.c.attempts)
    query = (
        update(L)
        .where(
            # Still waiting, on the attempt we read: only a claim takes a row out of
            # waiting, and a claim counts an attempt.
            seen.in_([(*o.delivery.key, o.delivery.attempts) for o in older]),
            L.c.status.in_(WAITING),
        )
        .values(status="superseded", lease_until=None, updated_at=now)
        .returning(L.c.notification, L.c.focal_point, L.c.channel)
    )
    got = {(r.notification, r.focal_point, r.channel) for r in await conn.execute(query)}
    done = [o for o in older if o.delivery.key in got]
    await _move_up(conn, done)
    return sorted((o.delivery for o in done), key=lambda d: d.key)


def _as_seen(rows: Sequence[Delivery]) -> Any:
    """Matches each row only while it is still as read (status and attempt number): the
    compare-and-set of a claim."""
    return or_(*(and_(_where(d), L.c.status == d.status, L.c.attempts == d.attempts) for d in rows))


def _version(t: Any) -> Any:
    """The version number in SQL: a notice's ``alert_key`` is ``<fingerprint>@<version>``."""
    return cast(func.substr(t.c.alert_key, func.length(t.c.fingerprint) + 2), Integer)


def _outdated_query() -> Select[Any]:
    """Due waiting notices for which the same focal point and channel have a newer
    version's notice that is queued, being sent or (for a notice waiting to be retried)
    sent; oldest first. The queued ones are found through the slot's index without reading
    its history; the sent ones only for the few notices that wait for a retry."""
    queued = _newer_notice(("pending", "retry", "sending"))
    sent = _newer_notice(("sent",))
    return (
        select(*_DELIVERY_COLUMNS, L.c.due_at)
        .where(
            L.c.kind == "notice",
            L.c.status.in_(WAITING),
            L.c.due_at <= bindparam("now"),
            or_(queued, and_(L.c.status == "retry", sent)),
        )
        .order_by(L.c.due_at)
        .limit(bindparam("limit"))
    )


def _newer_notice(statuses: Sequence[str]) -> Any:
    """A notice of a newer version than the outer row's, for the same slot, in one of
    ``statuses``."""
    newer = L.alias("newer")
    return (
        select(newer.c.notification)
        .where(
            newer.c.fingerprint == L.c.fingerprint,
            newer.c.focal_point == L.c.focal_point,
            newer.c.channel == L.c.channel,
            newer.c.status.in_(statuses),
            newer.c.kind == "notice",
            _version(newer) > _version(L),
        )
        .exists()
    )


async def _move_up(conn: AsyncConnection, superseded: Sequence[Outdated]) -> None:
    """Give the newest waiting notice of each slot the earliest ``due_at`` of the notices
    it superseded (a ``retry`` keeps its backoff)."""
    earliest: dict[tuple[str, str, str], float] = {}
    for o in superseded:
        d = o.delivery
        slot = (d.fingerprint, d.focal_point, d.channel)
        earliest[slot] = min(earliest.get(slot, o.due_at), o.due_at)
    params = [
        {"k_fingerprint": f, "k_focal_point": p, "k_channel": c, "v_due_at": due_at}
        for (f, p, c), due_at in sorted(earliest.items())
    ]
    if params:
        await conn.execute(_MOVE_UP, params)


_MOVE_UP = (
    update(L)
    .where(
        L.c.fingerprint == bindparam("k_fingerprint"),
        L.c.focal_point == bindparam("k_focal_point"),
        L.c.channel == bindparam("k_channel"),
        L.c.kind == "notice",
        L.c.status == "pending",
        L.c.due_at > bindparam("v_due_at"),
    )
    .values(due_at=bindparam("v_due_at"))
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


_OUTDATED = _outdated_query()
"""Built once: a sender runs it before every refill."""
