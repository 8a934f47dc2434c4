"""What a rebuild did (:class:`RebuildResult`), and which projections it was asked for."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.reporting.errors import UnknownProjection
from services.reporting.shadow import TableComparison
from services.reporting.tables import PROJECTIONS


@dataclass
class RebuildResult:
    """What a rebuild did."""

    schema: str
    projections: list[str]
    events: int
    """Events folded into the projections."""
    read: int
    """Events read from the store (all kinds)."""
    seconds: float
    swapped: bool
    as_of: datetime | None = None
    comparisons: list[TableComparison] = field(default_factory=list)
    phases: dict[str, float] = field(default_factory=dict)
    """Seconds spent in each phase: ``start`` (workers started, slots emptied and opened,
    the gate read), ``read`` (the bulk read and fold), ``copy`` (the rest of the rows,
    the steps' indexes built meanwhile), ``index`` (the other indexes and the analyses),
    ``catch_up``, and for a live rebuild ``checksum`` (the shadow slots) and ``swap``
    (the locked comparison and swap)."""

    @property
    def equal(self) -> bool:
        """Whether the rebuild found exactly what the live projections held."""
        return all(c.equal for c in self.comparisons)


def projections_named(name: str | None) -> list[str]:
    """The projections a ``--projection`` option names (all of them without one)."""
    if name is None:
        return list(PROJECTIONS)
    if name not in PROJECTIONS:
        raise UnknownProjection(name, sorted(PROJECTIONS))
    return [name]
