"""Notify's subscriber and timers on TestKafkaBroker with fake channels and a fake clock
(the real path is in tests/integration/test_notify_*)."""

from __future__ import annotations

from pathlib import Path

import pytest
from faststream.exceptions import NackMessage
from faststream.kafka import KafkaBroker, TestKafkaBroker

from schemas import topics
from schemas.alerts import AlertRaised
from schemas.deliveries import NotificationSent
from services.common.settings import Settings
from services.notify import handlers, tables
from services.notify.grouping import Notice
from services.notify.ledger import enqueue
from services.notify.main import create_app
from services.notify.render import Outgoing
from services.notify.routing import FocalPoint
from tests.factories import alert
from tests.support import write_config


class FakeChannel:
    def __init__(self, name: str, fail: int = 0) -> None:
        self.name = name
        self.fail = fail
        self.sent: list[tuple[str, str]] = []

    def applies(self, focal_point: FocalPoint) -> bool:
        return True

    async def send(self, a: AlertRaised, focal_point: FocalPoint, out: Outgoing) -> None:
        if self.fail:
            self.fail -= 1
            raise ConnectionRefusedError("down")
        self.sent.append((out.notification, focal_point.id))


class Clock:
    now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def _run(
    tmp_path: Path,
    sqlite_url: str,
    *alerts: AlertRaised,
    countries: str = '["*"]',
    channels: list[FakeChannel] | None = None,
    clock: Clock | None = None,
    advance: tuple[float, ...] = (),
) -> tuple[list[FakeChannel], list[NotificationSent], object]:
    channels = channels or [FakeChannel("email")]
    clock = clock or Clock()
    settings = Settings(
        config_dir=write_config(tmp_path, countries=countries),
        database_url=sqlite_url,
        notify_backoff_base_s=1,
        notify_backoff_cap_s=4,
        notify_max_attempts=3,
    )
    app = create_app(settings, clock=clock, channels=channels)
    broker: KafkaBroker = app.state.broker
    scheduler = app.state.scheduler
    audit: list[NotificationSent] = []

    @broker.subscriber(topics.DELIVERIES, group_id="audit")
    async def seen(n: NotificationSent) -> None:
        audit.append(n)

    await tables.create(scheduler.engine)
    async with TestKafkaBroker(broker) as br:
        for a in alerts:
            await br.publish(a, topics.ALERTS, key=a.fingerprint.encode())
        await scheduler.tick()
        for seconds in advance:
            clock.now += seconds
            await scheduler.tick()
    await scheduler.engine.dispose()
    return channels, audit, app.state.scheduler.metrics


async def test_redelivered_alert_is_delivered_once_and_audited(
    tmp_path: Path, sqlite_url: str
) -> None:
    [channel], audit, metrics = await _run(tmp_path, sqlite_url, alert(), alert(), alert(version=2))
    # Critical goes out at once; v2 arrived before the first tick, so one notice carries it.
    assert channel.sent == [("KG:state_incapacity_or_request_for_help@2", "test-desk")]
    grouped = {"channel": "email", "reason": "grouped"}
    assert (
        metrics.registry.get_sample_value(  # type: ignore[attr-defined]
            "tocsin_notifications_suppressed_total", grouped
        )
        == 1
    )
    assert [(n.alert_key, n.outcome, n.kind) for n in audit] == [
        ("KG:state_incapacity_or_request_for_help@2", "sent", "notice")
    ]


async def test_routing_by_country_and_severity(tmp_path: Path, sqlite_url: str) -> None:
    [channel], _, _ = await _run(
        tmp_path,
        sqlite_url,
        alert(country="LY"),
        alert(country="KG", severity=1),
        alert(country="KG"),
        countries='["KG", "UZ"]',
    )
    assert [k for k, _ in channel.sent] == ["KG:state_incapacity_or_request_for_help@1"]


async def test_a_failing_channel_retries_alone_and_never_resends_the_other(
    tmp_path: Path, sqlite_url: str
) -> None:
    email, slack = FakeChannel("email", fail=2), FakeChannel("slack")
    _, audit, metrics = await _run(
        tmp_path, sqlite_url, alert(), channels=[email, slack], advance=(1, 2, 4)
    )
    assert len(email.sent) == 1
    assert len(slack.sent) == 1
    assert [(n.channel, n.attempt, n.outcome) for n in audit if n.channel == "email"] == [
        ("email", 1, "failed"),
        ("email", 2, "failed"),
        ("email", 3, "sent"),
    ]
    assert (
        metrics.registry.get_sample_value(  # type: ignore[attr-defined]
            "tocsin_notifications_failed_total", {"channel": "email", "reason": "connection"}
        )
        == 2
    )


async def test_last_attempt_dead_letters_and_counts(tmp_path: Path, sqlite_url: str) -> None:
    email = FakeChannel("email", fail=99)
    _, audit, metrics = await _run(
        tmp_path, sqlite_url, alert(), channels=[email], advance=(4, 4, 4, 4)
    )
    assert email.sent == []
    assert [n.outcome for n in audit] == ["failed", "failed", "deadlettered"]
    assert (
        metrics.registry.get_sample_value(  # type: ignore[attr-defined]
            "tocsin_notifications_total", {"channel": "email", "outcome": "deadlettered"}
        )
        == 1
    )


class FlakyScheduler:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def accept(self, alerts: list[AlertRaised]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError("database unavailable")


async def test_a_failing_database_is_retried_then_the_batch_is_nacked_not_committed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def no_wait(_: float) -> None:
        return None

    monkeypatch.setattr(handlers.asyncio, "sleep", no_wait)
    flaky = FlakyScheduler(failures=2)
    await handlers._store(flaky, [alert()])  # type: ignore[arg-type]
    assert flaky.calls == 3
    down = FlakyScheduler(failures=99)
    with pytest.raises(NackMessage):
        await handlers._store(down, [alert()])  # type: ignore[arg-type]
    assert down.calls == handlers.STORE_ATTEMPTS


async def test_a_reminder_retrying_when_acknowledged_is_suppressed(
    tmp_path: Path, sqlite_url: str
) -> None:
    class FailsReminders(FakeChannel):
        async def send(self, a: AlertRaised, focal_point: FocalPoint, out: Outgoing) -> None:
            if out.kind == "repeat":
                raise ConnectionRefusedError("down")
            await super().send(a, focal_point, out)

    channel, clock = FailsReminders("email"), Clock()
    settings = Settings(config_dir=write_config(tmp_path), database_url=sqlite_url)
    app = create_app(settings, clock=clock, channels=[channel])
    scheduler = app.state.scheduler
    await tables.create(scheduler.engine)
    async with TestKafkaBroker(app.state.broker) as br:
        await br.publish(alert(), topics.ALERTS)
        await scheduler.tick()
        clock.now += 4 * 3600  # repeat_interval: the reminder is queued and fails
        await scheduler.tick()
        await scheduler.acknowledge(alert().fingerprint, "someone")
        clock.now += 3600
        await scheduler.tick()
    history = await app.state.ledger.history(alert().fingerprint)
    await scheduler.engine.dispose()
    assert channel.sent == [("KG:state_incapacity_or_request_for_help@1", "test-desk")]
    assert sorted((h["kind"], h["status"]) for h in history) == [
        ("notice", "sent"),
        ("repeat", "suppressed"),
    ]


async def test_an_older_notice_still_waiting_is_superseded_by_the_newer_version(
    tmp_path: Path, sqlite_url: str
) -> None:
    channel, clock = FakeChannel("email"), Clock()
    settings = Settings(config_dir=write_config(tmp_path), database_url=sqlite_url)
    app = create_app(settings, clock=clock, channels=[channel])
    scheduler = app.state.scheduler
    await tables.create(scheduler.engine)
    v1, v2 = alert(), alert(version=2)
    async with scheduler.engine.begin() as conn:  # a backlog: both notices due, none sent
        await scheduler.alerts.add(conn, [v1, v2], clock())
        for a in (v1, v2):
            await enqueue(
                conn, Notice(a.key, a.key, "notice", "test-desk"), a.fingerprint, ["email"], clock()
            )
        repeat = Notice(f"{v1.key}~repeat1", v1.key, "repeat", "test-desk")
        await enqueue(conn, repeat, v1.fingerprint, ["email"], clock())
    async with TestKafkaBroker(app.state.broker):
        await scheduler.tick()
    history = await app.state.ledger.history(v1.fingerprint)
    superseded = {"channel": "email", "reason": "superseded"}
    count = scheduler.metrics.registry.get_sample_value(
        "tocsin_notifications_suppressed_total", superseded
    )
    await scheduler.engine.dispose()
    # Only the newest version's notice (it lists every report) and the reminder go out.
    assert sorted(channel.sent) == [(v1.key + "~repeat1", "test-desk"), (v2.key, "test-desk")]
    assert sorted((h["notification"], h["status"]) for h in history) == [
        (v1.key, "superseded"),
        (v1.key + "~repeat1", "sent"),
        (v2.key, "sent"),
    ]
    assert count == 1


async def test_a_backlog_longer_than_a_page_is_superseded_before_anything_is_sent(
    tmp_path: Path, sqlite_url: str
) -> None:
    """Forty versions of one alert wait for one slot, between notices of other alerts: by
    the first send every older version is superseded, and the newest takes the queue place
    of the oldest, so it goes out ahead of the other alerts' notices queued after that."""
    ledger_at_send: list[list[str]] = []

    class Watching(FakeChannel):
        async def send(self, a: AlertRaised, focal_point: FocalPoint, out: Outgoing) -> None:
            rows = await app.state.ledger.history(hot[0].fingerprint)
            ledger_at_send.append(
                sorted(r["status"] for r in rows if r["alert_key"] != hot[-1].key)
            )
            await super().send(a, focal_point, out)

    channel, clock = Watching("email"), Clock()
    settings = Settings(config_dir=write_config(tmp_path), database_url=sqlite_url)
    app = create_app(settings, clock=clock, channels=[channel])
    scheduler = app.state.scheduler
    scheduler.sender.concurrency = 1  # one send at a time, so their order is observable
    await tables.create(scheduler.engine)
    hot = [alert(version=v) for v in range(1, 41)]
    others = [alert(country=c) for c in ("UZ", "TJ", "KZ", "TM", "AF", "IR", "CN", "MN")]
    async with scheduler.engine.begin() as conn:
        await scheduler.alerts.add(conn, hot + others, clock())
        for i, a in enumerate(hot):  # the others are due in between the old versions
            queued = [a] + ([others[i]] if i < len(others) else [])
            for j, b in enumerate(queued):
                notice = Notice(b.key, b.key, "notice", "test-desk")
                await enqueue(conn, notice, b.fingerprint, ["email"], clock() - 100 + i + j / 2)
    async with TestKafkaBroker(app.state.broker):
        await scheduler.tick()
    history = await app.state.ledger.history(hot[0].fingerprint)
    await scheduler.engine.dispose()
    assert ledger_at_send[0] == ["superseded"] * 39
    assert channel.sent.index((hot[-1].key, "test-desk")) <= 1
    assert sorted(channel.sent) == sorted((a.key, "test-desk") for a in [hot[-1], *others])
    assert sorted(h["status"] for h in history) == ["sent"] + ["superseded"] * 39
