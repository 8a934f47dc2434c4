"""The figures reports are made of, and the three rates (docs/metrics.md).

Pure: :class:`CaseStats` holds the counts of one group of cases (a district, street,
station or representative over a period), as :mod:`services.reporting.queries` counts
them; the rates are read off it. :class:`Activity` holds what a representative did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Rate:
    """A share: ``numerator`` of ``denominator`` (``value`` None when there is none)."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        """The share between 0 and 1, or None when nothing was counted."""
        return self.numerator / self.denominator if self.denominator else None

    def percent(self, digits: int = 1) -> str:
        """``96.2%``, or ``—`` when nothing was counted."""
        value = self.value
        return "—" if value is None else f"{value * 100:.{digits}f}%"


@dataclass(frozen=True)
class CaseStats:
    """Counts over the cases received in a period by one unit (docs/metrics.md)."""

    key: tuple[Any, ...] = ()
    received: int = 0
    """Every case opened (recorded) in the period."""
    counted: int = 0
    """Received less those merged into another case, transferred to another district or
    withdrawn by the resident: the cases the rates are about."""
    merged: int = 0
    withdrawn: int = 0
    transferred_out: int = 0
    suggestions: int = 0
    """Counted cases turned into representative suggestions (代表建议)."""
    open: int = 0
    response_settled: int = 0
    """Counted cases responded to, or whose response deadline was recorded as missed."""
    response_on_time: int = 0
    resolution_settled: int = 0
    """Counted cases (suggestions aside) resolved, or whose resolution deadline of the
    current round was recorded as missed."""
    resolved: int = 0
    resolved_on_time: int = 0
    rated: int = 0
    """Counted cases (suggestions aside) the resident rated (latest rating)."""
    satisfied: int = 0
    """Of those, rated 4 or 5 (满意 or 基本满意)."""
    satisfaction_sum: int = 0
    overdue: int = 0
    """Counted cases with any deadline recorded as missed."""
    reopened: int = 0
    escalated: int = 0
    median_response_hours: float | None = None
    median_resolution_hours: float | None = None

    @property
    def response_rate(self) -> Rate:
        """响应率: responses on time over responses settled."""
        return Rate(self.response_on_time, self.response_settled)

    @property
    def resolution_rate(self) -> Rate:
        """解决率: resolved over resolutions settled."""
        return Rate(self.resolved, self.resolution_settled)

    @property
    def satisfaction_rate(self) -> Rate:
        """满意率: satisfied over rated."""
        return Rate(self.satisfied, self.rated)

    @property
    def overdue_share(self) -> Rate:
        """超期率: cases with a missed deadline over counted cases."""
        return Rate(self.overdue, self.counted)

    @property
    def average_satisfaction(self) -> float | None:
        """Mean rating (1–5) of the rated cases."""
        return self.satisfaction_sum / self.rated if self.rated else None


@dataclass(frozen=True)
class Activity:
    """What one representative did in a period, from their cases' steps."""

    representative_id: str
    assigned: int = 0
    accepted: int = 0
    accepted_on_time: int = 0
    replies: int = 0
    replied_cases: int = 0
    resolved: int = 0
    resolved_on_time: int = 0
    reopened: int = 0
    escalated: int = 0
    transferred_away: int = 0
    overdue: int = 0
    suggestions_made: int = 0
    suggestions_answered: int = 0
    ratings: int = 0
    satisfied_ratings: int = 0
    rating_sum: int = 0
    activities: int | None = None
    """Activities attended (走访, 接待…): None until the events exist (another issue)."""

    @property
    def average_satisfaction(self) -> float | None:
        """Mean rating of the resolutions they made that were rated in the period."""
        return self.rating_sum / self.ratings if self.ratings else None
