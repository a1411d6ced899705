"""rules.yaml: defaults, per-country overrides, and start-up errors that name the bad key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from services.classify.rules import load_rules
from services.common.config import ConfigError
from services.common.settings import DEV_CONFIG_DIR


def rules_file(tmp_path: Path, text: str) -> Path:
    (tmp_path / "rules.yaml").write_text(text)
    return tmp_path


def test_dev_rules_are_the_brief_defaults() -> None:
    rules = load_rules(DEV_CONFIG_DIR)
    assert rules.immediate.min_severity == 3
    assert (rules.corroborated.min_feeds, rules.corroborated.window) == (2, timedelta(hours=24))
    spike = rules.spike
    assert (spike.window, spike.baseline, spike.factor, spike.min_count) == (
        timedelta(hours=1),
        timedelta(hours=24),
        3.0,
        5,
    )
    assert rules.resolve_after == timedelta(hours=72)


def test_country_override_changes_only_its_keys(tmp_path: Path) -> None:
    rules = load_rules(
        rules_file(
            tmp_path,
            "spike: {factor: 4}\n"
            "countries:\n  SD:\n    spike: {min_count: 3}\n    resolve_after: 7d\n",
        )
    )
    sd, kg = rules.for_country("SD"), rules.for_country("KG")
    assert (sd.spike.min_count, sd.spike.factor, sd.resolve_after) == (3, 4.0, timedelta(days=7))
    assert (kg.spike.min_count, kg.spike.factor, kg.resolve_after) == (5, 4.0, timedelta(hours=72))
    assert rules.retention == timedelta(days=7), "events are kept as long as any country needs"


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("spike: {windw: 1h}\n", "spike.windw"),
        ("corroborated: {min_feeds: 1}\n", "corroborated.min_feeds"),
        ("spike: {window: 2h, baseline: 1h}\n", "spike"),
        ("resolve_after: soon\n", "resolve_after"),
        ("countries:\n  kg: {}\n", "countries.kg"),
        ("countries:\n  KG:\n    spike: {min_count: 0}\n", "countries.KG.spike.min_count"),
        ("countries:\n  KG:\n    corroborated: {feeds: 3}\n", "countries.KG.corroborated.feeds"),
        ("countries:\n  KG:\n    max_reports: 3\n", "countries.KG.max_reports"),
    ],
)
def test_bad_rules_stop_start_up_naming_the_key(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_rules(rules_file(tmp_path, text))
    assert str(tmp_path / "rules.yaml") in str(err.value)
    assert named in str(err.value)
