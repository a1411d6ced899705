"""Email delivery over SMTP with aiosmtplib, reusing connections for several messages."""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiosmtplib

from schemas.alerts import AlertRaised
from services.common.settings import Settings
from services.notify.render import Outgoing, render_email
from services.notify.routing import FocalPoint

IDLE_S = 20.0
"""An idle connection older than this is closed rather than reused: relays drop idle
clients, and a dropped one costs a failed attempt."""
MAX_IDLE = 8
"""Idle connections kept; more than the sender's concurrency is never needed."""


class EmailChannel:
    name = "email"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self._closing: set[asyncio.Task[None]] = set()

    def applies(self, focal_point: FocalPoint) -> bool:
        return bool(focal_point.email)

    async def send(self, alert: AlertRaised, focal_point: FocalPoint, out: Outgoing) -> None:
        """Returns as soon as the server accepted the message (250 after DATA); the
        connection then goes back to the pool (QUIT, if any, happens later, outside the
        window between "sent" and "recorded")."""
        message = render_email(alert, focal_point, self.settings.smtp_from, out)
        smtp = self._take()
        if smtp is not None:
            try:
                await smtp.send_message(message)
            except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                # Most likely the server dropped the idle connection; try a fresh one at
                # once (a message it did accept would have been retried anyway).
                smtp.close()
            except BaseException:
                smtp.close()
                raise
            else:
                self._give_back(smtp)
                return
        smtp = await self._connect()
        try:
            await smtp.send_message(message)
        except BaseException:
            smtp.close()
            raise
        self._give_back(smtp)

    async def close(self) -> None:
        """QUIT every pooled connection (at shutdown)."""
        idle, self._idle = self._idle, []
        await asyncio.gather(*(_quit(smtp) for smtp, _ in idle), *self._closing)

    def _take(self) -> aiosmtplib.SMTP | None:
        now = time.monotonic()
        while self._idle:
            smtp, since = self._idle.pop()
            if now - since < IDLE_S and smtp.is_connected:
                return smtp
            self._quit_later(smtp)
        return None

    def _give_back(self, smtp: aiosmtplib.SMTP) -> None:
        if len(self._idle) < MAX_IDLE:
            self._idle.append((smtp, time.monotonic()))
        else:
            self._quit_later(smtp)

    def _quit_later(self, smtp: aiosmtplib.SMTP) -> None:
        task = asyncio.create_task(_quit(smtp))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        smtp = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout_s,
        )
        await smtp.connect()
        return smtp


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await smtp.quit()
