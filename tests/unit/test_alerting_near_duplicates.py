"""Near-duplicate sketches: a syndicated copy is the same story, another report is not."""

from __future__ import annotations

import itertools
import json

from services.classify.near_duplicates import K, near_duplicate_key, similarity
from tests.support import DATA, SEEDS


def _texts() -> list[str]:
    lines = (DATA / "reports" / "dev.jsonl").read_text().splitlines()
    return [json.loads(line)["text"] for line in lines[:60]]


def test_copies_with_other_headlines_bylines_and_footers_are_one_story() -> None:
    for path in sorted(SEEDS.glob("*.txt"))[:3]:
        text = path.read_text()
        key = near_duplicate_key(text)
        for copy in (
            f"By Reuters staff. {text}",
            f"UPDATE 2 - {text[: len(text) - 80]}",
            f"Published by Outlet 7\n{text}\n(c) 2010 Outlet 7. All rights reserved.",
            text.upper(),
        ):
            assert similarity(key, near_duplicate_key(copy)) >= 0.5, path.name


def test_different_reports_are_different_stories() -> None:
    keys = {near_duplicate_key(t) for t in _texts()}
    assert max(similarity(a, b) for a, b in itertools.combinations(keys, 2)) < 0.5


def test_key_shape() -> None:
    key = near_duplicate_key("one two three four five " * 100)
    assert len(key) <= 8 * K
    assert int(key, 16) >= 0
    assert similarity(near_duplicate_key(""), near_duplicate_key("")) == 1.0
