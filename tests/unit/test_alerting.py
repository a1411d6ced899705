"""The alert engine under a controlled clock: each rule fires exactly when it should, alerts
update, escalate and resolve, and a redelivery or a restart changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from schemas import topics
from schemas.classification import ReportClassified
from services.classify.alert_store import AlertStore
from services.classify.alerting import AlertEngine
from services.classify.rules import RulesConfig
from services.classify.sweeper import partition_owner
from services.common.db import make_engine
from tests.alerting_support import KILLING, T0, FakeClock, Outbox, classified, story


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


EngineFor = Callable[..., AlertEngine]


@pytest.fixture
async def engine_for(sqlite_url: str, clock: FakeClock) -> AsyncIterator[EngineFor]:
    """Engines on one database (a second one is a restarted classify), closed afterwards."""
    stores: list[AlertStore] = []

    def build(**rules: object) -> AlertEngine:
        stores.append(AlertStore(make_engine(sqlite_url)))
        return AlertEngine(stores[-1], RulesConfig.model_validate(rules), clock)

    yield build
    for store in stores:
        await store.close()


@pytest.fixture
def engine(engine_for: EngineFor) -> AlertEngine:
    return engine_for()


async def feed(engine: AlertEngine, outbox: Outbox, *reports: ReportClassified) -> None:
    """Each report in a batch of its own, as a slow stream delivers them."""
    for report in reports:
        await engine.handle([report], outbox)


# immediate


async def test_one_critical_report_fires_immediately(engine: AlertEngine, outbox: Outbox) -> None:
    await feed(engine, outbox, classified("w1", severity=2))
    assert outbox.sent == [], "one warning is not enough"
    await feed(engine, outbox, classified("c1", severity=3, country="LY", killed=170))
    [alert] = outbox.sent
    assert (alert.fingerprint, alert.rule, alert.version, alert.change) == (
        f"LY:{KILLING}",
        "immediate",
        1,
        "raised",
    )
    assert alert.report_ids == ["c1"]
    assert alert.reports[0].evidence
    assert alert.casualties.killed == 170
    assert alert.resolves_at == T0 + timedelta(hours=72)


# corroborated


async def test_corroboration_needs_a_second_feed_not_a_second_report(
    engine: AlertEngine, outbox: Outbox
) -> None:
    await feed(
        engine,
        outbox,
        classified("a1", feed="feed-a"),
        classified("a2", feed="feed-a", at=T0 + timedelta(hours=1)),
        classified("w1", feed="feed-b", severity=1, at=T0 + timedelta(hours=2)),
    )
    assert outbox.sent == [], "one feed, or a second feed below min_severity, is not enough"
    await feed(engine, outbox, classified("b1", feed="feed-b", at=T0 + timedelta(hours=3)))
    [alert] = outbox.sent
    assert alert.rule == "corroborated"
    assert alert.feeds == ["feed-a", "feed-b"]
    assert set(alert.report_ids) == {"a1", "a2", "b1"}
    assert "2 distinct feeds" in alert.reason
    # Earlier batches' reports are read back from the store with their evidence.
    assert [r.report_id for r in alert.reports] == ["b1", "a2", "a1"]
    assert all(r.evidence and r.feed_id for r in alert.reports)


async def test_corroboration_window_is_24h_to_the_second(
    engine: AlertEngine, outbox: Outbox
) -> None:
    await feed(
        engine,
        outbox,
        classified("a1", feed="feed-a"),
        classified("b1", feed="feed-b", at=T0 + timedelta(hours=24)),
    )
    assert outbox.sent == [], "a report exactly one window old has left the window"
    await feed(
        engine, outbox, classified("c1", feed="feed-c", at=T0 + timedelta(hours=48, seconds=-1))
    )
    assert [a.rule for a in outbox.sent] == ["corroborated"]
    assert set(outbox.sent[0].report_ids) == {"b1", "c1"}


async def test_ten_copies_from_one_feed_do_not_corroborate(
    engine: AlertEngine, outbox: Outbox
) -> None:
    wire = story("wire")
    copies = [
        classified(f"copy{i}", feed="feed-a", text=f"Outlet {i} reports. {wire} (c) outlet {i}")
        for i in range(10)
    ]
    await feed(engine, outbox, *copies)
    assert outbox.sent == []


async def test_one_wire_story_syndicated_by_ten_feeds_counts_once(
    engine: AlertEngine, outbox: Outbox
) -> None:
    wire = story("wire")
    copies = [
        classified(f"copy{i}", feed=f"outlet-{i}", text=f"By outlet {i}. {wire}") for i in range(10)
    ]
    await feed(engine, outbox, *copies)
    assert outbox.sent == [], "syndicated copies are one story, whoever publishes them"
    await feed(engine, outbox, classified("own", feed="outlet-3"))
    [alert] = outbox.sent
    assert alert.rule == "corroborated", "a second story from another feed corroborates"


async def test_two_genuinely_different_feeds_corroborate(
    engine: AlertEngine, outbox: Outbox
) -> None:
    await feed(engine, outbox, classified("a1", feed="feed-a"), classified("b1", feed="feed-b"))
    assert [a.rule for a in outbox.sent] == ["corroborated"]


# spike


async def test_spike_fires_on_the_fifth_story_in_an_hour_not_the_fourth(
    engine: AlertEngine, outbox: Outbox
) -> None:
    reports = [
        classified(f"s{i}", feed="feed-a", severity=1, at=T0 + timedelta(minutes=10 * i))
        for i in range(5)
    ]
    await feed(engine, outbox, *reports[:4])
    assert outbox.sent == []
    await feed(engine, outbox, reports[4])
    [alert] = outbox.sent
    assert (alert.rule, alert.severity, alert.report_count) == ("spike", 1, 5)
    assert "5 distinct stories within 1h" in alert.reason


async def test_spike_is_measured_against_the_baseline_mean(
    engine: AlertEngine, outbox: Outbox
) -> None:
    # 48 stories over the previous 24 hours: a mean of 2 an hour, so a spike needs 3 x 2 = 6.
    baseline = [
        classified(f"b{i}", severity=1, at=T0 - timedelta(minutes=30 * i + 61)) for i in range(48)
    ]
    await engine.handle(baseline, outbox)
    assert outbox.sent == []
    now = [classified(f"n{i}", severity=1, at=T0 + timedelta(minutes=i)) for i in range(6)]
    await feed(engine, outbox, *now[:5])
    assert outbox.sent == [], "five is the minimum, but not three times the usual two"
    await feed(engine, outbox, now[5])
    assert [a.rule for a in outbox.sent] == ["spike"]


async def test_near_duplicates_count_once_toward_a_spike(
    engine: AlertEngine, outbox: Outbox
) -> None:
    wire = story("wire")
    copies = [
        classified(f"c{i}", feed=f"outlet-{i}", severity=1, text=f"{wire} outlet {i}")
        for i in range(10)
    ]
    await feed(engine, outbox, *copies)
    assert outbox.sent == []


# lifecycle


async def test_support_updates_a_rise_escalates(
    engine: AlertEngine, outbox: Outbox, clock: FakeClock
) -> None:
    await feed(engine, outbox, classified("a1", feed="feed-a"), classified("b1", feed="feed-b"))
    clock.advance(hours=1)
    await feed(engine, outbox, classified("c1", severity=3, at=T0 + timedelta(hours=1)))
    await feed(engine, outbox, classified("d1", severity=2, at=T0 + timedelta(hours=2)))
    assert [(a.version, a.change, a.severity, a.rule) for a in outbox.sent] == [
        (1, "raised", 2, "corroborated"),
        (2, "escalated", 3, "immediate"),
        (3, "updated", 3, "corroborated"),
    ]
    assert outbox.sent[1].previous_severity == 2
    assert outbox.sent[2].report_ids == ["d1", "c1", "b1", "a1"]
    assert outbox.sent[2].first_seen == T0
    assert outbox.sent[2].updated_at == clock.now
    assert {a.fingerprint for a in outbox.sent} == {f"KG:{KILLING}"}


async def test_one_batch_makes_one_version(engine: AlertEngine, outbox: Outbox) -> None:
    await engine.handle(
        [classified("a1", feed="feed-a"), classified("b1", feed="feed-b"), classified("c1")],
        outbox,
    )
    [alert] = outbox.sent
    assert (alert.version, alert.report_count) == (1, 3)


async def test_evidence_is_capped_keeping_the_strongest_and_the_newest(
    engine_for: EngineFor, clock: FakeClock, outbox: Outbox
) -> None:
    engine = engine_for(max_reports=4)
    await feed(engine, outbox, classified("crit", severity=3))
    for i in range(10):
        await feed(engine, outbox, classified(f"r{i}", at=T0 + timedelta(minutes=i + 1)))
    last = outbox.sent[-1]
    assert [r.report_id for r in last.reports] == ["r9", "r8", "r7", "crit"]
    assert last.report_count == 11
    assert len(last.report_ids) == 11


async def test_quiet_alert_resolves_after_72h_and_a_new_report_reopens_it(
    engine: AlertEngine, outbox: Outbox, clock: FakeClock
) -> None:
    await feed(engine, outbox, classified("c1", severity=3))
    clock.now = T0 + timedelta(hours=72, seconds=-1)
    await engine.sweep(outbox)
    assert len(outbox.sent) == 1, "one second early"
    clock.now = T0 + timedelta(hours=72)
    await engine.sweep(outbox)
    await engine.sweep(outbox)
    assert [(a.version, a.status, a.change) for a in outbox.sent] == [
        (1, "firing", "raised"),
        (2, "resolved", "resolved"),
    ]
    assert outbox.sent[1].rule == "immediate"
    assert "72h" in outbox.sent[1].reason
    await feed(engine, outbox, classified("c2", severity=3, at=clock.now))
    reopened = outbox.sent[-1]
    assert (reopened.version, reopened.status, reopened.change) == (3, "firing", "raised")
    assert reopened.report_ids == ["c2"]
    assert reopened.first_seen == clock.now


async def test_support_postpones_resolution(
    engine: AlertEngine, outbox: Outbox, clock: FakeClock
) -> None:
    await feed(engine, outbox, classified("c1", severity=3))
    await feed(engine, outbox, classified("c2", severity=2, at=T0 + timedelta(hours=48)))
    clock.now = T0 + timedelta(hours=100)
    await engine.sweep(outbox)
    assert [a.status for a in outbox.sent] == ["firing", "firing"]
    clock.now = T0 + timedelta(hours=120)
    await engine.sweep(outbox)
    assert outbox.sent[-1].status == "resolved"


async def test_sweep_resolves_only_countries_this_replica_owns(
    engine: AlertEngine, outbox: Outbox, clock: FakeClock
) -> None:
    await feed(
        engine, outbox, classified("kg", severity=3), classified("ly", country="LY", severity=3)
    )
    clock.advance(hours=73)
    await engine.sweep(outbox, owns=lambda country: country == "LY")
    assert [(a.country, a.status) for a in outbox.sent[2:]] == [("LY", "resolved")]


# redelivery and restart


async def test_redelivered_batch_changes_nothing(engine: AlertEngine, outbox: Outbox) -> None:
    batch = [classified("a1", feed="feed-a"), classified("b1", feed="feed-b")]
    await engine.handle(batch, outbox)
    again = await engine.handle(batch, outbox)
    assert (again.alerts, again.events) == ([], [])
    assert len(outbox.sent) == 1


async def test_restart_mid_window_keeps_counts(
    engine_for: EngineFor, clock: FakeClock, outbox: Outbox
) -> None:
    reports = [classified(f"s{i}", severity=1, at=T0 + timedelta(minutes=i)) for i in range(5)]
    await feed(engine_for(), outbox, *reports[:4])
    restarted = engine_for()
    await feed(restarted, outbox, *reports[:4])  # redelivered after the restart
    await feed(restarted, outbox, reports[4])
    assert [(a.rule, a.report_count) for a in outbox.sent] == [("spike", 5)]


# per-country overrides


async def test_country_override_applies_to_that_country_only(
    engine_for: EngineFor, clock: FakeClock, outbox: Outbox
) -> None:
    engine = engine_for(
        countries={"SD": {"spike": {"min_count": 3}, "immediate": {"enabled": False}}},
    )
    for country in ("SD", "KG"):
        await feed(
            engine,
            outbox,
            *(
                classified(
                    f"{country}{i}", country=country, severity=1, at=T0 + timedelta(minutes=i)
                )
                for i in range(3)
            ),
        )
    await feed(
        engine, outbox, classified("crit", country="SD", indicator="aerial_attack", severity=3)
    )
    assert [(a.country, a.rule) for a in outbox.sent] == [("SD", "spike")]


async def test_alerts_name_the_first_country_and_lead_indicator(
    engine: AlertEngine, outbox: Outbox
) -> None:
    report = classified("x", severity=3)
    report.classification.countries = ["KG", "UZ"]
    report.classification.indicators.append(
        report.classification.indicators[0].model_copy(
            update={"id": "aerial_attack", "confidence": 0.95}
        )
    )
    await feed(engine, outbox, report)
    [alert] = outbox.sent
    assert alert.fingerprint == "KG:aerial_attack"
    assert alert.indicators == ["aerial_attack", KILLING]


async def test_reports_without_country_or_indicator_are_ignored(
    engine: AlertEngine, outbox: Outbox, tmp_path: Path
) -> None:
    report = classified("x", severity=3)
    report.classification.countries = []
    decision = await engine.handle([report], outbox)
    assert (decision.alerts, decision.events, outbox.sent) == ([], [], [])


async def test_a_replica_taking_a_country_back_rereads_what_the_other_counted(
    engine_for: EngineFor, outbox: Outbox
) -> None:
    a, b = engine_for(), engine_for()
    spike = [classified(f"s{i}", severity=1, at=T0 + timedelta(minutes=i)) for i in range(5)]
    await feed(a, outbox, *spike[:2])
    await feed(b, outbox, *spike[2:4])  # after a rebalance: a's cache is now behind
    await feed(a, outbox, spike[4])
    assert [(x.rule, x.report_count) for x in outbox.sent] == [("spike", 5)]
    await feed(b, outbox, classified("more", severity=1, at=T0 + timedelta(minutes=6)))
    assert [(x.version, x.change) for x in outbox.sent] == [(1, "raised"), (2, "updated")]


def test_a_replica_owns_the_countries_whose_partition_it_is_assigned() -> None:
    partitioner = DefaultPartitioner()
    partition_of = {c: partitioner(c.encode(), [0, 1, 2, 3], [0, 1, 2, 3]) for c in ("KG", "LY")}
    mine = partition_of["KG"]

    class Consumer:
        def partitions_for_topic(self, topic: str) -> set[int]:
            return {0, 1, 2, 3}

        def assignment(self) -> set[TopicPartition]:
            return {TopicPartition(topics.REPORTS_CLASSIFIED, mine)}

    subscriber = SimpleNamespace(consumer=None)
    owns = partition_owner(subscriber, topics.REPORTS_CLASSIFIED)  # type: ignore[arg-type]
    assert not owns("KG"), "no consumer yet: owns nothing"
    subscriber.consumer = Consumer()
    assert owns("KG")
    assert owns("LY") == (partition_of["LY"] == mine)


async def test_a_naive_received_at_is_taken_as_utc(engine: AlertEngine, outbox: Outbox) -> None:
    naive = T0.replace(tzinfo=None)
    await feed(
        engine, outbox, classified("a1", feed="feed-a"), classified("b1", feed="feed-b", at=naive)
    )
    [alert] = outbox.sent
    assert alert.rule == "corroborated"
    assert alert.last_support_at == T0
