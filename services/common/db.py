"""Async SQLAlchemy engine for SQLite (default) or PostgreSQL, with the settings both need."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, Table, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def make_engine(url: str) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        # WAL lets several service processes share one file; busy_timeout waits out writers.
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


async def create_tables(engine: AsyncEngine, metadata: MetaData) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)


def own_database_url(shared_url: str, owner: str) -> str:
    """Where a service keeps its tables: on SQLite a file of its own beside the shared one
    (``tocsin.db`` → ``tocsin-<owner>.db``), on PostgreSQL the shared database.

    SQLite has one writer per file, and its busy handler sleeps in steps of up to 100 ms,
    so services sharing a file queued their commits behind each other's
    (docs/benchmarks.md). Replicas on one machine derive the same path and share the file.
    """
    url = make_url(shared_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return shared_url
    path = Path(url.database)
    own = path.with_name(f"{path.stem}-{owner}{path.suffix}")
    return url.set(database=str(own)).render_as_string(hide_password=False)


async def adopt_tables(engine: AsyncEngine, shared_url: str, tables: Iterable[Table]) -> int:
    """Move ``tables``' rows from the shared SQLite file, where earlier versions kept them,
    into ``engine``'s own file (whose tables must exist), so an upgrade loses no state;
    returns how many rows were copied. Idempotent: each old table is dropped once copied,
    and a replica starting at the same moment copies nothing twice (INSERT OR IGNORE)."""
    shared = make_url(shared_url).database
    own = engine.url.database
    if make_url(shared_url).get_backend_name() != "sqlite" or not shared or shared == own:
        return 0
    if not await asyncio.to_thread(Path(shared).exists):  # ATTACH would create it
        return 0
    copied = 0
    async with engine.connect() as conn:
        await conn.execute(text("ATTACH DATABASE :path AS shared"), {"path": shared})
        try:
            for table in tables:
                found = await conn.execute(
                    text("SELECT 1 FROM shared.sqlite_master WHERE type = 'table' AND name = :t"),
                    {"t": table.name},
                )
                if found.first() is None:
                    continue
                columns = ", ".join(c.name for c in table.columns)
                result = await conn.execute(
                    text(
                        f"INSERT OR IGNORE INTO main.{table.name} ({columns}) "
                        f"SELECT {columns} FROM shared.{table.name}"
                    )
                )
                await conn.execute(text(f"DROP TABLE IF EXISTS shared.{table.name}"))
                copied += int(result.rowcount or 0)
            await conn.commit()
        finally:
            await conn.rollback()  # DETACH is refused inside a transaction
            await conn.execute(text("DETACH DATABASE shared"))
    return copied
