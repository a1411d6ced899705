"""The payloads of a benchmark run: 1.2 KB report texts, as feeds post them and as ingest
publishes them on ``reports.raw.v1``."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson

from bench.classifier import corpus
from schemas.reports import ReportReceived

SIZE = 1200
"""Bytes of report text, the size the issue measured raw Kafka with."""

FEED_TOKEN = "bench-token"
"""Bearer token of the feed ``bench`` that bench/stack.py configures."""

COUNTRIES = [
    "Sudan", "Myanmar", "Ethiopia", "Mali", "Syria", "Yemen", "Nigeria", "Haiti",
    "Burkina Faso", "Kyrgyzstan", "Niger", "Chad", "Somalia", "Libya", "Iraq", "Afghanistan",
    "Cameroon", "Mozambique", "Burundi", "Eritrea",
]  # fmt: skip
"""Where the end-to-end reports happen: one alert fingerprint per country."""

_CRITICAL = (
    "Government forces in {country} opened fire on peaceful demonstrators from helicopter "
    "gunships on Monday, killing at least 170 civilians and injuring 2,000, witnesses said. "
    "The government of {country} admitted its forces had been overrun and pleaded for outside "
    "military assistance to halt the violence. "
)
_FILLER = (
    "Residents described bodies lying in the streets of the capital and families sheltering "
    "in schools and mosques while shooting continued through the night. Hospitals reported "
    "that they had run out of blood and surgical supplies and could not reach the wounded. "
)


def mixed_texts() -> list[str]:
    """1.2 KB windows of the seed and dev reports: event reports, policy pieces, history."""
    return corpus(SIZE)


def critical_text(country: str) -> str:
    """A 1.2 KB report that the immediate rule alerts on (severity 3, one country)."""
    text = _CRITICAL.format(country=country)
    while len(text) < SIZE:
        text += _FILLER
    return text[:SIZE].rsplit(" ", 1)[0]


def report_in(text: str, token: str, country_hint: str | None = None) -> dict[str, object]:
    """A ``POST /v1/reports`` body; ``token`` is the unique title and external id."""
    body: dict[str, object] = {
        "text": text,
        "title": token,
        "external_id": token,
        "kind": "news",
    }
    if country_hint:
        body["country"] = country_hint
    return body


def raw_records(run: str, count: int) -> Iterator[tuple[bytes, bytes]]:
    """``(key, value)`` records exactly as ingest writes them on ``reports.raw.v1``."""
    now = datetime.now(UTC)
    texts = itertools.cycle(mixed_texts())
    for i in range(count):
        rid = f"{run}-{i:08d}"
        received = ReportReceived(
            id=rid, feed_id="bench", received_at=now, text=next(texts), title=rid
        )
        yield rid.encode(), received.model_dump_json().encode()


def dumps(value: object) -> bytes:
    return orjson.dumps(value)
