"""The whole pipeline as separate processes on the real broker: POST in, email and Slack out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from schemas import topics
from tests.support import (
    SEEDS,
    SlackSink,
    SmtpSink,
    drained,
    free_port,
    service_client,
    wait_until,
    write_config,
)

pytestmark = [pytest.mark.e2e, pytest.mark.broker]

TOKEN = "dev-token-reliefweb"


class Stack:
    def __init__(self, tmp: Path, smtp: SmtpSink, slack: SlackSink) -> None:
        self.broker_port = free_port()
        self.ingest = f"http://127.0.0.1:{free_port()}"
        self.env = dict(
            os.environ,
            TOCSIN_INGEST_PORT=self.ingest.rsplit(":", 1)[1],
            TOCSIN_CLASSIFY_PORT=str(free_port()),
            TOCSIN_NOTIFY_PORT=str(free_port()),
            TOCSIN_SMTP_PORT=str(smtp.port),
            TOCSIN_CONFIG_DIR=str(write_config(tmp / "config", slack_url=slack.url)),
            TOCSIN_DATABASE_URL=f"sqlite+aiosqlite:///{tmp / 'tocsin.db'}",
        )
        self.log = (tmp / "stack.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services.cli",
                "run",
                "--no-smtp-sink",
                "--broker-port",
                str(self.broker_port),
            ],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(30)
        self.log.close()
        return code


@pytest.fixture
def stack(tmp_path: Path, smtp_sink: SmtpSink, slack_sink: SlackSink) -> Iterator[Stack]:
    s = Stack(tmp_path, smtp_sink, slack_sink)
    try:
        yield s
    finally:
        if s.process.poll() is None:
            assert s.stop() == 0, (tmp_path / "stack.log").read_text()


async def _post(client: httpx.AsyncClient, stack: Stack, seed: str, title: str) -> None:
    body = {"text": (SEEDS / seed).read_text(), "title": title, "kind": "official"}
    r = await client.post(
        f"{stack.ingest}/v1/reports", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert r.status_code == 202, r.text


async def _ready(client: httpx.AsyncClient, stack: Stack) -> bool:
    assert stack.process.poll() is None, "the stack exited during start-up"
    try:
        return (await client.get(f"{stack.ingest}/readyz")).status_code == 200
    except httpx.TransportError:
        return False


async def test_kyrgyzstan_statement_reaches_email_and_slack_commentary_does_not(
    stack: Stack, smtp_sink: SmtpSink, slack_sink: SlackSink
) -> None:
    async with service_client() as client:
        await wait_until(lambda: _ready(client, stack), 60, "ingest /readyz")
        await _post(
            client,
            stack,
            "stanley-foundation-2011-04.txt",
            "Mass Atrocities and the International Community",
        )
        await _post(
            client, stack, "kyrgyzstan-open-statement-2010.txt", "Open Statement on Kyrgyzstan"
        )

        await wait_until(lambda: smtp_sink.messages and slack_sink.requests, 30, "email and Slack")
        # Everything posted has passed every stage: nothing else can still arrive.
        await wait_until(
            lambda: drained(
                stack.bootstrap,
                ("tocsin-classify", topics.REPORTS_RAW),
                ("tocsin-alerting", topics.REPORTS_CLASSIFIED),
                ("tocsin-notify", topics.ALERTS),
            ),
            30,
            "all stages to commit",
        )

    assert len(smtp_sink.messages) == 1
    assert "Kyrgyzstan" in smtp_sink.messages[0]["Subject"]
    assert len(slack_sink.requests) == 1
    assert "Kyrgyzstan" in slack_sink.requests[0]["body"]["text"]
    assert stack.stop() == 0
