"""Classify's alerting path on TestKafkaBroker: raw reports in, alerts out, with the real
classifier and near-duplicate keys computed from the text."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from faststream.kafka import TestKafkaBroker

from schemas import topics
from schemas.alerts import AlertRaised
from schemas.classification import ReportClassified
from schemas.reports import ReportReceived
from services.classify.main import create_app
from services.classify.near_duplicates import similarity
from services.common.settings import Settings
from tests.support import SEEDS, write_config


def _report(report_id: str, feed: str, text: str) -> ReportReceived:
    return ReportReceived(
        id=report_id,
        feed_id=feed,
        received_at=datetime(2010, 6, 15, tzinfo=UTC),
        text=text,
    )


async def test_syndicated_copies_share_a_story_and_update_one_alert(
    tmp_path: Path, sqlite_url: str
) -> None:
    app = create_app(
        Settings(config_dir=write_config(tmp_path), database_url=sqlite_url),
        clock=lambda: datetime(2010, 6, 15, tzinfo=UTC),
    )
    broker = app.broker
    classified: list[ReportClassified] = []
    alerts: list[AlertRaised] = []

    @broker.subscriber(topics.REPORTS_CLASSIFIED, group_id="test-c")
    async def seen_classified(m: ReportClassified) -> None:
        classified.append(m)

    @broker.subscriber(topics.ALERTS, group_id="test-a")
    async def seen_alert(m: AlertRaised) -> None:
        alerts.append(m)

    text = (SEEDS / "kyrgyzstan-open-statement-2010.txt").read_text()
    async with TestKafkaBroker(broker) as br:
        await br.publish(_report("a-1", "feed-a", text), topics.REPORTS_RAW)
        await br.publish(_report("b-1", "feed-b", f"Via wire service. {text}"), topics.REPORTS_RAW)
        await br.publish(_report("b-1", "feed-b", f"Via wire service. {text}"), topics.REPORTS_RAW)

    keys = [c.near_duplicate_key for c in classified]
    assert keys[0]
    assert keys[1]
    assert similarity(keys[0], keys[1]) >= 0.5
    assert [(a.version, a.change, a.rule) for a in alerts] == [
        (1, "raised", "immediate"),
        (2, "updated", "immediate"),
    ], "the redelivered copy adds nothing"
    assert alerts[1].report_ids == ["b-1", "a-1"]
    assert alerts[1].feeds == ["feed-a", "feed-b"]
