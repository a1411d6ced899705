"""Report ids: the same report from the same feed always gets the same id."""

from __future__ import annotations

import hashlib


def report_id(feed_id: str, external_id: str | None, title: str | None, text: str) -> str:
    """From (feed, external_id), or without one from a hash of the normalised content.

    Callers pass normalised title and text; whitespace is folded once more here so that
    re-wrapped paragraphs of the same report hash alike.
    """
    if external_id is not None:
        basis = f"ext\0{feed_id}\0{external_id}"
    else:
        basis = f"txt\0{feed_id}\0{' '.join((title or '').split())}\0{' '.join(text.split())}"
    return hashlib.sha256(basis.encode()).hexdigest()[:32]
