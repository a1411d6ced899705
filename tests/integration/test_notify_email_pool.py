"""The email channel reuses SMTP connections, and recovers when the server dropped one."""

from __future__ import annotations

from aiosmtpd.smtp import SMTP, Envelope, Session

from services.common.settings import Settings
from services.notify.channels.email import EmailChannel
from services.notify.render import Outgoing
from services.notify.routing import FocalPoint
from tests.factories import alert
from tests.support import SmtpSink, wait_until

FP = FocalPoint(id="d", name="D", email=["d@example.org"], countries=["*"])


class CountingSink(SmtpSink):
    """Counts SMTP sessions (one EHLO per connection) besides keeping the messages."""

    def __init__(self) -> None:
        super().__init__()
        self.sessions = 0
        self.servers: list[SMTP] = []
        self.loop = self._controller.loop

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        self.sessions += 1
        self.servers.append(server)
        session.host_name = hostname
        return responses


async def test_one_connection_carries_many_messages_and_a_dropped_one_is_replaced() -> None:
    sink = CountingSink()
    sink.start()
    channel = EmailChannel(Settings(smtp_port=sink.port))
    a = alert()
    try:
        for i in range(5):
            await channel.send(a, FP, Outgoing(f"{a.key}~repeat{i}", "repeat"))
        assert (len(sink.messages), sink.sessions) == (5, 1)
        # The server closes the idle connection (as relays do): the next mail still goes
        # out at once, on a fresh connection, and exactly once.
        transport = sink.servers[-1].transport
        assert transport is not None
        sink.loop.call_soon_threadsafe(transport.close)
        await wait_until(transport.is_closing, 10, "the server to drop the connection")
        await channel.send(a, FP, Outgoing(f"{a.key}~repeat9", "repeat"))
        assert (len(sink.messages), sink.sessions) == (6, 2)
        assert sink.messages[-1]["Message-ID"].endswith(".repeat9.d@tocsin>")
    finally:
        await channel.close()
        sink.stop()
