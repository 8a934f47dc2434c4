"""What the API and the dashboards show: the district, its streets, stations, hot spots
and trends over a period, for one caller.

Every view starts from a :class:`Context`: the caller's district (another district is
"not found"), what their role lets them see (:mod:`services.reporting.scope`), and a
:class:`services.reporting.queries.Reader` of the live projections. Answers are the
models of :mod:`services.reporting.api_models`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import asyncpg

from eventkit.db import Conn
from eventkit.db import scope as scope_transaction
from eventkit.identity import Principal
from services.reporting.api_models import (
    Bucket,
    DistrictView,
    Figures,
    Hotspot,
    Hotspots,
    Label,
    Overview,
    PeriodView,
    Rates,
    RateView,
    ScopeView,
    Series,
    Share,
    StationList,
    StationRow,
    StreetList,
    StreetRow,
    Trends,
)
from services.reporting.api_models import Counts as CountsView
from services.reporting.errors import DistrictNotFound, OutOfScope
from services.reporting.labels import (
    CHANNELS,
    NO_COMMUNITY,
    NO_STREET,
    STATION_KINDS,
    UNCATEGORISED,
    Pair,
    label,
)
from services.reporting.periods import Period, zone
from services.reporting.queries import District, Filter, Reader, Station, Street
from services.reporting.scope import Scope, scope_for
from services.reporting.stats import CaseStats, Rate
from services.reporting.tables import SCHEMA


@dataclass(frozen=True)
class Context:
    """One caller's view of one district."""

    reader: Reader
    district: District
    scope: Scope
    streets: dict[str, Street]
    stations: dict[str, Station]
    categories: dict[str, tuple[str, str | None]]

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.district.timezone)

    @property
    def only(self) -> Filter:
        """The cases the caller may count."""
        return Filter.of(self.scope)

    def street_of(self, station_code: str | None) -> str | None:
        station = self.stations.get(station_code or "")
        return station.street_code if station else None

    def category(self, code: str | None) -> Label:
        if code is None:
            return _label(UNCATEGORISED)
        zh, en = self.categories.get(code, (code, code))
        return Label(zh=zh, en=en or zh)

    def street_name(self, code: str | None) -> Label:
        street = self.streets.get(code or "")
        return Label(zh=street.name_zh, en=street.name_zh) if street else _label(NO_STREET)

    def visible_stations(self) -> list[Station]:
        return [
            s
            for s in self.stations.values()
            if self.scope.sees_station(s.station_code, s.street_code)
        ]


@contextlib.asynccontextmanager
async def reading(
    pool: asyncpg.Pool, principal: Principal, district_id: str, schema: str = SCHEMA
) -> AsyncIterator[Context]:
    """The caller's view of ``district_id`` in a read-only snapshot: every figure read
    inside agrees with every other, whatever the consumer writes meanwhile."""
    async with (
        pool.acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        yield await open_context(conn, principal, district_id, schema)


async def open_context(
    conn: Conn, principal: Principal, district_id: str, schema: str = SCHEMA
) -> Context:
    """The caller's view of ``district_id`` (not found unless it is their own), the rest
    of ``conn``'s transaction scoped to that district."""
    if not principal.may_act_in(district_id):
        raise DistrictNotFound(district_id)
    await scope_transaction(conn, district_id)
    reader = await Reader.open(conn, schema)
    district = await reader.district(district_id)
    if district is None:
        raise DistrictNotFound(district_id)
    streets = {s.street_code: s for s in await reader.streets(district_id)}
    stations = {s.station_code: s for s in await reader.stations(district_id)}
    scope = scope_for(
        principal,
        [code for code, s in streets.items() if principal.subject in s.supervisors],
        [code for code, s in stations.items() if principal.subject in s.liaison_officers],
    )
    categories = await reader.categories(district_id)
    return Context(reader, district, scope, streets, stations, categories)


# ---------------------------------------------------------------------- building blocks


def _label(pair: Pair) -> Label:
    return Label(zh=pair[0], en=pair[1])


def rate_view(rate: Rate) -> RateView:
    value = rate.value
    return RateView(
        numerator=rate.numerator,
        denominator=rate.denominator,
        value=round(value, 4) if value is not None else None,
        percent=rate.percent(),
    )


def _hours(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def figures_view(stats: CaseStats) -> Figures:
    """Every figure of one group of cases."""
    average = stats.average_satisfaction
    return Figures(
        rates=Rates(
            response=rate_view(stats.response_rate),
            resolution=rate_view(stats.resolution_rate),
            satisfaction=rate_view(stats.satisfaction_rate),
        ),
        counts=CountsView(
            received=stats.received,
            counted=stats.counted,
            merged=stats.merged,
            withdrawn=stats.withdrawn,
            transferred_out=stats.transferred_out,
            suggestions=stats.suggestions,
            open=stats.open,
            response_settled=stats.response_settled,
            response_on_time=stats.response_on_time,
            resolution_settled=stats.resolution_settled,
            resolved=stats.resolved,
            resolved_on_time=stats.resolved_on_time,
            rated=stats.rated,
            satisfied=stats.satisfied,
            overdue=stats.overdue,
            reopened=stats.reopened,
            escalated=stats.escalated,
        ),
        overdue_share=rate_view(stats.overdue_share),
        average_satisfaction=round(average, 2) if average is not None else None,
        median_response_hours=_hours(stats.median_response_hours),
        median_resolution_hours=_hours(stats.median_resolution_hours),
    )


def period_view(period: Period) -> PeriodView:
    return PeriodView(
        first_day=period.first_day.isoformat(),
        last_day=period.last_day.isoformat(),
        start=period.start.isoformat(),
        end=period.end.isoformat(),
        timezone=period.tz.key,
        label=Label(zh=period.label("zh"), en=period.label("en")),
    )


def district_view(district: District) -> DistrictView:
    return DistrictView(
        district_id=district.district_id,
        name=Label(zh=district.name_zh, en=district.name_en or district.name_zh),
        timezone=district.timezone,
    )


def scope_view(scope: Scope) -> ScopeView:
    return ScopeView(**scope.describe())


def _one(stats: list[CaseStats]) -> CaseStats:
    return stats[0] if stats else CaseStats()


def by_key(stats: list[CaseStats]) -> dict[object, CaseStats]:
    return {s.key[0] if len(s.key) == 1 else s.key: s for s in stats}


def month_label(first: date) -> Label:
    return Label(zh=f"{first.year}年{first.month}月", en=f"{first:%b %Y}")


# ---------------------------------------------------------------------- views


async def overview(ctx: Context, period: Period) -> Overview:
    """The district (or the caller's part of it): figures, the previous period, the
    trend month by month, and where the cases came from."""
    ctx.scope.require_wide()
    r, d, only = ctx.reader, ctx.district.district_id, ctx.only
    current = _one(await r.case_stats(d, period, only=only))
    previous_period = period.previous()
    previous = _one(await r.case_stats(d, previous_period, only=only))
    granularity = trend_granularity(period)
    buckets = by_key(await r.case_stats(d, period, (granularity,), only=only))
    trend = [
        Bucket(
            bucket=start.isoformat(),
            label=bucket_label(start, granularity, period),
            figures=figures_view(buckets.get(start, CaseStats())),
        )
        for start in bucket_starts(period, granularity)
    ]
    channels = [
        Share(key=s.key[0], label=_label(label(CHANNELS, s.key[0])), count=s.received)
        for s in sorted(
            await r.case_stats(d, period, ("channel",), only=only), key=lambda s: -s.received
        )
    ]
    categories = [
        Share(key=s.key[0], label=ctx.category(s.key[0]), count=s.received)
        for s in sorted(
            await r.case_stats(d, period, ("category",), only=only),
            key=lambda s: (-s.received, s.key[0] or ""),
        )
    ]
    return Overview(
        district=district_view(ctx.district),
        period=period_view(period),
        scope=scope_view(ctx.scope),
        figures=figures_view(current),
        previous_period=period_view(previous_period),
        previous=figures_view(previous),
        trend_granularity=granularity,
        trend=trend,
        channels=channels,
        categories=categories,
    )


async def streets(ctx: Context, period: Period) -> StreetList:
    """Each street the caller sees (streets without cases included)."""
    ctx.scope.require_wide()
    if ctx.scope.stations is not None:
        raise OutOfScope("街道的统计", "street figures")
    found = by_key(
        await ctx.reader.case_stats(ctx.district.district_id, period, ("street",), only=ctx.only)
    )
    rows = [
        StreetRow(
            street_code=code,
            name=ctx.street_name(code),
            figures=figures_view(found.get(code, CaseStats())),
        )
        for code in ctx.streets
        if ctx.scope.sees_street(code)
    ]
    if None in found and ctx.scope.whole_district:
        rows.append(
            StreetRow(street_code=None, name=_label(NO_STREET), figures=figures_view(found[None]))
        )
    return StreetList(
        district=district_view(ctx.district),
        period=period_view(period),
        scope=scope_view(ctx.scope),
        streets=rows,
    )


def station_row(ctx: Context, station: Station, stats: CaseStats) -> StationRow:
    return StationRow(
        station_code=station.station_code,
        name=Label(zh=station.name_zh, en=station.name_zh),
        kind=station.kind,
        kind_label=_label(label(STATION_KINDS, station.kind)),
        street_code=station.street_code,
        street_name=ctx.street_name(station.street_code),
        official_stars=station.star_rating,
        active=station.active,
        figures=figures_view(stats),
    )


async def stations(ctx: Context, period: Period) -> StationList:
    """Each station the caller sees (stations without cases included)."""
    ctx.scope.require_wide()
    found = by_key(
        await ctx.reader.case_stats(ctx.district.district_id, period, ("station",), only=ctx.only)
    )
    return StationList(
        district=district_view(ctx.district),
        period=period_view(period),
        scope=scope_view(ctx.scope),
        stations=[
            station_row(ctx, s, found.get(s.station_code, CaseStats()))
            for s in ctx.visible_stations()
        ],
    )


async def hotspots(ctx: Context, period: Period, limit: int = 50) -> Hotspots:
    """Community × category by cases received, against the period before (未诉先办)."""
    ctx.scope.require_wide()
    r, d = ctx.reader, ctx.district.district_id
    by = ("community", "category")
    previous_period = period.previous()
    current = by_key(await r.case_stats(d, period, by, only=ctx.only))
    before = by_key(await r.case_stats(d, previous_period, by, only=ctx.only))
    communities = await r.communities(d)
    rows: list[Hotspot] = []
    for key, stats in current.items():
        assert isinstance(key, tuple)
        community, category = key
        count = stats.received - stats.transferred_out
        if count <= 0:
            continue
        old = before.get(key)
        prev = old.received - old.transferred_out if old else 0
        street = communities.get(community) if community else None
        rows.append(
            Hotspot(
                community=community,
                street_code=street,
                street_name=ctx.street_name(street),
                category_code=category,
                category=ctx.category(category),
                count=count,
                previous=prev,
                growth=round((count - prev) / prev, 4) if prev else None,
            )
        )
    rows.sort(key=lambda h: (-h.count, -(h.growth or 0), h.community or "", h.category_code or ""))
    return Hotspots(
        district=district_view(ctx.district),
        period=period_view(period),
        previous_period=period_view(previous_period),
        scope=scope_view(ctx.scope),
        hotspots=rows[:limit],
    )


def community_label(community: str | None) -> Label:
    return Label(zh=community, en=community) if community else _label(NO_COMMUNITY)


async def trends(ctx: Context, period: Period, granularity: str) -> Trends:
    """Cases received per category, week by week or month by month."""
    ctx.scope.require_wide()
    found = await ctx.reader.case_stats(
        ctx.district.district_id, period, (granularity, "category"), only=ctx.only
    )
    buckets = bucket_starts(period, granularity)
    index = {b: i for i, b in enumerate(buckets)}
    series: dict[str | None, list[int]] = {}
    for stats in found:
        bucket, category = stats.key
        counts = series.setdefault(category, [0] * len(buckets))
        counts[index[bucket]] += stats.received - stats.transferred_out
    ordered = sorted(series.items(), key=lambda item: (-sum(item[1]), item[0] or ""))
    return Trends(
        district=district_view(ctx.district),
        period=period_view(period),
        scope=scope_view(ctx.scope),
        granularity=granularity,
        buckets=[b.isoformat() for b in buckets],
        bucket_labels=[bucket_label(b, granularity, period) for b in buckets],
        series=[
            Series(
                category_code=code, category=ctx.category(code), counts=counts, total=sum(counts)
            )
            for code, counts in ordered
        ],
        totals=[sum(counts[i] for _, counts in ordered) for i in range(len(buckets))],
    )


def trend_granularity(period: Period) -> str:
    """Weeks for a period of two months or less, months beyond."""
    return "week" if period.days <= 62 else "month"


def bucket_starts(period: Period, granularity: str) -> list[date]:
    """The first day of each month, or the Monday of each week, the period touches."""
    if granularity == "month":
        return [m.first_day.replace(day=1) for m in period.months()]
    first = period.first_day - timedelta(days=period.first_day.weekday())
    out = []
    while first <= period.last_day:
        out.append(first)
        first += timedelta(days=7)
    return out


def bucket_label(start: date, granularity: str, period: Period) -> Label:
    """A month, or a week by its first day within the period."""
    if granularity == "month":
        return month_label(start)
    shown = max(start, period.first_day)
    return Label(zh=f"{shown.month}月{shown.day}日起", en=f"from {shown:%d %b}")
