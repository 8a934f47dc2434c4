"""The routing service's settings: the shared ones plus its own (prefix ``MINQING_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from eventkit.keys import KeyRing
from eventkit.settings import Settings


class RoutingSettings(Settings):
    """What the routing process reads from its environment."""

    database_role: str | None = "minqing_routing"
    """The service's own role: it appends only to ``case-*`` and the directory's streams
    (``district-*``, ``station-*``, ``representative-*``); the database refuses the rest
    (migration ``0003_audit.sql``)."""

    routing_port: int = Field(default=8002, ge=1, le=65535)
    http_host: str = "127.0.0.1"
    """Interface to listen on (``0.0.0.0`` in a container)."""
    routing_district_files: list[Path] = Field(default_factory=list)
    """District files imported (idempotently) at start-up, as JSON, e.g.
    ``MINQING_ROUTING_DISTRICT_FILES='["/etc/minqing/haidian.yaml"]'``. None by default:
    a checkout pointed at a real database creates no district of its own accord (the local
    stack asks for the demo district's file)."""
    routing_consume: bool = True
    """Consume opinions from Kafka (off only in tests of the HTTP side)."""
    consumer_batch_size: int = Field(default=100, ge=1)
    """Opinions routing takes from Kafka at once: their cases are opened together (one
    query for the directory, workloads and duplicates, one append, one write of the rows)
    in one transaction with one offset commit; a batch that fails is handled again
    record by record. 1 handles them one by one."""
    routing_consumer_workers: int = Field(default=1, ge=1, le=32)
    """Kafka consumers of the group in this process: partitions are handled in parallel,
    each one in order. More workers, more throughput; each joins the group."""
    routing_scan_interval: float = Field(default=30.0, ge=0)
    """Seconds between two runs of the overdue scanner; 0 turns it off."""
    routing_scan_batch: int = Field(default=200, ge=1)
    routing_reception_plan_interval: float = Field(default=3600.0, ge=0)
    """Seconds between two rounds of the reception planner, which plans every district's
    reception days from the representatives' rules up to 120 days ahead; 0 turns it off."""
    routing_train_districts: list[str] = Field(default_factory=list)
    """Districts whose first classifier is trained at start-up, after the district files
    are imported, from the labelled opinions kept with their file
    (``deploy/districts/<district>-opinions/``), when they have none in use yet. Later
    versions are trained on purpose with ``minqing routing train``. None by default (the
    local stack asks for the demo district)."""

    # The workbench's sign-in (docs/security.md).
    routing_cookie_secure: bool = False
    """Mark the workbench's cookies ``Secure`` even when the request reaches the service
    as plain HTTP (behind a proxy that ends TLS); an ``https`` request gets it anyway."""
    routing_form_secret: str = "minqing-local-development-form-secret-change-me"
    """Key signing the CSRF tokens of the forms shown before sign-in."""
    routing_form_key_id: str = "k1"
    """Id of ``routing_form_secret``, carried by every token it signs."""
    routing_form_previous_secrets: dict[str, str] = Field(default_factory=dict)
    """Keys that signed earlier form tokens, by id, as JSON (``{"k1": "..."}``): a form
    drawn before a rotation is still accepted (for an hour at most)."""
    routing_session_hours: float = Field(default=12, gt=0)
    """A workbench session ends this long after sign-in."""
    routing_session_idle_minutes: float = Field(default=60, gt=0)
    """... or after this long without a request."""
    routing_invite_hours: float = Field(default=72, gt=0)
    """How long an invitation code works (once)."""
    routing_lockout_failures: int = Field(default=5, ge=1)
    """Wrong passwords in a row that lock an account ..."""
    routing_lockout_minutes: float = Field(default=15, gt=0)
    """... for this long."""
    routing_workbench_url: str = "http://127.0.0.1:8002"
    """Where staff reach routing: invitation links point here."""
    routing_argon2_time_cost: int = Field(default=3, ge=1)
    routing_argon2_memory_kib: int = Field(default=65536, ge=8)
    """argon2id's cost (RFC 9106's second recommended option: 64 MiB, 3 passes); the
    tests lower it."""

    def form_keys(self) -> KeyRing:
        """The keys of the pre-sign-in forms' tokens: the current one signs, every one
        verifies."""
        return KeyRing(
            self.routing_form_key_id,
            self.routing_form_secret,
            dict(self.routing_form_previous_secrets),
        )
