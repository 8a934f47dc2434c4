"""A station's page: its figures, its days, its representatives, and its indicated star
rating month by month with the reason for each point."""

from __future__ import annotations

from services.reporting.api_models import (
    AssessmentView,
    DayView,
    Label,
    PointView,
    RepresentativeBrief,
    StationDetail,
)
from services.reporting.assessment import Assessment, Criteria, assess
from services.reporting.errors import OutOfScope, StationNotFound
from services.reporting.labels import LEVELS, label
from services.reporting.periods import Period
from services.reporting.queries import Filter
from services.reporting.register_views import qr_figures
from services.reporting.stats import CaseStats
from services.reporting.views import (
    Context,
    by_key,
    district_view,
    period_view,
    station_row,
)


def assessment_view(month: str, assessment: Assessment) -> AssessmentView:
    return AssessmentView(
        month=month,
        stars=assessment.stars,
        points=assessment.points,
        possible=assessment.possible,
        official_stars=assessment.official_stars,
        details=[
            PointView(
                metric=p.metric,
                label=Label(zh=p.label_zh, en=p.label_en),
                value=round(p.value, 4) if p.value is not None else None,
                threshold=p.threshold,
                points=p.points,
                possible=p.possible,
                reason=Label(zh=p.reason_zh, en=p.reason_en),
            )
            for p in assessment.details
        ],
    )


async def station_detail(
    ctx: Context, station_code: str, period: Period, criteria: Criteria
) -> StationDetail:
    """One station over ``period``, with an assessment for each month it touches."""
    station = ctx.stations.get(station_code)
    if station is None:
        raise StationNotFound(station_code)
    if not ctx.scope.sees_station(station_code, station.street_code):
        raise OutOfScope(f"联络站 {station.name_zh}", f"station {station_code}")
    r, d = ctx.reader, ctx.district.district_id
    only = Filter(stations=frozenset({station_code}))
    stats = (await r.case_stats(d, period, only=only) or [CaseStats()])[0]
    days = await r.station_days(d, station_code, period)
    monthly = by_key(await r.case_stats(d, period, ("month",), only=only))
    assessments = [
        assessment_view(
            month.first_day.strftime("%Y-%m"),
            assess(
                criteria,
                monthly.get(month.first_day.replace(day=1), CaseStats()),
                (await r.station_activities(d, month, [station_code])).get(station_code, 0),
                station.star_rating,
            ),
        )
        for month in period.months()
    ]
    members = [
        RepresentativeBrief(
            representative_id=rep.representative_id,
            name=rep.name_zh,
            level_label=Label(zh=label(LEVELS, rep.level)[0], en=label(LEVELS, rep.level)[1]),
        )
        for rep in await r.representatives(d)
        if station_code in rep.stations
    ]
    return StationDetail(
        district=district_view(ctx.district),
        period=period_view(period),
        station=station_row(ctx, station, stats),
        days=[
            DayView(
                day=day.day.isoformat(),
                assigned=day.assigned,
                responded=day.responded,
                responded_on_time=day.responded_on_time,
                resolved=day.resolved,
                resolved_on_time=day.resolved_on_time,
                closed=day.closed,
                reopened=day.reopened,
                escalated=day.escalated,
                overdue=day.overdue,
                ratings=day.ratings,
                satisfied_ratings=day.satisfied_ratings,
            )
            for day in days
        ],
        assessments=assessments,
        representatives=members,
        activities_held=(await r.station_activities(d, period, [station_code])).get(
            station_code, 0
        ),
        qr=await qr_figures(ctx, station_code, period),
    )
