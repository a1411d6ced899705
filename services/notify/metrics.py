"""Notify's Prometheus metrics, on the service's own registry.

Modelled on Alertmanager's own (``alertmanager_notifications_total``, ``…_failed_total{reason}``,
``notification_latency_seconds``). Every metric is listed in docs/operations.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiosmtplib
import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from schemas.alerts import AlertRaised
from schemas.deliveries import NotificationSent

CHANNELS = ("email", "slack")
OUTCOMES = ("sent", "failed", "deadlettered", "duplicate")
FAILURE_REASONS = ("timeout", "connection", "rejected", "other")
SUPPRESSION_REASONS = ("silenced", "acknowledged", "grouped", "repeat_interval")
END_TO_END_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)
"""Seconds: sub-second on a healthy stack, minutes when a stage is backed up."""


@dataclass
class NotifyMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.notifications = Counter(
            "tocsin_notifications_total",
            "Deliveries attempted, by channel and outcome "
            "(sent, failed = will retry, deadlettered = gave up, duplicate).",
            ["channel", "outcome"],
            registry=r,
        )
        self.failures = Counter(
            "tocsin_notifications_failed_total",
            "Failed delivery attempts (each retry counts), by channel and reason "
            "(timeout, connection, rejected, other).",
            ["channel", "reason"],
            registry=r,
        )
        self.suppressed = Counter(
            "tocsin_notifications_suppressed_total",
            "Notifications deliberately not sent, by channel and reason "
            "(silenced, acknowledged, grouped, repeat_interval).",
            ["channel", "reason"],
            registry=r,
        )
        self.latency = Histogram(
            "tocsin_notification_latency_seconds",
            "Time to deliver one notification on one channel, retries included.",
            ["channel"],
            registry=r,
        )
        self.end_to_end = Histogram(
            "tocsin_end_to_end_latency_seconds",
            "From ingest accepting the newest report of an alert version to its delivery, "
            "by channel.",
            ["channel"],
            buckets=END_TO_END_BUCKETS,
            registry=r,
        )
        for channel in CHANNELS:
            for outcome in OUTCOMES:
                self.notifications.labels(channel, outcome)
            for reason in FAILURE_REASONS:
                self.failures.labels(channel, reason)
            for reason in SUPPRESSION_REASONS:
                self.suppressed.labels(channel, reason)
            self.end_to_end.labels(channel)
        self.escalations = Counter(
            "tocsin_notify_escalations_total",
            "Unacknowledged alerts escalated to a fallback recipient.",
            registry=r,
        )
        self.fallbacks = Counter(
            "tocsin_notify_fallbacks_total",
            "Dead-lettered deliveries handed to a fallback recipient.",
            registry=r,
        )
        self.acks = Counter(
            "tocsin_notify_acknowledgements_total",
            "Alerts acknowledged (by link or operations API).",
            registry=r,
        )
        self.scheduler_heartbeat = Gauge(
            "tocsin_notify_scheduler_last_tick_timestamp_seconds",
            "When notify's timer loop last completed a pass (a stale value: timers stopped).",
            registry=r,
        )

    def failed(self, channel: str, exc: BaseException) -> None:
        """Count one failed attempt under a bounded reason, never the error text."""
        self.failures.labels(channel, failure_reason(exc)).inc()

    def delivered(
        self,
        alerts: Iterable[AlertRaised],
        sent: Iterable[NotificationSent],
        now: datetime | None = None,
    ) -> None:
        """Observe end-to-end latency for each successful delivery of a new or updated version.

        Resolutions are left out: they are driven by the clock, not by a report.
        """
        now = now or datetime.now(UTC)
        by_key = {a.key: a for a in alerts}
        for n in sent:
            alert = by_key.get(n.alert_key)
            if n.outcome != "sent" or alert is None or alert.change == "resolved":
                continue
            newest = newest_report_at(alert)
            if newest is not None:
                self.end_to_end.labels(n.channel).observe(max((now - newest).total_seconds(), 0))


def newest_report_at(alert: AlertRaised) -> datetime | None:
    """When ingest accepted the newest report behind this alert version."""
    times = [r.received_at for r in alert.reports]
    if alert.last_support_at is not None:
        times.append(alert.last_support_at)
    return max(times, default=None)


def failure_reason(exc: BaseException) -> str:
    """A bounded label for a channel error (aiosmtplib's errors subclass the builtin ones)."""
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, ConnectionError | OSError | httpx.TransportError):
        return "connection"
    if isinstance(
        exc,
        httpx.HTTPStatusError | aiosmtplib.SMTPResponseException | aiosmtplib.SMTPRecipientsRefused,
    ):
        return "rejected"
    return "other"
