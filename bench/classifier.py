"""Throughput of ``Classifier.classify`` on 1 KB report texts, on one core.

Run ``python -m bench.classifier [seconds]``; ``make bench`` imports :func:`measure`.
The texts are 1 KB windows cut from the seed reports and the dev split, so the mix of
event reports, policy pieces and commemorations matches what the classifier sees.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from services.classify.classifier import Classifier

_DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
_SIZE = 1024


def corpus(size: int = _SIZE) -> list[str]:
    """1 KB texts: consecutive windows of every seed and dev report, short ones padded."""
    texts = [p.read_text("utf-8") for p in sorted((_DATA / "seeds").glob("*.txt"))]
    dev = _DATA / "reports" / "dev.jsonl"
    if dev.exists():
        for line in dev.read_text("utf-8").splitlines():
            try:
                texts.append(str(json.loads(line)["text"]))
            except (ValueError, KeyError):
                continue
    out = []
    for text in texts:
        while len(text) < size:
            text = text + "\n\n" + text
        out += [text[i : i + size] for i in range(0, len(text) - size + 1, size)]
    return out


def measure(seconds: float = 5.0) -> float:
    """Reports per second of one Classifier on one thread: passes over the corpus for
    ``seconds`` of wall time, each timed in CPU time of this process, and the fastest pass
    counts (as ``timeit`` takes the minimum): other processes on a shared machine only
    ever slow a pass down."""
    classifier = Classifier()
    texts = corpus()
    for text in texts[:50]:  # warm-up: lazy loads and caches
        classifier.classify(text)
    best = 0.0
    deadline = time.perf_counter() + seconds
    while True:
        start = time.process_time()
        for text in texts:
            classifier.classify(text)
        best = max(best, len(texts) / (time.process_time() - start))
        if time.perf_counter() >= deadline:
            return best


def main() -> int:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0
    rate = measure(seconds)
    print(f"classifier: {rate:,.0f} reports/s of {_SIZE} B text on one core")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
