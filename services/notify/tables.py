"""Notify's tables: alert versions, groups (the timers), the delivery ledger, silences.

Times are epoch seconds (floats) so due-time comparisons are plain numbers on SQLite and
PostgreSQL alike. Every row that two replicas could race for carries a guard the writer
checks in its UPDATE (``rev`` on groups, ``status``/``attempts`` on deliveries).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.db import create_tables

metadata = MetaData()

alerts = Table(
    "notify_alerts",
    metadata,
    Column("alert_key", String(200), primary_key=True),
    Column("fingerprint", String(128), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("severity", Integer, nullable=False),
    Column("payload", Text, nullable=False),
    Column("received_at", Float, nullable=False),
)

groups = Table(
    "notify_groups",
    metadata,
    Column("fingerprint", String(128), primary_key=True),
    Column("focal_point", String(64), primary_key=True),
    Column("latest_version", Integer, nullable=False),
    Column("latest_status", String(16), nullable=False),
    Column("severity", Integer, nullable=False),
    Column("notified_version", Integer, nullable=False, default=0),
    Column("notify_at", Float, index=True),
    Column("last_notified_at", Float),
    Column("repeats", Integer, nullable=False, default=0),
    Column("escalate_at", Float, index=True),
    Column("escalated_at", Float),
    Column("acked_at", Float),
    Column("acked_by", String(200)),
    Column("closed", Boolean, nullable=False, default=False),
    Column("rev", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
)

ledger = Table(
    "notify_ledger",
    metadata,
    Column("notification", String(240), primary_key=True),
    Column("focal_point", String(64), primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("alert_key", String(200), nullable=False),
    Column("fingerprint", String(128), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("due_at", Float, nullable=False, index=True),
    Column("lease_until", Float),
    Column("last_error", Text),
    Column("note", Text),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("sent_at", Float),
)

ledger_slots = Index(
    "ix_notify_ledger_slot_status",
    ledger.c.fingerprint,
    ledger.c.focal_point,
    ledger.c.channel,
    ledger.c.status,
)
"""Finds a (fingerprint, focal point, channel)'s queued notices without reading the sent
history, so superseding older versions stays cheap as the ledger grows."""

silences = Table(
    "notify_silences",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("matchers", Text, nullable=False),
    Column("starts_at", Float, nullable=False),
    Column("ends_at", Float, nullable=False, index=True),
    Column("created_by", String(200), nullable=False),
    Column("comment", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
)


def serialise_sqlite_writes(engine: AsyncEngine) -> None:
    """SQLite: every transaction takes the write lock up front (BEGIN IMMEDIATE), so two
    processes sharing the file wait for each other instead of failing on a stale snapshot."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine.sync_engine, "connect")
    def _no_implicit_begin(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin_immediate(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


async def create(engine: AsyncEngine) -> None:
    await create_tables(engine, metadata)
    async with engine.begin() as conn:  # tables created before the index was added
        await conn.run_sync(lambda sync: ledger_slots.create(sync, checkfirst=True))


async def insert_ignore(conn: AsyncConnection, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows whose primary key is new; returns how many went in. Keeps redelivered
    messages and racing replicas from creating a second row (and so a second send). One
    statement per chunk of rows."""
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    if len(rows) == 1:
        result = await conn.execute(
            dialect.insert(table).values(**rows[0]).on_conflict_do_nothing()
        )
        return max(result.rowcount, 0)
    # executemany of one statement: compiled once, sent as multi-row VALUES in chunks, and
    # RETURNING counts the rows that went in on both databases.
    keys = list(table.primary_key.columns)
    query = dialect.insert(table).on_conflict_do_nothing().returning(*keys)
    inserted = 0
    for start in range(0, len(rows), INSERT_CHUNK):
        result = await conn.execute(query, list(rows[start : start + INSERT_CHUNK]))
        inserted += len(result.all())
    return inserted


INSERT_CHUNK = 500
"""Rows per INSERT statement: well under the bound-parameter limits of SQLite and asyncpg."""
