"""The directory API: the district's stations, representatives and rules for every
staff member, and their administration for district admins.

Thin: reads come from the district's cached context; changes go through
:class:`~services.routing.directory_admin.DirectoryAdmin`, which emits only the
differences. Scoped to the caller's district.

No ``from __future__ import annotations``: the routes' dependency aliases are local to
:func:`directory_router`, and FastAPI can only resolve annotations that are objects.
"""

import io
from typing import Annotated, Any

import segno
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, StringConstraints

from eventkit.db import district_transaction
from eventkit.http import read_body, require_roles
from eventkit.identity import Principal
from eventkit.refusals import NotFound
from eventkit.settings import Settings
from services.routing import views
from services.routing.api_models import (
    DirectoryChangeResult,
    DirectoryView,
    ReceptionDayView,
    RepresentativeRetiredView,
    RepresentativeWithDays,
    StationRetiredView,
    StationWithMembers,
)
from services.routing.bootstrap import Routing
from services.routing.case_routes import RoutingDep, actor_of
from services.routing.district_context import DistrictContext
from services.routing.district_file import (
    CalendarEntry,
    DirectoryChanges,
    PolicyEntry,
    RepresentativeEntry,
    StationEntry,
    StreetEntry,
    TaxonomyEntry,
    parse_district_file,
)
from services.routing.staff_auth import known_staff
from services.routing.staff_commands import ADMINS, READERS

MAX_DISTRICT_FILE_BYTES = 1024 * 1024
"""The largest district file the import route reads (the service's body limit)."""

Reason = Annotated[str, StringConstraints(max_length=500)]


class RetireBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason | None = None


class DistrictNotRegistered(NotFound):
    """The caller's district has no directory yet."""

    code = "district-not-found"

    def __init__(self) -> None:
        super().__init__(
            "本区尚未登记",
            "Your district is not registered",
            "请先导入区目录文件",
            "Import the district file first",
        )


async def current(routing: Routing, district_id: str) -> DistrictContext:
    """The district's current context, or the refusal saying it is not registered."""
    async with district_transaction(routing.pool, district_id) as conn:
        ctx = await routing.districts.get(conn, district_id)
    if ctx is None:
        raise DistrictNotRegistered()
    return ctx


def directory_router(settings: Settings) -> APIRouter:
    """The directory routes."""
    router = APIRouter(prefix="/api/v1", tags=["区目录 / directory"])
    authenticated = known_staff(settings)
    Reader = Annotated[Principal, Depends(require_roles(authenticated, *sorted(READERS)))]
    Admin = Annotated[Principal, Depends(require_roles(authenticated, *sorted(ADMINS)))]

    @router.get("/directory", summary="区目录 / the district's directory")
    async def directory_view(who: Reader, routing: RoutingDep) -> DirectoryView:
        return views.directory_view(await current(routing, who.district_id))

    @router.get("/directory/stations/{code}", summary="联络站 / a station")
    async def station_view(code: str, who: Reader, routing: RoutingDep) -> StationWithMembers:
        ctx = await current(routing, who.district_id)
        station = ctx.directory.stations.get(code)
        if station is None:
            raise NotFound("联络站不存在", "No such station")
        members = [r.id for r in ctx.directory.candidates_at(code)]
        return StationWithMembers(**views.station_fields(station), representatives=members)

    @router.get(
        "/directory/stations/{code}/qr.svg",
        summary="联络站民情码 / the station's QR code",
        response_class=Response,
    )
    async def station_qr(code: str, who: Reader, routing: RoutingDep) -> Response:
        ctx = await current(routing, who.district_id)
        if ctx.directory.active_station(code) is None:
            raise NotFound("联络站不存在或已撤销", "No such active station")
        url = f"{settings.public_base_url.rstrip('/')}/q/{code}"
        buffer = io.BytesIO()
        segno.make(url, error="m").save(buffer, kind="svg", scale=4, title=f"民情码 {code}")
        return Response(buffer.getvalue(), media_type="image/svg+xml")

    @router.get("/directory/representatives/{rep_id}", summary="代表 / a representative")
    async def representative_view(
        rep_id: str, who: Reader, routing: RoutingDep
    ) -> RepresentativeWithDays:
        ctx = await current(routing, who.district_id)
        rep = ctx.directory.representatives.get(rep_id)
        if rep is None:
            raise NotFound("代表不存在", "No such representative")
        today = ctx.today(routing.clock())
        days = [
            ReceptionDayView(station_code=r.station_code, day=r.day.isoformat())
            for r in ctx.directory.reception_days
            if r.representative_id == rep_id and r.day >= today
        ]
        return RepresentativeWithDays(**views.representative_fields(rep), reception_days=days)

    @router.get("/directory/taxonomy", summary="分类目录 / the taxonomy")
    async def taxonomy_view(who: Reader, routing: RoutingDep) -> dict[str, Any]:
        ctx = await current(routing, who.district_id)
        if ctx.config.taxonomy is None:
            raise NotFound("尚未发布分类目录", "No taxonomy published")
        data: dict[str, Any] = ctx.config.taxonomy.model_dump(mode="json")
        return data

    async def apply(
        routing: Routing, who: Principal, changes: DirectoryChanges, retire: bool = False
    ) -> DirectoryChangeResult:
        plan = await routing.directory.change(
            who.district_id, changes, actor_of(who), retire_missing=retire
        )
        return DirectoryChangeResult(events=len(plan.events), summary=plan.summary)

    @router.post("/directory/import", summary="导入区目录文件 / import a district file")
    async def import_file(
        who: Admin, routing: RoutingDep, request: Request, retire_missing: bool = False
    ) -> DirectoryChangeResult:
        body = await read_body(request, MAX_DISTRICT_FILE_BYTES)
        changes = parse_district_file(body.decode("utf-8", "replace"), source="request")
        return await apply(routing, who, changes, retire_missing)

    @router.post("/directory/streets", summary="登记或更新街道 / register or update a street")
    async def put_street(
        who: Admin, routing: RoutingDep, body: StreetEntry
    ) -> DirectoryChangeResult:
        return await apply(routing, who, DirectoryChanges(streets=[body]))

    @router.post("/directory/stations", summary="登记、更新或迁址联络站 / register a station")
    async def put_station(
        who: Admin, routing: RoutingDep, body: StationEntry
    ) -> DirectoryChangeResult:
        return await apply(routing, who, DirectoryChanges(stations=[body]))

    @router.post("/directory/stations/{code}/retire", summary="撤销联络站 / retire a station")
    async def retire_station(
        code: str, who: Admin, routing: RoutingDep, body: RetireBody
    ) -> StationRetiredView:
        await routing.directory.retire_station(who.district_id, code, body.reason, actor_of(who))
        return StationRetiredView(station_code=code, active=False)

    @router.post(
        "/directory/representatives", summary="登记或更新代表 / register or update a representative"
    )
    async def put_representative(
        who: Admin, routing: RoutingDep, body: RepresentativeEntry
    ) -> DirectoryChangeResult:
        return await apply(routing, who, DirectoryChanges(representatives=[body]))

    @router.post(
        "/directory/representatives/{rep_id}/retire", summary="代表离任 / retire a representative"
    )
    async def retire_representative(
        rep_id: str, who: Admin, routing: RoutingDep, body: RetireBody
    ) -> RepresentativeRetiredView:
        await routing.directory.retire_representative(
            who.district_id, rep_id, body.reason, actor_of(who)
        )
        return RepresentativeRetiredView(representative_id=rep_id, active=False)

    @router.put("/directory/taxonomy", summary="发布分类目录 / publish the taxonomy")
    async def put_taxonomy(
        who: Admin, routing: RoutingDep, body: TaxonomyEntry
    ) -> DirectoryChangeResult:
        return await apply(routing, who, DirectoryChanges(taxonomy=body))

    @router.put("/directory/calendar", summary="发布节假日安排 / publish the holiday file")
    async def put_calendar(
        who: Admin, routing: RoutingDep, body: CalendarEntry
    ) -> DirectoryChangeResult:
        return await apply(routing, who, DirectoryChanges(calendar=body))

    @router.put("/directory/policy", summary="发布分派规则 / publish the routing policy")
    async def put_policy(
        who: Admin, routing: RoutingDep, body: PolicyEntry
    ) -> DirectoryChangeResult:
        return await apply(routing, who, DirectoryChanges(policy=body))

    return router
