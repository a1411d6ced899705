"""Throughput of the alert engine (decide, publish to a no-op, save) per batch of 500.

Run ``python -m bench.alerting [reports] [database_url]`` (default 20,000 reports, SQLite in a
temporary directory; pass ``postgresql+asyncpg://…`` for PostgreSQL). The stream spreads
reports over 20 countries and 3 indicators, one report a second, severities 1-3, every
tenth a syndicated copy: windows fill up the way a busy day fills them.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from schemas.alerts import AlertRaised
from services.classify.alert_store import AlertStore
from services.classify.alerting import AlertEngine
from services.classify.near_duplicates import near_duplicate_key
from services.classify.rules import RulesConfig
from services.common.db import make_engine
from tests.alerting_support import T0, FakeClock, classified, story

COUNTRIES = [f"{a}{b}" for a in "ABCD" for b in "VWXYZ"]
INDICATORS = ["killing_of_civilians", "mass_displacement", "aerial_attack"]
BATCH = 500


async def measure(reports: int = 20_000, database_url: str | None = None) -> dict[str, float]:
    tmp = tempfile.mkdtemp()
    url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
    rng = random.Random(7)
    wire = story("wire")
    stream = [
        classified(
            f"r{i}",
            feed=f"feed-{rng.randrange(12)}",
            country=rng.choice(COUNTRIES),
            indicator=rng.choice(INDICATORS),
            severity=rng.choice((1, 1, 2, 2, 3)),
            at=T0 + timedelta(seconds=i),
            text=f"outlet {i}. {wire}" if i % 10 == 0 else None,
        )
        for i in range(reports)
    ]
    clock = FakeClock(T0)
    store = AlertStore(make_engine(url))
    engine = AlertEngine(store, RulesConfig(), clock)
    published = 0

    async def publish(alerts: list[AlertRaised]) -> None:
        nonlocal published
        published += len(alerts)

    await store.start()
    started = time.perf_counter()
    for n in range(0, reports, BATCH):
        clock.now = T0 + timedelta(seconds=n)
        await engine.handle(stream[n : n + BATCH], publish)
    elapsed = time.perf_counter() - started
    await store.close()

    texts = [story(f"t{i}", words=170) for i in range(2000)]  # about 1 KB each
    t = time.perf_counter()
    for text in texts:
        near_duplicate_key(text)
    sketch_us = (time.perf_counter() - t) / len(texts) * 1e6
    return {
        "reports": reports,
        "reports_per_s": reports / elapsed,
        "alert_versions": published,
        "sketch_us_per_1kb": sketch_us,
    }


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    result = asyncio.run(measure(count, sys.argv[2] if len(sys.argv) > 2 else None))
    print("  ".join(f"{k}={v:,.1f}" for k, v in result.items()))
