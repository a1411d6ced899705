"""Rendering (escaping, headers), acknowledge link signatures, silences and retry delays."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pytest

from schemas.alerts import SupportingReport
from schemas.classification import Evidence
from services.notify.acks import AckLinkError, ack_url, verify
from services.notify.delivery import RetryPolicy
from services.notify.render import Outgoing, render_email, render_slack
from services.notify.routing import FocalPoint
from services.notify.silences import Silence, SilenceIn, silenced_until
from tests.factories import T0, alert

HOSTILE = "<script>x()</script> *bold* <!channel> @here\r\nBcc: victim@example.org"
FP = FocalPoint(
    id="kg-desk",
    name="KG",
    email=["kg@example.org"],
    slack_webhook="https://hooks.example.org/x",
    countries=["KG"],
)


def hostile_alert():  # type: ignore[no-untyped-def]
    report = SupportingReport(
        report_id="r",
        feed_id="f",
        title=HOSTILE,
        url="javascript:x()",
        received_at=T0,
        evidence=[Evidence(start=0, end=len(HOSTILE), text=HOSTILE)],
    )
    return alert().model_copy(update={"reports": [report]})


def test_email_escapes_html_and_builds_headers_only_from_controlled_fields() -> None:
    out = Outgoing("KG:x@1~repeat2", "repeat", "https://notify.example.org/v1/ack?f=a&s=b")
    msg = render_email(hostile_alert(), FP, "Tocsin <t@example.org>", out)
    headers = "\n".join(f"{k}: {v}" for k, v in msg.items())
    assert "victim" not in headers
    assert "script" not in headers
    assert msg["Subject"].startswith("[REMINDER] [Tocsin Critical] Kyrgyzstan")
    assert (
        msg["Message-ID"] == "<KG.state_incapacity_or_request_for_help.v1.repeat2.kg-desk@tocsin>"
    )
    wire = message_from_bytes(msg.as_bytes(), policy=policy.default)  # as the server gets it
    html = wire.get_body(("html",)).get_content()  # type: ignore[attr-defined]
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert 'href="javascript:' not in html
    assert 'href="https://notify.example.org/v1/ack?f=a&amp;s=b"' in html


def test_email_encodes_non_ascii_headers_and_bodies_as_utf8() -> None:
    msg = render_email(alert(country="CI"), FP, "Tocsin Zürich <t@example.org>", Outgoing("k"))
    raw = msg.as_bytes()
    assert raw.isascii()  # no SMTPUTF8 needed
    wire = message_from_bytes(raw, policy=policy.default)
    assert (
        wire["Subject"] == "[Tocsin Critical] Côte d'Ivoire: State incapacity or request for help"
    )
    assert wire["From"] == "Tocsin Zürich <t@example.org>"
    text = wire.get_body(("plain",)).get_content()  # type: ignore[attr-defined]
    assert "Côte d'Ivoire" in text


def test_slack_puts_untrusted_text_in_plain_text_and_adds_the_ack_button() -> None:
    body = render_slack(hostile_alert(), Outgoing("k", ack_url="https://n.example.org/ack"))
    for block in body["blocks"]:
        for t in [block.get("text") or {}, *block.get("fields", []), *block.get("elements", [])]:
            if "script" in str(t.get("text", "")) or "channel" in str(t.get("text", "")):
                assert t["type"] == "plain_text"
    [actions] = [b for b in body["blocks"] if b["type"] == "actions"]
    assert actions["elements"][0]["url"] == "https://n.example.org/ack"
    resolved = alert().model_copy(update={"status": "resolved"})
    assert all(
        b["type"] != "actions" for b in render_slack(resolved, Outgoing("k", ack_url="u"))["blocks"]
    )


def test_ack_links_are_signed_and_expire() -> None:
    secret = b"s3cret"
    url = ack_url("https://n.example.org/", secret, "KG:x", "kg-desk", 2000)
    assert url.startswith("https://n.example.org/v1/ack?f=KG%3Ax&p=kg-desk&e=2000&s=")
    sig = url.rsplit("s=", 1)[1]
    verify(secret, "KG:x", "kg-desk", 2000, sig, now=1999)
    with pytest.raises(AckLinkError, match="expired"):
        verify(secret, "KG:x", "kg-desk", 2000, sig, now=2000)
    with pytest.raises(AckLinkError, match="signature"):
        verify(secret, "LY:x", "kg-desk", 2000, sig, now=1)
    with pytest.raises(AckLinkError, match="signature"):
        verify(secret, "KG:x", "kg-desk", 9999, sig, now=1)
    with pytest.raises(AckLinkError, match="signature"):
        verify(b"other", "KG:x", "kg-desk", 2000, sig, now=1)


def test_silence_matches_every_field_and_only_while_active() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    s = Silence(
        id="1",
        matchers={"country": ["KG", "UZ"], "focal_point": ["kg-desk"]},
        starts_at=now,
        ends_at=now + timedelta(hours=1),
        created_by="ops",
        comment="",
    )
    t = now.timestamp()
    assert silenced_until([s], alert(), "kg-desk", t + 1) == t + 3600
    assert silenced_until([s], alert(), "other", t + 1) is None
    assert silenced_until([s], alert(country="LY"), "kg-desk", t + 1) is None
    assert silenced_until([s], alert(), "kg-desk", t + 3600) is None
    with pytest.raises(ValueError, match="time zone"):
        SilenceIn(matchers={"country": ["KG"]}, ends_at=datetime(2026, 1, 1), created_by="x")
    with pytest.raises(ValueError, match="no values"):
        SilenceIn(matchers={"country": []}, ends_at=now, created_by="x")


def test_retry_delay_grows_is_capped_and_jittered() -> None:
    policy = RetryPolicy(max_attempts=10, base_s=2, cap_s=60)
    rng = random.Random(1)
    for attempt, full in [(1, 2), (2, 4), (3, 8), (6, 60), (9, 60)]:
        delays = {policy.delay(attempt, rng) for _ in range(20)}
        assert all(full / 2 <= d <= full for d in delays)
        assert len(delays) > 1
