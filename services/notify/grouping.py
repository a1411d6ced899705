"""Alertmanager's timers for one (alert fingerprint, focal point) group, as pure functions.

``on_version`` says how a new alert version changes a group; ``decide`` says what a due
group sends now and when it is due next. The scheduler applies both to the database with a
``rev`` check, so the same decision is never applied twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from services.notify.routing import Timing

Kind = Literal["notice", "resolved", "repeat", "escalation", "fallback"]


@dataclass(frozen=True)
class Notice:
    """One notification to enqueue: a ledger row per channel of ``focal_point``."""

    notification: str
    alert_key: str
    kind: Kind
    focal_point: str


@dataclass
class Decision:
    notices: list[Notice] = field(default_factory=list)
    changes: dict[str, Any] = field(default_factory=dict)


def alert_key(fingerprint: str, version: int) -> str:
    return f"{fingerprint}@{version}"


def on_version(
    group: dict[str, Any] | None,
    *,
    version: int,
    status: str,
    severity: int,
    now: float,
    timing: Timing,
) -> dict[str, Any] | None:
    """Column changes for a new version; None when the version is old news (redelivery)."""
    wait = timing.wait_for(severity).total_seconds()
    if group is None:
        return {
            "latest_version": version,
            "latest_status": status,
            "severity": severity,
            "notify_at": None if status == "resolved" else now + wait,
        }
    if version <= group["latest_version"]:
        return None
    if group["notified_version"] == 0:
        candidate = now + wait
    else:
        candidate = max(now, group["last_notified_at"] + timing.group_interval.total_seconds())
    current = group["notify_at"]
    changes: dict[str, Any] = {
        "latest_version": version,
        "latest_status": status,
        "severity": severity,
        "notify_at": candidate if current is None else min(current, candidate),
        "closed": False,
    }
    refired = group["latest_status"] == "resolved" and status == "firing"
    if refired or (status == "firing" and severity > group["severity"]):
        # A graver or returning alert is news: the old acknowledgement no longer covers it.
        changes.update(acked_at=None, acked_by=None, escalated_at=None, escalate_at=None)
    return changes


def decide(
    group: dict[str, Any],
    *,
    now: float,
    timing: Timing,
    silenced_until: float | None,
    fallback: str | None,
) -> Decision:
    """What a due group sends now, and its next due times."""
    d = Decision()
    fp, fingerprint = group["focal_point"], group["fingerprint"]
    latest = alert_key(fingerprint, group["latest_version"])
    firing = group["latest_status"] == "firing"
    acked = group["acked_at"] is not None
    interval = timing.group_interval.total_seconds()

    if silenced_until is not None:
        # Held back, not dropped: look again when the silence ends (or an interval passes).
        again = min(silenced_until, now + interval)
        if group["notify_at"] is not None and group["notify_at"] <= now:
            d.changes["notify_at"] = again
        if group["escalate_at"] is not None and group["escalate_at"] <= now:
            d.changes["escalate_at"] = again
        return d

    if group["notify_at"] is not None and group["notify_at"] <= now:
        if group["latest_version"] > group["notified_version"]:
            if firing or group["notified_version"] > 0:
                d.notices.append(Notice(latest, latest, "notice" if firing else "resolved", fp))
            d.changes.update(notified_version=group["latest_version"], last_notified_at=now)
            if firing and not acked:
                d.changes["notify_at"] = now + timing.repeat_interval.total_seconds()
                after = timing.escalation_for(group["severity"])
                if (
                    fallback is not None
                    and after is not None
                    and group["escalated_at"] is None
                    and group["escalate_at"] is None
                ):
                    d.changes["escalate_at"] = now + after.total_seconds()
            else:
                d.changes.update(notify_at=None, escalate_at=None, closed=not firing)
        elif firing and not acked:
            n = group["repeats"] + 1
            d.notices.append(Notice(f"{latest}~repeat{n}", latest, "repeat", fp))
            d.changes.update(repeats=n, notify_at=now + timing.repeat_interval.total_seconds())
        else:
            d.changes["notify_at"] = None

    escalate_at = d.changes.get("escalate_at", group["escalate_at"])
    if escalate_at is not None and escalate_at <= now:
        if firing and not acked and fallback is not None and group["notified_version"] > 0:
            d.notices.append(Notice(f"{latest}~escalation~{fp}", latest, "escalation", fallback))
            d.changes["escalated_at"] = now
        d.changes["escalate_at"] = None
    return d
