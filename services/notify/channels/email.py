"""Email delivery over SMTP with aiosmtplib."""

from __future__ import annotations

import asyncio
import contextlib

import aiosmtplib

from schemas.alerts import AlertRaised
from services.common.settings import Settings
from services.notify.render import Outgoing, render_email
from services.notify.routing import FocalPoint


class EmailChannel:
    name = "email"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._closing: set[asyncio.Task[None]] = set()

    def applies(self, focal_point: FocalPoint) -> bool:
        return bool(focal_point.email)

    async def send(self, alert: AlertRaised, focal_point: FocalPoint, out: Outgoing) -> None:
        """Returns as soon as the server accepted the message (250 after DATA): QUIT's round
        trip happens afterwards, outside the window between "sent" and "recorded"."""
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
        try:
            await smtp.send_message(render_email(alert, focal_point, s.smtp_from, out))
        except BaseException:
            smtp.close()
            raise
        task = asyncio.create_task(_quit(smtp))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(aiosmtplib.SMTPException, OSError):
        await smtp.quit()
