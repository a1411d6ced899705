"""Writes the JSON Schema of every topic's contract to ``schemas/json/``.

Run ``python -m schemas.export`` after changing a contract; a test fails when the export is stale.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas import topics
from schemas.alerts import AlertRaised
from schemas.classification import Classification, ReportClassified
from schemas.deliveries import DeadLettered, NotificationSent
from schemas.reports import BatchAccepted, ReportAccepted, ReportIn, ReportReceived

EXPORT_DIR = Path(__file__).parent / "json"

CONTRACTS: dict[str, type[BaseModel]] = {
    topics.REPORTS_RAW: ReportReceived,
    topics.REPORTS_CLASSIFIED: ReportClassified,
    topics.ALERTS: AlertRaised,
    topics.DELIVERIES: NotificationSent,
    topics.DEADLETTER: DeadLettered,
    "http.report-in": ReportIn,
    "http.report-accepted": ReportAccepted,
    "http.batch-accepted": BatchAccepted,
    "cli.classification": Classification,
}


def rendered() -> dict[str, str]:
    """File name → JSON text, for every contract."""
    return {
        f"{name}.schema.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True)
        + "\n"
        for name, model in CONTRACTS.items()
    }


def main() -> None:
    EXPORT_DIR.mkdir(exist_ok=True)
    for name, text in rendered().items():
        (EXPORT_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote schemas/json/{name}")


if __name__ == "__main__":
    main()
