"""``make eval``: the scoring, the keyword baseline, and the report on both splits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.classification import Casualties, Classification, IndicatorMatch
from services.classify import evaluation
from services.classify.evaluation import KeywordBaseline, Report, load, render, run, score


def _report(**kw: object) -> Report:
    base: dict[str, object] = {
        "id": "r1",
        "text": "x",
        "should_alert": True,
        "severity": 3,
        "country": "KG",
        "indicators": ["mass_displacement"],
        "casualties": {"killed": 170, "injured": None, "displaced": None},
    }
    base.update(kw)
    return Report.from_json(base)


def _result(
    severity: int, ids: list[str], countries: list[str], killed: int | None
) -> Classification:
    matches = [IndicatorMatch(id=i, risk_factors=[1], confidence=0.9, evidence=[]) for i in ids]
    return Classification(
        severity=severity,
        countries=countries,
        indicators=matches,
        casualties=Casualties(killed=killed),
    )


def test_score_counts_alerts_indicators_countries_and_casualties() -> None:
    reports = [
        _report(id="hit"),
        _report(id="quiet", should_alert=False, severity=0, indicators=[], country=None,
                casualties={}),
    ]  # fmt: skip
    results = {
        "hit": _result(3, ["mass_displacement", "aerial_attack"], ["KG"], 170),
        "quiet": _result(1, [], [], 5),
    }
    s = score(reports, lambda r: results[r.id])
    assert (s.alert.tp, s.alert.fp, s.alert.fn) == (1, 0, 0)
    assert s.silent_share == 1.0
    assert s.indicators["mass_displacement"].tp == 1
    assert s.indicators["aerial_attack"].fp == 1
    assert s.micro.precision == 0.5
    assert s.country_accuracy == 1.0
    # the invented figure on the negative counts against
    assert (s.casualty_right, s.casualty_total) == (1, 2)


def test_load_skips_a_partly_written_line(tmp_path: Path) -> None:
    good = {"id": "a", "text": "t", "should_alert": False}
    (tmp_path / "dev.jsonl").write_text(json.dumps(good) + "\n" + '{"id": "b", "te', "utf-8")
    assert [r.id for r in load("dev", tmp_path)] == ["a"]
    assert load("heldout", tmp_path) == []


def test_keyword_baseline_fires_on_any_keyword() -> None:
    result = KeywordBaseline().classify("The film review praised the massacre scene in Libya.")
    assert "killing_of_civilians" in {m.id for m in result.indicators}
    assert result.severity >= 2
    assert result.countries == ["LY"]


@pytest.fixture(scope="module")
def results() -> dict[str, dict[str, evaluation.Scores]]:
    return run()


def test_eval_reports_both_splits_beside_the_baseline(
    results: dict[str, dict[str, evaluation.Scores]],
) -> None:
    assert set(results) == {"dev", "heldout"}
    assert results["heldout"]["tocsin"].reports > 0
    text = render(results, show_errors=False)
    for needle in ("heldout tocsin", "heldout keywords", "alert recall", "negatives left silent",
                   "country accuracy", "casualty accuracy", "held-out targets",
                   "state_incapacity_or_request_for_help"):  # fmt: skip
        assert needle in text


def test_main_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluation.main([]) == 0
    out = capsys.readouterr().out
    assert "dev tocsin" in out
    assert "heldout tocsin" in out
