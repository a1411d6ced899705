"""Routing, grouping, repeats, silences, acknowledgement and escalation over the real broker,
a real SMTP server and a real Slack webhook server, with a controlled clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.factories import alert
from tests.integration.notify_harness import (
    OPERATOR,
    FakeClock,
    focal_points,
    producer,
    running,
    subjects,
    text_part,
    to,
)
from tests.support import EmbeddedBroker, SlackSink, SmtpSink

pytestmark = pytest.mark.broker

KG = "kg@example.org"
UN = "un@example.org"


def config(tmp_path: Path, slack: SlackSink) -> Path:
    return focal_points(
        tmp_path / "config",
        f"""
timing:
  group_wait: 30s
  group_wait_critical: 0s
  group_interval: 5m
  repeat_interval: 1h
  escalate_after: {{3: 30m, 2: 2h}}
regions:
  central_asia: [KG, UZ]
focal_points:
  - id: kg-desk
    name: Kyrgyzstan desk
    email: [{KG}]
    slack_webhook: {slack.url}
    regions: [central_asia]
    min_severity: 2
    fallback: un-desk
  - id: un-desk
    name: UN desk
    email: [{UN}]
    countries: [LY]
    indicators: [aerial_attack]
    min_severity: 3
""",
    )


async def test_routing_grouping_updates_and_resolved_notice(
    kafka: EmbeddedBroker,
    smtp_sink: SmtpSink,
    slack_sink: SlackSink,
    tmp_path: Path,
    database_url: str,
) -> None:
    clock = FakeClock()
    async with (
        running(kafka, smtp_sink, config(tmp_path, slack_sink), database_url, clock) as notify,
        producer(kafka) as p,
    ):
        # Severity 2 waits group_wait; a second version inside it is folded into one notice.
        await notify.publish(p, alert(severity=2, version=1), alert(severity=2, version=2))
        # Routing: LY aerial attacks go to the UN desk only; LY killings, and UZ below
        # min_severity, go nowhere.
        await notify.publish(
            p,
            alert(country="LY", indicator="aerial_attack"),
            alert(country="LY", indicator="killing_of_civilians"),
            alert(country="UZ", severity=1),
        )
        await notify.settle()
        assert subjects(smtp_sink.messages, KG) == []
        assert subjects(smtp_sink.messages, UN) == ["[Tocsin Critical] Libya: Aerial attack"]

        await notify.tick_to(31)
        [first] = to(smtp_sink.messages, KG)
        assert (
            first["Subject"] == "[Tocsin Warning] Kyrgyzstan: State incapacity or request for help"
        )
        assert ".v2.kg-desk@tocsin>" in first["Message-ID"]
        assert len(slack_sink.requests) == 1

        # An update within group_interval waits for it; then only the newest goes out.
        await notify.publish(p, alert(severity=2, version=3), alert(severity=2, version=4))
        await notify.tick_to(60)
        assert len(to(smtp_sink.messages, KG)) == 1
        await notify.tick_to(300)
        assert [m["Message-ID"] for m in to(smtp_sink.messages, KG)][1].endswith(
            ".v4.kg-desk@tocsin>"
        )

        # Resolved: one notice after group_interval, and no reminders afterwards.
        resolved = alert(severity=2, version=5).model_copy(update={"status": "resolved"})
        await notify.publish(p, resolved)
        await notify.tick_to(300)
        await notify.tick_to(6 * 3600)
        assert subjects(smtp_sink.messages, KG)[2:] == [
            "[RESOLVED] [Tocsin Warning] Kyrgyzstan: State incapacity or request for help"
        ]
        assert len(slack_sink.requests) == 3
        assert slack_sink.requests[-1]["body"]["text"].startswith("[RESOLVED]")


async def test_repeats_escalation_and_acknowledge_link(
    kafka: EmbeddedBroker,
    smtp_sink: SmtpSink,
    slack_sink: SlackSink,
    tmp_path: Path,
    database_url: str,
) -> None:
    clock = FakeClock()
    async with (
        running(kafka, smtp_sink, config(tmp_path, slack_sink), database_url, clock) as notify,
        producer(kafka) as p,
    ):
        await notify.publish(p, alert(severity=3))
        await notify.settle()
        assert len(to(smtp_sink.messages, KG)) == 1  # critical: no group_wait

        # Unacknowledged for 30 min (severity 3): escalated to the fallback, the UN desk.
        await notify.tick_to(29 * 60)
        assert to(smtp_sink.messages, UN) == []
        await notify.tick_to(60)
        [escalated] = to(smtp_sink.messages, UN)
        assert escalated["Subject"].startswith("[ESCALATED] ")
        assert "Not acknowledged by Kyrgyzstan desk" in text_part(escalated)

        # repeat_interval: a reminder after an hour, then another.
        await notify.tick_to(30 * 60)
        await notify.tick_to(3600)
        assert [s.split(" ")[0] for s in subjects(smtp_sink.messages, KG)] == [
            "[Tocsin",
            "[REMINDER]",
            "[REMINDER]",
        ]
        assert len({m["Message-ID"] for m in to(smtp_sink.messages, KG)}) == 3

        # The link in the mail: GET shows a form and changes nothing; POST acknowledges.
        link = re.search(
            r"Acknowledge \(stops reminders and escalation\): (\S+)",
            text_part(to(smtp_sink.messages, KG)[-1]),
        )
        assert link is not None
        url = urlsplit(link.group(1))
        page = await notify.http.get(f"{url.path}?{url.query}")
        assert page.status_code == 200
        assert "<form" in page.text
        assert (await notify.scheduler.groups_of(alert().fingerprint))[0]["acked_at"] is None
        fields = dict(re.findall(r'name="(\w)" value="([^"]*)"', page.text))
        fields = {k: v.replace("&amp;", "&") for k, v in fields.items()}
        done = await notify.http.post(
            "/v1/ack",
            data={**fields, "name": "Aida <b>"},
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 200
        assert "Acknowledged" in done.text
        assert "<b>" not in done.text
        [group] = [
            g
            for g in await notify.scheduler.groups_of(alert().fingerprint)
            if g["focal_point"] == "kg-desk"
        ]
        assert group["acked_by"] == "kg-desk (Aida <b>)"
        assert group["acked_at"] == clock()

        # Acknowledged: no more reminders; the history shows who was told what.
        sent = len(smtp_sink.messages)
        await notify.tick_to(5 * 3600)
        assert len(smtp_sink.messages) == sent
        history = await notify.http.get(f"/v1/alerts/{alert().fingerprint}", headers=OPERATOR)
        kinds = sorted(
            (d["kind"], d["focal_point"], d["channel"], d["status"])
            for d in history.json()["deliveries"]
        )
        assert kinds == [
            ("escalation", "un-desk", "email", "sent"),
            ("notice", "kg-desk", "email", "sent"),
            ("notice", "kg-desk", "slack", "sent"),
            ("repeat", "kg-desk", "email", "sent"),
            ("repeat", "kg-desk", "email", "sent"),
            ("repeat", "kg-desk", "slack", "sent"),
            ("repeat", "kg-desk", "slack", "sent"),
        ]


async def test_acknowledged_before_deadline_is_not_escalated(
    kafka: EmbeddedBroker,
    smtp_sink: SmtpSink,
    slack_sink: SlackSink,
    tmp_path: Path,
    database_url: str,
) -> None:
    clock = FakeClock()
    async with (
        running(kafka, smtp_sink, config(tmp_path, slack_sink), database_url, clock) as notify,
        producer(kafka) as p,
    ):
        await notify.publish(p, alert(severity=3))
        await notify.settle()
        await notify.tick_to(10 * 60)
        r = await notify.http.post(
            f"/v1/alerts/{alert().fingerprint}/ack", json={"by": "ops"}, headers=OPERATOR
        )
        assert r.status_code == 200
        assert r.json()["acknowledged_groups"] == 1
        assert (await notify.http.get("/v1/alerts", headers=OPERATOR)).json()[0][
            "acknowledged_by"
        ] == "operator:ops"
        await notify.tick_to(6 * 3600)
        assert subjects(smtp_sink.messages, UN) == []
        assert len(to(smtp_sink.messages, KG)) == 1
        assert len(slack_sink.requests) == 1


async def test_silence_holds_notices_until_it_is_expired(
    kafka: EmbeddedBroker,
    smtp_sink: SmtpSink,
    slack_sink: SlackSink,
    tmp_path: Path,
    database_url: str,
) -> None:
    clock = FakeClock()
    async with (
        running(kafka, smtp_sink, config(tmp_path, slack_sink), database_url, clock) as notify,
        producer(kafka) as p,
    ):
        ends = datetime.fromtimestamp(clock(), UTC) + timedelta(hours=2)
        r = await notify.http.post(
            "/v1/silences",
            json={
                "matchers": {"country": ["KG"], "focal_point": ["kg-desk"]},
                "ends_at": ends.isoformat(),
                "created_by": "ops",
                "comment": "known situation",
            },
            headers=OPERATOR,
        )
        assert r.status_code == 201, r.text
        silence = r.json()["id"]
        assert (
            await notify.http.post("/v1/silences", json={}, headers=OPERATOR)
        ).status_code == 422
        assert (await notify.http.get("/v1/silences")).status_code == 401

        await notify.publish(p, alert(severity=3), alert(country="LY", indicator="aerial_attack"))
        await notify.settle()
        await notify.tick_to(40 * 60)  # past the escalation deadline too
        assert to(smtp_sink.messages, KG) == []
        assert slack_sink.requests == []
        assert subjects(smtp_sink.messages, UN) == ["[Tocsin Critical] Libya: Aerial attack"]

        expired = await notify.http.delete(f"/v1/silences/{silence}", headers=OPERATOR)
        assert expired.status_code == 204
        await notify.settle()
        assert len(to(smtp_sink.messages, KG)) == 1
        assert len(slack_sink.requests) == 1
        assert (await notify.http.get("/v1/silences", headers=OPERATOR)).json() == []
