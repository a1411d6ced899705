"""Classify's subscribers: thin transport around the classifier and the alert engine."""

from __future__ import annotations

import logging
import time
from collections import Counter as CounterOf
from datetime import UTC, datetime

from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import BatchSubscriber

from schemas import topics
from schemas.alerts import AlertRaised
from schemas.classification import ReportClassified
from schemas.deliveries import DeadLettered
from schemas.reports import ReportReceived
from services.classify.alerting import AlertEngine, Publish, can_support
from services.classify.classifier import Classifier
from services.classify.metrics import ClassifyMetrics
from services.classify.near_duplicates import near_duplicate_key
from services.common.broker import batch_subscriber, decode, publish_all, records_of

log = logging.getLogger("tocsin.classify")

CLASSIFY_GROUP = "tocsin-classify"
ALERTING_GROUP = "tocsin-alerting"


def alert_publisher(broker: KafkaBroker) -> Publish:
    async def publish(alerts: list[AlertRaised]) -> None:
        await publish_all(broker, topics.ALERTS, ((a.fingerprint, a) for a in alerts))

    return publish


def alerting_subscriber(broker: KafkaBroker) -> BatchSubscriber:
    """The subscriber whose partition assignment decides which countries this replica owns."""
    for subscriber in broker.subscribers:
        if isinstance(subscriber, BatchSubscriber) and subscriber.group_id == ALERTING_GROUP:
            return subscriber
    raise LookupError(f"no {ALERTING_GROUP} subscriber on this broker")


def _unclassifiable(report: ReportReceived, exc: Exception) -> DeadLettered:
    return DeadLettered(
        service="classify",
        topic=topics.REPORTS_RAW,
        key=report.id,
        payload=report.model_dump_json(),
        error=f"classifier: {type(exc).__name__}: {exc}"[:500],
        at=datetime.now(UTC),
    )


def build_router(
    broker: KafkaBroker, classifier: Classifier, engine: AlertEngine, metrics: ClassifyMetrics
) -> KafkaRouter:
    router = KafkaRouter()
    publish_alerts = alert_publisher(broker)

    async def dead_letter(bad: list[DeadLettered]) -> None:
        for d in bad:
            log.warning("dead-lettered %s@%s: %s", d.topic, d.offset, d.error)
            metrics.deadlettered.labels(d.topic).inc()
        await publish_all(broker, topics.DEADLETTER, ((d.key, d) for d in bad))

    @batch_subscriber(router, topics.REPORTS_RAW, CLASSIFY_GROUP, max_records=500)
    async def on_report_received(message: KafkaMessage) -> None:
        reports, bad = decode(records_of(message), ReportReceived, "classify")
        out = []
        severities: CounterOf[str] = CounterOf()
        indicators: CounterOf[str] = CounterOf()
        flagged: list[str] = []
        for report in reports:
            started = time.perf_counter()
            try:
                verdict = classifier.classify(
                    report.text,
                    report_id=report.id,
                    title=report.title,
                    country_hint=report.country,
                )
            except Exception as exc:  # a report the rules cannot read must not stall its batch
                # The type only: an exception's message may quote the report's text.
                log.error(
                    "classifier failed on report: %s",
                    type(exc).__name__,
                    extra={"report_id": report.id},
                )
                bad.append(_unclassifiable(report, exc))
                continue
            metrics.latency.observe(time.perf_counter() - started)
            severities[str(verdict.severity)] += 1
            indicators.update(m.id for m in verdict.indicators)
            if verdict.severity:  # the few that matter; severity 0 would flood the log
                flagged.append(report.id)
            # Every field comes from models validated a moment ago: no second validation.
            classified = ReportClassified.model_construct(
                report_id=report.id,
                feed_id=report.feed_id,
                received_at=report.received_at,
                title=report.title,
                url=report.url,
                classification=verdict,
                # Only a report that can support an alert is compared with others: the
                # sketch costs about half as much again as classifying.
                near_duplicate_key=near_duplicate_key(report.text)
                if can_support(verdict)
                else None,
            )
            key = verdict.countries[0] if verdict.countries else report.id
            out.append((key, classified))
        await publish_all(broker, topics.REPORTS_CLASSIFIED, out)
        if flagged:  # one line per batch: a line per report cost a twentieth of the stage
            log.info(
                "classified %d reports at severity 1 or more",
                len(flagged),
                extra={"report_ids": flagged},
            )
        # Counted once per batch: a labelled counter costs a lookup and a lock per call.
        for severity, n in severities.items():
            metrics.classified.labels(severity).inc(n)
        for indicator, n in indicators.items():
            metrics.indicators.labels(indicator).inc(n)
        await dead_letter(bad)

    @batch_subscriber(router, topics.REPORTS_CLASSIFIED, ALERTING_GROUP, max_records=500)
    async def on_report_classified(message: KafkaMessage) -> None:
        reports, bad = decode(records_of(message), ReportClassified, "alerting")
        # Publish, then persist, then (on return) commit: a crash in between republishes the
        # same version, which notify delivers once.
        decision = await engine.handle(reports, publish_alerts)
        for alert in decision.alerts:
            metrics.alert_published(alert)
            log.info(
                "alert %s v%d %s (%s, severity %d)",
                alert.fingerprint,
                alert.version,
                alert.change,
                alert.rule,
                alert.severity,
                extra={
                    "fingerprint": alert.fingerprint,
                    "report_id": alert.report_ids[0] if alert.report_ids else None,
                },
            )
        await dead_letter(bad)

    return router
