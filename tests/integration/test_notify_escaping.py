"""Hostile report text over the real SMTP and Slack path: escaped in HTML, plain text in
Slack, never in a mail header."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.alerts import SupportingReport
from schemas.classification import Evidence
from tests.factories import T0, alert
from tests.integration.notify_harness import FakeClock, html_part, producer, running, text_part
from tests.support import EmbeddedBroker, SlackSink, SmtpSink, write_config

pytestmark = pytest.mark.broker

HOSTILE = (
    "<script>alert(1)</script> *bold* <!channel> @channel <https://evil.example|click>"
    "\r\nBcc: victim@example.org\r\nSubject: injected"
)


async def test_hostile_report_text_is_escaped_and_kept_out_of_headers(
    kafka: EmbeddedBroker,
    smtp_sink: SmtpSink,
    slack_sink: SlackSink,
    tmp_path: Path,
    sqlite_url: str,
) -> None:
    hostile = alert().model_copy(
        update={
            "reports": [
                SupportingReport(
                    report_id="r1",
                    feed_id="reliefweb",
                    title=HOSTILE,
                    url="javascript:alert(1)",
                    received_at=T0,
                    evidence=[Evidence(start=0, end=len(HOSTILE), text=HOSTILE)],
                )
            ]
        }
    )
    config = write_config(tmp_path / "config", slack_url=slack_sink.url)
    async with (
        running(kafka, smtp_sink, config, sqlite_url, FakeClock()) as notify,
        producer(kafka) as p,
    ):
        await notify.publish(p, hostile)
        await notify.settle()

    [mail] = smtp_sink.messages
    for name, value in mail.items():
        assert "injected" not in str(value), name
        assert "victim" not in str(value), name
        assert "script" not in str(value), name
    assert mail.get_all("Bcc") is None
    html = html_part(mail)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html
    assert "Bcc: victim@example.org" in text_part(mail)  # shown as text, inside the body

    [request] = slack_sink.requests
    body = request["body"]
    assert "script" not in body["text"]
    for block in body["blocks"]:
        texts = [block.get("text") or {}, *block.get("fields", []), *block.get("elements", [])]
        for t in texts:
            if "channel" in str(t.get("text", "")) or "script" in str(t.get("text", "")):
                assert t["type"] == "plain_text", block
    assert any(
        t.get("type") == "plain_text" and "@channel" in t.get("text", "")
        for block in body["blocks"]
        for t in [block.get("text") or {}, *block.get("elements", [])]
    )
