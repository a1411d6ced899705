"""The alert versions notify has received, kept so a delivery renders the exact version."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.alerts import AlertRaised
from services.notify import tables

A = tables.alerts


class AlertStore:
    def __init__(self, engine: AsyncEngine, cache_size: int = 512) -> None:
        self.engine = engine
        self._cache: OrderedDict[str, str] = OrderedDict()
        """Payloads as JSON: a version with its evidence is ~12 KB as text but ~50 KB as
        objects (2,048 of them took 104 MB), and parsing one costs far less than a query.
        Only recent versions are read back (the due groups' latest, the deliveries being
        sent); 2,048 JSON payloads still held 29 MB of the process (tracemalloc)."""
        self._size = cache_size

    async def add(self, conn: AsyncConnection, alerts: Sequence[AlertRaised], now: float) -> None:
        """Store the versions (a version's payload never changes, so the cache may keep
        them even if this transaction rolls back: the redelivered batch stores them)."""
        payloads = [a.model_dump_json() for a in alerts]
        for a, payload in zip(alerts, payloads, strict=True):
            self._remember(a.key, payload)
        await tables.insert_ignore(
            conn,
            A,
            [
                {
                    "alert_key": a.key,
                    "fingerprint": a.fingerprint,
                    "version": a.version,
                    "status": a.status,
                    "severity": a.severity,
                    "payload": payload,
                    "received_at": now,
                }
                for a, payload in zip(alerts, payloads, strict=True)
            ],
        )

    async def get(self, key: str) -> AlertRaised | None:
        payload = self._cache.get(key)
        if payload is not None:
            self._cache.move_to_end(key)
        else:
            async with self.engine.connect() as conn:
                payload = (
                    await conn.execute(select(A.c.payload).where(A.c.alert_key == key))
                ).scalar_one_or_none()
            if payload is None:
                return None
            self._remember(key, payload)
        return AlertRaised.model_validate_json(payload)

    def _remember(self, key: str, payload: str) -> None:
        self._cache[key] = payload
        self._cache.move_to_end(key)
        if len(self._cache) > self._size:
            self._cache.popitem(last=False)

    async def latest(self, *, open_only: bool, fingerprint: str | None = None) -> list[AlertRaised]:
        """The newest version of each alert (of one, with ``fingerprint``)."""
        newest = (
            select(A.c.fingerprint, func.max(A.c.version).label("version"))
            .group_by(A.c.fingerprint)
            .subquery()
        )
        query = select(A.c.payload).join(
            newest, (A.c.fingerprint == newest.c.fingerprint) & (A.c.version == newest.c.version)
        )
        if open_only:
            query = query.where(A.c.status == "firing")
        if fingerprint is not None:
            query = query.where(A.c.fingerprint == fingerprint)
        async with self.engine.connect() as conn:
            rows = await conn.execute(query.order_by(A.c.fingerprint))
            return [AlertRaised.model_validate_json(r.payload) for r in rows]


def row_dict(row: Any) -> dict[str, Any]:
    return dict(row._mapping)
