"""The routing service's settings: the shared ones plus its own (prefix ``MINQING_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from eventkit.settings import Settings

DEMO_DISTRICT_FILE = Path(__file__).resolve().parents[2] / "deploy" / "districts" / "demo.yaml"
"""The demo district shipped in a development checkout."""


class RoutingSettings(Settings):
    """What the routing process reads from its environment."""

    routing_port: int = Field(default=8002, ge=1, le=65535)
    http_host: str = "127.0.0.1"
    """Interface to listen on (``0.0.0.0`` in a container)."""
    routing_district_files: list[Path] | None = None
    """District files imported (idempotently) at start-up, as JSON, e.g.
    ``MINQING_ROUTING_DISTRICT_FILES='["/etc/minqing/haidian.yaml"]'``. Unset: the demo
    district of a development checkout, when the file is there; ``[]``: none."""
    routing_consume: bool = True
    """Consume opinions from Kafka (off only in tests of the HTTP side)."""
    routing_consumer_workers: int = Field(default=1, ge=1, le=32)
    """Kafka consumers of the group in this process: partitions are handled in parallel,
    each one in order. More workers, more throughput; each joins the group."""
    routing_scan_interval: float = Field(default=30.0, ge=0)
    """Seconds between two runs of the overdue scanner; 0 turns it off."""
    routing_scan_batch: int = Field(default=200, ge=1)

    def district_files(self) -> list[Path]:
        """The district files to import at start-up."""
        if self.routing_district_files is not None:
            return list(self.routing_district_files)
        return [DEMO_DISTRICT_FILE] if DEMO_DISTRICT_FILE.is_file() else []
