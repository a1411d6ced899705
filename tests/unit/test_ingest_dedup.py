"""The seen-ids store on SQLite: the window, refreshing an expired id, pruning."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from services.common.db import adopt_tables, make_engine
from services.ingest import dedup
from services.ingest.dedup import SeenReports, seen_database_url

DAY = 86400.0


async def test_ids_are_seen_within_the_window_only(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    seen = SeenReports(engine, retention_s=DAY)
    try:
        await seen.mark([("a", "f"), ("b", "f")], now=1000.0)
        assert await seen.already(["a", "b", "c"], now=1000.0 + DAY - 1) == {"a", "b"}
        assert await seen.already(["a", "b"], now=1000.0 + DAY + 1) == set()
        # an expired id seen again starts a new window; a fresh one keeps its first sighting
        await seen.mark([("a", "f")], now=1000.0 + DAY + 1)
        await seen.mark([("b", "f")], now=1000.0 + 10)
        assert await seen.already(["a", "b"], now=1000.0 + DAY + 2) == {"a"}
        assert await seen.prune(now=1000.0 + DAY + 2) == 1
        assert await seen.already(["a", "b"], now=1000.0 + DAY + 2) == {"a"}
    finally:
        await engine.dispose()


async def test_a_new_store_on_the_same_database_remembers(sqlite_url: str) -> None:
    first = make_engine(sqlite_url)
    await SeenReports(first, DAY).mark([("x", "f")], now=5.0)
    await first.dispose()
    second = make_engine(sqlite_url)
    try:
        assert await SeenReports(second, DAY).already(["x", "y"], now=6.0) == {"x"}
    finally:
        await second.dispose()


@pytest.mark.postgres
async def test_postgres_upsert_and_window(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    seen = SeenReports(engine, retention_s=DAY)
    try:
        await seen.mark([("a", "f")], now=0.0)
        await seen.mark([("a", "f"), ("b", "g")], now=10.0)  # conflict on a: no error
        assert await seen.already(["a", "b"], now=DAY - 1) == {"a", "b"}
        assert await seen.already(["a"], now=DAY + 1) == set()
    finally:
        await engine.dispose()


async def test_concurrent_calls_are_coalesced_and_each_gets_its_own_answer(
    sqlite_url: str,
) -> None:
    import asyncio

    engine = make_engine(sqlite_url)
    seen = SeenReports(engine, retention_s=DAY)
    try:
        await asyncio.gather(*(seen.mark([(f"id{n}", "f")], now=100.0) for n in range(0, 40, 2)))
        answers = await asyncio.gather(
            *(seen.already([f"id{n}", f"id{n + 1}"], now=200.0) for n in range(0, 40, 2))
        )
        assert answers == [{f"id{n}"} for n in range(0, 40, 2)]
    finally:
        await engine.dispose()


async def test_a_database_failure_reaches_every_waiting_caller(tmp_path: object) -> None:
    import asyncio

    from sqlalchemy.exc import SQLAlchemyError

    engine = make_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    seen = SeenReports(engine, retention_s=DAY)
    results = await asyncio.gather(
        *(seen.already([f"x{n}"], now=1.0) for n in range(3)), return_exceptions=True
    )
    await engine.dispose()
    assert all(isinstance(r, (SQLAlchemyError, OSError)) for r in results), results


def test_sqlite_seen_ids_get_a_file_of_their_own() -> None:
    assert seen_database_url("sqlite+aiosqlite:////var/tocsin.db") == (
        "sqlite+aiosqlite:////var/tocsin-ingest-seen.db"
    )
    for unchanged in (
        "sqlite+aiosqlite://",
        "sqlite+aiosqlite:///:memory:",
        "postgresql+asyncpg://tocsin:secret@db:5432/tocsin",
    ):
        assert seen_database_url(unchanged) == unchanged


async def test_ids_seen_in_the_shared_file_are_adopted_once(sqlite_url: str) -> None:
    shared = make_engine(sqlite_url)
    await SeenReports(shared, DAY).mark([("old", "f")], now=5.0)
    own = make_engine(seen_database_url(sqlite_url))
    try:
        seen = SeenReports(own, DAY)
        await seen.start()
        assert await adopt_tables(own, sqlite_url, [dedup.seen]) == 1
        assert await seen.already(["old", "new"], now=6.0) == {"old"}
        assert await adopt_tables(own, sqlite_url, [dedup.seen]) == 0  # the shared table is gone
        async with shared.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert "ingest_seen" not in tables
    finally:
        await own.dispose()
        await shared.dispose()
