"""Turns classified reports into versioned alerts on ``alerts.v1``, and resolves quiet ones.

A report supports one fingerprint, ``<first country>:<lead indicator>``. Each batch loads the
fingerprints' alerts and windowed events once, judges the reports in order with the pure
rules of ``windows.py``, and yields at most one new version per fingerprint. A report already
counted (a redelivery) changes nothing and publishes nothing.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from schemas.alerts import AlertRaised, SupportingReport
from schemas.classification import Casualties, Classification, IndicatorMatch, ReportClassified
from services.classify.alert_store import AlertStore
from services.classify.rules import RulesConfig, RuleSet
from services.classify.windows import BatchWindow, Fired, Stories, WindowEvent, evaluate

T = TypeVar("T")
Clock = Callable[[], datetime]
Publish = Callable[[list[AlertRaised]], Awaitable[None]]
"""Puts alert versions on ``alerts.v1`` and returns once Kafka acknowledged them."""
Owns = Callable[[str], bool]
"""Whether this replica currently owns a country (its partition of reports.classified.v1)."""

MAX_EVIDENCE = 5


def utcnow() -> datetime:
    return datetime.now(UTC)


def lead_indicator(indicators: list[IndicatorMatch]) -> IndicatorMatch:
    """The indicator an alert is named after: the most confident, the classifier's order on ties."""
    return max(indicators, key=lambda m: m.confidence)


def fingerprint(country: str, indicator: str) -> str:
    return f"{country}:{indicator}"


def can_support(c: Classification) -> bool:
    """Whether a classification names what a fingerprint needs: a country and an indicator."""
    return bool(c.countries and c.indicators)


def fingerprint_of(report: ReportClassified) -> str | None:
    """The one fingerprint a report supports, or None when it names no country or indicator."""
    c = report.classification
    if not can_support(c):
        return None
    return fingerprint(c.countries[0], lead_indicator(c.indicators).id)


@dataclass
class Decision:
    """New alert versions to publish, then save together with the new window events."""

    alerts: list[AlertRaised] = field(default_factory=list)
    events: list[WindowEvent] = field(default_factory=list)


class AlertEngine:
    def __init__(self, store: AlertStore, rules: RulesConfig, clock: Clock = utcnow) -> None:
        self.store = store
        self.rules = rules
        self.clock = clock
        self.lock = asyncio.Lock()
        """Serialises batches and sweeps in this process: one writer per fingerprint."""

    async def handle(self, reports: list[ReportClassified], publish: Publish) -> Decision:
        """Decide, publish, then save: a crash in between republishes the same versions."""
        async with self.lock:
            decision = await self.decide(reports)
            await publish(decision.alerts)
            await self.store.save(decision.alerts, decision.events)
        return decision

    async def sweep(self, publish: Publish, owns: Owns = lambda _: True) -> Decision:
        """Resolve the due alerts of the countries this replica owns; forget old events."""
        async with self.lock:
            decision = await self.resolutions(owns)
            await publish(decision.alerts)
            await self.store.save(decision.alerts, [])
            await self.store.prune(self.clock() - self.rules.retention)
        return decision

    async def decide(self, reports: list[ReportClassified]) -> Decision:
        """New alert versions and window events for a batch, without saving anything."""
        keyed = [(r, fp) for r in reports if (fp := fingerprint_of(r))]
        if not keyed:
            return Decision()
        now = self.clock()
        since = min(_utc(r.received_at) for r, _ in keyed) - self.rules.max_horizon
        state = await self.store.load(
            {fp for _, fp in keyed}, {r.report_id for r, _ in keyed}, since
        )
        working: dict[str, AlertRaised] = {}
        new_events: list[WindowEvent] = []
        for report, fp in keyed:
            current = working.get(fp) or state.alerts.get(fp)
            firing = current is not None and current.status == "firing"
            if (fp, report.report_id) in state.seen or (
                current and firing and report.report_id in current.report_ids
            ):
                continue
            rules = self.rules.for_country(report.classification.countries[0])
            window = state.events.setdefault(fp, BatchWindow([], since))
            stories = state.stories.setdefault(fp, Stories())
            horizon = _utc(report.received_at) - self.rules.max_horizon
            event = self._event(report, fp, stories, horizon)
            window.append(event)
            stories.add(event)
            state.seen.add((fp, report.report_id))
            new_events.append(event)
            fired = evaluate(event, window, rules)
            if current is not None and firing:
                working[fp] = self._update(current, report, event, fired, rules, now)
            elif fired:
                working[fp] = await self._raise(report, fired, rules, now)
        alerts = [_versioned(alert, state.alerts.get(fp)) for fp, alert in working.items()]
        return Decision(alerts=alerts, events=new_events)

    async def resolutions(self, owns: Owns = lambda _: True) -> Decision:
        """A resolved version of every firing alert whose ``resolves_at`` has passed."""
        now = self.clock()
        resolved = [
            alert.model_copy(
                update={
                    "version": alert.version + 1,
                    "status": "resolved",
                    "change": "resolved",
                    "previous_severity": None,
                    "reason": f"no new support for {_ago(alert, now)}",
                    "resolves_at": None,
                    "updated_at": now,
                }
            )
            for alert in await self.store.due(now)
            if owns(alert.country)
        ]
        return Decision(alerts=resolved)

    def _event(
        self, report: ReportClassified, fp: str, stories: Stories, since: datetime
    ) -> WindowEvent:
        c = report.classification
        key = report.near_duplicate_key
        return WindowEvent(
            fingerprint=sys.intern(fp),  # one string per alert and per feed, not per event
            report_id=report.report_id,
            at=_utc(report.received_at),
            feed_id=sys.intern(report.feed_id),
            severity=c.severity,
            story=stories.story_of(
                report.report_id,
                key,
                since=since,
                min_similarity=self.rules.near_duplicate_similarity,
            ),
            sketch=key,
            support=SupportingReport(
                report_id=report.report_id,
                feed_id=report.feed_id,
                title=report.title,
                url=report.url,
                received_at=_utc(report.received_at),
                evidence=[e for m in c.indicators for e in m.evidence][:MAX_EVIDENCE],
                severity=c.severity,
            ),
        )

    async def _raise(
        self, report: ReportClassified, fired: Fired, rules: RuleSet, now: datetime
    ) -> AlertRaised:
        c = report.classification
        lead = lead_indicator(c.indicators)
        fp = fingerprint(c.countries[0], lead.id)
        support = sorted(fired.events, key=lambda e: (e.at, e.report_id), reverse=True)
        shown = _cap(support, self.rules.max_reports, lambda e: (e.severity, e.at, e.report_id))
        stored = await self.store.supports(fp, [e.report_id for e in shown if e.support is None])
        last = max(e.at for e in support)
        return AlertRaised(
            fingerprint=fp,
            version=1,
            rule=fired.rule,
            reason=fired.reason,
            country=c.countries[0],
            indicator=lead.id,
            indicators=list(dict.fromkeys([lead.id, *(m.id for m in c.indicators)])),
            severity=max(e.severity for e in support),
            casualties=c.casualties,
            reports=[e.support or stored[e.report_id] for e in shown],
            report_ids=[e.report_id for e in support][: self.rules.max_report_ids],
            report_count=len(support),
            feeds=sorted({e.feed_id for e in support}),
            first_seen=now,
            updated_at=now,
            last_support_at=last,
            resolves_at=last + rules.resolve_after,
        )

    def _update(
        self,
        current: AlertRaised,
        report: ReportClassified,
        event: WindowEvent,
        fired: Fired | None,
        rules: RuleSet,
        now: datetime,
    ) -> AlertRaised:
        c = report.classification
        last = max(current.last_support_at or event.at, event.at)
        return current.model_copy(
            update={
                "rule": fired.rule if fired else current.rule,
                "reason": fired.reason if fired else current.reason,
                "indicators": list(
                    dict.fromkeys([*current.indicators, *(m.id for m in c.indicators)])
                ),
                "severity": max(current.severity, event.severity),
                "casualties": _larger(current.casualties, c.casualties),
                "reports": select_reports(
                    [*([event.support] if event.support else []), *current.reports],
                    self.rules.max_reports,
                ),
                "report_ids": [event.report_id, *current.report_ids][: self.rules.max_report_ids],
                "report_count": current.report_count + 1,
                "feeds": sorted({*current.feeds, event.feed_id}),
                "updated_at": now,
                "last_support_at": last,
                "resolves_at": last + rules.resolve_after,
            }
        )


def select_reports(candidates: Iterable[SupportingReport], limit: int) -> list[SupportingReport]:
    """Cap the evidence: the strongest half (severity, then newest), the rest newest; newest
    first, so a desk officer sees both the worst report and the latest."""
    unique = list({s.report_id: s for s in candidates}.values())
    return _cap(unique, limit, lambda s: (s.severity or 0, s.received_at, s.report_id))


def _cap(unique: list[T], limit: int, rank: Callable[[T], tuple[int, datetime, str]]) -> list[T]:
    """``select_reports`` over anything ranked by (severity, time, report id)."""
    by_strength = sorted(unique, key=rank, reverse=True)
    kept = by_strength[: (limit + 1) // 2]
    ids = {rank(x)[2] for x in kept}
    newest = sorted(unique, key=lambda x: rank(x)[1:], reverse=True)
    kept += [x for x in newest if rank(x)[2] not in ids][: limit - len(kept)]
    return sorted(kept, key=lambda x: rank(x)[1:], reverse=True)


def _versioned(alert: AlertRaised, stored: AlertRaised | None) -> AlertRaised:
    """Number the batch's version after the stored one and say what changed."""
    if stored is None or stored.status == "resolved":
        change, previous = "raised", None
    elif alert.severity > stored.severity:
        change, previous = "escalated", stored.severity
    else:
        change, previous = "updated", None
    return alert.model_copy(
        update={
            "version": stored.version + 1 if stored else 1,
            "change": change,
            "previous_severity": previous,
        }
    )


def _utc(at: datetime) -> datetime:
    """A producer's naive time is taken as UTC, so it compares with the stored ones."""
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _ago(alert: AlertRaised, now: datetime) -> str:
    since = alert.last_support_at or alert.updated_at
    return f"{(now - since).total_seconds() / 3600:.0f}h (last report {since:%Y-%m-%d %H:%M} UTC)"


def _larger(a: Casualties, b: Casualties) -> Casualties:
    def pick(x: int | None, y: int | None) -> int | None:
        return max(v for v in (x, y) if v is not None) if x is not None or y is not None else None

    return Casualties(
        killed=pick(a.killed, b.killed),
        injured=pick(a.injured, b.injured),
        displaced=pick(a.displaced, b.displaced),
    )
