"""The three alert rules as pure functions over one fingerprint's windowed events.

No I/O and no clock: a decision depends only on the events and the time of the report being
judged, so a redelivery, a restart or another replica reaches the same decision.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice

from schemas.alerts import SupportingReport
from services.classify.near_duplicates import hashes, similarity
from services.classify.rules import RuleSet


@dataclass(frozen=True, slots=True)
class WindowEvent:
    """One report counted toward one fingerprint, as persisted between batches. Slotted,
    since a cached window holds up to a day of reports (``python -m bench.windows``)."""

    fingerprint: str
    report_id: str
    at: datetime
    feed_id: str
    severity: int
    story: str
    """Report id of the first near-duplicate in the window: copies of a story share it."""
    sketch: str | None
    """The report's near-duplicate key (None from producers that predate it)."""
    support: SupportingReport | None
    """What an alert shows of the report; None in the cached window, which keeps only what the
    rules count (a window can hold days of reports). ``AlertStore.supports`` reads it back."""


@dataclass(frozen=True)
class Fired:
    rule: str
    reason: str
    events: list[WindowEvent]
    """The reports that made the rule fire."""


class Stories:
    """Finds the story of a new report among a window's events without comparing it to all.

    Two sketches can only be similar if they share a hash, so the events sharing one with the
    new sketch are the only candidates. A batch works on an overlay (``parent``) of the cached
    index, so nothing it adds survives unless the batch is saved.
    """

    def __init__(self, events: Iterable[WindowEvent] = (), parent: Stories | None = None) -> None:
        self.parent = parent
        self._by_hash: dict[int, list[WindowEvent]] = {}
        self._latest: dict[str, WindowEvent] = {}
        """The latest event per exact sketch: a verbatim copy finds its story in one lookup."""
        for e in events:
            self.add(e)

    def add(self, event: WindowEvent) -> None:
        if event.sketch:
            for h in hashes(event.sketch):
                self._by_hash.setdefault(h, []).append(event)
            latest = self._latest.get(event.sketch)
            if latest is None or (latest.at, latest.report_id) < (event.at, event.report_id):
                self._latest[event.sketch] = event

    def _copy_of(self, sketch: str) -> WindowEvent | None:
        own = self._latest.get(sketch)
        inherited = self.parent._copy_of(sketch) if self.parent else None
        if own is None or inherited is None:
            return own or inherited
        return max(own, inherited, key=lambda e: (e.at, e.report_id))

    def _candidates(self, h: int) -> list[WindowEvent]:
        inherited = self.parent._candidates(h) if self.parent else []
        return inherited + self._by_hash.get(h, [])

    def story_of(
        self, report_id: str, sketch: str | None, *, since: datetime, min_similarity: float
    ) -> str:
        """That of the earliest near-identical event received after ``since``, else its own.

        A verbatim copy (same sketch) in the window already carries that story: it was
        assigned the same way when it arrived, so the syndicated flood costs one lookup.
        """
        if sketch:
            copy = self._copy_of(sketch)
            if copy is not None and copy.at > since:
                return copy.story
            candidates = {
                e.report_id: e for h in hashes(sketch) for e in self._candidates(h) if e.at > since
            }
            for e in sorted(candidates.values(), key=lambda e: (e.at, e.report_id)):
                if similarity(sketch, e.sketch or "") >= min_similarity:
                    return e.story
        return report_id


def corroborating_feeds(events: Iterable[WindowEvent]) -> int:
    """How many distinct feeds can each be credited with a distinct story.

    A maximum matching between feeds and stories: one feed's ten copies of a story count once,
    and ten feeds syndicating one wire story count once too; two feeds with stories of their
    own count twice.
    """
    stories_of: dict[str, set[str]] = {}
    for e in events:
        stories_of.setdefault(e.feed_id, set()).add(e.story)
    owner: dict[str, str] = {}

    def assign(feed: str, tried: set[str]) -> bool:
        for story in sorted(stories_of[feed]):
            if story in tried:
                continue
            tried.add(story)
            if story not in owner or assign(owner[story], tried):
                owner[story] = feed
                return True
        return False

    return sum(assign(feed, set()) for feed in sorted(stories_of))


def stories(events: Iterable[WindowEvent]) -> int:
    return len({e.story for e in events})


class BatchWindow:
    """A fingerprint's cached events received after ``since``, plus the batch's new ones.

    The cached events are filtered only when a rule iterates the window: the immediate rule
    never does, and copying a busy fingerprint's events for every batch cost time in
    proportion to the whole window. Events the cache gains later (after the batch's save)
    are not seen: the length is fixed here.
    """

    def __init__(self, cached: list[WindowEvent], since: datetime) -> None:
        self._cached = cached
        self._length = len(cached)
        self._since = since
        self._added: list[WindowEvent] = []

    def append(self, event: WindowEvent) -> None:
        self._added.append(event)

    def __iter__(self) -> Iterator[WindowEvent]:
        since = self._since
        for e in islice(self._cached, self._length):
            if e.at > since:
                yield e
        yield from self._added


def evaluate(event: WindowEvent, window: Iterable[WindowEvent], rules: RuleSet) -> Fired | None:
    """The first rule (immediate, corroborated, spike) that holds when ``event`` arrives.

    ``window`` holds the fingerprint's events, ``event`` included; only those received up to
    ``event.at`` are looked at.
    """
    t = event.at
    imm, cor, spk = rules.immediate, rules.corroborated, rules.spike
    if imm.enabled and event.severity >= imm.min_severity:
        return Fired("immediate", f"one report of severity {event.severity}", [event])
    if cor.enabled and event.severity >= cor.min_severity:
        recent = [
            e for e in window if t - cor.window < e.at <= t and e.severity >= cor.min_severity
        ]
        feeds = corroborating_feeds(recent)
        if feeds >= cor.min_feeds:
            return Fired(
                "corroborated",
                f"{feeds} distinct feeds with distinct stories within {_span(cor.window)}",
                recent,
            )
    if spk.enabled and event.severity >= spk.min_severity:
        counted = [e for e in window if e.severity >= spk.min_severity and e.at <= t]
        current = [e for e in counted if t - spk.window < e.at]
        start = t - spk.window - spk.baseline
        baseline = stories(e for e in counted if start < e.at <= t - spk.window)
        mean = baseline / spk.baseline_windows
        now = stories(current)
        if now >= max(spk.min_count, spk.factor * mean):
            return Fired(
                "spike",
                f"{now} distinct stories within {_span(spk.window)}, against a mean of "
                f"{mean:.2f} per {_span(spk.window)} over the previous {_span(spk.baseline)}",
                current,
            )
    return None


def _span(delta: timedelta) -> str:
    """A window in rules.yaml's words: "24h", "90m", "45s"."""
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
