"""`tocsin run` never leaves a silently half-running pipeline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support import free_port, wait_until, write_config

pytestmark = [pytest.mark.e2e, pytest.mark.broker]


def _start(tmp: Path) -> tuple[subprocess.Popen[bytes], Path, str]:
    log = tmp / "stack.log"
    ingest_port = free_port()
    env = dict(
        os.environ,
        TOCSIN_INGEST_PORT=str(ingest_port),
        TOCSIN_CLASSIFY_PORT=str(free_port()),
        TOCSIN_NOTIFY_PORT=str(free_port()),
        TOCSIN_SMTP_PORT=str(free_port()),
        TOCSIN_CONFIG_DIR=str(write_config(tmp / "config")),
        TOCSIN_DATABASE_URL=f"sqlite+aiosqlite:///{tmp / 'tocsin.db'}",
    )
    argv = [sys.executable, "-m", "services.cli", "run", "--no-smtp-sink",
            "--broker-port", str(free_port())]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    return process, log, f"http://127.0.0.1:{ingest_port}"


def _child_pid(parent: int, needle: str) -> int | None:
    out = subprocess.run(["pgrep", "-P", str(parent), "-f", needle], capture_output=True, text=True)
    pids = out.stdout.split()
    return int(pids[0]) if pids else None


def _children(parent: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _healthy(url: str) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(url)).status_code == 200
    except httpx.TransportError:
        return False


async def test_a_killed_service_is_restarted(tmp_path: Path) -> None:
    process, log, ingest = _start(tmp_path)
    try:
        await wait_until(lambda: _healthy(f"{ingest}/readyz"), 60, "ingest ready")
        pid = _child_pid(process.pid, "serve ingest")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await wait_until(lambda: "ingest exited with code -9; restarting" in log.read_text(), 10,
                         "the restart message")  # fmt: skip
        await wait_until(lambda: _healthy(f"{ingest}/readyz"), 60, "ingest ready again")
        assert _child_pid(process.pid, "serve ingest") not in (None, pid)
        children = _children(process.pid)
        assert len(children) == 4  # broker, ingest, classify, notify
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0, log.read_text()
    assert not [c for c in children if _alive(c)], "Ctrl-C must stop every child"


async def test_the_broker_dying_stops_the_stack(tmp_path: Path) -> None:
    process, log, ingest = _start(tmp_path)
    try:
        await wait_until(lambda: _healthy(f"{ingest}/readyz"), 60, "ingest ready")
        broker = _child_pid(process.pid, "broker --listener-url")
        assert broker is not None
        os.kill(broker, signal.SIGKILL)
        await wait_until(lambda: process.poll() is not None, 60, "the stack to stop")
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 1
    assert "FATAL: broker exited" in log.read_text()
