"""Notify's composition root: a FastAPI app (operations API) owning its broker, database and
timer loop in its lifespan."""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

from services.common.broker import make_broker, publish_all
from services.common.db import make_engine
from services.common.lag import ConsumerLag
from services.common.settings import Settings
from services.common.telemetry import serve_metrics
from services.notify import tables
from services.notify.alert_store import AlertStore
from services.notify.api import build_api
from services.notify.channels import Channel
from services.notify.channels.email import EmailChannel
from services.notify.channels.slack import SlackChannel
from services.notify.delivery import AckLinks, Clock, RetryPolicy, Sender
from services.notify.handlers import build_router
from services.notify.ledger import Ledger
from services.notify.metrics import NotifyMetrics
from services.notify.routing import load_focal_points
from services.notify.scheduler import Scheduler
from services.notify.silences import Silences


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock = time.time,
    channels: Sequence[Channel] | None = None,
    rng: random.Random | None = None,
) -> FastAPI:
    """``clock``, ``channels`` and ``rng`` are for tests: a controlled clock drives timers."""
    settings = settings or Settings()
    metrics = NotifyMetrics()
    config = load_focal_points(settings.config_dir)
    broker = make_broker(settings, metrics.registry, "notify")
    engine = make_engine(settings.database_url)
    tables.serialise_sqlite_writes(engine)
    http = httpx.AsyncClient(timeout=httpx.Timeout(settings.slack_timeout_s))
    secret = settings.secret_key.get_secret_value().encode()

    async def publish(topic: str, messages: Sequence[tuple[str, BaseModel]]) -> None:
        await publish_all(broker, topic, messages)

    ledger = Ledger(engine)
    alerts = AlertStore(engine)
    silences = Silences(engine)
    email = EmailChannel(settings)
    sender = Sender(
        ledger=ledger,
        alerts=alerts,
        config=config,
        channels=channels if channels is not None else [email, SlackChannel(http)],
        metrics=metrics,
        links=AckLinks(settings.public_url, secret, settings.notify_ack_ttl_s),
        publish=publish,
        clock=clock,
        retry=RetryPolicy(
            settings.notify_max_attempts,
            settings.notify_backoff_base_s,
            settings.notify_backoff_cap_s,
        ),
        lease_s=settings.notify_lease_s,
        rng=rng or random.Random(),
    )
    scheduler = Scheduler(
        engine=engine,
        alerts=alerts,
        config=config,
        silences=silences,
        sender=sender,
        metrics=metrics,
        clock=clock,
        poll_s=settings.notify_poll_s,
    )
    broker.include_router(build_router(broker, scheduler))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await tables.create(engine)
        async with http, broker:
            await broker.start()
            scheduler.start()
            try:
                yield
            finally:
                await scheduler.stop()
                await email.close()
        await engine.dispose()

    app = FastAPI(title="Tocsin notify", version="1", lifespan=lifespan)
    app.state.scheduler = scheduler
    app.state.broker = broker
    app.state.ledger = ledger
    app.include_router(
        build_api(
            scheduler,
            ledger,
            silences,
            operator_token=settings.operator_token.get_secret_value(),
            secret=secret,
        )
    )
    serve_metrics(app, metrics.registry, ConsumerLag(broker, metrics.registry).refresh)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
