"""The classifier's verdict on one report: `tocsin classify` output, reports.classified.v1."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

Severity = Annotated[int, Field(ge=0, le=3)]
"""0 none, 1 watch, 2 warning, 3 critical (see docs/taxonomy.md)."""


class Evidence(BaseModel):
    """A span of the original report text that supports an indicator."""

    start: int = Field(ge=0, description="Offset of the first character in the report text.")
    end: int = Field(ge=0, description="Offset one past the last character.")
    text: str


class IndicatorMatch(BaseModel):
    id: str = Field(description="Indicator id from the taxonomy.")
    risk_factors: list[int] = Field(description="UN Framework of Analysis risk factors (1-14).")
    confidence: float = Field(ge=0.0, le=1.0)
    evidence: list[Evidence]


class Casualties(BaseModel):
    killed: int | None = None
    injured: int | None = None
    displaced: int | None = None


class Classification(BaseModel):
    id: str | None = Field(default=None, description="The report id, echoed.")
    severity: Severity = 0
    countries: list[str] = Field(default_factory=list, description="ISO alpha-2, most cited first.")
    indicators: list[IndicatorMatch] = Field(default_factory=list)
    casualties: Casualties = Field(default_factory=Casualties)


class ReportClassified(BaseModel):
    """Payload of ``reports.classified.v1``, keyed by the first country so a country's
    windows live in one consumer."""

    report_id: str
    feed_id: str
    received_at: datetime
    title: str | None = None
    url: str | None = None
    classification: Classification
    near_duplicate_key: str | None = Field(
        default=None,
        pattern=r"^([0-9a-f]{8}){0,16}$",
        description="Bottom-k sketch of the report text's word shingles (up to 16 hashes of "
        "8 hex digits): near-identical texts (one wire story syndicated by many outlets) share "
        "most hashes and count once toward corroboration and spikes. Absent when the report "
        "names no country or no indicator: it supports no alert.",
    )
