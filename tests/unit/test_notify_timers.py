"""Alertmanager's timers as pure functions (services/notify/grouping.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from services.notify.grouping import Notice, decide, on_version
from services.notify.routing import Timing

T = Timing(
    group_wait=timedelta(seconds=30),
    group_interval=timedelta(minutes=5),
    repeat_interval=timedelta(hours=1),
    escalate_after={3: timedelta(minutes=30)},
)


def group(**kw: Any) -> dict[str, Any]:
    base = {
        "fingerprint": "KG:x",
        "focal_point": "kg",
        "latest_version": 1,
        "latest_status": "firing",
        "severity": 2,
        "notified_version": 0,
        "notify_at": 0.0,
        "last_notified_at": None,
        "repeats": 0,
        "escalate_at": None,
        "escalated_at": None,
        "acked_at": None,
        "rev": 0,
    }
    return base | kw


def test_new_alert_waits_group_wait_but_critical_goes_at_once() -> None:
    warn = on_version(None, version=1, status="firing", severity=2, now=100, timing=T)
    crit = on_version(None, version=1, status="firing", severity=3, now=100, timing=T)
    assert warn is not None
    assert warn["notify_at"] == 130
    assert crit is not None
    assert crit["notify_at"] == 100


def test_old_or_repeated_version_changes_nothing() -> None:
    assert (
        on_version(group(latest_version=2), version=2, status="firing", severity=2, now=1, timing=T)
        is None
    )
    assert (
        on_version(group(latest_version=2), version=1, status="firing", severity=2, now=1, timing=T)
        is None
    )


def test_update_after_a_notice_waits_for_group_interval() -> None:
    g = group(notified_version=1, last_notified_at=100.0, notify_at=3700.0)
    changes = on_version(g, version=2, status="firing", severity=2, now=150, timing=T)
    assert changes is not None
    assert changes["notify_at"] == 400


def test_due_group_sends_newest_version_and_schedules_repeat_and_escalation() -> None:
    d = decide(
        group(latest_version=3, severity=3), now=100, timing=T, silenced_until=None, fallback="un"
    )
    assert d.notices == [Notice("KG:x@3", "KG:x@3", "notice", "kg")]
    assert d.changes["notify_at"] == 3700
    assert d.changes["escalate_at"] == 1900


def test_repeat_then_escalation_then_nothing_once_acknowledged() -> None:
    g = group(notified_version=1, notify_at=3700.0, escalate_at=1900.0, last_notified_at=100.0)
    esc = decide(g, now=1900, timing=T, silenced_until=None, fallback="un")
    assert esc.notices == [Notice("KG:x@1~escalation~kg", "KG:x@1", "escalation", "un")]
    rep = decide(g | {"escalate_at": None}, now=3700, timing=T, silenced_until=None, fallback="un")
    assert rep.notices == [Notice("KG:x@1~repeat1", "KG:x@1", "repeat", "kg")]
    acked = g | {"acked_at": 200.0}
    assert decide(acked, now=3700, timing=T, silenced_until=None, fallback="un").notices == []


def test_silence_holds_and_retries_when_it_ends() -> None:
    d = decide(
        group(notify_at=10.0, escalate_at=20.0), now=50, timing=T, silenced_until=120, fallback="un"
    )
    assert d.notices == []
    assert d.changes == {"notify_at": 120, "escalate_at": 120}


def test_resolved_is_sent_only_if_firing_was() -> None:
    told = group(latest_version=2, latest_status="resolved", notified_version=1)
    never = group(latest_version=2, latest_status="resolved")
    assert [
        n.kind for n in decide(told, now=1, timing=T, silenced_until=None, fallback=None).notices
    ] == ["resolved"]
    assert decide(never, now=1, timing=T, silenced_until=None, fallback=None).notices == []


def test_a_rise_in_severity_or_refiring_clears_the_acknowledgement() -> None:
    acked = group(notified_version=1, last_notified_at=0.0, acked_at=5.0, acked_by="kg")
    rise = on_version(acked, version=2, status="firing", severity=3, now=10, timing=T)
    same = on_version(acked, version=2, status="firing", severity=2, now=10, timing=T)
    back = on_version(
        acked | {"latest_status": "resolved"},
        version=2,
        status="firing",
        severity=2,
        now=10,
        timing=T,
    )
    assert rise is not None
    assert rise["acked_at"] is None
    assert same is not None
    assert "acked_at" not in same
    assert back is not None
    assert back["acked_at"] is None
