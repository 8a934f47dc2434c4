"""The indicated star rating of a station (星级评定参考), with the reason for each point.

Pure. The official rating stays what the district file says (``StationRegistered.
star_rating``); this is the rating a station's own figures of one month point to, by
criteria each district sets (``PUT /api/v1/districts/<d>/assessment/criteria``): a
metric, a threshold and the points it is worth. Rates need a minimum number of cases to
count at all, so that a quiet station is not rated on two cases (no stars at all then).
The stars are the points earned, between 1 and 5.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.reporting.stats import CaseStats, Rate

Metric = Literal[
    "response_rate", "resolution_rate", "satisfaction_rate", "overdue_share", "activities"
]

LABELS: Final[dict[str, tuple[str, str]]] = {
    "response_rate": ("响应率", "response rate"),
    "resolution_rate": ("解决率", "resolution rate"),
    "satisfaction_rate": ("满意率", "satisfaction rate"),
    "overdue_share": ("超期率", "overdue share"),
    "activities": ("代表活动记录", "representatives' activity records"),
}

LOWER_IS_BETTER: Final = frozenset({"overdue_share"})


class Criterion(BaseModel):
    """One point (or several) a station earns when a metric reaches a threshold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: Metric
    threshold: Annotated[float, Field(ge=0)]
    """A share between 0 and 1 for rates (at least; at most for the overdue share), a
    number per month for activities (at least)."""
    points: Annotated[int, Field(ge=1, le=5)] = 1


class Criteria(BaseModel):
    """A district's criteria of the indicated rating."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    criteria: Annotated[list[Criterion], Field(min_length=1, max_length=12)]
    min_cases: Annotated[int, Field(ge=1, le=1000)] = 5
    """Counted cases a station needs in the month for its rates to earn points."""

    @model_validator(mode="after")
    def _shares_are_shares(self) -> Criteria:
        for c in self.criteria:
            if c.metric != "activities" and c.threshold > 1:
                raise ValueError(f"{c.metric}: a share's threshold is between 0 and 1")
        return self


DEFAULT_CRITERIA: Final = Criteria(
    criteria=[
        Criterion(metric="response_rate", threshold=0.95),
        Criterion(metric="resolution_rate", threshold=0.90),
        Criterion(metric="satisfaction_rate", threshold=0.90),
        Criterion(metric="overdue_share", threshold=0.05),
        Criterion(metric="activities", threshold=4),
    ],
)
"""The criteria of a district that set none: one point each, five at most."""


@dataclass(frozen=True)
class Point:
    """What one criterion gave, and why."""

    metric: str
    label_zh: str
    label_en: str
    value: float | None
    threshold: float
    points: int
    possible: int
    reason_zh: str
    reason_en: str


@dataclass(frozen=True)
class Assessment:
    """A station's indicated rating for one month."""

    stars: int | None
    """None when the month had too few cases to rate the station at all."""
    points: int
    possible: int
    official_stars: int | None
    details: list[Point]


def _share(value: float) -> str:
    return f"{value * 100:.1f}%"


def assess(
    criteria: Criteria,
    stats: CaseStats,
    activities: int | None,
    official_stars: int | None,
) -> Assessment:
    """The indicated rating of a station from its month's figures."""
    rates: dict[str, Rate] = {
        "response_rate": stats.response_rate,
        "resolution_rate": stats.resolution_rate,
        "satisfaction_rate": stats.satisfaction_rate,
        "overdue_share": stats.overdue_share,
    }
    details = [
        _point(c, rates, stats.counted, criteria.min_cases, activities) for c in criteria.criteria
    ]
    points = sum(p.points for p in details)
    enough = stats.counted >= criteria.min_cases
    return Assessment(
        stars=max(1, min(5, points)) if enough else None,
        points=points,
        possible=sum(p.possible for p in details),
        official_stars=official_stars,
        details=details,
    )


def _point(
    c: Criterion,
    rates: dict[str, Rate],
    counted: int,
    min_cases: int,
    activities: int | None,
) -> Point:
    zh, en = LABELS[c.metric]

    def give(value: float | None, earned: bool, why_zh: str, why_en: str) -> Point:
        return Point(
            c.metric,
            zh,
            en,
            value,
            c.threshold,
            c.points if earned else 0,
            c.points,
            why_zh,
            why_en,
        )

    if c.metric == "activities":
        goal = f"{c.threshold:g}"
        if activities is None:
            return give(
                None,
                False,
                f"{zh}：暂无记录（代表活动功能尚未上线），不得分",
                f"{en}: none recorded yet (activities are not tracked yet): no point",
            )
        earned = activities >= c.threshold
        return give(
            activities,
            earned,
            f"{zh} {activities} 次，{'达到' if earned else '未达到'} {goal} 次，"
            + _got_zh(c, earned),
            f"{en} {activities}, {'at least' if earned else 'below'} {goal}: {_got_en(c, earned)}",
        )
    rate = rates[c.metric]
    value = rate.value
    goal = _share(c.threshold)
    if counted < min_cases or value is None:
        return give(
            value,
            False,
            f"{zh}：本月计入案件 {counted} 件，少于 {min_cases} 件，样本不足，不得分",
            f"{en}: {counted} counted cases this month, fewer than {min_cases}: no point",
        )
    lower = c.metric in LOWER_IS_BETTER
    earned = value <= c.threshold if lower else value >= c.threshold
    relation_zh = ("不高于" if lower else "不低于") if earned else ("高于" if lower else "低于")
    relation_en = (
        ("at most" if lower else "at least") if earned else ("above" if lower else "below")
    )
    shown = f"{_share(value)}（{rate.numerator}/{rate.denominator}）"
    shown_en = f"{_share(value)} ({rate.numerator}/{rate.denominator})"
    return give(
        value,
        earned,
        f"{zh} {shown}，{relation_zh} {goal}，{_got_zh(c, earned)}",
        f"{en} {shown_en}, {relation_en} {goal}: {_got_en(c, earned)}",
    )


def _got_zh(c: Criterion, earned: bool) -> str:
    return f"得{c.points}分" if earned else "不得分"


def _got_en(c: Criterion, earned: bool) -> str:
    return f"{c.points} point{'s' if c.points > 1 else ''}" if earned else "no point"
