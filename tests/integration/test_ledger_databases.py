"""The delivery ledger on SQLite and on the local PostgreSQL server: one claim wins, and two
notify replicas on one database deliver nothing twice."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from services.common.db import make_engine
from services.notify import tables
from services.notify.grouping import Notice
from services.notify.ledger import Ledger, enqueue
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
    await first.finish(email, "sent", 101.0)
    assert await second.status_of(email.key) == "sent"
    # A claim whose sender died runs out with its lease; then exactly one sender retakes it.
    assert await first.claim(slack, 100.0, lease_s=60)
    assert [d.key for d in await second.due(150.0)] == []
    [stale] = await second.due(161.0)
    assert await second.claim(stale, 161.0, lease_s=60)
    assert not await first.claim(stale, 161.0, lease_s=60)
    await first.finish(slack, "sent", 162.0)  # the dead sender's late write is ignored
    assert await second.status_of(slack.key) == "sending"
    await engine.dispose()
    await second.engine.dispose()


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
