"""The bench's report writer: ratios to raw, target verdicts, the table and the JSON file."""

from __future__ import annotations

import json
from pathlib import Path

from bench.report import add_ratios, table, verdict, write


def test_ratios_are_taken_against_the_raw_pass_through_of_the_same_run() -> None:
    results: dict[str, object] = {
        "raw_passthrough_msgs_per_s": 20_000.0,
        "classify_stage_msgs_per_s": 12_000.0,
        "ingest_batch_reports_per_s": 5_000.0,
    }
    add_ratios(results)
    assert results["classify_stage_vs_raw"] == 0.6
    assert results["ingest_batch_vs_raw"] == 0.25
    assert "ingest_single_vs_raw" not in results, "no ratio for a stage that was not measured"


def test_targets_are_judged_in_their_direction_and_an_unreached_one_is_a_miss() -> None:
    assert verdict("classify_stage_vs_raw", 0.5).startswith("ok")
    assert verdict("classify_stage_vs_raw", 0.49).startswith("MISS")
    assert verdict("e2e_p99_ms", 480.0).startswith("ok")
    assert verdict("e2e_p99_ms", 520.0).startswith("MISS")
    assert verdict("max_rss_mb", 200.0).startswith("MISS"), "the RSS target is strict: < 200"
    assert verdict("e2e_p99_ms_at_1000", None).startswith("MISS")
    assert verdict("notify_alerts_per_s", 10.0) == "", "no target, no verdict"


def test_json_holds_the_results_and_the_machine_and_the_table_shows_them(tmp_path: Path) -> None:
    results: dict[str, object] = {
        "raw_passthrough_msgs_per_s": 15_000.0,
        "classify_stage_msgs_per_s": 1_500.0,
        "e2e_p99_ms": None,
        "max_rss_mb": 150.5,
    }
    add_ratios(results)
    out = tmp_path / "bench" / "latest.json"
    write(results, out)

    doc = json.loads(out.read_text())
    assert doc["raw_passthrough_msgs_per_s"] == 15_000.0
    assert doc["classify_stage_vs_raw"] == 0.1
    assert doc["e2e_p99_ms"] is None
    assert doc["machine"]["cpus"] >= 1
    assert doc["machine"]["cpu_model"]
    rows = table(results).splitlines()
    assert any("15,000" in r and "msg/s" in r for r in rows)
    assert any("0.10" in r and "MISS" in r for r in rows)
    assert any("n/a" in r and "MISS" in r for r in rows)
