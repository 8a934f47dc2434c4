"""Settings from the environment (prefix ``MINQING_``), validated at start-up.

Every field has a default that works on a developer's machine with ``minqing up``.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from eventkit.keys import KeyRing


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
    kafka_fetch_max_wait_ms: int = Field(default=50, ge=1, le=10000)
    """How long a consumer's fetch waits on the broker when nothing is there. Apache Kafka
    answers a waiting fetch as soon as records arrive, so any value works there; the local
    Tansu broker answers only when the wait is over, so the wait is added to every record
    that finds the consumer idle (aiokafka's default, 500 ms, made the pipeline's median
    latency about 250 ms). 50 ms costs an idle consumer 20 small requests a second."""
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
    """Address the services' HTTP servers bind to (0.0.0.0 in a container). Beyond
    loopback, a process refuses to start while a secret is at its development default
    (so it does with ``database_url`` set outside the local stack, or ``public_base_url``
    not on this machine: eventkit.keys)."""
    local_stack: bool = False
    """Set by the local stack (``minqing up``) for the processes it starts, whose
    ``database_url`` is the stack's own database: they may start with the development
    secrets on loopback. Never set in a deployment."""
    https_only: bool | None = None
    """Browsers reach the services only over https (TLS ends at a proxy in front): every
    response carries Strict-Transport-Security. Unset: when ``public_base_url`` is https."""
    jwt_secret: str = "minqing-local-development-secret-change-me"
    """Key signing the staff tokens (HS256). Set a long random value in production."""
    jwt_key_id: str = "k1"
    """Id of ``jwt_secret``, carried by every token (``kid``)."""
    jwt_previous_secrets: dict[str, str] = Field(default_factory=dict)
    """Keys that signed earlier tokens, by id, as JSON (``{"k1": "..."}``): their tokens
    stay valid until they expire, so the signing key rotates without downtime."""
    jwt_ttl_hours: float = Field(default=12, gt=0)
    privacy_key: str = "minqing-local-development-privacy-key-change-me"
    """Key wrapping every resident's key in ``privacy.subject_keys`` (eventkit.privacy): a
    copy of the database alone does not open residents' data."""
    privacy_key_id: str = "k1"
    """Id of ``privacy_key``, stored with every key it wraps."""
    privacy_previous_keys: dict[str, str] = Field(default_factory=dict)
    """Earlier wrapping keys, by id, as JSON: keys they wrapped still open until
    ``minqing keys rewrap`` wraps them again with ``privacy_key``."""
    privacy_lookup_key: str = "minqing-local-development-lookup-key-change-me"
    """Key of the blind index of residents' phone numbers and of the tracking refs
    (eventkit.blind_index; each purpose's key derived from it): never in the database,
    so that a copy of it cannot map residents to their numbers."""
    privacy_lookup_key_id: str = "k1"
    """Id of ``privacy_lookup_key``, stored beside every hash of the index it makes."""
    privacy_lookup_previous_keys: dict[str, str] = Field(default_factory=dict)
    """Earlier index keys, by id, as JSON: a number indexed with one of them is still
    found until ``minqing privacy reindex`` re-hashes it with ``privacy_lookup_key``, and
    tracking refs made with one keep matching as long as it is listed."""
    public_base_url: str = "http://127.0.0.1:8001"
    """Where residents reach intake: QR posters and tracking links point here."""

    consumer_max_attempts: int = Field(default=5, ge=1)
    """Attempts of a handler on one record before the record goes to the DLQ."""
    consumer_batch_size: int = Field(default=1, ge=1)
    """Records a consumer handles in one transaction and one offset commit. Above 1,
    throughput rises and an idle consumer waits up to 50 ms to fill a batch."""
    consumer_backoff: float = Field(default=0.2, ge=0)
    """First retry delay in seconds; doubles on each attempt, capped at 30 s."""

    @classmethod
    def secret_fields(cls) -> list[str]:
        """Every setting that holds a secret: its name says secret or key."""
        return [
            name
            for name in cls.model_fields
            if "secret" in name or "password" in name or name.endswith(("_key", "_keys"))
        ]

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # A settings object printed (a traceback's locals, a debug line) shows no secret,
        # nor the password of a URL (the database's).
        hidden = set(self.secret_fields())
        for name, value in super().__repr_args__():
            if name in hidden and value:
                yield name, "********"
            elif isinstance(value, str):
                yield name, mask_url_password(value)
            else:
                yield name, value

    def development_secrets(self) -> list[str]:
        """Secret settings still at their development default (fine locally, never in
        production): every field whose name says secret or key and that was not set, and
        every set of previous keys that holds one of those defaults."""
        model_fields = type(self).model_fields
        fields = {name: model_fields[name] for name in self.secret_fields()}
        defaults = {f.default for f in fields.values() if isinstance(f.default, str)}

        def development(name: str) -> bool:
            value = getattr(self, name)
            if isinstance(value, dict):
                value = list(value.values())
            if isinstance(value, list):  # previous keys: none may be a default
                return bool(defaults & {str(v) for v in value})
            return isinstance(fields[name].default, str) and value == fields[name].default

        return [name for name in fields if development(name)]

    def jwt_keys(self) -> KeyRing:
        """The keys of the staff tokens: ``jwt_secret`` signs, every one verifies."""
        return KeyRing(self.jwt_key_id, self.jwt_secret, dict(self.jwt_previous_secrets))

    def privacy_keys(self) -> KeyRing:
        """The keys wrapping residents' keys: ``privacy_key`` wraps, every one unwraps."""
        return KeyRing(self.privacy_key_id, self.privacy_key, dict(self.privacy_previous_keys))

    def privacy_lookup_keys(self) -> KeyRing:
        """The keys of the blind index: ``privacy_lookup_key`` hashes, every one finds."""
        return KeyRing(
            self.privacy_lookup_key_id,
            self.privacy_lookup_key,
            dict(self.privacy_lookup_previous_keys),
        )

    def serves_https(self) -> bool:
        """Whether browsers reach the services only over https (``https_only``)."""
        if self.https_only is not None:
            return self.https_only
        return self.public_base_url.lower().startswith("https://")

    def topic(self, name: str) -> str:
        """The real name of a topic under this deployment's prefix."""
        return self.topic_prefix + name


def mask_url_password(value: str) -> str:
    """``value`` with the password of its URL's userinfo replaced by ``********`` (any
    other text as it is)."""
    if "://" not in value or "@" not in value:
        return value
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return "********"  # malformed: show nothing of it rather than a password
    if not password:
        return value
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:********@{hostinfo}"))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
