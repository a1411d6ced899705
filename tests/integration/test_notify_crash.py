"""kill -9 of a real notify process in the middle of 200 alerts, then a restart: every
(alert, focal point, channel) is delivered exactly once, counted at the sinks.

The sinks stop counting at a point mid-run and hold every later request open, so the process
dies with sends in flight that no sink has accepted; the test kills it once everything the
sinks did accept is recorded as sent. It thereby places the kill outside the one window no
sender can close (accepted by the sink, not yet recorded: docs/notify.md) and exercises
everything else: claimed rows whose lease runs out, uncommitted Kafka offsets, unsent rows.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import func, select

from schemas import topics
from services.common.db import make_engine
from services.notify import tables
from services.notify.handlers import NOTIFY_GROUP
from tests.factories import alert
from tests.integration.notify_harness import producer
from tests.support import EmbeddedBroker, SmtpSink, drained, free_port, wait_until, write_config

pytestmark = pytest.mark.broker

ALERTS = 200


class Gate:
    """Counts accepted deliveries across both sinks; past ``limit`` it holds requests."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.accepted = 0
        self.closed = False
        self.released = threading.Event()
        self._lock = threading.Lock()

    def admit(self) -> bool:
        with self._lock:
            if self.closed:
                return False
            self.accepted += 1
            if self.accepted >= self.limit:
                self.closed = True
            return True

    def reopen(self) -> None:
        """Held requests fail (the process that sent them is dead); new ones are accepted."""
        with self._lock:
            self.limit = 10**9
            self.closed = False
        self.released.set()


class GatedSmtp(SmtpSink):
    def __init__(self, gate: Gate) -> None:
        super().__init__()
        self.gate = gate

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.gate.admit():
            return await super().handle_DATA(server, session, envelope)
        await asyncio.to_thread(self.gate.released.wait, 60)
        return "451 try again later"


class GatedSlack:
    def __init__(self, gate: Gate) -> None:
        self.requests: list[dict[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                if gate.admit():
                    sink.requests.append(body)
                    status = 200
                else:
                    gate.released.wait(60)
                    status = 503
                try:
                    self.send_response(status)
                    self.end_headers()
                except OSError:
                    pass  # the sender was killed

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/crash"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def gate() -> Gate:
    return Gate(limit=150)


@pytest.fixture
def sinks(gate: Gate) -> Iterator[tuple[GatedSmtp, GatedSlack]]:
    smtp, slack = GatedSmtp(gate), GatedSlack(gate)
    smtp.start()
    yield smtp, slack
    gate.reopen()
    smtp.stop()
    slack.stop()


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", "notify"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


async def _healthy(process: subprocess.Popen[bytes], port: int, log: Path) -> bool:
    assert process.poll() is None, _tail(log)
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
    except httpx.TransportError:
        return False


async def test_kill_9_mid_run_then_restart_delivers_each_exactly_once(
    kafka: EmbeddedBroker, gate: Gate, sinks: tuple[GatedSmtp, GatedSlack], tmp_path: Path
) -> None:
    smtp, slack = sinks
    db = tmp_path / "notify.db"
    port = free_port()
    env = dict(
        os.environ,
        TOCSIN_KAFKA_BOOTSTRAP=kafka.bootstrap,
        TOCSIN_SMTP_PORT=str(smtp.port),
        TOCSIN_CONFIG_DIR=str(write_config(tmp_path / "config", slack_url=slack.url)),
        TOCSIN_DATABASE_URL=f"sqlite+aiosqlite:///{db}",
        TOCSIN_NOTIFY_PORT=str(port),
        TOCSIN_NOTIFY_POLL_S="0.1",
        TOCSIN_NOTIFY_LEASE_S="3",
        TOCSIN_NOTIFY_BACKOFF_BASE_S="0.2",
        TOCSIN_NOTIFY_BACKOFF_CAP_S="1",
    )
    log = tmp_path / "notify.log"
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    led = tables.ledger

    async def recorded(status: str) -> int:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).where(led.c.status == status)) or 0)

    async def recorded_sent() -> int:
        return await recorded("sent")

    first = _start(env, log)
    second: subprocess.Popen[bytes] | None = None
    try:
        await wait_until(lambda: _healthy(first, port, log), 60, "notify to start")
        async with producer(kafka) as p:
            for i in range(ALERTS):
                a = alert(country="KG", indicator=f"indicator_{i:03}")
                await p.send(
                    topics.ALERTS, a.model_dump_json().encode(), key=a.fingerprint.encode()
                )
            await p.flush()

        await wait_until(lambda: gate.closed, 60, "the sinks to accept 150 deliveries")
        # Everything a sink accepted is recorded; the sends still held open are not.
        await wait_until(
            lambda: _equal(recorded_sent, lambda: gate.accepted), 30, "the ledger to catch up"
        )
        assert await recorded("sending") > 0  # killed with sends in flight
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        accepted_before = gate.accepted
        assert accepted_before < 2 * ALERTS
        gate.reopen()

        second = _start(env, log)
        await wait_until(lambda: _healthy(second, port, log), 60, "notify to restart")
        await wait_until(
            lambda: len(smtp.messages) >= ALERTS and len(slack.requests) >= ALERTS,
            90,
            "every alert by email and Slack",
        )
        await wait_until(
            lambda: drained(kafka.bootstrap, (NOTIFY_GROUP, topics.ALERTS)), 30, "commits"
        )
        await wait_until(
            lambda: _equal(recorded_sent, lambda: 2 * ALERTS), 30, "every row recorded sent"
        )
        # The restarted process's operations API, on its real port, sees them all.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            assert (await client.get("/v1/alerts")).status_code == 401
            token = {"Authorization": "Bearer dev-only-operator-token"}
            listed = await client.get("/v1/alerts", headers=token)
            assert listed.status_code == 200
            assert len(listed.json()) == ALERTS
            one = await client.get("/v1/alerts/KG:indicator_007", headers=token)
            assert sorted((d["channel"], d["status"]) for d in one.json()["deliveries"]) == [
                ("email", "sent"),
                ("slack", "sent"),
            ]
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(15)
        await engine.dispose()

    ids = [m["Message-ID"] for m in smtp.messages]
    assert len(ids) == ALERTS
    assert len(set(ids)) == ALERTS
    titles = [r["text"] for r in slack.requests]
    assert len(titles) == ALERTS
    assert len({json.dumps(r["blocks"][1]) for r in slack.requests}) == ALERTS


def _tail(log: Path) -> str:
    return log.read_text()[-4000:]


async def _equal(a: Any, b: Any) -> bool:
    return bool(await a() == b())
