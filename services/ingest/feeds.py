"""Feeds from ``feeds.yaml`` and bearer-token authentication against their sha256 digests."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from pathlib import Path

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator

from services.common.config import Duration, load_config


class Poll(BaseModel):
    """Tocsin fetches this RSS/Atom document on a schedule."""

    model_config = ConfigDict(extra="forbid")
    url: AnyHttpUrl = Field(description="http(s) only; the host must resolve to public addresses.")
    every: Duration = timedelta(seconds=300)
    timeout: Duration = Field(default=timedelta(seconds=30), description="Per fetch.")
    allow_private: bool = Field(
        default=False,
        description="Allow loopback and private addresses (a feed on the same host or LAN).",
    )

    @model_validator(mode="after")
    def _sane_schedule(self) -> Poll:
        if self.every < timedelta(seconds=1):
            raise ValueError("every must be at least 1s")
        return self


class RateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    per_second: float = Field(default=200.0, gt=0, description="Reports per second, sustained.")
    burst: int = Field(default=2_000, ge=1, description="Reports accepted at once after a pause.")


class Feed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")
    token_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="sha256 hex of the bearer token; a feed without one cannot post.",
    )
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    poll: Poll | None = None


class FeedsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    feeds: list[Feed]

    @model_validator(mode="after")
    def _unique(self) -> FeedsConfig:
        ids = [f.id for f in self.feeds]
        if dupes := sorted({i for i in ids if ids.count(i) > 1}):
            raise ValueError(f"feed ids must be unique: {', '.join(dupes)}")
        tokens = [f.token_sha256 for f in self.feeds if f.token_sha256]
        if len(tokens) != len(set(tokens)):
            raise ValueError("two feeds share a token_sha256")
        return self


def load_feeds(config_dir: Path) -> FeedsConfig:
    return load_config(config_dir / "feeds.yaml", FeedsConfig)


class FeedAuth:
    """Maps a bearer token to its feed id; tokens are only ever held as digests."""

    def __init__(self, config: FeedsConfig) -> None:
        self._feeds = [
            (bytes.fromhex(f.token_sha256), f.id) for f in config.feeds if f.token_sha256
        ]

    def feed_for(self, token: str) -> str | None:
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for expected, feed_id in self._feeds:  # compare with every feed: timing reveals nothing
            if hmac.compare_digest(digest, expected):
                found = feed_id
        return found
