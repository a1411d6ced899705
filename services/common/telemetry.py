"""Logging and Prometheus plumbing every service shares."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, make_asgi_app
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with any ``extra={...}`` ids (report_id, fingerprint) kept."""

    _standard = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in self._standard})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(level: int = logging.INFO) -> None:
    """Plain lines on a terminal, JSON lines elsewhere (log shippers, ``make run`` in CI)."""
    handler = logging.StreamHandler(sys.stderr)
    if sys.stderr.isatty():
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiokafka narrates every group join at INFO; operators need its warnings only.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)


def metrics_app(
    registry: CollectorRegistry, before_scrape: Callable[[], Awaitable[None]] | None = None
) -> ASGIApp:
    """``/metrics`` for ``registry``; ``before_scrape`` refreshes measured values (consumer lag)."""
    return _Metrics(make_asgi_app(registry=registry), before_scrape)


def serve_metrics(
    app: Starlette,
    registry: CollectorRegistry,
    before_scrape: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Serve ``GET /metrics`` itself: a mount would answer it with a redirect to ``/metrics/``."""
    app.router.routes.append(
        Route("/metrics", metrics_app(registry, before_scrape), include_in_schema=False)
    )


class _Metrics:
    """An ASGI app object (not a function), so a Starlette ``Route`` passes requests as is."""

    def __init__(self, app: ASGIApp, before_scrape: Callable[[], Awaitable[None]] | None) -> None:
        self.app = app
        self.before_scrape = before_scrape

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.before_scrape is not None and scope["type"] == "http":
            await self.before_scrape()
        await self.app(scope, receive, send)
