"""Settings of the processes that append to the audit category: the relay (whose leader
runs the sealer) and the operators' ``minqing audit`` and ``minqing replay`` commands."""

from __future__ import annotations

from pydantic import Field

from eventkit.audit.sealing import MAX_EVENTS
from eventkit.settings import Settings


class AuditSettings(Settings):
    """The shared settings, run as the role that owns the audit category."""

    database_role: str | None = "minqing_audit"
    """Appends only seals and records of opened personal data (``audit-*`` streams); reads
    everything, like every role."""
    audit_seal_interval: float = Field(default=300.0, ge=0)
    """Seconds between two rounds of the sealer in the relay's leader; 0 turns it off
    (``minqing audit seal`` still seals on demand)."""
    audit_seal_max_events: int = Field(default=MAX_EVENTS, ge=1, le=5000)
    """Events one seal covers at most (a backlog takes several seals). Bounds a seal's size:
    one entry of some 150 bytes per stream it touches, below Kafka's 1 MB per record."""
