"""Settings from the environment (prefix ``MINQING_``), validated at start-up.

Every field has a default that works on a developer's machine with ``minqing up``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """What every process of Minqing reads from its environment."""

    model_config = SettingsConfigDict(env_prefix="MINQING_", extra="ignore")

    database_url: str | None = None
    """PostgreSQL URL. Unset: the local stack's embedded PostgreSQL under ``data_dir``."""
    database_role: str | None = "minqing_runtime"
    """Role the services ``SET ROLE`` to after connecting: SELECT and INSERT on the events.

    Empty to keep the login role (when the login role already is the restricted one).
    """
    database_pool_max: int = Field(default=10, ge=1)
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_idempotence: bool = False
    """Idempotent producer: on for Apache Kafka; the local Tansu broker refuses it."""
    kafka_partitions: int = Field(default=6, ge=1)
    """Partitions of the topics the relay creates when they do not exist yet."""
    kafka_replication_factor: int = Field(default=1, ge=1)
    """Replicas of the topics the relay creates (3 on a production cluster)."""
    topic_prefix: str = ""
    """Prefixed to every topic name; empty in production, unique per test."""
    data_dir: Path = Path(".minqing")
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: str = "INFO"

    relay_name: str = "main"
    relay_batch_size: int = Field(default=500, ge=1)
    relay_poll_interval: float = Field(default=0.5, gt=0)
    """Seconds between polls when no notification arrives (the fallback)."""

    http_host: str = "127.0.0.1"
    """Address the services' HTTP servers bind to (0.0.0.0 in a container)."""
    jwt_secret: str = "minqing-local-development-secret-change-me"
    """Key signing the staff tokens (HS256). Set a long random value in production."""
    jwt_ttl_hours: float = Field(default=12, gt=0)
    public_base_url: str = "http://127.0.0.1:8001"
    """Where residents reach intake: QR posters and tracking links point here."""

    consumer_max_attempts: int = Field(default=5, ge=1)
    """Attempts of a handler on one record before the record goes to the DLQ."""
    consumer_batch_size: int = Field(default=1, ge=1)
    """Records a consumer handles in one transaction and one offset commit. Above 1,
    throughput rises and an idle consumer waits up to 50 ms to fill a batch."""
    consumer_backoff: float = Field(default=0.2, ge=0)
    """First retry delay in seconds; doubles on each attempt, capped at 30 s."""

    def development_secrets(self) -> list[str]:
        """Secret settings still at their development default (fine locally, never in
        production): every field whose name says secret or key and that was not set."""
        return [
            name
            for name, field in type(self).model_fields.items()
            if ("secret" in name or name.endswith("_key"))
            and isinstance(field.default, str)
            and getattr(self, name) == field.default
        ]

    def topic(self, name: str) -> str:
        """The real name of a topic under this deployment's prefix."""
        return self.topic_prefix + name


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
