"""Measures notify's sent→recorded window: from the SMTP sink accepting a mail to the ledger
row committing ``sent``. Run: ``.venv/bin/python -m tests.integration.measure_notify_window``.

Not a test (no assertions on time): it prints percentiles for docs/notify.md.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

from services.common.db import make_engine
from services.common.settings import Settings
from services.notify import tables
from services.notify.channels.email import EmailChannel
from services.notify.grouping import Notice
from services.notify.ledger import Ledger, Outcome, enqueue
from services.notify.render import Outgoing
from services.notify.routing import FocalPoint
from tests.factories import alert
from tests.support import SmtpSink

N = 300


class StampingSink(SmtpSink):
    def __init__(self) -> None:
        super().__init__()
        self.accepted: list[float] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        result = await super().handle_DATA(server, session, envelope)
        self.accepted.append(time.perf_counter())
        return result


async def main() -> None:
    sink = StampingSink()
    sink.start()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite+aiosqlite:///{Path(tmp) / 'w.db'}")
        tables.serialise_sqlite_writes(engine)
        await tables.create(engine)
        ledger = Ledger(engine)
        channel = EmailChannel(Settings(smtp_port=sink.port))
        fp = FocalPoint(id="d", name="D", email=["d@example.org"], countries=["*"])
        a = alert()
        async with engine.begin() as conn:
            for i in range(N):
                await enqueue(
                    conn, Notice(f"k{i}", a.key, "notice", "d"), a.fingerprint, ["email"], 0
                )
        recorded: list[float] = []
        for d in await ledger.due(1, limit=N):
            assert await ledger.claim(d, 1, 60)
            await channel.send(a, fp, Outgoing(d.notification))
            await ledger.record(Outcome(d, "sent", 2))
            recorded.append(time.perf_counter())
        await engine.dispose()
    sink.stop()
    window = sorted((r - s) * 1000 for s, r in zip(sink.accepted, recorded, strict=True))
    q = statistics.quantiles(window, n=100)
    print(
        f"sent→recorded window over {N} emails (ms): "
        f"p50 {q[49]:.2f}  p99 {q[98]:.2f}  max {window[-1]:.2f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
