"""Notify in-process on the real broker, real SMTP and Slack sinks, and a controlled clock."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from email.message import Message
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from fastapi import FastAPI
from sqlalchemy import and_, func, or_, select

from schemas import topics
from schemas.alerts import AlertRaised
from services.common.settings import Settings
from services.notify import tables
from services.notify.handlers import NOTIFY_GROUP
from services.notify.main import create_app
from tests.support import EmbeddedBroker, SmtpSink, drained, wait_until

T0 = 1_700_000_000.0
OPERATOR = {"Authorization": "Bearer test-operator-token"}


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def focal_points(directory: Path, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "focal_points.yaml").write_text(text)
    return directory


class Notify:
    def __init__(self, app: FastAPI, kafka: EmbeddedBroker, clock: FakeClock) -> None:
        self.app = app
        self.kafka = kafka
        self.clock = clock
        self.scheduler = app.state.scheduler
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://notify"
        )

    async def publish(self, producer: AIOKafkaProducer, *alerts: AlertRaised) -> None:
        for a in alerts:
            await producer.send_and_wait(
                topics.ALERTS, a.model_dump_json().encode(), key=a.fingerprint.encode()
            )

    async def idle(self) -> bool:
        """Nothing due at the clock's time is left undone (and the alerts are consumed)."""
        if not await drained(self.kafka.bootstrap, (NOTIFY_GROUP, topics.ALERTS)):
            return False
        now = self.clock()
        g, led = tables.groups, tables.ledger
        busy = or_(
            and_(led.c.status.in_(("pending", "retry")), led.c.due_at <= now),
            led.c.status == "sending",
        )
        async with self.scheduler.engine.connect() as conn:
            groups = await conn.scalar(
                select(func.count()).where(or_(g.c.notify_at <= now, g.c.escalate_at <= now))
            )
            rows = await conn.scalar(select(func.count()).select_from(led).where(busy))
        return groups == 0 and rows == 0

    async def settle(self, what: str = "notify to settle") -> None:
        self.scheduler.wake()
        await wait_until(self.idle, 30, what)

    async def tick_to(self, seconds: float) -> None:
        """Advance the clock and wait until everything then due is done."""
        self.clock.advance(seconds)
        await self.settle(f"notify to settle at +{self.clock() - T0:.0f}s")


@contextlib.asynccontextmanager
async def running(
    kafka: EmbeddedBroker,
    smtp: SmtpSink,
    config_dir: Path,
    database_url: str,
    clock: FakeClock,
    **overrides: Any,
) -> AsyncIterator[Notify]:
    settings = Settings(
        kafka_bootstrap=kafka.bootstrap,
        smtp_port=smtp.port,
        config_dir=config_dir,
        database_url=database_url,
        operator_token="test-operator-token",
        notify_poll_s=0.05,
        **overrides,
    )
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        notify = Notify(app, kafka, clock)
        async with notify.http:
            yield notify


@contextlib.asynccontextmanager
async def producer(kafka: EmbeddedBroker) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


def to(messages: list[Message], address: str) -> list[Message]:
    return [m for m in messages if m["To"] == address]


def subjects(messages: list[Message], address: str) -> list[str]:
    return [" ".join(str(m["Subject"]).split()) for m in to(messages, address)]


def text_part(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text/plain part")


def html_part(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text/html part")
