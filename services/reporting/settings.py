"""The reporting service's settings: the shared ones plus its own (prefix ``MINQING_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from eventkit.settings import Settings


class ReportingSettings(Settings):
    """What the reporting process reads from its environment."""

    database_role: str | None = "minqing_reporting"
    """The service's own role: it reads the store and appends to no stream; its writes go
    to its own schemas (``reporting``, ``reporting_asof``)."""
    reporting_port: int = Field(default=8004, ge=1, le=65535)
    reporting_consume: bool = True
    """Consume the cases, opinions and directory topics (off only in tests of the HTTP side)."""
    reporting_consumer_batch: int = Field(default=200, ge=1)
    """Records the consumer applies in one transaction. Reporting is a read model: it
    trades up to 50 ms of latency when idle for throughput when busy."""
    reporting_rebuild_batch: int = Field(default=20000, ge=100)
    """Events a rebuild reads from the store in one query (about 1 kB of memory each)."""
    reporting_rebuild_workers: int = Field(default=2, ge=1, le=16)
    """Processes folding a rebuild's events, the case streams split between them (1: the
    rebuild process itself). Two by default: on an idle two-core machine, a year of a
    large district rebuilt 12–20 % faster with two workers than in one process, although
    they cost about 5 s more CPU (sending the events to them, starting them); on a
    machine busy with other work one process was as fast (``docs/performance.md``).
    More where the server has cores to spare; 1 where memory is short (about 230 MB
    more with two)."""
    reporting_report_dir: Path = Path("reports")
    """Where ``minqing report monthly`` writes its files unless told otherwise."""
    reporting_cookie_secure: bool = False
    """Mark the dashboard's session cookie ``Secure`` (on behind HTTPS in production)."""
