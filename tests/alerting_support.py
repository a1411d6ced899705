"""Builders for alerting tests: classified reports with controlled text, time and feed."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from schemas.alerts import AlertRaised
from schemas.classification import Classification, Evidence, IndicatorMatch, ReportClassified
from services.classify.near_duplicates import near_duplicate_key

T0 = datetime(2010, 6, 14, 12, 0, tzinfo=UTC)
KILLING = "killing_of_civilians"


@dataclass
class FakeClock:
    """The engine's clock, moved by the test."""

    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Outbox:
    """A publish port that keeps what it was given, as alerts.v1 would."""

    sent: list[AlertRaised] = field(default_factory=list)

    async def __call__(self, alerts: list[AlertRaised]) -> None:
        self.sent.extend(alerts)


_VOCABULARY = [f"w{n}" for n in range(5000)]


def story(seed: str, words: int = 120) -> str:
    """A text of its own for each seed: different seeds are never near-duplicates."""
    rng = random.Random(seed)
    return " ".join(rng.choice(_VOCABULARY) for _ in range(words))


def classified(
    report_id: str,
    *,
    feed: str = "feed-a",
    country: str = "KG",
    indicator: str = KILLING,
    severity: int = 2,
    at: datetime = T0,
    text: str | None = None,
    killed: int | None = None,
) -> ReportClassified:
    body = text if text is not None else story(report_id)
    sentence = body[:60]
    return ReportClassified(
        report_id=report_id,
        feed_id=feed,
        received_at=at,
        title=f"report {report_id}",
        classification=Classification(
            id=report_id,
            severity=severity,
            countries=[country],
            indicators=[
                IndicatorMatch(
                    id=indicator,
                    risk_factors=[11],
                    confidence=0.9,
                    evidence=[Evidence(start=0, end=len(sentence), text=sentence)],
                )
            ],
            casualties={"killed": killed},
        ),
        near_duplicate_key=near_duplicate_key(body),
    )
