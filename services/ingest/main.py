"""Ingest's composition root: a FastAPI app that owns its Kafka broker, its dedup database
and its feed pollers in its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, Response, status
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common.broker import make_broker
from services.common.db import adopt_tables, make_engine
from services.common.settings import Settings
from services.common.telemetry import serve_metrics
from services.ingest import language
from services.ingest.api import router, unparsable_body_is_422
from services.ingest.dedup import SeenReports, seen_database_url
from services.ingest.dedup import seen as seen_table
from services.ingest.feeds import FeedAuth, load_feeds
from services.ingest.limits import BodyLimit, TokenBucket
from services.ingest.metrics import IngestMetrics
from services.ingest.polling import FeedPoller, Polling
from services.ingest.publisher import ReportPublisher

log = logging.getLogger("tocsin.ingest")
PRUNE_EVERY_S = 3600.0


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    config = load_feeds(settings.config_dir)
    metrics = IngestMetrics()
    # Unsent reports expire in the producer by the time the request gets its 503: none goes
    # out late, so the feed's retry is the only copy.
    broker = make_broker(
        settings,
        metrics.registry,
        "ingest",
        request_timeout_ms=int(settings.ingest_publish_timeout_s * 1000),
    )
    engine = make_engine(seen_database_url(settings.database_url))
    seen = SeenReports(engine, settings.ingest_dedup_retention_s)
    publisher = ReportPublisher(
        broker,
        seen,
        metrics,
        timeout_s=settings.ingest_publish_timeout_s,
        max_in_flight=settings.ingest_max_in_flight,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(language.load)
        await seen.start()
        if adopted := await adopt_tables(engine, settings.database_url, [seen_table]):
            log.info("moved %d seen report ids out of the shared database", adopted)
        async with broker, httpx.AsyncClient(headers={"User-Agent": "tocsin-ingest"}) as client:
            await broker.start()
            polling = Polling(
                [FeedPoller(f, client, publisher, metrics) for f in config.feeds if f.poll]
                if settings.ingest_polling
                else []
            )
            polling.start()
            pruning = asyncio.create_task(_prune(seen), name="ingest-prune")
            try:
                yield
            finally:
                pruning.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pruning
                await polling.stop()
        await engine.dispose()

    app = FastAPI(
        title="Tocsin ingest",
        version="1",
        lifespan=lifespan,
        description="Feeds post reports here; see docs/ingest.md for limits and guarantees.",
    )
    app.state.settings = settings
    app.state.broker = broker
    app.state.metrics = metrics
    app.state.auth = FeedAuth(config)
    app.state.publisher = publisher
    app.state.seen = seen
    app.state.buckets = {
        f.id: TokenBucket(f.rate_limit.per_second, f.rate_limit.burst) for f in config.feeds
    }
    for f in config.feeds:
        for outcome in ("accepted", "duplicate", "rejected", "unavailable"):
            metrics.reports.labels(f.id, outcome)
    app.include_router(router)
    app.add_exception_handler(StarletteHTTPException, unparsable_body_is_422)
    app.add_middleware(BodyLimit, max_bytes=settings.ingest_max_body_bytes)
    serve_metrics(app, metrics.registry)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(response: Response) -> dict[str, str]:
        """Ready only while the broker answers: a balancer then sends posts elsewhere."""
        if not await broker.ping(timeout=2.0):
            response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
            return {"status": "kafka unreachable"}
        return {"status": "ready"}

    return app


async def _prune(seen: SeenReports) -> None:
    while True:
        try:
            removed = await seen.prune(time.time())
            if removed:
                log.info("forgot %d report ids older than the dedup window", removed)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("pruning seen report ids failed: %r", exc)
        await asyncio.sleep(PRUNE_EVERY_S)
