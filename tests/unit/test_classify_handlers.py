"""Classify's subscribers on FastStream's in-memory TestKafkaBroker."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import KafkaBroker, TestKafkaBroker

from schemas import topics
from schemas.alerts import AlertRaised
from schemas.classification import ReportClassified
from schemas.reports import ReportReceived
from services.classify.classifier import Classifier
from services.classify.main import create_app
from services.common.settings import Settings
from tests.support import SEEDS, write_config


def _report(seed: str, report_id: str) -> ReportReceived:
    return ReportReceived(
        id=report_id,
        feed_id="reliefweb",
        received_at=datetime(2010, 6, 15, tzinfo=UTC),
        text=(SEEDS / seed).read_text(),
        title=seed,
    )


def _watch_outputs(
    broker: KafkaBroker,
) -> tuple[list[dict[str, object]], list[ReportClassified]]:
    """Lists that fill with what classify dead-letters and what it publishes as classified."""
    dead: list[dict[str, object]] = []
    classified: list[ReportClassified] = []

    @broker.subscriber(topics.DEADLETTER, group_id="test-d")
    async def seen_dead(m: dict[str, object]) -> None:
        dead.append(m)

    @broker.subscriber(topics.REPORTS_CLASSIFIED, group_id="test-c")
    async def seen_classified(m: ReportClassified) -> None:
        classified.append(m)

    return dead, classified


async def test_raw_report_becomes_classified_and_critical_alert(
    tmp_path: Path, sqlite_url: str
) -> None:
    app = create_app(Settings(config_dir=write_config(tmp_path), database_url=sqlite_url))
    broker = app.broker
    classified: list[ReportClassified] = []
    alerts: list[AlertRaised] = []

    @broker.subscriber(topics.REPORTS_CLASSIFIED, group_id="test-c")
    async def seen_classified(m: ReportClassified) -> None:
        classified.append(m)

    @broker.subscriber(topics.ALERTS, group_id="test-a")
    async def seen_alert(m: AlertRaised) -> None:
        alerts.append(m)

    async with TestKafkaBroker(broker) as br:
        report = _report("kyrgyzstan-open-statement-2010.txt", "kg-1")
        await br.publish(report, topics.REPORTS_RAW, key=b"kg-1")
        await br.publish(report, topics.REPORTS_RAW, key=b"kg-1")  # redelivery
        await br.publish(_report("stanley-foundation-2011-04.txt", "sf-1"), topics.REPORTS_RAW)
        rates = _report("kyrgyzstan-open-statement-2010.txt", "bank-1").model_copy(
            update={"text": "The central bank of Kenya left its interest rate unchanged."}
        )
        await br.publish(rates, topics.REPORTS_RAW)

    assert [c.report_id for c in classified] == ["kg-1", "kg-1", "sf-1", "bank-1"]
    # Only a report that can support an alert carries the sketch that alerting compares.
    assert classified[0].near_duplicate_key
    assert classified[3].near_duplicate_key is None
    assert classified[0].classification.countries[0] == "KG"
    assert classified[2].classification.severity < 2
    assert len(alerts) == 1, "a redelivered report must not raise a second alert version"
    assert (alerts[0].country, alerts[0].severity, alerts[0].version) == ("KG", 3, 1)
    assert alerts[0].reports[0].evidence, "every alert carries the sentences behind it"


async def test_poison_message_goes_to_deadletter_and_neighbours_survive(
    tmp_path: Path, sqlite_url: str
) -> None:
    app = create_app(Settings(config_dir=write_config(tmp_path), database_url=sqlite_url))
    broker = app.broker
    dead, classified = _watch_outputs(broker)

    async with TestKafkaBroker(broker) as br:
        await br.publish(b'{"id": "x", "text": 3}', topics.REPORTS_RAW)
        await br.publish(_report("stanley-foundation-2011-04.txt", "ok-1"), topics.REPORTS_RAW)

    assert len(dead) == 1
    assert "feed_id" in str(dead[0]["error"])
    assert [c.report_id for c in classified] == ["ok-1"]


async def test_a_report_the_classifier_fails_on_is_dead_lettered_and_the_batch_goes_on(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = create_app(Settings(config_dir=write_config(tmp_path), database_url=sqlite_url))
    broker = app.broker
    dead, classified = _watch_outputs(broker)
    real = Classifier.classify

    def fails_on_x(self: Classifier, text: str, **kwargs: Any) -> Any:
        if kwargs.get("report_id") == "x":
            raise KeyError("tens of\nthousands")
        return real(self, text, **kwargs)

    monkeypatch.setattr(Classifier, "classify", fails_on_x)

    async with TestKafkaBroker(broker) as br:
        await br.publish(_report("stanley-foundation-2011-04.txt", "x"), topics.REPORTS_RAW)
        await br.publish(_report("stanley-foundation-2011-04.txt", "ok-1"), topics.REPORTS_RAW)

    assert [(d["key"], str(d["error"]).split(":")[:2]) for d in dead] == [
        ("x", ["classifier", " KeyError"])
    ]
    assert [c.report_id for c in classified] == ["ok-1"]
