"""Silences: matchers on an alert's fields (and the focal point) with an expiry.

A silenced alert is not notified, repeated or escalated while the silence lasts; when it
ends (or is expired early) the alert's timers take over again, as in Alertmanager.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.alerts import AlertRaised
from services.notify import tables

MatcherName = Literal["fingerprint", "country", "indicator", "rule", "severity", "focal_point"]


class SilenceIn(BaseModel):
    """What an operator sends to create a silence."""

    matchers: dict[MatcherName, list[str]] = Field(
        min_length=1,
        description="Field → accepted values; every field must match (values are alternatives).",
    )
    ends_at: datetime = Field(description="When the silence stops applying (RFC 3339).")
    starts_at: datetime | None = Field(default=None, description="Default: now.")
    created_by: str = Field(min_length=1, max_length=200)
    comment: str = Field(default="", max_length=2000)

    @field_validator("matchers")
    @classmethod
    def _non_empty(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        empty = [k for k, v in value.items() if not v]
        if empty:
            raise ValueError(f"no values given for {empty}")
        return value

    @field_validator("ends_at", "starts_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone offset, e.g. 2026-01-01T00:00:00Z")
        return value


class Silence(BaseModel):
    id: str
    matchers: dict[str, list[str]]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str

    def matches(self, alert: AlertRaised, focal_point: str) -> bool:
        values = {
            "fingerprint": alert.fingerprint,
            "country": alert.country,
            "indicator": alert.indicator,
            "rule": alert.rule,
            "severity": str(alert.severity),
            "focal_point": focal_point,
        }
        return all(values.get(name) in accepted for name, accepted in self.matchers.items())

    def active(self, now: float) -> bool:
        return self.starts_at.timestamp() <= now < self.ends_at.timestamp()


def silenced_until(
    found: list[Silence], alert: AlertRaised, focal_point: str, now: float
) -> float | None:
    """When the last active silence covering this (alert, focal point) ends, if any."""
    ends = [s.ends_at.timestamp() for s in found if s.active(now) and s.matches(alert, focal_point)]
    return max(ends) if ends else None


def _from_row(row: object) -> Silence:
    r = row._mapping  # type: ignore[attr-defined]
    return Silence(
        id=r["id"],
        matchers=json.loads(r["matchers"]),
        starts_at=datetime.fromtimestamp(r["starts_at"], UTC),
        ends_at=datetime.fromtimestamp(r["ends_at"], UTC),
        created_by=r["created_by"],
        comment=r["comment"],
    )


class Silences:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def create(self, data: SilenceIn, now: float) -> Silence:
        starts = data.starts_at.timestamp() if data.starts_at else now
        if data.ends_at.timestamp() <= starts:
            raise ValueError("ends_at: must be after starts_at (or now)")
        row = {
            "id": uuid.uuid4().hex,
            "matchers": json.dumps(data.matchers, sort_keys=True),
            "starts_at": starts,
            "ends_at": data.ends_at.timestamp(),
            "created_by": data.created_by,
            "comment": data.comment,
            "created_at": now,
        }
        async with self.engine.begin() as conn:
            await conn.execute(tables.silences.insert().values(**row))
        return _from_row(_Row(row))

    async def active(self, now: float) -> list[Silence]:
        s = tables.silences
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(s).where(s.c.ends_at > now).order_by(s.c.ends_at))
            return [_from_row(r) for r in rows]

    async def expire(self, silence_id: str, now: float) -> bool:
        """End a silence now; alerts it held back become due at once."""
        s, g = tables.silences, tables.groups
        async with self.engine.begin() as conn:
            done = await conn.execute(
                update(s).where(s.c.id == silence_id, s.c.ends_at > now).values(ends_at=now)
            )
            if done.rowcount:
                await conn.execute(
                    update(g)
                    .where(g.c.notify_at > now, g.c.latest_version > g.c.notified_version)
                    .values(notify_at=now, rev=g.c.rev + 1)
                )
            return bool(done.rowcount)


class _Row:
    """Lets a freshly inserted dict go through the same conversion as a fetched row."""

    def __init__(self, mapping: dict[str, object]) -> None:
        self._mapping = mapping
