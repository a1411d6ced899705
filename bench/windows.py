"""Memory of the alert engine's cached window: bytes per event once a window is loaded.

Run ``python -m bench.windows [events]`` (default 30,000: about three hours of one alert at
three reports a second). The events are written to SQLite in a temporary directory, as the
engine saves them (five feeds, a story copied every 300 reports), then one ``load`` builds
the cached window while ``tracemalloc`` counts what it keeps.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import sys
import tempfile
import tracemalloc
from datetime import UTC, datetime, timedelta

from services.classify.alert_store import AlertStore, epoch, events
from services.classify.near_duplicates import near_duplicate_key
from services.common.db import make_engine

FINGERPRINT = "SD:killing_of_civilians"


async def measure(count: int = 30_000) -> float:
    """Bytes the cached window keeps per event."""
    with tempfile.TemporaryDirectory() as directory:
        engine = make_engine(f"sqlite+aiosqlite:///{directory}/windows.db")
        store = AlertStore(engine)
        await store.start()
        now = datetime.now(UTC)
        rows = []
        for i in range(count):
            text = f"Forces opened fire on marchers in town {i % 300}, killing {i % 50}. " * 5
            report_id = hashlib.sha256(str(i).encode()).hexdigest()
            story = hashlib.sha256(str(i % 300).encode()).hexdigest()
            rows.append(
                {
                    "fingerprint": FINGERPRINT,
                    "report_id": report_id,
                    "at": epoch(now - timedelta(seconds=count - i)),
                    "feed_id": f"feed-{i % 5}",
                    "severity": 3,
                    "story": story,
                    "sketch": near_duplicate_key(text),
                    "support": "{}",
                }
            )
        async with engine.begin() as conn:
            await conn.execute(events.insert(), rows)
        del rows
        gc.collect()
        tracemalloc.start()
        await store.load([FINGERPRINT], [], now - timedelta(days=1))
        gc.collect()
        kept, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        await engine.dispose()
    return kept / count


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 30_000
    per_event = asyncio.run(measure(count))
    print(f"cached window: {per_event:,.0f} bytes per event ({per_event * count / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
