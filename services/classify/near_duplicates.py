"""Near-duplicate keys, so the same wire story syndicated by ten outlets counts once toward
corroboration and spikes.

A key is a bottom-k sketch of the text's word 3-shingles: the ``K`` smallest 32-bit shingle
hashes. The shingles two sketches share among the ``K`` smallest of their union estimate the
Jaccard similarity of the texts (Broder 1997), which stays near 1 for a copy with another
headline, byline or footer, and near 0 for a different story. Only the first ``MAX_WORDS``
words are hashed, which bounds the cost on the classify hot path.

Words are whitespace-separated (punctuation stays attached: copies of a story share it) and
each shingle is hashed with CRC-32 in C-level ``map`` chains, with no Python loop per
shingle: the sketch runs on every report, beside the classifier.
"""

from __future__ import annotations

import heapq
from functools import lru_cache
from zlib import crc32

K = 16
MAX_WORDS = 2000


def near_duplicate_key(text: str) -> str:
    """Up to ``K`` × 8 hex digits: the sketch ``similarity`` compares."""
    words = text.lower().split()[:MAX_WORDS]
    triples = zip(words, words[1:], words[2:], strict=False)
    shingles = map(" ".join, triples) if len(words) > 2 else [" ".join(words)]
    hashes = set(map(crc32, map(str.encode, shingles)))
    return "".join(map("{:08x}".format, heapq.nsmallest(K, hashes)))


@lru_cache(maxsize=8192)  # ~1.4 KB each: a batch's working set, not a window
def hashes(key: str) -> frozenset[int]:
    """The hashes of a key; two texts can only be similar if their keys share one."""
    return frozenset(int(key[i : i + 8], 16) for i in range(0, len(key), 8))


def similarity(a: str, b: str) -> float:
    """Estimated Jaccard similarity (0-1) of the shingles of the two texts behind the keys."""
    x, y = hashes(a), hashes(b)
    union = heapq.nsmallest(K, x | y)
    if not union:
        return 1.0
    return sum(1 for h in union if h in x and h in y) / len(union)
