"""End-to-end latency: POST to ``/v1/reports`` until the Slack sink receives the alert.

Every report is critical (the immediate rule fires) and carries a unique token as its title
and external id. Alerts are versioned per country and indicator, so one Slack message can
stand for several reports: a reader of ``alerts.v1`` learns which reports each alert version
counts (its ``report_ids``, newest first, as ingest's 202 answers named them; ``reports``, the
evidence shown, holds only the strongest and newest few), and the Slack message names the
version through its newest report. A report's latency runs from the moment its POST was
due (open-loop arrivals, so a slow server cannot lower the offered rate) to the first Slack
message whose alert version counts it.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from dataclasses import dataclass, field

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.http import Connection, get
from bench.payloads import COUNTRIES, critical_text, dumps, report_in
from bench.stack import Stack
from bench.stages import HEADERS
from schemas import topics
from services.common.broker import FETCH_MAX_WAIT_MS

CONNECTIONS = 64
QUIET_S = 10.0
MAX_LATE_S = 2.0


@dataclass
class Result:
    offered_per_s: float
    planned: int
    posted: int
    delivered: int
    latencies_ms: list[float] = field(repr=False)
    """POST due → Slack receipt, per delivered report."""
    to_answer_ms: list[float] = field(repr=False)
    """POST due → ingest's 202: queueing for a connection plus ingest's own time."""
    to_alert_ms: list[float] = field(repr=False)
    """POST due → the bench reading an alert version that counts the report on alerts.v1:
    ingest, classify and alerting; the rest of the latency is notify's."""

    def percentile(self, p: float, of: str = "latencies_ms") -> float | None:
        """Over every posted report; one never delivered counts as infinitely late, so a
        percentile that lands on it is None (not met), not a flattering number."""
        if not self.posted:
            return None
        values: list[float] = getattr(self, of)
        ordered = sorted(values) + [math.inf] * (self.posted - len(values))
        value = ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]
        return None if math.isinf(value) else value


class AlertReader:
    """Reads ``alerts.v1`` from its end: newest report title → report ids the version counts."""

    def __init__(self, bootstrap: str) -> None:
        self.versions: dict[str, list[str]] = {}
        self.seen_at: dict[str, float] = {}
        """Report id → when a version counting it was first read."""
        # The embedded broker holds a fetch for its whole wait even when records arrive: at
        # aiokafka's default of 500 ms the bench saw alerts up to half a second late.
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            enable_auto_commit=False,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        )
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        await self._consumer.topics()
        ids = self._consumer.partitions_for_topic(topics.ALERTS) or set()
        partitions = [TopicPartition(topics.ALERTS, p) for p in ids]
        self._consumer.assign(partitions)
        await self._consumer.seek_to_end(*partitions)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            for records in (await self._consumer.getmany(timeout_ms=200)).values():
                for r in records:
                    alert = orjson.loads(r.value or b"{}")
                    titles = [str(s.get("title")) for s in alert.get("reports", [])]
                    ids = [str(i) for i in alert.get("report_ids", [])]
                    if titles:
                        self.versions[titles[0]] = ids
                        at = time.time()
                        for rid in ids:
                            self.seen_at.setdefault(rid, at)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()


async def offer(
    stack: Stack,
    run: str,
    rate: float,
    seconds: float,
    answered: dict[str, float],
    ids: dict[str, str],
) -> dict[str, float]:
    """POST critical reports at ``rate``/s for ``seconds``; returns token → due time of every
    report actually posted. Once a POST starts more than MAX_LATE_S after it was due the rate
    is not sustained: offering stops and reports still waiting for a connection are dropped.
    ``answered`` gets token → when ingest answered, ``ids`` token → the report id it gave."""
    countries = itertools.cycle(COUNTRIES)
    bodies = {c: critical_text(c) for c in COUNTRIES}
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        pool.put_nowait(Connection("127.0.0.1", stack.ingest_port))
    due: dict[str, float] = {}
    posted: set[str] = set()
    failures: list[str] = []
    overloaded = asyncio.Event()

    async def post(token: str, country: str) -> None:
        conn = await pool.get()
        try:
            if time.time() - due[token] > MAX_LATE_S:
                overloaded.set()
                return
            posted.add(token)
            status, answer = await conn.request(
                "POST", "/v1/reports", dumps(report_in(bodies[country], token)), HEADERS
            )
            if status != 202:
                failures.append(f"{status} {answer[:200]!r}")
            else:
                ids[token] = orjson.loads(answer)["id"]
            answered[token] = time.time()
        finally:
            pool.put_nowait(conn)

    start_wall, start = time.time(), time.perf_counter()
    tasks = []
    for i in range(int(rate * seconds)):
        if overloaded.is_set():
            break
        at = i / rate
        delay = start + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        token = f"bench-{run}-{i}"
        due[token] = start_wall + at
        tasks.append(asyncio.create_task(post(token, next(countries))))
    await asyncio.gather(*tasks)
    while not pool.empty():
        await pool.get_nowait().close()
    if failures:
        raise RuntimeError(f"{len(failures)} POSTs failed, first: {failures[0]}")
    return {token: due[token] for token in posted}


async def measure(
    stack: Stack, run: str, rate: float, seconds: float, settle: float = 30.0
) -> Result:
    reader = AlertReader(stack.bootstrap)
    await reader.start()
    try:
        answered: dict[str, float] = {}
        ids: dict[str, str] = {}
        due = await offer(stack, run, rate, seconds, answered, ids)
        token_of = {rid: token for token, rid in ids.items()}
        # Wait until every report is counted by a delivered notice, or, once notices flow,
        # until none has come for QUIET_S, or at most ``settle`` seconds.
        deadline = time.monotonic() + settle
        first = len(await _slack(stack))
        last, quiet_since = first, time.monotonic()
        while time.monotonic() < deadline:
            receipts = await _slack(stack)
            if len(_attribute(receipts, reader.versions, token_of, due)) >= len(due):
                break
            if len(receipts) != last:
                last, quiet_since = len(receipts), time.monotonic()
            elif last > first and time.monotonic() - quiet_since > QUIET_S:
                break
            await asyncio.sleep(0.5)
        latencies = _attribute(await _slack(stack), reader.versions, token_of, due)
    finally:
        await reader.stop()
    planned = int(rate * seconds)
    seen = {token_of[rid]: at for rid, at in reader.seen_at.items() if rid in token_of}
    to_alert = [(seen[t] - at) * 1000 for t, at in due.items() if t in seen]
    to_answer = [(answered[t] - at) * 1000 for t, at in due.items() if t in answered]
    return Result(
        rate, planned, len(due), len(latencies), list(latencies.values()), to_answer, to_alert
    )


async def _slack(stack: Stack) -> list[tuple[float, list[str]]]:
    _, body = await get("127.0.0.1", stack.sink_http_port, "/dump")
    return [(float(at), list(tokens)) for at, tokens in orjson.loads(body)["slack"]]


def _attribute(
    receipts: list[tuple[float, list[str]]],
    versions: dict[str, list[str]],
    token_of: dict[str, str],
    due: dict[str, float],
) -> dict[str, float]:
    """Latency in ms of each report, from the first Slack message whose version counts it."""
    latencies: dict[str, float] = {}
    for at, tokens in sorted(receipts):
        ids = versions.get(tokens[0], []) if tokens else []
        counted = [token_of[i] for i in ids if i in token_of] + tokens
        for token in counted:
            if token in due and token not in latencies:
                latencies[token] = (at - due[token]) * 1000
    return latencies
