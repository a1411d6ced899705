"""One posted item → a validated, normalised ``ReportReceived``, or the reasons it is refused.

Shared by the HTTP endpoints and the feed poller so both produce identical reports and ids.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from schemas.reports import ItemError, ReportIn, ReportReceived
from services.ingest import language
from services.ingest.identity import report_id
from services.ingest.normalise import canonical_url, clean_text, clean_title


class Refused(ValueError):
    """An item failed validation; ``errors`` name each field and the reason."""

    def __init__(self, errors: list[ItemError]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors))
        self.errors = errors


def validate(item: Any) -> ReportIn:
    try:
        return ReportIn.model_validate(item)
    except ValidationError as exc:
        raise Refused(
            [
                ItemError(
                    loc=[p for p in e["loc"] if isinstance(p, str | int)],
                    msg=e["msg"],
                    type=e["type"],
                )
                for e in exc.errors(include_url=False)
            ]
        ) from None


def receive(feed: str, report: ReportIn, now: datetime | None = None) -> ReportReceived:
    """Normalise ``report`` and stamp it with its id and feed. Reporter contacts stop here.

    Built without re-validation (``model_construct``): every field comes from the validated
    ``ReportIn`` or from normalising it, and ``ReportReceived`` constrains only their types.
    """
    text = clean_text(report.text)
    if not text:
        raise Refused(
            [ItemError(loc=["text"], msg="no text left after removing markup", type="empty")]
        )
    title = clean_title(report.title)
    return ReportReceived.model_construct(
        id=report_id(feed, report.external_id, title, text),
        feed_id=feed,
        received_at=now or datetime.now(UTC),
        text=text,
        title=title,
        url=canonical_url(str(report.url)) if report.url else None,
        external_id=report.external_id,
        published_at=report.published_at,
        language=report.language or language.detect(text),
        country=report.country.upper() if report.country else None,
        kind=report.kind,
    )
