"""The window a batch judges with: cached events after ``since`` and the batch's own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.classify.windows import BatchWindow, WindowEvent

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _event(n: int) -> WindowEvent:
    return WindowEvent("KG:x", f"r{n}", T0 + timedelta(hours=n), "feed", 2, f"r{n}", None, None)


def test_cached_events_before_since_are_left_out_and_new_ones_added() -> None:
    cached = [_event(n) for n in range(5)]
    window = BatchWindow(cached, since=T0 + timedelta(hours=2))
    window.append(_event(9))
    assert [e.report_id for e in window] == ["r3", "r4", "r9"]
    assert [e.report_id for e in window] == ["r3", "r4", "r9"], "iterable more than once"


def test_events_the_cache_gains_after_the_batch_began_are_not_seen_twice() -> None:
    cached = [_event(0)]
    window = BatchWindow(cached, since=T0 - timedelta(hours=1))
    new = _event(1)
    window.append(new)
    cached.append(new)  # what the save does once the batch is stored
    assert [e.report_id for e in window] == ["r0", "r1"]
    assert cached == [_event(0), new]  # the cache itself is never copied or changed here
