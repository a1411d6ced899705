"""Measures notify's delivery rate in-process: N critical alerts (distinct fingerprints) on
the embedded broker, real SMTP and Slack sinks in the same process, SQLite ledger.
Run: ``.venv/bin/python -m tests.integration.measure_notify_throughput [N]``.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from schemas import topics
from tests.factories import alert
from tests.integration.notify_harness import producer, running
from tests.support import EmbeddedBroker, SlackSink, SmtpSink, wait_until, write_config


async def main(n: int) -> None:
    kafka, smtp, slack = EmbeddedBroker(), SmtpSink(), SlackSink()
    await kafka.start()
    smtp.start()
    slack.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = write_config(Path(tmp) / "config", slack_url=slack.url)
            url = f"sqlite+aiosqlite:///{tmp}/notify.db"
            async with running(kafka, smtp, config, url, time.time), producer(kafka) as p:
                for i in range(n):
                    a = alert(indicator=f"indicator_{i}")
                    await p.send(topics.ALERTS, a.model_dump_json().encode(), key=b"k%d" % i)
                await p.flush()
                started = time.perf_counter()
                await wait_until(
                    lambda: len(smtp.messages) >= n and len(slack.requests) >= n, 600, "all"
                )
                took = time.perf_counter() - started
        print(f"{n} alerts, {2 * n} deliveries in {took:.1f}s: {n / took:.0f} alerts/s")
    finally:
        smtp.stop()
        slack.stop()
        kafka.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
