"""The delivery ledger on SQLite and on the local PostgreSQL server: one claim wins, and two
notify replicas on one database deliver nothing twice."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from services.common.db import make_engine
from services.notify import tables
from services.notify.grouping import Kind, Notice
from services.notify.ledger import Ledger, Outcome, enqueue, rows_of
from tests.factories import alert
from tests.integration.notify_harness import FakeClock, producer, running
from tests.support import EmbeddedBroker, SlackSink, SmtpSink, wait_until, write_config


async def test_a_row_is_created_once_and_claimed_by_one_sender(database_url: str) -> None:
    engine = make_engine(database_url)
    tables.serialise_sqlite_writes(engine)
    await tables.create(engine)
    notice = Notice("KG:x@1", "KG:x@1", "notice", "desk")
    async with engine.begin() as conn:
        assert await enqueue(conn, notice, "KG:x", ["email", "slack"], 100.0) == 2
        assert await enqueue(conn, notice, "KG:x", ["email", "slack"], 100.0) == 0
    first, second = Ledger(engine), Ledger(make_engine(database_url))
    [email, slack] = sorted(await first.due(100.0), key=lambda d: d.channel)
    assert await first.claim(email, 100.0, lease_s=60)
    assert not await second.claim(email, 100.0, lease_s=60)  # same snapshot, already taken
    await first.record(Outcome(email, "sent", 101.0))
    assert await second.status_of(email.key) == "sent"
    # A claim whose sender died runs out with its lease; then exactly one sender retakes it.
    assert await first.claim(slack, 100.0, lease_s=60)
    assert [d.key for d in await second.due(150.0)] == []
    [stale] = await second.due(161.0)
    assert await second.claim(stale, 161.0, lease_s=60)
    assert not await first.claim(stale, 161.0, lease_s=60)
    await first.record(Outcome(slack, "sent", 162.0))  # the dead sender's late write is ignored
    assert await second.status_of(slack.key) == "sending"
    await engine.dispose()
    await second.engine.dispose()


async def test_a_dead_letter_and_its_fallback_commit_together(database_url: str) -> None:
    """If the fallback cannot be written, the row is not given up either: its lease runs
    out and the attempt is made again, so the alert is never dropped unannounced."""
    engine = make_engine(database_url)
    tables.serialise_sqlite_writes(engine)
    await tables.create(engine)
    ledger = Ledger(engine)
    notice = Notice("KG:x@1", "KG:x@1", "notice", "slack-only")
    async with engine.begin() as conn:
        await enqueue(conn, notice, "KG:x", ["slack"], 100.0)
    [slack] = await ledger.due(100.0)
    assert await ledger.claim(slack, 100.0, lease_s=60)
    fallback = rows_of(
        Notice("KG:x@1~fallback", "KG:x@1", "fallback", "desk"), "KG:x", ["email"], 101.0
    )
    dead = Outcome(slack, "deadlettered", 101.0, "HTTPStatusError: 500")
    with pytest.raises(IntegrityError):
        await ledger.dead_letter(dead, [{**fallback[0], "status": None}])
    assert await ledger.status_of(slack.key) == "sending"
    await ledger.dead_letter(dead, fallback)
    assert await ledger.status_of(slack.key) == "deadlettered"
    assert await ledger.status_of(("KG:x@1~fallback", "desk", "email")) == "pending"
    await engine.dispose()


async def test_a_refill_supersedes_every_older_waiting_notice_and_claims_the_newest(
    database_url: str,
) -> None:
    """Versions compare as numbers (``@10`` is newer than ``@9``), reminders are never
    superseded, a sent newer version supersedes only a notice waiting for a retry, and the
    newest notice takes the queue place of the oldest one it replaced."""
    engine = make_engine(database_url)
    tables.serialise_sqlite_writes(engine)
    await tables.create(engine)
    ledger = Ledger(engine)

    async def add(key: str, kind: Kind, channels: list[str], due: float) -> None:
        notice = Notice(key, key.split("~")[0], kind, "desk")
        async with engine.begin() as conn:
            await enqueue(conn, notice, key.split("@")[0], channels, due)

    async def set_status(key: str, status: str, attempts: int) -> None:
        async with engine.begin() as conn:
            await conn.execute(
                update(tables.ledger)
                .where(tables.ledger.c.notification == key)
                .values(status=status, attempts=attempts)
            )

    for v in range(1, 13):
        await add(f"KG:x@{v}", "notice", ["email", "slack"], 100.0 + v)
    await add("KG:x@1~repeat1", "repeat", ["email"], 100.5)
    await add("TJ:z@1", "notice", ["email"], 120.0)  # failed once, waits for its retry
    await set_status("TJ:z@1", "retry", 1)
    await add("TJ:z@2", "notice", ["email"], 121.0)
    await set_status("TJ:z@2", "sent", 1)
    await add("KZ:w@1", "notice", ["email"], 130.0)  # never tried: sent regardless
    await add("KZ:w@2", "notice", ["email"], 131.0)
    await set_status("KZ:w@2", "sent", 1)
    await add("UZ:y@1", "notice", ["email"], 150.0)

    superseded, claimed = await ledger.take(200.0, limit=1, lease_s=60)
    assert sorted(d.key for d in superseded) == sorted(
        [(f"KG:x@{v}", "desk", c) for v in range(1, 12) for c in ("email", "slack")]
        + [("TJ:z@1", "desk", "email")]
    )
    assert [d.key for d in claimed] == [("KG:x@1~repeat1", "desk", "email")]
    superseded, claimed = await ledger.take(200.0, limit=3, lease_s=60)
    assert superseded == []
    assert [d.key for d in claimed] == [
        ("KG:x@12", "desk", "email"),
        ("KG:x@12", "desk", "slack"),
        ("KZ:w@1", "desk", "email"),
    ]
    assert await ledger.status_of(("UZ:y@1", "desk", "email")) == "pending"
    await engine.dispose()


@pytest.mark.broker
async def test_two_replicas_deliver_every_alert_once(
    kafka: EmbeddedBroker,
    smtp_sink: SmtpSink,
    slack_sink: SlackSink,
    tmp_path: Path,
    database_url: str,
) -> None:
    config = write_config(tmp_path / "config", slack_url=slack_sink.url)
    clock = FakeClock()
    alerts = [alert(country="KG", indicator=f"indicator_{i}") for i in range(60)]
    async with contextlib.AsyncExitStack() as stack:
        one = await stack.enter_async_context(
            running(kafka, smtp_sink, config, database_url, clock)
        )
        two = await stack.enter_async_context(
            running(kafka, smtp_sink, config, database_url, clock)
        )
        p = await stack.enter_async_context(producer(kafka))
        # Every alert twice, as after a rebalance: whichever replica gets a copy, one send.
        await one.publish(p, *alerts, *alerts)
        await wait_until(
            lambda: len(smtp_sink.messages) >= 60 and len(slack_sink.requests) >= 60,
            60,
            "every alert by email and Slack",
        )
        await one.settle()
        await two.settle()
    assert len(smtp_sink.messages) == 60
    assert len({m["Message-ID"] for m in smtp_sink.messages}) == 60
    assert len(slack_sink.requests) == 60
