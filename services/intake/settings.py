"""Intake's settings: the shared ones plus its port, rate limits and Open311 keys."""

from __future__ import annotations

import hmac
from functools import cached_property
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

import yaml
from pydantic import Field

from eventkit.keys import KeyRing
from eventkit.settings import Settings


class IntakeSettings(Settings):
    """``MINQING_*`` variables read by intake, each with a default that works locally."""

    database_role: str | None = "minqing_intake"
    """The service's own role: it appends only to ``opinion-*`` streams; the database
    refuses the rest (migration ``0003_audit.sql``)."""

    intake_port: int = Field(default=8001, ge=1, le=65535)

    open311_api_keys: dict[str, list[str]] = Field(default_factory=dict)
    """District → the Open311 api_keys accepted for it, as JSON in
    ``MINQING_OPEN311_API_KEYS``, e.g. ``{"demo": ["k-3f9c..."]}``."""
    open311_api_keys_file: Path | None = None
    """A YAML file with the same mapping (district: [keys]); merged with the above."""
    open311_contact: str = "区人大常委会代表联络工作室 / district people's congress liaison office"
    """Shown in the Open311 discovery document."""
    open311_publish_descriptions: bool = True
    """Whether GET requests shows the resident's text (phone and ID numbers masked), for
    opinions sent through the public web channels (``open311``, ``online``) only: the
    others always show the service's name and no address."""

    rate_submit_per_minute: float = Field(default=6.0, gt=0)
    """Public submissions (QR, online, feedback, withdrawal) per client address per
    minute, shared by every replica (``ratelimit.py``)."""
    rate_submit_burst: int = Field(default=10, ge=1)
    rate_read_per_minute: float = Field(default=120.0, gt=0)
    """Public reads (tracking pages, station lists) per client address per minute."""
    rate_read_burst: int = Field(default=60, ge=1)
    rate_station_per_minute: float = Field(default=30.0, gt=0)
    """Public submissions through one station's QR code, from every address together
    (``station_guard.py``)."""
    rate_station_burst: int = Field(default=60, ge=1)
    rate_open311_per_minute: float = Field(default=60.0, gt=0)
    """Open311 service requests (POST) per client ``api_key`` per minute, shared by every
    replica (``ratelimit.py``): a registered client, not a resident, so a budget of its
    own rather than an address's."""
    rate_open311_burst: int = Field(default=30, ge=1)
    rate_check_timeout: float = Field(default=0.5, gt=0)
    """Seconds a limit waits for the database before counting in this process alone."""
    rate_sweep_interval: float = Field(default=300.0, ge=0)
    """Seconds between two clean-ups of idle buckets and spent challenges (0: none)."""
    pow_auto_bits: int = Field(default=14, ge=0, le=28)
    """Difficulty of the proof-of-work a station asks for by itself once its limit
    tripped (zero bits the SHA-256 must start with; 0: never by itself, answer 429)."""
    pow_auto_minutes: float = Field(default=30.0, gt=0)
    """How long a guard switched on by itself lasts."""
    pow_challenge_seconds: float = Field(default=300.0, gt=0)
    """How long a proof-of-work challenge may be solved and sent."""
    trusted_proxies: list[str] = Field(default_factory=list)
    """Networks (CIDR) of reverse proxies whose X-Forwarded-For names the real client."""

    intake_hash_key: str = "minqing-local-development-intake-hash-key-change-me"
    """Key of the HMAC-SHA256 digests intake stores of request bodies (idempotency keys,
    12345 work orders, Open311 posts), which may hold a resident's name and phone. Set a
    long random value in production (``MINQING_INTAKE_HASH_KEY``). It also derives the
    keys of the rate limits' client hashes and of the proof-of-work challenges."""
    intake_hash_key_id: str = "k1"
    """Id of ``intake_hash_key``."""
    intake_hash_previous_keys: dict[str, str] = Field(default_factory=dict)
    """Earlier hash keys, by id, as JSON: a retried request whose digest was stored with
    one of them is still recognised as the same request. Drop an entry once no client
    retries that old (a day). Challenges signed with one are accepted until they expire,
    and a client's rate-limit bucket under one is carried over to the current key."""

    directory_cache_seconds: float = Field(default=5.0, ge=0)
    intake_scan_record_interval: float = Field(default=60.0, ge=0)
    """Seconds between two recordings of the QR page views' totals as events
    (``QrScansRecorded``); 0 records none in the background (``minqing intake scans``)."""
    """How long a station or district looked up for a submission is reused."""

    @cached_property
    def trusted_proxy_networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        """``trusted_proxies`` parsed."""
        return tuple(ip_network(cidr, strict=False) for cidr in self.trusted_proxies)

    @property
    def intake_hash_secret(self) -> bytes:
        """``intake_hash_key`` as the HMAC key."""
        return self.intake_hash_key.encode()

    @property
    def intake_hash_secrets(self) -> tuple[bytes, ...]:
        """Every hash key as an HMAC key, the current one first (it hashes what is
        stored; the previous ones only recognise what was stored before a rotation)."""
        return tuple(
            key.encode()
            for _, key in KeyRing(
                self.intake_hash_key_id, self.intake_hash_key, dict(self.intake_hash_previous_keys)
            ).all()
        )

    def api_keys_for(self, district_id: str) -> list[str]:
        """Every Open311 api_key accepted for ``district_id``."""
        keys = list(self.open311_api_keys.get(district_id, []))
        if self.open311_api_keys_file is not None and self.open311_api_keys_file.exists():
            loaded = yaml.safe_load(self.open311_api_keys_file.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                found = loaded.get(district_id) or []
                keys.extend(str(k) for k in (found if isinstance(found, list) else [found]))
        return [k for k in keys if k]

    def api_key_valid(self, district_id: str, api_key: str) -> bool:
        """Whether ``api_key`` is one of the district's keys (compared in constant time)."""
        supplied = api_key.encode()
        valid = False
        for key in self.api_keys_for(district_id):
            valid |= hmac.compare_digest(key.encode(), supplied)
        return valid
