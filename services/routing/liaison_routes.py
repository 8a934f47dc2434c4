"""The liaison API: departments, people, spokespersons, reception days, activities, and
what a summoned department sees and does (docs/liaison.md).

Thin: reads come from the district's context and :mod:`services.routing.liaison_views`;
changes go through :class:`~services.routing.liaison_admin.LiaisonAdmin` and the
directory admin (only differences are emitted), and a department's steps on a case
through the staff command table's rows. Scoped to the caller's district; a liaison
officer changes only their own stations' rosters, reception days and activities.

No ``from __future__ import annotations``: FastAPI resolves the routes' annotations.
"""

from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, StringConstraints

from contracts.base import Identifier
from eventkit.db import district_transaction
from eventkit.http import require_roles
from eventkit.http.requests import request_info
from eventkit.identity import Principal, Role
from eventkit.refusals import Forbidden, NotFound
from eventkit.requests import RequestInfo
from eventkit.settings import Settings
from services.routing import liaison_views as lv
from services.routing.api_models import CaseView, DirectoryChangeResult
from services.routing.bootstrap import Routing
from services.routing.case_routes import RoutingDep, actor_of
from services.routing.casework import visible_to
from services.routing.command_rows import ADMINS, READERS
from services.routing.directory_routes import RetireBody, current
from services.routing.district_context import DistrictContext
from services.routing.district_file import (
    ActivityEntry,
    DepartmentEntry,
    DirectoryChanges,
    SpokespersonEntry,
    StaffEntry,
)
from services.routing.errors import CaseNotFound
from services.routing.liaison_commands import DepartmentResponseBody, DepartmentStepBody
from services.routing.liaison_models import (
    ActivityList,
    DepartmentCase,
    DepartmentList,
    DepartmentQueue,
    Done,
    PeopleList,
    Planned,
    Roster,
    ScheduleList,
)
from services.routing.staff_auth import known_staff
from services.routing.staff_commands import BY_NAME
from services.routing.views import state_view

Reason = Annotated[str, StringConstraints(max_length=500)]

STATION_STAFF = ADMINS | {Role.DISTRICT_OFFICE, Role.LIAISON}
"""May keep a station's roster and reception days (a liaison officer: their stations)."""
RECORDERS = STATION_STAFF | {Role.STREET_SUPERVISOR}
"""May record activities (a liaison officer: at their stations; a supervisor: their
streets')."""


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    representative_id: Identifier
    station_code: Identifier
    day: date
    reason: Reason | None = None


class MoveBody(CancelBody):
    to_day: date
    starts_at: time | None = None
    ends_at: time | None = None


class NotYourStation(Forbidden):
    """A liaison officer or supervisor changing another station's records."""

    code = "not-your-station"

    def __init__(self, station_code: str) -> None:
        super().__init__(
            "此联络站不在您的负责范围内",
            "This station is not within your responsibility",
            f"只能管理本人负责的联络站（{station_code} 不是）",
            f"you may only keep the records of your own stations ({station_code} is not)",
        )


class NoDepartment(Forbidden):
    """A department token whose subject acts for no registered department."""

    code = "not-department-staff"

    def __init__(self) -> None:
        super().__init__(
            "您不是已登记部门的工作人员",
            "You are not staff of a registered department",
            "请区管理员在区目录中登记您所在的部门",
            "Ask the district administrator to register you with your department",
        )


def check_station(ctx: DistrictContext, who: Principal, station_code: str) -> None:
    """A liaison officer (their stations) or a street supervisor (their streets')."""
    d = ctx.directory
    if d.stations.get(station_code) is None:
        raise NotFound("联络站不存在", "No such station")
    if who.role is Role.LIAISON and station_code not in d.stations_of_liaison(who.subject):
        raise NotYourStation(station_code)
    if who.role is Role.STREET_SUPERVISOR:
        street = d.stations[station_code].street_code
        if street not in d.streets_of_supervisor(who.subject):
            raise NotYourStation(station_code)


def _departments(ctx: DistrictContext, who: Principal) -> list[str]:
    mine = ctx.directory.departments_of(who.subject)
    if not mine:
        raise NoDepartment()
    return mine


def liaison_router(settings: Settings) -> APIRouter:
    """The liaison routes."""
    router = APIRouter(prefix="/api/v1", tags=["联络站工作 / liaison work"])
    authenticated = known_staff(settings)

    def role(*roles: Role) -> Any:
        return Depends(require_roles(authenticated, *sorted(roles)))

    Reader = Annotated[Principal, role(*READERS)]
    Admin = Annotated[Principal, role(*ADMINS)]
    StationStaff = Annotated[Principal, role(*STATION_STAFF)]
    Recorder = Annotated[Principal, role(*RECORDERS)]
    DepartmentStaff = Annotated[Principal, role(Role.DEPARTMENT)]
    Info = Annotated[RequestInfo, Depends(request_info)]

    async def change(
        routing: Routing, who: Principal, changes: DirectoryChanges
    ) -> DirectoryChangeResult:
        plan = await routing.directory.change(who.district_id, changes, actor_of(who))
        return DirectoryChangeResult(events=len(plan.events), summary=plan.summary)

    # ------------------------------------------------------------------ directory

    @router.get("/directory/departments", summary="职能部门 / departments")
    async def departments(who: Reader, routing: RoutingDep) -> DepartmentList:
        ctx = await current(routing, who.district_id)
        return DepartmentList(departments=lv.departments_view(ctx.directory))

    @router.post("/directory/departments", summary="登记或更新部门 / register a department")
    async def put_department(
        who: Admin, routing: RoutingDep, body: DepartmentEntry
    ) -> DirectoryChangeResult:
        return await change(routing, who, DirectoryChanges(departments=[body]))

    @router.post("/directory/departments/{code}/retire", summary="撤销部门 / retire a department")
    async def retire_department(
        code: str, who: Admin, routing: RoutingDep, body: RetireBody
    ) -> Done:
        await routing.liaison.retire(
            who.district_id, "department", code, body.reason, actor_of(who)
        )
        return Done(ok=True)

    @router.get("/directory/people", summary="人员 / people the directory knows, by role")
    async def list_people(who: Reader, routing: RoutingDep, role: str | None = None) -> PeopleList:
        async with district_transaction(routing.pool, who.district_id) as conn:
            return PeopleList(people=await lv.people(conn, who.district_id, role))

    @router.post("/directory/staff", summary="登记或更新人员 / register a staff member")
    async def put_staff(who: Admin, routing: RoutingDep, body: StaffEntry) -> DirectoryChangeResult:
        return await change(routing, who, DirectoryChanges(staff=[body]))

    @router.post("/directory/staff/{staff_id}/retire", summary="人员离岗 / retire a staff member")
    async def retire_staff(
        staff_id: str, who: Admin, routing: RoutingDep, body: RetireBody
    ) -> Done:
        await routing.liaison.retire(who.district_id, "staff", staff_id, body.reason, actor_of(who))
        return Done(ok=True)

    @router.get(
        "/directory/stations/{code}/spokespersons",
        summary="群众代言员名册 / the station's spokespersons and their intake",
    )
    async def spokespersons(
        code: str,
        who: Reader,
        routing: RoutingDep,
        since: Annotated[date | None, Query(alias="from")] = None,
        until: Annotated[date | None, Query(alias="to")] = None,
    ) -> Roster:
        ctx = await current(routing, who.district_id)
        if code not in ctx.directory.stations:
            raise NotFound("联络站不存在", "No such station")
        zone = ctx.calendar.timezone
        start = datetime.combine(since, time(0), tzinfo=zone) if since else None
        end = datetime.combine(until + timedelta(days=1), time(0), tzinfo=zone) if until else None
        async with district_transaction(routing.pool, who.district_id) as conn:
            found = await lv.roster(conn, ctx.directory, code, start, end)
        return Roster(station_code=code, spokespersons=found)

    @router.post(
        "/directory/spokespersons", summary="登记群众代言员 / register a citizen spokesperson"
    )
    async def put_spokesperson(
        who: StationStaff, routing: RoutingDep, body: SpokespersonEntry
    ) -> DirectoryChangeResult:
        check_station(await current(routing, who.district_id), who, body.station)
        return await change(routing, who, DirectoryChanges(spokespersons=[body]))

    @router.post(
        "/directory/spokespersons/{spokesperson_id}/retire",
        summary="群众代言员退出 / a spokesperson leaves the roster",
    )
    async def retire_spokesperson(
        spokesperson_id: str, who: StationStaff, routing: RoutingDep, body: RetireBody
    ) -> Done:
        ctx = await current(routing, who.district_id)
        found = ctx.directory.spokespersons.get(spokesperson_id)
        if found is None:
            raise NotFound("群众代言员不存在", "No such spokesperson")
        check_station(ctx, who, found.station_code)
        await routing.liaison.retire(
            who.district_id, "spokesperson", spokesperson_id, body.reason, actor_of(who)
        )
        return Done(ok=True)

    # ------------------------------------------------------------------ reception days

    @router.get(
        "/directory/stations/{code}/reception-days",
        summary="接待日安排 / the station's reception days",
    )
    async def reception_days(
        code: str,
        who: Reader,
        routing: RoutingDep,
        since: Annotated[date | None, Query(alias="from")] = None,
        until: Annotated[date | None, Query(alias="to")] = None,
    ) -> ScheduleList:
        ctx = await current(routing, who.district_id)
        if code not in ctx.directory.stations:
            raise NotFound("联络站不存在", "No such station")
        start = since or ctx.today(routing.clock())
        async with district_transaction(routing.pool, who.district_id) as conn:
            days = await lv.schedule(
                conn,
                ctx.directory,
                station_code=code,
                since=start,
                until=until or start + timedelta(days=60),
            )
        return ScheduleList(days=days)

    @router.post("/directory/reception-days/cancel", summary="取消接待日 / cancel a reception day")
    async def cancel_day(who: StationStaff, routing: RoutingDep, body: CancelBody) -> Done:
        check_station(await current(routing, who.district_id), who, body.station_code)
        await routing.liaison.cancel_reception_day(
            who.district_id,
            body.representative_id,
            body.station_code,
            body.day,
            body.reason,
            actor_of(who),
        )
        return Done(ok=True)

    @router.post("/directory/reception-days/move", summary="接待日改期 / move a reception day")
    async def move_day(who: StationStaff, routing: RoutingDep, body: MoveBody) -> Done:
        check_station(await current(routing, who.district_id), who, body.station_code)
        await routing.liaison.move_reception_day(
            who.district_id,
            body.representative_id,
            body.station_code,
            body.day,
            body.to_day,
            actor_of(who),
            starts_at=body.starts_at,
            ends_at=body.ends_at,
            reason=body.reason,
        )
        return Done(ok=True)

    @router.post(
        "/directory/reception-days/plan",
        summary="按规则排接待日 / plan reception days from the rules now",
    )
    async def plan_days(who: Admin, routing: RoutingDep) -> Planned:
        return Planned(added=await routing.liaison.plan_reception_days(who.district_id))

    # ------------------------------------------------------------------ activities

    @router.get("/activities", summary="代表活动 / representatives' activities")
    async def list_activities(
        who: Reader,
        routing: RoutingDep,
        station: str | None = None,
        kind: str | None = None,
        since: Annotated[date | None, Query(alias="from")] = None,
        until: Annotated[date | None, Query(alias="to")] = None,
    ) -> ActivityList:
        ctx = await current(routing, who.district_id)
        end = until or ctx.today(routing.clock())
        async with district_transaction(routing.pool, who.district_id) as conn:
            found = await lv.activities(
                conn,
                who.district_id,
                station_code=station,
                since=since or end - timedelta(days=90),
                until=end,
                kind=kind,
            )
        return ActivityList(activities=found)

    @router.post("/activities", summary="登记代表活动 / record an activity held at a station")
    async def record_activity(
        who: Recorder, routing: RoutingDep, body: ActivityEntry
    ) -> DirectoryChangeResult:
        check_station(await current(routing, who.district_id), who, body.station)
        plan = await routing.liaison.record_activity(who.district_id, body, actor_of(who))
        return DirectoryChangeResult(events=len(plan.events), summary=plan.summary)

    # ------------------------------------------------------------------ departments

    @router.get("/department/whistles", summary="吹哨给本部门的事项 / whistles to my department")
    async def department_queue(
        who: DepartmentStaff,
        routing: RoutingDep,
        open_only: bool = True,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> DepartmentQueue:
        ctx = await current(routing, who.district_id)
        mine = _departments(ctx, who)
        async with district_transaction(routing.pool, who.district_id) as conn:
            found = await lv.department_whistles(
                conn, who.district_id, mine, open_only=open_only, limit=limit
            )
        return DepartmentQueue(departments=mine, whistles=found)

    @router.get(
        "/department/cases/{case_id}", summary="吹哨事项详情 / a case whistled to my department"
    )
    async def department_case(
        case_id: str, who: DepartmentStaff, routing: RoutingDep
    ) -> DepartmentCase:
        ctx = await current(routing, who.district_id)
        mine = _departments(ctx, who)
        async with district_transaction(routing.pool, who.district_id) as conn:
            state = await routing.cases.load(conn, case_id)
            if (
                state is None
                or state.district_id != who.district_id
                or not visible_to(state, actor_of(who), ctx)
            ):
                raise CaseNotFound(case_id)
            return await lv.department_case(conn, state, mine)

    @router.post("/department/cases/{case_id}/report", summary="部门报到 / report in on a whistle")
    async def department_report(
        case_id: str,
        who: DepartmentStaff,
        routing: RoutingDep,
        info: Info,
        body: DepartmentStepBody,
    ) -> CaseView:
        _departments(await current(routing, who.district_id), who)
        state = await routing.casework.run(
            BY_NAME["department_report"], who.district_id, case_id, actor_of(who), body, info
        )
        return state_view(state)

    @router.post(
        "/department/cases/{case_id}/respond",
        summary="部门处理反馈 / feed back what the department did",
    )
    async def department_respond(
        case_id: str,
        who: DepartmentStaff,
        routing: RoutingDep,
        info: Info,
        body: DepartmentResponseBody,
    ) -> CaseView:
        _departments(await current(routing, who.district_id), who)
        state = await routing.casework.run(
            BY_NAME["department_respond"], who.district_id, case_id, actor_of(who), body, info
        )
        return state_view(state)

    return router
