"""Kafka topic names. Versioned by name: a breaking contract change gets a new topic."""

from __future__ import annotations

REPORTS_RAW = "reports.raw.v1"
REPORTS_CLASSIFIED = "reports.classified.v1"
ALERTS = "alerts.v1"
DELIVERIES = "deliveries.v1"
DEADLETTER = "deadletter.v1"

ALL = (REPORTS_RAW, REPORTS_CLASSIFIED, ALERTS, DELIVERIES, DEADLETTER)
