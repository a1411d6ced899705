"""Every setting of every service, read from ``TOCSIN_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
DEV_CONFIG_DIR = REPO_ROOT / "deploy" / "config" / "dev"
DEV_SECRET = "dev-only-secret-change-me"
DEV_OPERATOR_TOKEN = "dev-only-operator-token"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TOCSIN_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    config_dir: Path = DEV_CONFIG_DIR
    database_url: str = Field(
        default=f"sqlite+aiosqlite:///{REPO_ROOT / 'var' / 'tocsin.db'}",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///… or postgresql+asyncpg://…",
    )
    topic_partitions: int = Field(default=4, ge=1)

    ingest_port: int = 8000
    ingest_max_body_bytes: int = Field(
        default=16 * 1024 * 1024, ge=1024, description="Larger request bodies get 413."
    )
    ingest_publish_timeout_s: float = Field(
        default=5.0, gt=0, description="Kafka must acknowledge within this, else 503."
    )
    ingest_max_in_flight: int = Field(
        default=20_000, ge=1, description="Reports awaiting Kafka acks before 503 (saturated)."
    )
    ingest_dedup_retention_s: float = Field(
        default=30 * 86400, gt=0, description="A repeat within this window is a duplicate."
    )
    ingest_polling: bool = Field(default=True, description="Poll feeds with a poll: block.")
    classify_port: int = 8001
    notify_port: int = 8002
    host: str = "127.0.0.1"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    smtp_from: str = "Tocsin <alerts@tocsin.localhost>"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = 10.0

    slack_timeout_s: float = 10.0
    public_url: str = Field(
        default="http://127.0.0.1:8002", description="Base URL of notify, for acknowledge links."
    )
    secret_key: SecretStr = Field(
        default=SecretStr(DEV_SECRET), description="Signs acknowledge links."
    )
    environment: str = Field(default="dev", description="'dev' allows the placeholder secret.")
    operator_token: SecretStr = Field(
        default=SecretStr(DEV_OPERATOR_TOKEN), description="Bearer token, notify ops API."
    )
    notify_ack_ttl_s: float = Field(default=7 * 86400, gt=0, description="Ack link lifetime.")
    notify_poll_s: float = Field(default=1.0, gt=0, description="How often due timers are checked.")
    notify_max_attempts: int = Field(default=10, ge=1, description="Per channel, then dead-letter.")
    notify_backoff_base_s: float = Field(default=2.0, gt=0, description="First retry delay.")
    notify_backoff_cap_s: float = Field(default=300.0, gt=0, description="Longest retry delay.")
    notify_lease_s: float = Field(
        default=60.0, gt=0, description="A send claimed by a replica that died is retried after."
    )

    @model_validator(mode="after")
    def _no_placeholder_secret_outside_dev(self) -> Settings:
        if self.environment != "dev" and self.secret_key.get_secret_value() == DEV_SECRET:
            raise ValueError("TOCSIN_SECRET_KEY must be set outside TOCSIN_ENVIRONMENT=dev")
        if (
            self.environment != "dev"
            and self.operator_token.get_secret_value() == DEV_OPERATOR_TOKEN
        ):
            raise ValueError("TOCSIN_OPERATOR_TOKEN must be set outside TOCSIN_ENVIRONMENT=dev")
        return self
