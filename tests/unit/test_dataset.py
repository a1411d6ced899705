"""Sanity checks for the labelled evaluation dataset in tests/data/reports/.

Self-contained on purpose: it imports nothing from the project, so the ground
truth cannot silently follow a change to the classifier's own taxonomy.
"""

import json
import re
from pathlib import Path

import pytest

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "reports"
SPLITS = {"dev": 110, "heldout": 50}  # file stem -> minimum number of records

# The 11 indicator ids fixed by the product brief ("Indicator taxonomy").
INDICATOR_IDS = {
    "killing_of_civilians",
    "attack_on_civilians_by_state_forces",
    "aerial_attack",
    "ethnic_or_religious_targeting",
    "incitement_hate_speech",
    "sexual_violence",
    "mass_displacement",
    "state_incapacity_or_request_for_help",
    "arbitrary_detention_or_disappearance",
    "humanitarian_access_denied",
    "armed_group_mobilisation",
}

KEYS = [
    "id",
    "text",
    "title",
    "url",
    "date",
    "source",
    "country",
    "should_alert",
    "severity",
    "indicators",
    "casualties",
]
CASUALTY_KEYS = {"killed", "injured", "displaced"}


def _load(split):
    path = DATA_DIR / f"{split}.jsonl"
    records = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:  # pragma: no cover - message only
                pytest.fail(f"{path.name}:{lineno}: invalid JSON: {exc}")
    return records


@pytest.fixture(scope="module", params=sorted(SPLITS))
def split(request):
    return request.param, _load(request.param)


def test_minimum_sizes():
    counts = {name: len(_load(name)) for name in SPLITS}
    for name, minimum in SPLITS.items():
        assert counts[name] >= minimum, f"{name}: {counts[name]} < {minimum}"
    assert sum(counts.values()) >= 160


def test_keys_and_types(split):
    name, records = split
    for rec in records:
        where = f"{name}:{rec.get('id')}"
        assert list(rec) == KEYS, f"{where}: keys/order {list(rec)}"
        assert isinstance(rec["id"], str), where
        assert rec["id"], where
        assert isinstance(rec["text"], str), where
        assert rec["text"].strip(), where
        assert rec["title"] is None or isinstance(rec["title"], str), where
        assert rec["url"] is None or (
            isinstance(rec["url"], str) and rec["url"].startswith(("http://", "https://"))
        ), where
        assert rec["date"] is None or isinstance(rec["date"], str), where
        assert rec["source"] is None or isinstance(rec["source"], str), where
        country = rec["country"]
        assert country is None or (
            isinstance(country, str) and re.fullmatch("[A-Z]{2}", country)
        ), where
        assert isinstance(rec["should_alert"], bool), where
        assert type(rec["severity"]) is int, where
        assert rec["severity"] in (0, 1, 2, 3), where
        assert isinstance(rec["indicators"], list), where
        assert all(isinstance(i, str) for i in rec["indicators"]), where
        assert isinstance(rec["casualties"], dict), where
        assert set(rec["casualties"]) == CASUALTY_KEYS, where
        for value in rec["casualties"].values():
            assert value is None or (
                isinstance(value, int) and not isinstance(value, bool) and value >= 0
            ), where


def test_dates_are_iso_like(split):
    import re

    pattern = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
    name, records = split
    for rec in records:
        if rec["date"] is not None:
            assert pattern.match(rec["date"]), f"{name}:{rec['id']}: {rec['date']}"


def test_indicator_ids_valid(split):
    name, records = split
    for rec in records:
        unknown = set(rec["indicators"]) - INDICATOR_IDS
        assert not unknown, f"{name}:{rec['id']}: unknown indicators {unknown}"
        assert len(rec["indicators"]) == len(set(rec["indicators"])), rec["id"]


def test_should_alert_matches_severity(split):
    name, records = split
    for rec in records:
        assert rec["should_alert"] == (rec["severity"] >= 2), f"{name}:{rec['id']}"


def test_severity_consistent_with_indicators(split):
    name, records = split
    for rec in records:
        if rec["severity"] == 0:
            assert rec["indicators"] == [], f"{name}:{rec['id']}"
        else:
            assert rec["indicators"], f"{name}:{rec['id']}"


def test_negatives_at_least_a_third(split):
    name, records = split
    negatives = sum(1 for rec in records if rec["severity"] == 0)
    assert negatives * 3 >= len(records), f"{name}: {negatives}/{len(records)} negatives"


def test_excerpt_length(split):
    # Seed texts (ids starting with "seed-") are included whole; other excerpts are 100-1,500 chars.
    name, records = split
    for rec in records:
        if not rec["id"].startswith("seed-"):
            assert 100 <= len(rec["text"]) <= 1500, f"{name}:{rec['id']}: {len(rec['text'])} chars"


def test_every_record_has_url_or_source(split):
    name, records = split
    for rec in records:
        assert rec["url"] or rec["source"], f"{name}:{rec['id']}"


def test_ids_unique_across_files():
    seen = {}
    for name in SPLITS:
        for rec in _load(name):
            assert rec["id"] not in seen, f"duplicate id {rec['id']} in {name}, {seen[rec['id']]}"
            seen[rec["id"]] = name


def test_no_text_shared_between_splits():
    texts = {name: {rec["text"] for rec in _load(name)} for name in SPLITS}
    assert not (texts["dev"] & texts["heldout"])
