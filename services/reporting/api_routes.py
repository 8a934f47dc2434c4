"""The reports API: ``/api/v1/districts/<d>/…`` with ``from``/``to`` (local dates of the
district, both included; this month so far by default).

Thin: each route reads the caller's token, opens their view of the district and returns
one model of :mod:`services.reporting.api_models`. Another district's reports are "not
found"; what a role may see is :mod:`services.reporting.scope`'s to say.

No ``from __future__ import annotations``: the routes' dependency aliases are local to
:func:`reports_router`, and FastAPI can only resolve annotations that are objects.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response

from eventkit.db import district_transaction
from eventkit.http import require_roles
from eventkit.identity import Principal, Role
from eventkit.settings import Settings
from eventkit.staff_roster import known_bearer
from services.reporting import archive_views, register_views, station_views, views
from services.reporting.api_models import (
    Archive,
    CriteriaView,
    Hotspots,
    Overview,
    RepresentativeList,
    StationDetail,
    StationList,
    StreetList,
    Trends,
)
from services.reporting.assessment import DEFAULT_CRITERIA
from services.reporting.bootstrap import Reporting
from services.reporting.consumers import ROSTER
from services.reporting.criteria_store import load_criteria, parse_criteria, save_criteria
from services.reporting.periods import Period, period
from services.reporting.register_models import RegisterIndex, RegisterView
from services.reporting.scope import READERS
from services.reporting.views import Context


def reporting_of(request: Request) -> Reporting:
    """Dependency: the running service of the app serving ``request``."""
    reporting: Reporting = request.app.state.reporting
    return reporting


ReportingDep = Annotated[Reporting, Depends(reporting_of)]
From = Annotated[
    str | None, Query(alias="from", description="第一天 / first day, YYYY-MM-DD (local)")
]
To = Annotated[str | None, Query(alias="to", description="最后一天 / last day, YYYY-MM-DD (local)")]


def period_of(ctx: Context, reporting: Reporting, first: str | None, last: str | None) -> Period:
    """The period asked for, in the district's time zone."""
    return period(first, last, ctx.tz, reporting.clock())


def csv_response(register: RegisterView) -> Response:
    """A register as a CSV download, named by station, register and period."""
    name = (
        f"{register.station_code}-{register.name}-"
        f"{register.period.first_day}-{register.period.last_day}.csv"
    )
    return Response(
        register_views.register_csv(register),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def reports_router(settings: Settings) -> APIRouter:
    """The report routes."""
    router = APIRouter(prefix="/api/v1/districts/{district_id}", tags=["报表 / reports"])
    # A valid token of a person who is known, active staff (reporting's roster).
    authenticated = known_bearer(settings, ROSTER, lambda request: reporting_of(request).pool)
    Reader = Annotated[Principal, Depends(require_roles(authenticated, *sorted(READERS)))]
    Admin = Annotated[Principal, Depends(require_roles(authenticated, Role.DISTRICT_ADMIN))]

    @router.get("/overview", summary="区概况：三率及趋势 / district overview")
    async def overview(
        district_id: str, who: Reader, reporting: ReportingDep, first: From = None, last: To = None
    ) -> Overview:
        async with views.reading(reporting.pool, who, district_id) as ctx:
            return await views.overview(ctx, period_of(ctx, reporting, first, last))

    @router.get("/streets", summary="各街道 / streets")
    async def streets(
        district_id: str, who: Reader, reporting: ReportingDep, first: From = None, last: To = None
    ) -> StreetList:
        async with views.reading(reporting.pool, who, district_id) as ctx:
            return await views.streets(ctx, period_of(ctx, reporting, first, last))

    @router.get("/stations", summary="各联络站 / stations")
    async def stations(
        district_id: str, who: Reader, reporting: ReportingDep, first: From = None, last: To = None
    ) -> StationList:
        async with views.reading(reporting.pool, who, district_id) as ctx:
            return await views.stations(ctx, period_of(ctx, reporting, first, last))

    @router.get("/stations/{station_code}", summary="联络站：每日情况与星级评定参考 / a station")
    async def station(
        district_id: str,
        station_code: str,
        who: Reader,
        reporting: ReportingDep,
        first: From = None,
        last: To = None,
    ) -> StationDetail:
        async with views.reading(reporting.pool, who, district_id) as ctx:
            criteria = await load_criteria(ctx.reader.conn, district_id)
            return await station_views.station_detail(
                ctx, station_code, period_of(ctx, reporting, first, last), criteria
            )

    @router.get(
        "/stations/{station_code}/registers",
        summary="联络站六簿一表 / a station's registers",
    )
    async def registers(
        district_id: str,
        station_code: str,
        who: Reader,
        reporting: ReportingDep,
        first: From = None,
        last: To = None,
    ) -> RegisterIndex:
        async with views.reading(reporting.pool, who, district_id) as ctx:
            when = period_of(ctx, reporting, first, last)
            return await register_views.register_index(ctx, station_code, when)

    @router.get(
        "/stations/{station_code}/registers/{name}",
        summary="一本登记簿 / one register (JSON, or CSV with format=csv)",
        response_model=RegisterView,
    )
    async def one_register(
        district_id: str,
        station_code: str,
        name: str,
        who: Reader,
        reporting: ReportingDep,
        first: From = None,
        last: To = None,
        format: Literal["json", "csv"] = "json",
    ) -> Any:
        async with views.reading(reporting.pool, who, district_id) as ctx:
            when = period_of(ctx, reporting, first, last)
            found = await register_views.register(ctx, station_code, name, when)
        if format == "csv":
            return csv_response(found)
        return found

    @router.get("/representatives", summary="各代表履职情况 / representatives")
    async def representatives(
        district_id: str, who: Reader, reporting: ReportingDep, first: From = None, last: To = None
    ) -> RepresentativeList:
        async with views.reading(reporting.pool, who, district_id) as ctx:
            return await archive_views.representatives(ctx, period_of(ctx, reporting, first, last))

    @router.get("/representatives/{representative_id}/archive", summary="代表履职档案 / archive")
    async def archive(
        district_id: str,
        representative_id: str,
        who: Reader,
        reporting: ReportingDep,
        first: From = None,
        last: To = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Archive:
        async with views.reading(reporting.pool, who, district_id) as ctx:
            return await archive_views.archive(
                ctx,
                representative_id,
                period_of(ctx, reporting, first, last),
                limit=limit,
                offset=offset,
            )

    @router.get("/hotspots", summary="热点：社区×类别及增幅 / hot spots")
    async def hotspots(
        district_id: str,
        who: Reader,
        reporting: ReportingDep,
        first: From = None,
        last: To = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> Hotspots:
        async with views.reading(reporting.pool, who, district_id) as ctx:
            return await views.hotspots(ctx, period_of(ctx, reporting, first, last), limit)

    @router.get("/trends", summary="类别趋势 / category trends")
    async def trends(
        district_id: str,
        who: Reader,
        reporting: ReportingDep,
        first: From = None,
        last: To = None,
        granularity: Literal["week", "month"] = "month",
    ) -> Trends:
        async with views.reading(reporting.pool, who, district_id) as ctx:
            return await views.trends(ctx, period_of(ctx, reporting, first, last), granularity)

    @router.get("/assessment/criteria", summary="评星标准 / assessment criteria")
    async def criteria(district_id: str, who: Reader, reporting: ReportingDep) -> CriteriaView:
        async with views.reading(reporting.pool, who, district_id) as ctx:
            ctx.scope.require_wide()
            current = await load_criteria(ctx.reader.conn, district_id)
        return CriteriaView(
            district_id=district_id,
            is_default=current == DEFAULT_CRITERIA,
            criteria=current.model_dump(mode="json"),
        )

    @router.put("/assessment/criteria", summary="设置评星标准 / set the criteria")
    async def set_criteria(
        district_id: str,
        who: Admin,
        reporting: ReportingDep,
        document: Annotated[dict[str, Any], Body()],
    ) -> CriteriaView:
        async with views.reading(reporting.pool, who, district_id):
            pass  # the district must exist and be the caller's
        criteria = parse_criteria(document)
        async with district_transaction(reporting.pool, district_id) as conn:
            await save_criteria(conn, district_id, criteria, who.subject, reporting.clock())
        return CriteriaView(
            district_id=district_id,
            is_default=criteria == DEFAULT_CRITERIA,
            criteria=criteria.model_dump(mode="json"),
        )

    return router
