"""Notify's persisted timers: alert versions in, due groups and due deliveries out.

Everything that must happen later (group_wait, group_interval, repeat_interval, escalation,
retries) is a due time in the database, polled by one background task per replica. A
restart resumes from the tables; a second replica competes for the same rows through
guarded UPDATEs, so it can share the work but never repeat it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.alerts import AlertRaised
from services.notify import tables
from services.notify.alert_store import AlertStore
from services.notify.delivery import Clock, Sender
from services.notify.grouping import Decision, Notice, alert_key, decide, on_version
from services.notify.ledger import rows_of
from services.notify.metrics import NotifyMetrics
from services.notify.routing import FocalPoint, FocalPointsConfig, route
from services.notify.silences import Silences, silenced_until

log = logging.getLogger("tocsin.notify")

G = tables.groups


@dataclass
class Scheduler:
    engine: AsyncEngine
    alerts: AlertStore
    config: FocalPointsConfig
    silences: Silences
    sender: Sender
    metrics: NotifyMetrics
    clock: Clock
    poll_s: float = 1.0

    def __post_init__(self) -> None:
        self._wake = asyncio.Event()
        self._wake_sender = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- intake ---------------------------------------------------------------------------

    async def accept(self, batch: Sequence[AlertRaised]) -> None:
        """Store the versions and move their groups' timers, in one transaction: once this
        returns, the consumer may commit, and the work is in the database."""
        if not batch:
            return
        now = self.clock()
        ordered = sorted(batch, key=lambda a: (a.fingerprint, a.version))
        async with self.engine.begin() as conn:
            await self.alerts.add(conn, ordered, now)
            if not await self._move_all(conn, ordered, now):
                # Another replica wrote one of these groups meanwhile: go one by one (the
                # groups already written find their versions old news).
                for alert in ordered:
                    existing = await _group_ids(conn, alert.fingerprint)
                    targets = set(existing)
                    if alert.status == "firing":
                        targets |= {fp.id for fp in route(alert, self.config)}
                    for fp_id in sorted(targets):
                        await self._move(conn, alert, fp_id, now)
        self._wake.set()

    async def _move_all(
        self, conn: AsyncConnection, ordered: Sequence[AlertRaised], now: float
    ) -> bool:
        """The batch's groups read in one statement, moved in memory version by version,
        and written once each (guarded by ``rev``); False if a guard failed."""
        fingerprints = sorted({a.fingerprint for a in ordered})
        found = await conn.execute(select(G).where(G.c.fingerprint.in_(fingerprints)))
        state: dict[tuple[str, str], dict[str, Any]] = {}
        by_alert: dict[str, set[str]] = {}
        for r in found:
            state[(r.fingerprint, r.focal_point)] = dict(r._mapping)
            by_alert.setdefault(r.fingerprint, set()).add(r.focal_point)
        fresh: set[tuple[str, str]] = set()
        moved: set[tuple[str, str]] = set()
        for alert in ordered:
            targets = set(by_alert.get(alert.fingerprint, ()))
            if alert.status == "firing":
                targets |= {fp.id for fp in route(alert, self.config)}
            for fp_id in sorted(targets):
                fp = self.config.get(fp_id)
                if fp is None:
                    continue
                key = (alert.fingerprint, fp_id)
                group = state.get(key)
                changes = self._changes(group, alert, fp, now)
                if changes is None:
                    continue
                if group is None:
                    if alert.status == "resolved":
                        continue
                    state[key] = _new_group(alert.fingerprint, fp_id, now) | changes
                    by_alert.setdefault(alert.fingerprint, set()).add(fp_id)
                    fresh.add(key)
                    continue
                self._count_grouped(group, fp)
                group.update(changes)
                moved.add(key)
        new_rows = [state[k] for k in sorted(fresh)]
        if await tables.insert_ignore(conn, G, new_rows) != len(new_rows):
            return False
        for key in sorted(moved - fresh):
            group = state[key]
            done = await conn.execute(
                _MOVE,
                {"k_fingerprint": key[0], "k_focal_point": key[1], "k_rev": group["rev"]}
                | {f"v_{c}": group[c] for c in _MOVED},
            )
            if done.rowcount != 1:
                return False
        return True

    async def _move(
        self, conn: AsyncConnection, alert: AlertRaised, fp_id: str, now: float
    ) -> None:
        fp = self.config.get(fp_id)
        if fp is None:
            return
        pk = and_(G.c.fingerprint == alert.fingerprint, G.c.focal_point == fp_id)
        for _ in range(10):
            row = (await conn.execute(select(G).where(pk))).first()
            group = dict(row._mapping) if row else None
            changes = self._changes(group, alert, fp, now)
            if changes is None:
                return
            if group is None:
                if alert.status == "resolved":
                    return
                fresh = _new_group(alert.fingerprint, fp_id, now) | changes
                if await tables.insert_ignore(conn, G, [fresh]):
                    return
            else:
                done = await conn.execute(
                    update(G).where(pk, G.c.rev == group["rev"]).values(rev=G.c.rev + 1, **changes)
                )
                if done.rowcount == 1:
                    self._count_grouped(group, fp)
                    return
        raise RuntimeError(f"group {alert.fingerprint}/{fp_id} kept changing under us")

    def _changes(
        self, group: dict[str, Any] | None, alert: AlertRaised, fp: FocalPoint, now: float
    ) -> dict[str, Any] | None:
        return on_version(
            group,
            version=alert.version,
            status=alert.status,
            severity=alert.severity,
            now=now,
            timing=self.config.timing_of(fp),
        )

    def _count_grouped(self, group: dict[str, Any], fp: FocalPoint) -> None:
        """A version arriving while the previous one waits: the pending notice carries it."""
        if group["latest_version"] > group["notified_version"]:
            for channel in self.sender.channels:
                if channel.applies(fp):
                    self.metrics.suppressed.labels(channel.name, "grouped").inc()

    # -- timers ---------------------------------------------------------------------------

    async def tick(self) -> int:
        """Act on the due groups, then attempt every due delivery; returns how much was
        done. (The running service does both in two loops; tests step with this.)"""
        acted = await self.groups_due()
        return acted + await self.sender.send_due()

    async def groups_due(self) -> int:
        """Decide every due group, then apply all decisions in one transaction (in key
        order, so replicas racing on PostgreSQL lock rows in the same order)."""
        now = self.clock()
        due = or_(G.c.notify_at <= now, G.c.escalate_at <= now)
        query = select(G).where(due).order_by(G.c.fingerprint, G.c.focal_point).limit(500)
        async with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in await conn.execute(query)]
        if not rows:
            return 0
        active = await self.silences.active(now)
        plans = [await self._plan(group, active, now) for group in rows]
        acted = 0
        escalations = 0
        async with self.engine.begin() as conn:
            new_rows: list[dict[str, Any]] = []
            for group, decision, notes in plans:
                got = await self._apply(conn, group, decision.changes, decision.notices, now, notes)
                if got is not None:
                    new_rows += got
                    acted += len(decision.notices)
                    escalations += sum(n.kind == "escalation" for n in decision.notices)
            await tables.insert_ignore(conn, tables.ledger, new_rows)
        if escalations:
            self.metrics.escalations.inc(escalations)
        if acted:
            self._wake_sender.set()
        return acted

    async def _plan(
        self, group: dict[str, Any], active: list[Any], now: float
    ) -> tuple[dict[str, Any], Decision, dict[str, str]]:
        fp = self.config.get(group["focal_point"])
        latest = await self.alerts.get(alert_key(group["fingerprint"], group["latest_version"]))
        if fp is None or latest is None:  # focal point removed from the config
            return group, Decision(changes={"notify_at": None, "escalate_at": None}), {}
        fallback = self.config.fallback_of(fp)
        held = silenced_until(active, latest, fp.id, now)
        decision = decide(
            group,
            now=now,
            timing=self.config.timing_of(fp),
            silenced_until=held,
            fallback=fallback.id if fallback else None,
        )
        if held is not None:
            for c in self.sender.channels:
                if c.applies(fp):
                    self.metrics.suppressed.labels(c.name, "silenced").inc()
        notes = {
            n.notification: f"Not acknowledged by {fp.name}: escalated to you as their fallback."
            for n in decision.notices
            if n.kind == "escalation"
        }
        return group, decision, notes

    async def _apply(
        self,
        conn: AsyncConnection,
        group: dict[str, Any],
        changes: dict[str, Any],
        notices: Sequence[Notice],
        now: float,
        notes: dict[str, str],
    ) -> list[dict[str, Any]] | None:
        """Apply a decision if nobody changed the group since we read it (``rev``); returns
        the ledger rows of its notices, to create in the same transaction (None: not
        applied)."""
        pk = and_(G.c.fingerprint == group["fingerprint"], G.c.focal_point == group["focal_point"])
        done = await conn.execute(
            update(G).where(pk, G.c.rev == group["rev"]).values(rev=G.c.rev + 1, **changes)
        )
        if done.rowcount != 1:
            return None
        rows = []
        for n in notices:
            target = self.config.get(n.focal_point)
            if target is None:
                continue
            channels = [c.name for c in self.sender.channels if c.applies(target)]
            rows += rows_of(n, group["fingerprint"], channels, now, notes.get(n.notification))
        return rows

    # -- acknowledgement --------------------------------------------------------------------

    async def acknowledge(self, fingerprint: str, by: str) -> int:
        """Stop repeats and escalation of an alert for every focal point; an update still
        goes out. Returns how many groups it acknowledged (0: unknown or already done)."""
        now = self.clock()
        async with self.engine.begin() as conn:
            done = await conn.execute(
                update(G)
                .where(G.c.fingerprint == fingerprint, G.c.acked_at.is_(None))
                .values(acked_at=now, acked_by=by[:200], escalate_at=None, rev=G.c.rev + 1)
            )
            # A repeat that is merely scheduled is cancelled; a pending update is not.
            await conn.execute(
                update(G)
                .where(
                    G.c.fingerprint == fingerprint,
                    G.c.notified_version >= G.c.latest_version,
                    G.c.notify_at.is_not(None),
                )
                .values(notify_at=None, rev=G.c.rev + 1)
            )
        if done.rowcount:
            self.metrics.acks.inc()
        return int(done.rowcount)

    async def groups_of(self, fingerprint: str) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(G).where(G.c.fingerprint == fingerprint).order_by(G.c.focal_point)
            )
            return [dict(r._mapping) for r in rows]

    # -- the loop ---------------------------------------------------------------------------

    def wake(self) -> None:
        self._wake.set()
        self._wake_sender.set()

    async def run(self) -> None:
        """The timers and the sender run side by side, so a round of sends never delays
        the decision (and the enqueueing) of notices that became due meanwhile."""
        await asyncio.gather(
            self._loop(self._timers, self._wake, "timers"),
            self._loop(self.sender.send_due, self._wake_sender, "sender"),
        )

    async def _timers(self) -> int:
        acted = await self.groups_due()
        self.metrics.scheduler_heartbeat.set(self.clock())
        return acted

    async def _loop(
        self, step: Callable[[], Awaitable[int]], wake: asyncio.Event, name: str
    ) -> None:
        while not self._stopping.is_set():
            wake.clear()
            busy = 0
            try:
                busy = await step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup must not stop the timers for good
                log.exception("notify %s round failed", name)
            if busy:
                continue  # more may be due: no poll delay while there is a backlog
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), self.poll_s)

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self.run(), name="notify-scheduler")

    async def stop(self, grace_s: float = 15.0) -> None:
        """Let the sends in flight finish and be recorded (a cancelled send is the one case
        that could later go out twice), then stop; cancel only after ``grace_s``."""
        if self._task is None:
            return
        self._stopping.set()
        self.wake()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), grace_s)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None


def _new_group(fingerprint: str, fp_id: str, now: float) -> dict[str, Any]:
    """Every column, so that new groups share one INSERT statement."""
    return {c.name: None for c in G.columns} | {
        "fingerprint": fingerprint,
        "focal_point": fp_id,
        "notified_version": 0,
        "repeats": 0,
        "closed": False,
        "rev": 0,
        "created_at": now,
    }


_MOVED = (
    "latest_version",
    "latest_status",
    "severity",
    "notify_at",
    "closed",
    "acked_at",
    "acked_by",
    "escalated_at",
    "escalate_at",
)
"""The columns a new version can change (``on_version``)."""

_MOVE = (
    update(G)
    .where(
        G.c.fingerprint == bindparam("k_fingerprint"),
        G.c.focal_point == bindparam("k_focal_point"),
        G.c.rev == bindparam("k_rev"),
    )
    .values(rev=G.c.rev + 1, **{c: bindparam(f"v_{c}") for c in _MOVED})
)


async def _group_ids(conn: AsyncConnection, fingerprint: str) -> list[str]:
    rows = await conn.execute(select(G.c.focal_point).where(G.c.fingerprint == fingerprint))
    return [r.focal_point for r in rows]
