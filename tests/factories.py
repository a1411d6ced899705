"""Builders for contract objects used across tests."""

from __future__ import annotations

from datetime import UTC, datetime

from schemas.alerts import AlertRaised, SupportingReport
from schemas.classification import Evidence

T0 = datetime(2010, 6, 14, 12, 0, tzinfo=UTC)


def alert(
    country: str = "KG",
    indicator: str = "state_incapacity_or_request_for_help",
    version: int = 1,
    severity: int = 3,
    evidence: str = "Kyrgyzstan's government has pleaded for assistance.",
) -> AlertRaised:
    return AlertRaised(
        fingerprint=f"{country}:{indicator}",
        version=version,
        rule="immediate",
        country=country,
        indicator=indicator,
        indicators=[indicator],
        severity=severity,
        reports=[
            SupportingReport(
                report_id="r1",
                feed_id="reliefweb",
                title="Open statement",
                url="https://example.org/statement",
                received_at=T0,
                evidence=[Evidence(start=0, end=len(evidence), text=evidence)],
            )
        ],
        first_seen=T0,
        updated_at=T0,
    )
