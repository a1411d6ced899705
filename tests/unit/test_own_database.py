"""On SQLite each service that writes on a hot path keeps its tables in a file of its own,
and an upgrade moves the rows an earlier version kept in the shared file."""

from __future__ import annotations

from sqlalchemy import func, insert, inspect, select

from services.classify import alert_store
from services.common.db import adopt_tables, create_tables, make_engine, own_database_url


def test_sqlite_files_are_derived_per_owner() -> None:
    shared = "sqlite+aiosqlite:////var/tocsin.db"
    assert own_database_url(shared, "classify") == "sqlite+aiosqlite:////var/tocsin-classify.db"
    for unchanged in ("sqlite+aiosqlite:///:memory:", "postgresql+asyncpg://t:s@db:5432/tocsin"):
        assert own_database_url(unchanged, "classify") == unchanged


async def test_alerting_rows_move_out_of_the_shared_file_once(sqlite_url: str) -> None:
    shared = make_engine(sqlite_url)
    own = make_engine(own_database_url(sqlite_url, "classify"))
    tables = alert_store.metadata.sorted_tables
    try:
        await create_tables(shared, alert_store.metadata)
        async with shared.begin() as conn:
            await conn.execute(
                insert(alert_store.revisions), [{"fingerprint": "KG:x", "revision": 7}]
            )
        await create_tables(own, alert_store.metadata)

        assert await adopt_tables(own, sqlite_url, tables) == 1
        assert await adopt_tables(own, sqlite_url, tables) == 0  # the shared tables are gone

        async with own.connect() as conn:
            moved = await conn.scalar(select(func.max(alert_store.revisions.c.revision)))
        assert moved == 7
        async with shared.connect() as conn:
            left = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert not {t.name for t in tables} & set(left)
    finally:
        await own.dispose()
        await shared.dispose()
