"""The system under test: the sinks and ``tocsin run`` as separate processes on free ports,
with a temporary config dir and database, and what the bench needs to see of them."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.http import get
from bench.payloads import FEED_TOKEN
from tests.support import free_port, write_config

SERVICES = ("ingest", "classify", "notify")


def _config(directory: Path, slack_url: str) -> Path:
    """The dev rules; one feed, ``bench``, with a rate limit the bench cannot reach; one focal
    point for every country at severity 2 and up, by email and Slack, with every notification
    timer at zero so each alert version is a notice: the bench measures the machinery, not
    the grouping policy (which by default holds updates of one alert for 5 minutes)."""
    write_config(directory, slack_url=slack_url)
    digest = hashlib.sha256(FEED_TOKEN.encode()).hexdigest()
    (directory / "feeds.yaml").write_text(
        "feeds:\n"
        "  - id: bench\n"
        f'    token_sha256: "{digest}"\n'
        "    rate_limit: {per_second: 1000000, burst: 1000000}\n"
    )
    (directory / "focal_points.yaml").write_text(
        "timing: {group_wait: 0s, group_wait_critical: 0s, group_interval: 0s}\n"
        "focal_points:\n"
        "  - id: bench-desk\n"
        "    name: Bench desk\n"
        "    email: [desk@example.org]\n"
        f"    slack_webhook: {slack_url}\n"
        '    countries: ["*"]\n'
        "    min_severity: 2\n"
    )
    return directory


@dataclass
class Stack:
    workdir: Path
    broker_port: int = field(default_factory=free_port)
    ingest_port: int = field(default_factory=free_port)
    classify_port: int = field(default_factory=free_port)
    notify_port: int = field(default_factory=free_port)
    sink_http_port: int = field(default_factory=free_port)
    sink_smtp_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.broker_port}"

    async def start(self, within: float = 90.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        slack_url = f"http://127.0.0.1:{self.sink_http_port}/hooks/bench"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOCSIN_")}
        env.update(
            PYTHONUNBUFFERED="1",
            TOCSIN_INGEST_PORT=str(self.ingest_port),
            TOCSIN_CLASSIFY_PORT=str(self.classify_port),
            TOCSIN_NOTIFY_PORT=str(self.notify_port),
            TOCSIN_SMTP_PORT=str(self.sink_smtp_port),
            TOCSIN_CONFIG_DIR=str(_config(self.workdir / "config", slack_url)),
            TOCSIN_DATABASE_URL=f"sqlite+aiosqlite:///{self.workdir / 'tocsin.db'}",
        )
        self._spawn(
            "sinks",
            [
                "-m",
                "bench.sinks",
                "--http-port",
                str(self.sink_http_port),
                "--smtp-port",
                str(self.sink_smtp_port),
            ],
            env,
        )
        self._spawn(
            "stack",
            ["-m", "services.cli", "run", "--no-smtp-sink", "--broker-port", str(self.broker_port)],
            env,
        )
        deadline = time.monotonic() + within
        while not await self._ready():
            for name, p in self.processes.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited during start-up; see {self._log(name)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the stack was not ready in {within:.0f}s; see {self.workdir}")
            await asyncio.sleep(0.2)

    def _log(self, name: str) -> Path:
        return self.workdir / f"{name}.log"

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        with self._log(name).open("wb") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, *args], env=env, stdout=log, stderr=subprocess.STDOUT
            )

    async def _ready(self) -> bool:
        checks = [
            (self.ingest_port, "/readyz"),
            (self.classify_port, "/readyz"),
            (self.notify_port, "/healthz"),
            (self.sink_http_port, "/stats"),
        ]
        try:
            for port, path in checks:
                status, _ = await get("127.0.0.1", port, path)
                if not 200 <= status < 300:
                    return False
        except OSError:
            return False
        return set(SERVICES) <= set(self.service_pids())

    def service_pids(self) -> dict[str, int]:
        """Pids of the service processes that ``tocsin run`` started for this stack."""
        parent = self.processes["stack"].pid
        found: dict[str, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                argv = [a for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
            except (OSError, IndexError, ValueError):
                continue
            if ppid != parent:
                continue
            if len(argv) > 2 and argv[-2] == b"serve":
                found[argv[-1].decode()] = int(entry.name)
            elif b"broker" in argv:
                found["broker"] = int(entry.name)
        return found

    def peak_rss_mb(self) -> dict[str, float]:
        """VmHWM (peak resident set) of each service and of the broker, in MB."""
        peaks: dict[str, float] = {}
        for name, pid in self.service_pids().items():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks[name] = int(line.split()[1]) / 1024
        return peaks

    def stop(self) -> None:
        for name in ("stack", "sinks"):
            p = self.processes.get(name)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGINT if name == "stack" else signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
