"""Persisted alerting state: each fingerprint's current alert and its windowed events.

Loaded once and saved once per batch (no per-message round trips), in SQLite or PostgreSQL,
so counts survive a restart and whichever replica owns a country next finds them.
Times are stored as UTC epoch seconds, which both databases compare the same way.

Window events are also cached in memory per fingerprint, tagged with the fingerprint's
revision in the database: every save bumps it, so a cache another replica wrote past (after
a rebalance) is reloaded, and a batch reads only a small revisions row for a warm window.
"""

from __future__ import annotations

import sys
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.alerts import AlertRaised, SupportingReport
from services.classify.windows import BatchWindow, Stories, WindowEvent
from services.common.db import create_tables

metadata = MetaData()

alerts = Table(
    "alerting_alerts",
    metadata,
    Column("fingerprint", String(128), primary_key=True),
    Column("country", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("resolves_at", Float, nullable=True),
    Column("payload", Text, nullable=False),
    Index("alerting_alerts_due", "status", "resolves_at"),
)

events = Table(
    "alerting_events",
    metadata,
    Column("fingerprint", String(128), primary_key=True),
    Column("report_id", String(128), primary_key=True),
    Column("at", Float, nullable=False),
    Column("feed_id", String(128), nullable=False),
    Column("severity", Integer, nullable=False),
    Column("story", String(128), nullable=False),
    Column("sketch", String(128), nullable=True),
    Column("support", Text, nullable=False),
    Index("alerting_events_window", "fingerprint", "at"),
    Index("alerting_events_age", "at"),
)

revisions = Table(
    "alerting_revisions",
    metadata,
    Column("fingerprint", String(128), primary_key=True),
    Column("revision", Integer, nullable=False),
)


def epoch(at: datetime) -> float:
    """UTC epoch seconds; a naive time is taken as UTC."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


@dataclass
class State:
    """What a batch needs: current alerts, window events and which reports already counted."""

    alerts: dict[str, AlertRaised] = field(default_factory=dict)
    events: dict[str, BatchWindow] = field(default_factory=dict)
    seen: set[tuple[str, str]] = field(default_factory=set)
    stories: dict[str, Stories] = field(default_factory=dict)
    revisions: dict[str, int] = field(default_factory=dict)


@dataclass
class _Window:
    """A fingerprint's cached events received after ``since``, as of ``revision``."""

    revision: int
    since: datetime
    events: list[WindowEvent]
    stories: Stories
    alert: AlertRaised | None


class AlertStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._ready = False
        self._windows: dict[str, _Window] = {}

    async def start(self) -> None:
        """Create the tables if needed; idempotent, and called by the first query too."""
        if not self._ready:
            await create_tables(self.engine, metadata)
            self._ready = True

    async def close(self) -> None:
        await self.engine.dispose()

    async def load(
        self, fingerprints: Collection[str], report_ids: Collection[str], since: datetime
    ) -> State:
        """Alerts of ``fingerprints`` and their events received after ``since`` (from the cache
        when it is current), and which of ``report_ids`` already counted, however long ago."""
        state = State()
        if not fingerprints:
            return state
        await self.start()
        fps = list(fingerprints)
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(revisions.c.fingerprint, revisions.c.revision).where(
                    revisions.c.fingerprint.in_(fps)
                )
            )
            state.revisions = {r.fingerprint: r.revision for r in rows}
            rows = await conn.execute(
                select(events.c.fingerprint, events.c.report_id).where(
                    and_(events.c.fingerprint.in_(fps), events.c.report_id.in_(list(report_ids)))
                )
            )
            state.seen = {(r.fingerprint, r.report_id) for r in rows}
            stale = [fp for fp in fps if not self._current(fp, state.revisions.get(fp, 0), since)]
            if stale:
                rows = await conn.execute(
                    select(alerts.c.fingerprint, alerts.c.payload).where(
                        alerts.c.fingerprint.in_(stale)
                    )
                )
                current = {r.fingerprint: AlertRaised.model_validate_json(r.payload) for r in rows}
                rows = await conn.execute(
                    select(*(c for c in events.c if c.name != "support"))
                    .where(and_(events.c.fingerprint.in_(stale), events.c.at > epoch(since)))
                    .order_by(events.c.at, events.c.report_id)
                )
                loaded: dict[str, list[WindowEvent]] = {fp: [] for fp in stale}
                for r in rows:
                    loaded[r.fingerprint].append(_event(r))
                for fp, window in loaded.items():
                    self._windows[fp] = _Window(
                        state.revisions.get(fp, 0), since, window, Stories(window), current.get(fp)
                    )
        for fp in fps:
            cached = self._windows[fp]
            state.events[fp] = BatchWindow(cached.events, since)
            state.stories[fp] = Stories(parent=cached.stories)
            if cached.alert is not None:
                state.alerts[fp] = cached.alert
        return state

    def _current(self, fp: str, revision: int, since: datetime) -> bool:
        cached = self._windows.get(fp)
        return cached is not None and cached.revision == revision and cached.since <= since

    async def save(
        self,
        changed: list[AlertRaised],
        new_events: list[WindowEvent],
    ) -> None:
        """Upsert alert versions, insert new events and bump the revisions of the fingerprints
        touched, in one transaction; then bring the cache up to date."""
        touched = {a.fingerprint for a in changed} | {e.fingerprint for e in new_events}
        if not touched:
            return
        await self.start()
        async with self.engine.begin() as conn:
            rows = await conn.execute(
                select(revisions.c.fingerprint, revisions.c.revision).where(
                    revisions.c.fingerprint.in_(touched)
                )
            )
            before = {r.fingerprint: r.revision for r in rows}
            await conn.execute(revisions.delete().where(revisions.c.fingerprint.in_(touched)))
            await conn.execute(
                revisions.insert(),
                [{"fingerprint": fp, "revision": before.get(fp, 0) + 1} for fp in touched],
            )
            if changed:
                fps = [a.fingerprint for a in changed]
                await conn.execute(alerts.delete().where(alerts.c.fingerprint.in_(fps)))
                await conn.execute(
                    alerts.insert(),
                    [
                        {
                            "fingerprint": a.fingerprint,
                            "country": a.country,
                            "status": a.status,
                            "version": a.version,
                            "resolves_at": epoch(a.resolves_at) if a.resolves_at else None,
                            "payload": a.model_dump_json(),
                        }
                        for a in changed
                    ],
                )
            fresh: list[WindowEvent] = []
            if new_events:
                # Another replica may have stored some during a rebalance: insert the rest.
                have = await conn.execute(
                    select(events.c.fingerprint, events.c.report_id).where(
                        and_(
                            events.c.fingerprint.in_({e.fingerprint for e in new_events}),
                            events.c.report_id.in_({e.report_id for e in new_events}),
                        )
                    )
                )
                stored = {(r.fingerprint, r.report_id) for r in have}
                fresh = [e for e in new_events if (e.fingerprint, e.report_id) not in stored]
                if fresh:
                    await conn.execute(events.insert(), [_row(e) for e in fresh])
        for fp in touched:
            cached = self._windows.get(fp)
            if cached is None or cached.revision != before.get(fp, 0):
                self._windows.pop(fp, None)  # someone else wrote in between: reload next time
                continue
            cached.revision += 1
            cached.alert = next((a for a in changed if a.fingerprint == fp), cached.alert)
            for e in fresh:
                if e.fingerprint == fp:
                    slim = replace(e, support=None)
                    cached.events.append(slim)
                    cached.stories.add(slim)

    async def supports(self, fp: str, report_ids: Collection[str]) -> dict[str, SupportingReport]:
        """The stored supports of a fingerprint's events, by report id."""
        if not report_ids:
            return {}
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(events.c.report_id, events.c.support).where(
                    and_(events.c.fingerprint == fp, events.c.report_id.in_(list(report_ids)))
                )
            )
            return {r.report_id: SupportingReport.model_validate_json(r.support) for r in rows}

    async def due(self, now: datetime, limit: int = 500) -> list[AlertRaised]:
        """Firing alerts whose resolution time has come, soonest first."""
        await self.start()
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(alerts.c.payload)
                .where(alerts.c.status == "firing", alerts.c.resolves_at <= epoch(now))
                .order_by(alerts.c.resolves_at)
                .limit(limit)
            )
            return [AlertRaised.model_validate_json(r.payload) for r in rows]

    async def prune(self, before: datetime) -> int:
        """Forget events received before ``before``: outside every window and redelivery."""
        await self.start()
        async with self.engine.begin() as conn:
            result = await conn.execute(events.delete().where(events.c.at < epoch(before)))
        for fp, cached in list(self._windows.items()):
            if cached.events and cached.events[0].at < before:
                del self._windows[fp]  # rebuilt, smaller, on its next batch
        return int(result.rowcount or 0)


def _event(r: Any) -> WindowEvent:
    """A cached event shares its repeated strings (fingerprint, feed, a story's id, a copied
    story's sketch) instead of holding a copy per database row: a day of reports is cached."""
    report_id = r.report_id
    return WindowEvent(
        fingerprint=sys.intern(r.fingerprint),
        report_id=report_id,
        at=datetime.fromtimestamp(r.at, UTC),
        feed_id=sys.intern(r.feed_id),
        severity=r.severity,
        story=report_id if r.story == report_id else sys.intern(r.story),
        sketch=sys.intern(r.sketch) if r.sketch else r.sketch,
        support=None,
    )


def _row(e: WindowEvent) -> dict[str, Any]:
    if e.support is None:
        raise ValueError(f"event {e.fingerprint}/{e.report_id}: only new events are stored")
    return {
        "fingerprint": e.fingerprint,
        "report_id": e.report_id,
        "at": epoch(e.at),
        "feed_id": e.feed_id,
        "severity": e.severity,
        "story": e.story,
        "sketch": e.sketch,
        "support": e.support.model_dump_json(),
    }
