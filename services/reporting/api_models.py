"""What reporting's API answers, as models: the OpenAPI document shows every field.

Built by :mod:`services.reporting.views` (and used by the dashboards, so a page shows
exactly what the API says); unknown fields are refused, so a view and its model cannot
drift apart unnoticed. Nothing here ever carries a resident's name, contact or words.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Answer(BaseModel):
    """A response body: every field declared."""

    model_config = ConfigDict(extra="forbid")


class Label(Answer):
    """A name for people, in Chinese and English."""

    zh: str
    en: str


class RateView(Answer):
    """A rate: ``numerator`` of ``denominator`` (``value`` null when nothing counted)."""

    numerator: int
    denominator: int
    value: float | None
    percent: str


class Rates(Answer):
    """The three rates (docs/metrics.md)."""

    response: RateView
    """响应率"""
    resolution: RateView
    """解决率"""
    satisfaction: RateView
    """满意率"""


class Counts(Answer):
    received: int
    counted: int
    merged: int
    withdrawn: int
    transferred_out: int
    suggestions: int
    open: int
    response_settled: int
    response_on_time: int
    resolution_settled: int
    resolved: int
    resolved_on_time: int
    rated: int
    satisfied: int
    overdue: int
    reopened: int
    escalated: int


class Figures(Answer):
    """Every figure of one group of cases received in a period."""

    rates: Rates
    counts: Counts
    overdue_share: RateView
    average_satisfaction: float | None
    median_response_hours: float | None
    median_resolution_hours: float | None


class PeriodView(Answer):
    first_day: str
    last_day: str
    start: str
    end: str
    timezone: str
    label: Label


class DistrictView(Answer):
    district_id: str
    name: Label
    timezone: str


class ScopeView(Answer):
    role: str
    streets: list[str] | None
    stations: list[str] | None
    representative_id: str | None


class Bucket(Answer):
    """A month or a week of a trend."""

    bucket: str
    label: Label
    figures: Figures


class Share(Answer):
    key: str | None
    label: Label
    count: int


class Overview(Answer):
    """A district (or the caller's part of it) over a period."""

    district: DistrictView
    period: PeriodView
    scope: ScopeView
    figures: Figures
    previous_period: PeriodView
    previous: Figures
    trend_granularity: str
    """``week`` for a period of two months or less, ``month`` beyond."""
    trend: list[Bucket]
    """The three rates of the cases received in each week or month of the period."""
    channels: list[Share]
    categories: list[Share]


class StreetRow(Answer):
    street_code: str | None
    name: Label
    figures: Figures


class StreetList(Answer):
    district: DistrictView
    period: PeriodView
    scope: ScopeView
    streets: list[StreetRow]


class StationRow(Answer):
    station_code: str
    name: Label
    kind: str
    kind_label: Label
    street_code: str
    street_name: Label
    official_stars: int | None
    active: bool
    figures: Figures


class StationList(Answer):
    district: DistrictView
    period: PeriodView
    scope: ScopeView
    stations: list[StationRow]


class DayView(Answer):
    """A station's activity on one local day."""

    day: str
    assigned: int
    responded: int
    responded_on_time: int
    resolved: int
    resolved_on_time: int
    closed: int
    reopened: int
    escalated: int
    overdue: int
    ratings: int
    satisfied_ratings: int


class PointView(Answer):
    metric: str
    label: Label
    value: float | None
    threshold: float
    points: int
    possible: int
    reason: Label


class AssessmentView(Answer):
    """The indicated star rating of one month, with the reason for every point."""

    month: str
    stars: int | None
    """None: too few cases in the month to rate the station."""
    points: int
    possible: int
    official_stars: int | None
    details: list[PointView]


class RepresentativeBrief(Answer):
    representative_id: str
    name: str
    level_label: Label


class QrFigures(Answer):
    """A station's QR code (民情码) over a period: page views against opinions submitted."""

    scans: int
    opinions: int
    conversion: float | None
    """opinions / scans (null without scans)."""


class StationDetail(Answer):
    district: DistrictView
    period: PeriodView
    station: StationRow
    days: list[DayView]
    assessments: list[AssessmentView]
    representatives: list[RepresentativeBrief]
    activities_held: int = 0
    """Representatives' activities held at the station in the period (by the day held)."""
    qr: QrFigures | None = None


class ActivityView(Answer):
    """What a representative did in the period (their steps, whoever pressed the button)."""

    assigned: int
    accepted: int
    accepted_on_time: int
    replies: int
    replied_cases: int
    resolved: int
    resolved_on_time: int
    reopened: int
    escalated: int
    transferred_away: int
    overdue: int
    suggestions_made: int
    suggestions_answered: int
    ratings: int
    satisfied_ratings: int
    average_satisfaction: float | None
    activities: int | None
    """Activities attended in the period (by the day they were held)."""


class RepresentativeRow(Answer):
    representative_id: str
    name: str
    level: str
    level_label: Label
    active: bool
    stations: list[str]
    station_names: list[str]
    activity: ActivityView
    figures: Figures
    """The cases received in the period that they hold now."""


class RepresentativeList(Answer):
    district: DistrictView
    period: PeriodView
    scope: ScopeView
    representatives: list[RepresentativeRow]


class EntryView(Answer):
    """One line of the archive: what happened, when, on which case."""

    recorded_at: str
    kind: str
    label: Label
    case_id: str
    station_code: str | None
    station_name: str | None
    counterpart: str | None
    on_time: bool | None
    note: str | None
    """Staff-written text (a reply, a result, a suggestion's title)."""
    detail: Label | None
    """What the line means in words (the note, a missed deadline, a transfer…)."""


class AttendedView(Answer):
    """An activity a representative attended (履职档案)."""

    held_on: str
    kind: str
    kind_label: Label
    title: str
    station_code: str
    station_name: str | None
    residents_met: int


class Archive(Answer):
    """A representative's archive (代表履职档案) over a period."""

    district: DistrictView
    period: PeriodView
    representative: RepresentativeRow
    total: int
    limit: int
    offset: int
    entries: list[EntryView]
    activities_recorded: bool
    attended: list[AttendedView] = []
    """The activities they attended in the period, in date order."""


class Hotspot(Answer):
    community: str | None
    street_code: str | None
    street_name: Label
    category_code: str | None
    category: Label
    count: int
    previous: int
    growth: float | None
    """(count − previous) / previous; null when there were none before (new)."""


class Hotspots(Answer):
    district: DistrictView
    period: PeriodView
    previous_period: PeriodView
    scope: ScopeView
    hotspots: list[Hotspot]


class Series(Answer):
    category_code: str | None
    category: Label
    counts: list[int]
    total: int


class Trends(Answer):
    district: DistrictView
    period: PeriodView
    scope: ScopeView
    granularity: str
    buckets: list[str]
    bucket_labels: list[Label]
    series: list[Series]
    totals: list[int]


class CriteriaView(Answer):
    district_id: str
    is_default: bool
    criteria: dict[str, object]
