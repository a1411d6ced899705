"""Classify's Prometheus metrics, on the service's own registry.

Every metric is listed, with its labels and what moves it, in docs/operations.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram

from schemas.alerts import AlertRaised


@dataclass
class ClassifyMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.classified = Counter(
            "tocsin_reports_classified_total",
            "Reports classified, by severity.",
            ["severity"],
            registry=r,
        )
        self.indicators = Counter(
            "tocsin_indicators_found_total",
            "Indicator matches, by indicator.",
            ["indicator"],
            registry=r,
        )
        self.latency = Histogram(
            "tocsin_classification_seconds",
            "Time to classify one report.",
            buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25),
            registry=r,
        )
        self.alerts = Counter(
            "tocsin_alerts_total",
            "Alert versions published, by rule, severity, country and change "
            "(raised, updated, escalated, resolved).",
            ["rule", "severity", "country", "change"],
            registry=r,
        )
        self.deadlettered = Counter(
            "tocsin_deadlettered_total",
            "Messages sent to deadletter.v1, by topic.",
            ["topic"],
            registry=r,
        )
        for severity in "0123":
            self.classified.labels(severity)

    def alert_published(self, alert: AlertRaised) -> None:
        """Count one published alert version (country is bounded: ISO 3166-1 alpha-2)."""
        self.alerts.labels(alert.rule, str(alert.severity), alert.country, alert.change).inc()
