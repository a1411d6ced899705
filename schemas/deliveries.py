"""The delivery audit stream ``deliveries.v1`` and the dead-letter topic ``deadletter.v1``."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Channel = Literal["email", "slack"]
Outcome = Literal["sent", "failed", "deadlettered", "duplicate"]


class NotificationSent(BaseModel):
    """One delivery attempt: answers "who was told what, when"."""

    alert_key: str = Field(description="'<fingerprint>@<version>' of the alert delivered.")
    fingerprint: str
    focal_point: str
    channel: Channel
    attempt: int = Field(ge=1)
    outcome: Outcome
    error: str | None = None
    at: datetime
    notification: str | None = Field(
        default=None,
        description="Which notification of the alert: the alert key, or it plus "
        "'~repeatN', '~escalation~<from>', '~fallback~<from>'.",
    )
    kind: Literal["notice", "resolved", "repeat", "escalation", "fallback"] = "notice"


class DeadLettered(BaseModel):
    """A message a service could not process, kept for an operator to inspect and replay."""

    service: str
    topic: str
    partition: int | None = None
    offset: int | None = None
    key: str | None = None
    payload: str = Field(description="The original message body, as text.")
    error: str
    at: datetime
