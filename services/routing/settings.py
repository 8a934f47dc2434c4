"""The routing service's settings: the shared ones plus its own (prefix ``MINQING_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

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
    routing_consumer_workers: int = Field(default=1, ge=1, le=32)
    """Kafka consumers of the group in this process: partitions are handled in parallel,
    each one in order. More workers, more throughput; each joins the group."""
    routing_scan_interval: float = Field(default=30.0, ge=0)
    """Seconds between two runs of the overdue scanner; 0 turns it off."""
    routing_scan_batch: int = Field(default=200, ge=1)
    routing_train_districts: list[str] = Field(default_factory=list)
    """Districts whose first classifier is trained at start-up, after the district files
    are imported, from the labelled opinions kept with their file
    (``deploy/districts/<district>-opinions/``), when they have none in use yet. Later
    versions are trained on purpose with ``minqing routing train``. None by default (the
    local stack asks for the demo district)."""
