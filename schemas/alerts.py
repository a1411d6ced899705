"""Threshold alerts on ``alerts.v1``, keyed by fingerprint."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from schemas.classification import Casualties, Evidence, Severity

AlertStatus = Literal["firing", "resolved"]
AlertChange = Literal["raised", "updated", "escalated", "resolved"]


class SupportingReport(BaseModel):
    report_id: str
    feed_id: str
    title: str | None = None
    url: str | None = None
    received_at: datetime
    evidence: list[Evidence] = Field(description="The sentences that made this report count.")
    severity: Severity | None = Field(default=None, description="This report's own severity.")


class AlertRaised(BaseModel):
    """One version of an alert. Consumers keep the highest version per fingerprint."""

    fingerprint: str = Field(description="Stable id of the alert: '<country>:<indicator>'.")
    version: int = Field(ge=1, description="Grows with every update, escalation or resolution.")
    status: AlertStatus = "firing"
    rule: str = Field(description="Name of the rule in rules.yaml that fired.")
    country: str
    indicator: str = Field(description="The lead indicator of the fingerprint.")
    indicators: list[str] = Field(description="Every indicator seen in the supporting reports.")
    severity: Severity
    casualties: Casualties = Field(default_factory=Casualties)
    reports: list[SupportingReport]
    first_seen: datetime
    updated_at: datetime
    change: AlertChange = Field(
        default="raised",
        description="What this version is: a new alert, more support, a rise in severity, "
        "or the end of the alert.",
    )
    previous_severity: Severity | None = Field(
        default=None, description="Severity of the previous version, when escalated."
    )
    reason: str = Field(default="", description="Why the rule fired, in words, with its counts.")
    report_ids: list[str] = Field(
        default_factory=list,
        description="Ids of the reports counted toward this alert, newest first (capped).",
    )
    report_count: int = Field(default=0, ge=0, description="Reports counted toward this alert.")
    feeds: list[str] = Field(default_factory=list, description="Feeds of the counted reports.")
    last_support_at: datetime | None = Field(
        default=None, description="When the newest supporting report was received."
    )
    resolves_at: datetime | None = Field(
        default=None, description="When it resolves unless new support arrives first."
    )

    @property
    def key(self) -> str:
        """Idempotency key of this version: the same version is delivered once."""
        return f"{self.fingerprint}@{self.version}"
