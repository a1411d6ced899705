"""Alert rules from ``rules.yaml``: which classified reports raise an alert, per country.

Global rules apply everywhere; ``countries.<CC>`` overrides any of their keys for one country.
Every override is merged and validated at start-up, so a bad key stops classify with its path.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from schemas.classification import Severity
from services.common.config import Duration, load_config

CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = True


class ImmediateRule(_Rule):
    """One report at or above ``min_severity`` fires an alert."""

    min_severity: Severity = 3


class CorroboratedRule(_Rule):
    """``min_feeds`` distinct feeds, each with a story of its own, report the same country and
    indicator at ``min_severity`` or more within ``window``."""

    min_severity: Severity = 2
    min_feeds: int = Field(default=2, ge=2)
    window: Duration = timedelta(hours=24)

    @model_validator(mode="after")
    def _positive_window(self) -> CorroboratedRule:
        if self.window <= timedelta(0):
            raise ValueError("window must be positive")
        return self


class SpikeRule(_Rule):
    """Distinct stories in ``window`` reach max(min_count, factor × their mean per window over
    the ``baseline`` before it): the EMM breaking-news rule."""

    min_severity: Severity = 1
    window: Duration = timedelta(hours=1)
    baseline: Duration = timedelta(hours=24)
    factor: float = Field(default=3.0, gt=0)
    min_count: int = Field(default=5, ge=1)

    @model_validator(mode="after")
    def _windows(self) -> SpikeRule:
        if self.window <= timedelta(0):
            raise ValueError("window must be positive")
        if self.baseline < self.window:
            raise ValueError("baseline must be at least one window long")
        return self

    @property
    def baseline_windows(self) -> float:
        """How many windows the baseline spans: its count divided by this is the mean."""
        return self.baseline / self.window


class RuleSet(BaseModel):
    """The rules in force for one country."""

    model_config = ConfigDict(extra="forbid")

    immediate: ImmediateRule = Field(default_factory=ImmediateRule)
    corroborated: CorroboratedRule = Field(default_factory=CorroboratedRule)
    spike: SpikeRule = Field(default_factory=SpikeRule)
    resolve_after: Duration = Field(
        default=timedelta(hours=72), description="An alert with no new support this long resolves."
    )

    @property
    def horizon(self) -> timedelta:
        """How far back a decision looks: the longest window the rules need."""
        return max(self.corroborated.window, self.spike.window + self.spike.baseline)


class RulesConfig(RuleSet):
    """The whole ``rules.yaml``: global rules, per-country overrides and engine limits."""

    max_reports: int = Field(default=10, ge=1, description="Supporting reports kept per alert.")
    max_report_ids: int = Field(
        default=100, ge=1, description="Report ids listed per alert, newest first."
    )
    near_duplicate_similarity: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Texts at least this similar (estimated Jaccard of shingles) are one story.",
    )
    sweep_every: Duration = Field(
        default=timedelta(minutes=1), description="How often due alerts are resolved."
    )
    countries: dict[CountryCode, dict[str, Any]] = Field(
        default_factory=dict, description="Per-country overrides of the rules above."
    )
    _by_country: dict[str, RuleSet] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _merge_overrides(self) -> RulesConfig:
        base = RuleSet.model_validate(self.model_dump(include=set(RuleSet.model_fields)))
        for country, override in self.countries.items():
            try:
                self._by_country[country] = RuleSet.model_validate(
                    _deep_merge(base.model_dump(), override)
                )
            except ValidationError as exc:
                raise ValueError(
                    "; ".join(
                        f"countries.{country}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                        for e in exc.errors()
                    )
                ) from None
        self._by_country[""] = base
        return self

    def for_country(self, country: str) -> RuleSet:
        return self._by_country.get(country) or self._by_country[""]

    @property
    def max_horizon(self) -> timedelta:
        """The longest look-back of any country: how long window events are kept."""
        return max(r.horizon for r in self._by_country.values())

    @property
    def retention(self) -> timedelta:
        """How long a counted report is remembered, so a redelivery within it counts once."""
        return max(self.max_horizon, *(r.resolve_after for r in self._by_country.values()))


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_rules(config_dir: Path) -> RulesConfig:
    return load_config(config_dir / "rules.yaml", RulesConfig)
