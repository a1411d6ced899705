"""Throughput of each stage on its own: ingest over HTTP, the classify consumer stage, and
notify's deliveries. Downstream services are frozen while a stage is measured so the stage
has the machine to itself; the backlog it leaves is what the next stage is measured on."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from bench.http import Connection, get
from bench.kafka import Ends, Progress, produce
from bench.payloads import FEED_TOKEN, critical_text, dumps, mixed_texts, report_in
from bench.stack import Stack
from schemas import topics
from schemas.alerts import AlertRaised, SupportingReport
from schemas.classification import Evidence

CLASSIFY_GROUP = "tocsin-classify"
ALERTING_GROUP = "tocsin-alerting"
NOTIFY_GROUP = "tocsin-notify"
HEADERS = {"Authorization": f"Bearer {FEED_TOKEN}", "Content-Type": "application/json"}


async def ingest(stack: Stack, run: str, seconds: float, clients: int, batch: int) -> float:
    """Reports/s accepted (202) by ``clients`` keep-alive connections posting for ``seconds``:
    one report per request when ``batch`` is 0, else arrays of ``batch`` reports."""
    texts = itertools.cycle(mixed_texts())
    serial = itertools.count()
    path = "/v1/reports/batch" if batch else "/v1/reports"

    def body() -> tuple[bytes, int]:
        def one() -> dict[str, object]:
            return report_in(next(texts), f"bench-{run}-{next(serial)}")

        if batch:
            return dumps([one() for _ in range(batch)]), batch
        return dumps(one()), 1

    accepted = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal accepted
        conn = Connection("127.0.0.1", stack.ingest_port)
        try:
            while time.perf_counter() < deadline:
                payload, n = body()
                status, answer = await conn.request("POST", path, payload, HEADERS)
                if status != 202:
                    raise RuntimeError(f"ingest answered {status}: {answer[:300]!r}")
                accepted += n
        finally:
            await conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return accepted / (time.perf_counter() - started)


async def stage_rate(
    progress: Progress,
    group: str,
    topic: str,
    preload: Callable[[], Awaitable[Ends]],
    expected: int,
) -> tuple[int, float]:
    """Records/s that consumer ``group`` commits while ``preload()`` floods ``topic`` far
    faster than the group can follow: from the start of the flood until the group has
    committed everything up to where the flood ended."""
    started = time.perf_counter()
    ends = await preload()
    await caught_up(progress, group, ends, 300)
    elapsed = time.perf_counter() - started
    # The flood's own size, not ends - committed: the broker has answered committed offsets
    # that undercount, which inflated the count (13,689 for a flood of 5,000).
    count = expected
    return count, count / elapsed


async def settle(progress: Progress, within: float = 300.0) -> None:
    """Wait until every stage has committed all that is on its topic, in pipeline order, so
    the next measurement starts on an idle pipeline."""
    for group, topic in (
        (CLASSIFY_GROUP, topics.REPORTS_RAW),
        (ALERTING_GROUP, topics.REPORTS_CLASSIFIED),
        (NOTIFY_GROUP, topics.ALERTS),
    ):
        await caught_up(progress, group, await progress.ends(topic), within)


async def caught_up(progress: Progress, group: str, ends: Ends, within: float) -> None:
    async def done() -> bool:
        return await progress.behind(group, ends) <= 0

    await until(done, within, f"{group} to commit everything")


async def until(
    condition: Callable[[], Awaitable[bool]], within: float, what: str, every: float = 0.02
) -> None:
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within:.0f}s waiting for {what}")
        await asyncio.sleep(every)


async def preload_alerts(bootstrap: str, run: str, count: int) -> Ends:
    """``count`` distinct alerts on ``alerts.v1``, each with its own fingerprint so no
    coalescing in notify can hide work: every one is delivered by email and Slack."""
    now = datetime.now(UTC)
    text = critical_text("Sudan")
    evidence = [Evidence(start=0, end=120, text=text[:120])]

    def records() -> list[tuple[bytes, bytes]]:
        out = []
        for i in range(count):
            alert = AlertRaised(
                fingerprint=f"SD:bench-{run}-{i}",
                version=1,
                rule="immediate",
                country="SD",
                indicator="killing_of_civilians",
                indicators=["killing_of_civilians", "aerial_attack"],
                severity=3,
                reports=[
                    SupportingReport(
                        report_id=f"{run}-{i}",
                        feed_id="reliefweb",
                        title=f"bench-{run}-{i}",
                        received_at=now,
                        evidence=evidence,
                    )
                ],
                first_seen=now,
                updated_at=now,
            )
            out.append((alert.fingerprint.encode(), alert.model_dump_json().encode()))
        return out

    return await produce(bootstrap, topics.ALERTS, records())


async def notify_rate(
    stack: Stack, progress: Progress, run: str, count: int, within: float
) -> dict[str, float | int]:
    """Alerts/s delivered (email and Slack both received) from the start of a flood of
    ``count`` alerts until the sinks have them all, or ``within`` seconds; and the rate at
    which notify took them in (committed on Kafka), which can be far higher when it queues
    deliveries in its database."""
    email0, slack0 = await sink_counts(stack)
    started = time.perf_counter()
    ends = await preload_alerts(stack.bootstrap, run, count)
    await caught_up(progress, NOTIFY_GROUP, ends, within)
    intake = count
    intake_s = time.perf_counter() - started
    deadline = started + within
    while True:
        email, slack = await sink_counts(stack)
        delivered = min(email - email0, slack - slack0)
        if delivered >= count or time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.1)
    return {
        "notify_alerts_per_s": delivered / (time.perf_counter() - started),
        "notify_alerts_delivered": delivered,
        "notify_alerts_offered": count,
        "notify_intake_alerts_per_s": intake / intake_s,
    }


async def quiet_sinks(stack: Stack, quiet_s: float = 3.0, within: float = 60.0) -> None:
    """Wait until no delivery has arrived for ``quiet_s``: notify's queued work from an
    earlier phase must not compete with the next one."""
    deadline = time.monotonic() + within
    last, since = await sink_counts(stack), time.monotonic()
    while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
        now = await sink_counts(stack)
        if now != last:
            last, since = now, time.monotonic()


async def sink_counts(stack: Stack) -> tuple[int, int]:
    """(emails, Slack messages) the sinks have received."""
    import orjson

    _, body = await get("127.0.0.1", stack.sink_http_port, "/stats")
    stats = orjson.loads(body)
    return int(stats["smtp"]), int(stats["slack"])
