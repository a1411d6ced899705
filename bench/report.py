"""The results of a run: the table ``make bench`` prints and ``var/bench/latest.json``."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TARGETS: dict[str, tuple[str, float]] = {
    "classify_stage_vs_raw": (">=", 0.5),
    "ingest_batch_reports_per_s": (">=", 5000),
    "e2e_p99_ms": ("<=", 500),
    "e2e_p99_ms_at_1000": ("<=", 2000),
    "max_rss_mb": ("<", 200),
}
"""The issue's targets, checked in the table."""

ROWS: list[tuple[str, str, str]] = [
    ("raw_passthrough_msgs_per_s", "raw aiokafka consume→produce→commit", "msg/s"),
    ("classify_stage_msgs_per_s", "classify stage (consume, classify, produce, commit)", "msg/s"),
    ("classify_stage_vs_raw", "  classify stage / raw", "×"),
    ("classifier_only_reports_per_s", "classifier alone, one core", "reports/s"),
    ("ingest_single_reports_per_s", "ingest POST /v1/reports", "reports/s"),
    ("ingest_single_vs_raw", "  ingest single / raw", "×"),
    ("ingest_batch_reports_per_s", "ingest POST /v1/reports/batch", "reports/s"),
    ("ingest_batch_vs_raw", "  ingest batch / raw", "×"),
    ("notify_alerts_per_s", "notify, delivered (email + Slack per alert)", "alerts/s"),
    ("notify_intake_alerts_per_s", "  notify, taken in from Kafka", "alerts/s"),
    ("e2e_p50_ms", "end to end p50 at 100/s", "ms"),
    ("e2e_p95_ms", "end to end p95 at 100/s", "ms"),
    ("e2e_p99_ms", "end to end p99 at 100/s", "ms"),
    ("e2e_to_answer_p50_ms", "  of which POST → 202 from ingest, p50", "ms"),
    ("e2e_to_answer_p99_ms", "  of which POST → 202 from ingest, p99", "ms"),
    ("e2e_to_alert_p50_ms", "  of which POST → alerts.v1, p50", "ms"),
    ("e2e_to_alert_p99_ms", "  of which POST → alerts.v1, p99", "ms"),
    ("e2e_offered_fraction", "  share of the 100/s schedule posted", "fraction"),
    ("e2e_delivered_fraction", "  posted reports delivered at 100/s", "fraction"),
    ("e2e_p50_ms_at_1000", "end to end p50 at 1,000/s", "ms"),
    ("e2e_p95_ms_at_1000", "end to end p95 at 1,000/s", "ms"),
    ("e2e_p99_ms_at_1000", "end to end p99 at 1,000/s", "ms"),
    ("e2e_to_answer_p50_ms_at_1000", "  of which POST → 202 from ingest, p50", "ms"),
    ("e2e_to_answer_p99_ms_at_1000", "  of which POST → 202 from ingest, p99", "ms"),
    ("e2e_to_alert_p50_ms_at_1000", "  of which POST → alerts.v1, p50", "ms"),
    ("e2e_to_alert_p99_ms_at_1000", "  of which POST → alerts.v1, p99", "ms"),
    ("e2e_offered_fraction_at_1000", "  share of the 1,000/s schedule posted", "fraction"),
    ("e2e_delivered_fraction_at_1000", "  posted reports delivered at 1,000/s", "fraction"),
    ("rss_ingest_mb", "peak RSS ingest", "MB"),
    ("rss_classify_mb", "peak RSS classify", "MB"),
    ("rss_notify_mb", "peak RSS notify", "MB"),
    ("rss_broker_mb", "peak RSS broker (Tansu)", "MB"),
    ("max_rss_mb", "peak RSS, largest service", "MB"),
]


def add_ratios(results: dict[str, Any]) -> None:
    """Each stage's rate as a fraction of the raw pass-through measured in the same run."""
    raw = results.get("raw_passthrough_msgs_per_s")
    if not raw:
        return
    for key, ratio in (
        ("classify_stage_msgs_per_s", "classify_stage_vs_raw"),
        ("ingest_single_reports_per_s", "ingest_single_vs_raw"),
        ("ingest_batch_reports_per_s", "ingest_batch_vs_raw"),
    ):
        if results.get(key) is not None:
            results[ratio] = results[key] / raw


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
    except (OSError, StopIteration, ValueError):
        mem_kb = 0
    return {
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "cpu_model": model,
        "cpus": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def verdict(key: str, value: Any) -> str:
    if key not in TARGETS:
        return ""
    if value is None:
        return "MISS (not reached)"
    op, limit = TARGETS[key]
    ok = {">=": value >= limit, "<=": value <= limit, "<": value < limit}[op]
    return f"{'ok' if ok else 'MISS'} ({op} {limit:g})"


def _fmt(value: Any, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit in ("×", "fraction"):
        return f"{value:.2f}"
    return f"{value:,.0f}"


def table(results: dict[str, Any]) -> str:
    """A Markdown table: readable in a terminal and pasted as is into the README."""
    lines = ["| measure | value | unit | target |", "|---|---:|---|---|"]
    for key, label, unit in ROWS:
        if key in results:
            value = results[key]
            lines.append(f"| {label} | {_fmt(value, unit)} | {unit} | {verdict(key, value)} |")
    return "\n".join(lines)


def write(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), **results}
    path.write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
