"""Report ids already published, kept in the database so that deduplication holds across
restarts and between replicas.

The order is check → publish → mark: ids are looked up in one query per request, the
unseen reports are published, and only once Kafka acknowledged them are they marked, in
one multi-row upsert. A 503 therefore never leaves a report marked but missing from Kafka.
The window between publish and mark (a crash, or two replicas taking the same report at
the same moment) can put a second copy on Kafka under the same key; downstream counts a
report id once, so that copy is harmless.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

from sqlalchemy import Column, Float, MetaData, String, Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db import create_tables, own_database_url

T = TypeVar("T")
R = TypeVar("R")

metadata = MetaData()

seen = Table(
    "ingest_seen",
    metadata,
    Column("report_id", String(64), primary_key=True),
    Column("feed_id", String(64), nullable=False),
    Column("seen_at", Float, nullable=False, index=True),  # unix seconds: portable compares
)


def seen_database_url(shared_url: str) -> str:
    """On SQLite, seen ids live in a file of ingest's own: every POST commits marks, which
    in the shared file queued behind classify's and notify's transactions (docs/ingest.md)."""
    return own_database_url(shared_url, "ingest-seen")


_LOOKUP = select(seen.c.report_id, seen.c.seen_at).where(
    seen.c.report_id.in_(bindparam("ids", expanding=True)),
    seen.c.seen_at >= bindparam("cutoff"),
)
"""Built once with bound parameters: an ``in_`` of literal ids coerced every id on every
call (about 5 % of a batch's CPU)."""

CHUNK = 5_000  # ids per lookup: well under SQLite's and asyncpg's bound-parameter limits


class _Coalescer(Generic[T, R]):
    """Group commit: calls that arrive while a query runs are served together by the next
    one, so N concurrent requests cost about two round trips instead of N."""

    def __init__(self, run: Callable[[list[T]], Awaitable[R]]) -> None:
        self._run = run
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._task is None:
            self._task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    result = await self._run([item for item, _ in batch])
                except Exception as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(result)
        finally:
            self._task = None


class SeenReports:
    """Which report ids were published within the last ``retention_s`` seconds."""

    def __init__(self, engine: AsyncEngine, retention_s: float) -> None:
        self.engine = engine
        self.retention_s = retention_s
        self._ready = False
        self._lookups: _Coalescer[tuple[set[str], float], dict[str, float]] = _Coalescer(
            self._already
        )
        self._marks: _Coalescer[list[dict[str, Any]], None] = _Coalescer(self._mark)

    async def start(self) -> None:
        if not self._ready:
            await create_tables(self.engine, metadata)
            self._ready = True

    async def already(self, ids: Iterable[str], now: float) -> set[str]:
        """The ids among ``ids`` seen since ``now - retention_s``."""
        wanted = set(ids)
        if not wanted:
            return set()
        cutoff = now - self.retention_s
        found = await self._lookups.submit((wanted, cutoff))
        return {i for i in wanted if i in found and found[i] >= cutoff}

    async def _already(self, requests: list[tuple[set[str], float]]) -> dict[str, float]:
        """When each requested id was last marked, for the union of concurrent requests."""
        await self.start()
        cutoff = min(c for _, c in requests)  # the widest window asked for
        wanted = sorted(set().union(*(ids for ids, _ in requests)))
        found: dict[str, float] = {}
        async with self.engine.connect() as conn:
            for start in range(0, len(wanted), CHUNK):
                rows = await conn.execute(
                    _LOOKUP, {"ids": wanted[start : start + CHUNK], "cutoff": cutoff}
                )
                found.update({r.report_id: r.seen_at for r in rows})
        return found

    async def mark(self, reports: Iterable[tuple[str, str]], now: float) -> None:
        """Record ``(report id, feed id)`` pairs as published at ``now``."""
        rows = [{"report_id": i, "feed_id": f, "seen_at": now} for i, f in dict(reports).items()]
        if rows:
            await self._marks.submit(rows)

    async def _mark(self, requests: list[list[dict[str, Any]]]) -> None:
        await self.start()
        rows = list({row["report_id"]: row for r in requests for row in r}.values())
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(seen)
        # A row older than the window is a new sighting: refresh it; a fresh one stays.
        stmt = stmt.on_conflict_do_update(
            index_elements=[seen.c.report_id],
            set_={"seen_at": stmt.excluded.seen_at, "feed_id": stmt.excluded.feed_id},
            where=seen.c.seen_at < stmt.excluded.seen_at - self.retention_s,
        )
        async with self.engine.begin() as conn:  # one transaction: one commit for all callers
            await conn.execute(stmt, rows)  # executemany: compiled once, sent in batches

    async def prune(self, now: float) -> int:
        """Forget ids older than the window; returns how many."""
        await self.start()
        async with self.engine.begin() as conn:
            result = await conn.execute(
                seen.delete().where(seen.c.seen_at < now - self.retention_s)
            )
            return int(result.rowcount or 0)
