"""The delivery sinks of a benchmark run, in their own process so they do not steal the
load generator's event loop: an aiosmtpd SMTP server and a minimal keep-alive HTTP server
standing in for Slack's incoming webhooks.

Every Slack POST is recorded with its arrival time (``time.time()``, comparable across
processes on one machine) and the bench tokens of the reports it quotes, in order. The
bench reads them over the same HTTP server: ``GET /stats`` (counts) and ``GET /dump``.

Run ``python -m bench.sinks --http-port P --smtp-port Q``.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import time
from typing import Any

import orjson
from aiosmtpd.smtp import SMTP, Envelope, Session

TOKEN = re.compile(r"bench-[0-9a-z]+-\d+")


class Receipts:
    def __init__(self) -> None:
        self.smtp = 0
        self.slack: list[tuple[float, list[str]]] = []
        """(arrival time, bench tokens in the order the message quotes them)."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.smtp += 1
        return "250 OK"

    def on_slack(self, body: bytes) -> None:
        at = time.time()
        tokens: list[str] = []
        for block in orjson.loads(body).get("blocks", []):
            if block.get("type") == "context":
                for element in block.get("elements", []):
                    tokens += TOKEN.findall(str(element.get("text", "")))
        self.slack.append((at, tokens))

    def answer(self, path: str) -> bytes:
        if path == "/stats":
            return orjson.dumps({"smtp": self.smtp, "slack": len(self.slack)})
        if path == "/dump":
            return orjson.dumps({"smtp": self.smtp, "slack": self.slack})
        if path == "/reset":
            self.smtp, self.slack = 0, []
            return b"{}"
        return b"ok"


async def _serve_http(receipts: Receipts, reader: asyncio.StreamReader, writer: Any) -> None:
    """HTTP/1.1 with keep-alive and Content-Length bodies: all the webhook client sends."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length) if length else b""
            if method == "POST":
                receipts.on_slack(body)
                answer = b"ok"
            else:
                answer = receipts.answer(path)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer)
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(http_port: int, smtp_port: int) -> None:
    receipts = Receipts()
    loop = asyncio.get_running_loop()
    http = await asyncio.start_server(
        lambda r, w: _serve_http(receipts, r, w), "127.0.0.1", http_port, backlog=512
    )
    smtp = await loop.create_server(
        lambda: SMTP(receipts, hostname="bench-sink"), "127.0.0.1", smtp_port, backlog=512
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()
    http.close()
    smtp.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--smtp-port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.http_port, args.smtp_port))


if __name__ == "__main__":
    main()
