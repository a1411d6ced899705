"""What ingest accepts from feeds and publishes on ``reports.raw.v1``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

ReportKind = Literal["news", "field", "official"]


class ReporterContact(BaseModel):
    """How to reach a field reporter. Ingest drops it on receipt: it is never published,
    stored or logged, so it never leaves ingest."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)


class ReportIn(BaseModel):
    """One report as a feed posts it. The feed id comes from the bearer token, never from here."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: str = Field(min_length=1, max_length=100_000, description="Body of the report.")
    title: str | None = Field(default=None, max_length=1_000)
    url: AnyHttpUrl | None = Field(default=None, description="Where the report was published.")
    external_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="The feed's own id for the report; the idempotency key within the feed.",
    )
    published_at: datetime | None = Field(default=None, description="RFC 3339 timestamp.")
    language: str | None = Field(
        default=None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$", description="BCP 47 tag."
    )
    country: str | None = Field(
        default=None, pattern=r"^[A-Za-z]{2}$", description="ISO 3166-1 alpha-2 hint."
    )
    kind: ReportKind = "news"
    reporter: ReporterContact | None = Field(
        default=None,
        description="Field reporter's contact details: accepted but dropped at ingest; "
        "they are never published, stored or logged.",
    )


class ReportReceived(BaseModel):
    """A report accepted by ingest: the payload of ``reports.raw.v1``, keyed by ``id``."""

    id: str = Field(description="Stable report id derived from feed and external id or content.")
    feed_id: str
    received_at: datetime = Field(description="When ingest accepted the report (UTC).")
    text: str
    title: str | None = None
    url: str | None = None
    external_id: str | None = None
    published_at: datetime | None = None
    language: str | None = None
    country: str | None = Field(default=None, description="Upper-case ISO alpha-2 hint.")
    kind: ReportKind = "news"


class ReportAccepted(BaseModel):
    """Ingest's answer for one report."""

    id: str
    status: Literal["accepted", "duplicate"]


class ItemError(BaseModel):
    """Why one field of one batch item was refused."""

    loc: list[str | int] = Field(description="Path to the field inside the item.")
    msg: str
    type: str


class BatchItemResult(BaseModel):
    """Ingest's answer for one item of a batch, in the order the items were sent."""

    index: int = Field(ge=0, description="Position of the item in the batch (0-based).")
    status: Literal["accepted", "duplicate", "rejected"]
    id: str | None = Field(default=None, description="Report id; absent when rejected.")
    errors: list[ItemError] = Field(default_factory=list, description="Why it was rejected.")


class BatchAccepted(BaseModel):
    """Ingest's answer for a batch: one result per item; rejected items were not published."""

    accepted: int = Field(ge=0)
    duplicate: int = Field(ge=0)
    rejected: int = Field(ge=0)
    results: list[BatchItemResult]
