"""Classify's composition root: ``faststream run services.classify.main:create_app --factory``."""

from __future__ import annotations

import logging

from faststream.asgi import AsgiFastStream, AsgiResponse, get, make_ping_asgi
from faststream.asgi.types import Scope

from schemas import topics
from services.classify.alert_store import AlertStore, metadata
from services.classify.alerting import AlertEngine, Clock, utcnow
from services.classify.classifier import Classifier
from services.classify.handlers import alert_publisher, alerting_subscriber, build_router
from services.classify.metrics import ClassifyMetrics
from services.classify.rules import load_rules
from services.classify.sweeper import Sweeper, partition_owner
from services.common.broker import consuming, make_broker
from services.common.db import adopt_tables, make_engine, own_database_url
from services.common.lag import ConsumerLag
from services.common.settings import Settings
from services.common.telemetry import metrics_app

log = logging.getLogger("tocsin.classify")


def create_app(settings: Settings | None = None, clock: Clock = utcnow) -> AsgiFastStream:
    settings = settings or Settings()
    rules = load_rules(settings.config_dir)
    metrics = ClassifyMetrics()
    broker = make_broker(settings, metrics.registry, "classify")
    store = AlertStore(make_engine(own_database_url(settings.database_url, "classify")))

    async def open_store() -> None:
        await store.start()
        moved = await adopt_tables(store.engine, settings.database_url, metadata.sorted_tables)
        if moved:
            log.info("moved %d alerting rows out of the shared database", moved)

    engine = AlertEngine(store, rules, clock)
    broker.include_router(build_router(broker, Classifier(), engine, metrics))

    @get(include_in_schema=False)
    async def ready(scope: Scope) -> AsgiResponse:
        if consuming(broker):
            return AsgiResponse(b"", 204)
        return AsgiResponse(b"not consuming yet: waiting for partitions", 503)

    sweeper = Sweeper(
        engine,
        alert_publisher(broker),
        partition_owner(alerting_subscriber(broker), topics.REPORTS_CLASSIFIED),
        rules.sweep_every,
        metrics.alert_published,
    )
    return AsgiFastStream(
        broker,
        asgi_routes=[
            ("/healthz", make_ping_asgi(broker, timeout=5.0)),
            ("/readyz", ready),
            (
                "/metrics",
                metrics_app(metrics.registry, ConsumerLag(broker, metrics.registry).refresh),
            ),
        ],
        on_startup=[open_store],
        after_startup=[sweeper.start],
        on_shutdown=[sweeper.stop],
        after_shutdown=[store.close],
    )
