"""Focal points from ``focal_points.yaml``, their timing, and which of them an alert goes to."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    field_validator,
    model_validator,
)

from schemas.alerts import AlertRaised
from schemas.classification import Severity
from services.common.config import Duration, load_config


def _from_env(value: str) -> str:
    """``env:NAME`` reads the webhook from the environment, keeping secrets out of the file."""
    if not value.startswith("env:"):
        return value
    name = value[4:]
    if name not in os.environ:
        raise ValueError(f"environment variable {name} is not set")
    return os.environ[name]


def _https_or_loopback(value: str) -> str:
    if not (
        value.startswith("https://")
        or value.startswith("http://127.0.0.1")
        or value.startswith("http://localhost")
    ):
        raise ValueError("must be an https:// URL (plain http only on loopback)")
    return value


WebhookUrl = Annotated[str, AfterValidator(_from_env), AfterValidator(_https_or_loopback)]


def _country_codes(value: list[str]) -> list[str]:
    codes = [c.upper() for c in value]
    bad = [c for c in codes if c != "*" and not (len(c) == 2 and c.isalpha())]
    if bad:
        raise ValueError(f"not ISO 3166-1 alpha-2 codes: {bad}")
    return codes


CountryCodes = Annotated[list[str], AfterValidator(_country_codes)]


class Timing(BaseModel):
    """Alertmanager's timers plus escalation; every key optional in a focal point's override."""

    model_config = ConfigDict(extra="forbid")

    group_wait: Duration = Field(
        default=timedelta(seconds=30), description="Wait before the first notice of a new alert."
    )
    group_wait_critical: Duration = Field(
        default=timedelta(0), description="group_wait for severity 3: critical goes out at once."
    )
    group_interval: Duration = Field(
        default=timedelta(minutes=5), description="Least time between notices of one alert."
    )
    repeat_interval: Duration = Field(
        default=timedelta(hours=4), description="Re-send an unacknowledged firing alert after."
    )
    escalate_after: dict[Severity, Duration] = Field(
        default_factory=lambda: {3: timedelta(minutes=30), 2: timedelta(hours=4)},
        description="Per severity: unacknowledged this long goes to the fallback recipient.",
    )

    def wait_for(self, severity: int) -> timedelta:
        return self.group_wait_critical if severity >= 3 else self.group_wait

    def escalation_for(self, severity: int) -> timedelta | None:
        return self.escalate_after.get(severity)


class FocalPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    name: str
    email: list[EmailStr] = Field(default_factory=list)
    slack_webhook: WebhookUrl | None = None
    countries: CountryCodes = Field(
        default_factory=list, description="ISO alpha-2 codes, or ['*']."
    )
    regions: list[str] = Field(default_factory=list, description="Names from `regions:`.")
    indicators: list[str] = Field(
        default_factory=list, description="Only these indicators; empty means every indicator."
    )
    min_severity: Severity = 2
    fallback: str | None = Field(
        default=None, description="Focal point id told when this one does not acknowledge."
    )
    timing: Timing | None = Field(default=None, description="Overrides the file's `timing:`.")

    @model_validator(mode="after")
    def _has_a_channel_and_an_area(self) -> FocalPoint:
        if not self.email and not self.slack_webhook:
            raise ValueError("needs at least one of email, slack_webhook")
        if not self.countries and not self.regions:
            raise ValueError("needs countries or regions")
        return self


class FocalPointsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timing: Timing = Field(default_factory=Timing)
    regions: dict[str, CountryCodes] = Field(
        default_factory=dict, description="Named groups of countries focal points can cover."
    )
    desk: str | None = Field(
        default=None, description="Global fallback: the focal point id for those without one."
    )
    focal_points: list[FocalPoint] = Field(min_length=1)

    @field_validator("focal_points")
    @classmethod
    def _unique_ids(cls, value: list[FocalPoint]) -> list[FocalPoint]:
        seen: set[str] = set()
        for fp in value:
            if fp.id in seen:
                raise ValueError(f"duplicate focal point id {fp.id!r}")
            seen.add(fp.id)
        return value

    @model_validator(mode="after")
    def _references_exist(self) -> FocalPointsConfig:
        ids = {fp.id for fp in self.focal_points}
        if self.desk is not None and self.desk not in ids:
            raise ValueError(f"desk: no focal point with id {self.desk!r}")
        for i, fp in enumerate(self.focal_points):
            if fp.fallback is not None and fp.fallback not in ids:
                raise ValueError(f"focal_points.{i}.fallback: no focal point {fp.fallback!r}")
            if fp.fallback == fp.id:
                raise ValueError(f"focal_points.{i}.fallback: cannot be itself")
            unknown = [r for r in fp.regions if r not in self.regions]
            if unknown:
                raise ValueError(f"focal_points.{i}.regions: not defined in regions: {unknown}")
        return self

    def get(self, focal_point_id: str) -> FocalPoint | None:
        return next((fp for fp in self.focal_points if fp.id == focal_point_id), None)

    def timing_of(self, fp: FocalPoint) -> Timing:
        return fp.timing or self.timing

    def fallback_of(self, fp: FocalPoint) -> FocalPoint | None:
        """The focal point's own fallback, else the desk; never itself."""
        target = self.get(fp.fallback or self.desk or "")
        return target if target is not None and target.id != fp.id else None

    def wants(self, fp: FocalPoint, alert: AlertRaised) -> bool:
        if alert.severity < fp.min_severity:
            return False
        if fp.indicators and not set(fp.indicators) & {alert.indicator, *alert.indicators}:
            return False
        countries = set(fp.countries).union(*(self.regions[r] for r in fp.regions))
        return "*" in countries or alert.country.upper() in countries


def load_focal_points(config_dir: Path) -> FocalPointsConfig:
    return load_config(config_dir / "focal_points.yaml", FocalPointsConfig)


def route(alert: AlertRaised, config: FocalPointsConfig) -> list[FocalPoint]:
    return [fp for fp in config.focal_points if config.wants(fp, alert)]
