"""A local SMTP server that stores every message it receives as an ``.eml`` file."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


class MaildirHandler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._seq = itertools.count()
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        name = f"{time.strftime('%Y%m%dT%H%M%S')}-{next(self._seq):06d}.eml"
        content: Any = envelope.original_content or envelope.content or b""
        (self.directory / name).write_bytes(
            content if isinstance(content, bytes) else content.encode()
        )
        print(f"stored {name} for {', '.join(envelope.rcpt_tos)}", flush=True)
        return "250 Message accepted for delivery"


def serve(directory: Path, host: str = "127.0.0.1", port: int = 1025) -> None:
    controller = Controller(MaildirHandler(directory), hostname=host, port=port)
    controller.start()
    print(f"SMTP sink on {host}:{port}, storing mail in {directory}", flush=True)
    try:
        asyncio.run(_forever())
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


async def _forever() -> None:
    await asyncio.Event().wait()
