"""Ingest's Prometheus metrics, on the service's own registry."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class IngestMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.reports = Counter(
            "tocsin_ingest_reports_total",
            "Reports posted, by feed and outcome (accepted, duplicate, rejected, unavailable).",
            ["feed", "outcome"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "tocsin_ingest_rate_limited_total",
            "Requests answered 429, by feed.",
            ["feed"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "tocsin_ingest_in_flight_reports",
            "Reports handed to the Kafka producer and not yet acknowledged.",
            registry=self.registry,
        )
        self.publish_seconds = Histogram(
            "tocsin_ingest_publish_seconds",
            "Time from handing a request's reports to Kafka until all were acknowledged.",
            registry=self.registry,
        )
        self.polls = Counter(
            "tocsin_ingest_polls_total",
            "Feed fetches, by feed and outcome (ok, not_modified, malformed, refused, error).",
            ["feed", "outcome"],
            registry=self.registry,
        )
        self.poll_last_success = Gauge(
            "tocsin_ingest_poll_last_success_timestamp_seconds",
            "Unix time of each polled feed's last successful fetch (ok or not_modified).",
            ["feed"],
            registry=self.registry,
        )
