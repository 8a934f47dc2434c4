"""The HTTP side: the workbench API for staff and the directory admin API.

Every route translates the request into one call of :class:`RoutingService` and its
answer (or refusal) into JSON or a problem document. Everything is scoped to the
district in the caller's token: another district's case is simply not found.

No ``from __future__ import annotations`` here: the routes' dependency aliases are local
to :func:`build_router`, and FastAPI can only resolve annotations that are objects.
"""

import io
from typing import Annotated, Any, Literal

import segno
import structlog
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl, StringConstraints

from contracts.base import Actor, ActorRole, Identifier
from contracts.cases import Priority
from contracts.directory import Duration
from eventkit.auth import Principal, Role
from eventkit.http import Problem, bearer_principal, problem_response, require_roles
from services.routing import views
from services.routing.district_file import (
    CalendarEntry,
    DirectoryChanges,
    DistrictFileError,
    PolicyEntry,
    RepresentativeEntry,
    StationEntry,
    StreetEntry,
    TaxonomyEntry,
    parse_district_file,
)
from services.routing.domain import (
    COMMAND_LABELS,
    STATUS_LABELS,
    CaseState,
    IllegalTransition,
    InvalidCommand,
    NotYourCase,
)
from services.routing.service import RoutingError, RoutingService
from services.routing.settings import RoutingSettings

Text = Annotated[str, StringConstraints(min_length=1, max_length=2000, strip_whitespace=True)]
Reason = Annotated[str, StringConstraints(max_length=500)]

READERS = (
    Role.LIAISON,
    Role.REPRESENTATIVE,
    Role.STREET_SUPERVISOR,
    Role.DISTRICT_ADMIN,
    Role.AUDITOR,
    Role.HOTLINE,
)
CASEWORKERS = (Role.LIAISON, Role.REPRESENTATIVE, Role.STREET_SUPERVISOR, Role.DISTRICT_ADMIN)
"""May work a case (a representative only the cases assigned to them)."""
COORDINATORS = (Role.LIAISON, Role.STREET_SUPERVISOR, Role.DISTRICT_ADMIN)
"""May route, verify and reopen cases."""
ADMINS = (Role.DISTRICT_ADMIN,)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReplyBody(_Body):
    message: Text


class ResolveBody(_Body):
    result: Text
    evidence_urls: list[HttpUrl] = Field(default_factory=list, max_length=9)


class CloseBody(_Body):
    note: Text | None = None


class ReopenBody(_Body):
    reason: Text


class TransferBody(_Body):
    reason: Text
    to_representative_id: Identifier | None = None
    to_station_code: Identifier | None = None
    to_district_id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,31}$")] | None = (
        None
    )


class EscalateBody(_Body):
    to_level: Literal["department", "station_head", "street", "district"]
    to_name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    reason: Text
    due: AwareDatetime | None = None
    due_in: Duration | None = None
    """An allowance such as ``3wd``; the policy's default when neither is given."""


class ConvertBody(_Body):
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    representative_id: Identifier | None = None
    reply_due: AwareDatetime | None = None


class ClassifyBody(_Body):
    reason: Text
    category_code: Identifier | None = None
    priority: Priority | None = None


class MergeBody(_Body):
    into_case_id: Identifier
    reason: Text


class LinkBody(_Body):
    related_case_id: Identifier
    relation: Literal["duplicate", "related"] = "related"
    reason: Text


class RetireBody(_Body):
    reason: Reason | None = None


def actor_of(principal: Principal) -> Actor:
    """The event actor for a staff member."""
    return Actor(id=principal.subject, role=ActorRole(principal.role.value))


def install_error_handlers(app: FastAPI) -> None:
    """Turn the domain's and the service's refusals into problem documents."""

    @app.exception_handler(RoutingError)
    async def on_routing_error(request: Request, exc: RoutingError) -> Response:
        return problem_response(Problem(exc.status, exc.code, exc.zh, exc.en), request.url.path)

    @app.exception_handler(IllegalTransition)
    async def on_illegal(request: Request, exc: IllegalTransition) -> Response:
        status_zh, status_en = STATUS_LABELS[exc.status]
        allowed_zh = "、".join(COMMAND_LABELS[c] for c in exc.allowed) or "无"
        command_zh = COMMAND_LABELS.get(exc.command, exc.command)
        return problem_response(
            Problem(
                409,
                "illegal-transition",
                "当前状态不允许此操作",
                "This action is not allowed in the case's current status",
                f"案件状态为「{status_zh}」，不能「{command_zh}」。可以进行的操作：{allowed_zh}",
                f"The case is {status_en}; '{exc.command}' is not allowed. "
                f"Allowed: {', '.join(exc.allowed) or 'none'}",
                case_status=exc.status.value,
                command=exc.command,
                allowed_transitions=exc.allowed,
            ),
            request.url.path,
        )

    @app.exception_handler(NotYourCase)
    async def on_not_yours(request: Request, exc: NotYourCase) -> Response:
        return problem_response(
            Problem(
                403,
                "not-your-case",
                "此案件未分派给您",
                "This case is not assigned to you",
                "代表只能办理分派给本人的案件",
                "A representative may only work the cases assigned to them",
            ),
            request.url.path,
        )

    @app.exception_handler(InvalidCommand)
    async def on_invalid(request: Request, exc: InvalidCommand) -> Response:
        return problem_response(
            Problem(422, "invalid-command", "操作无效", "Invalid action", exc.zh, exc.en),
            request.url.path,
        )

    @app.exception_handler(DistrictFileError)
    async def on_bad_file(request: Request, exc: DistrictFileError) -> Response:
        return problem_response(
            Problem(
                422,
                "invalid-directory",
                "目录内容有误",
                "Invalid directory description",
                "；".join(exc.problems[:20]),
                "; ".join(exc.problems[:20]),
                problems=exc.problems,
            ),
            request.url.path,
        )


def build_router(settings: RoutingSettings) -> APIRouter:
    """Every route of the routing service's API."""
    router = APIRouter(prefix="/api/v1")
    authenticated = bearer_principal(settings)
    Reader = Annotated[Principal, Depends(require_roles(authenticated, *READERS))]
    Caseworker = Annotated[Principal, Depends(require_roles(authenticated, *CASEWORKERS))]
    Coordinator = Annotated[Principal, Depends(require_roles(authenticated, *COORDINATORS))]
    Admin = Annotated[Principal, Depends(require_roles(authenticated, *ADMINS))]
    IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=100)]

    def service_of(request: Request) -> RoutingService:
        service: RoutingService = request.app.state.service
        return service

    Service = Annotated[RoutingService, Depends(service_of)]

    def options(key: str | None) -> dict[str, Any]:
        correlation = structlog.contextvars.get_contextvars().get("correlation_id")
        return {"idempotency_key": key, "correlation_id": correlation}

    # ------------------------------------------------------------------ cases

    @router.get("/queue", summary="我的待办 / my queue")
    async def my_queue(
        who: Reader,
        service: Service,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        district = who.district_id
        async with service.pool.acquire() as conn:
            ctx = await service.context(conn, district)
            directory = ctx.directory if ctx else None
            filters: dict[str, Any]
            scope: dict[str, Any]
            if who.role is Role.REPRESENTATIVE:
                scope = {"representative_id": who.subject}
                filters = {"representative_id": who.subject, "open_only": True}
            elif who.role is Role.LIAISON:
                stations = directory.stations_of_liaison(who.subject) if directory else []
                scope = {"stations": stations}
                filters = {"stations": stations, "queues": ["liaison", "triage"], "open_only": True}
            elif who.role is Role.STREET_SUPERVISOR:
                streets = directory.streets_of_supervisor(who.subject) if directory else []
                stations = (
                    sorted(c for c, s in directory.stations.items() if s.street_code in streets)
                    if directory
                    else []
                )
                scope = {"streets": streets}
                filters = {"stations": stations, "open_only": True, "escalated_or_overdue": True}
            elif who.role is Role.DISTRICT_ADMIN:
                scope = {"district": district}
                filters = {"open_only": True, "unplaced_or_overdue": True}
            else:
                raise Problem(
                    403,
                    "no-queue",
                    "此角色没有待办队列",
                    "This role has no queue",
                    "请使用案件列表查询",
                    "Use the case list instead",
                )
            cases = await views.list_cases(conn, district, limit=limit, offset=offset, **filters)
        return {"role": who.role.value, "scope": scope, "cases": cases}

    @router.get("/cases", summary="案件列表 / cases of the district")
    async def list_cases(
        who: Reader,
        service: Service,
        status: str | None = None,
        station: str | None = None,
        representative: str | None = None,
        priority: Priority | None = None,
        category: str | None = None,
        overdue: bool | None = None,
        open_only: bool = False,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        async with service.pool.acquire() as conn:
            cases = await views.list_cases(
                conn,
                who.district_id,
                status=status,
                stations=[station] if station else None,
                representative_id=representative,
                priority=priority.value if priority else None,
                category_code=category,
                overdue=overdue,
                open_only=open_only,
                limit=limit,
                offset=offset,
            )
        return {"cases": cases}

    @router.get("/cases/{case_id}", summary="案件详情及全部记录 / a case with its history")
    async def case_detail(case_id: str, who: Reader, service: Service) -> dict[str, Any]:
        async with service.pool.acquire() as conn:
            state = await service.case_in(conn, case_id)
            if state is None or state.district_id != who.district_id:
                raise Problem(
                    404,
                    "case-not-found",
                    "案件不存在",
                    "No such case",
                    f"本区没有编号为 {case_id} 的案件",
                    f"There is no case {case_id} in your district",
                )
            ctx = await service.context(conn, who.district_id)
            return await views.case_detail(
                service.store, conn, state, ctx.directory if ctx else None
            )

    def view(state: CaseState) -> dict[str, Any]:
        return views.state_view(state)

    @router.post("/cases/{case_id}/accept", summary="报到 / accept")
    async def accept(
        case_id: str, who: Caseworker, service: Service, key: IdempotencyKey = None
    ) -> dict[str, Any]:
        return view(await service.accept(who.district_id, case_id, actor_of(who), **options(key)))

    @router.post("/cases/{case_id}/reply", summary="答复居民 / reply to the resident")
    async def reply(
        case_id: str, body: ReplyBody, who: Caseworker, service: Service, key: IdempotencyKey = None
    ) -> dict[str, Any]:
        return view(
            await service.reply(
                who.district_id, case_id, actor_of(who), body.message, **options(key)
            )
        )

    @router.post("/cases/{case_id}/resolve", summary="办结 / resolve")
    async def resolve(
        case_id: str,
        body: ResolveBody,
        who: Caseworker,
        service: Service,
        key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        urls = [str(u) for u in body.evidence_urls]
        return view(
            await service.resolve(
                who.district_id, case_id, actor_of(who), body.result, urls, **options(key)
            )
        )

    @router.post("/cases/{case_id}/escalate", summary="吹哨 / escalate")
    async def escalate(
        case_id: str,
        body: EscalateBody,
        who: Caseworker,
        service: Service,
        key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        return view(
            await service.escalate(
                who.district_id,
                case_id,
                actor_of(who),
                to_level=body.to_level,
                to_name=body.to_name,
                reason=body.reason,
                due=body.due,
                due_in=body.due_in,
                **options(key),
            )
        )

    @router.post("/cases/{case_id}/convert", summary="转代表建议 / convert to a suggestion")
    async def convert(
        case_id: str,
        body: ConvertBody,
        who: Caseworker,
        service: Service,
        key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        return view(
            await service.convert(
                who.district_id,
                case_id,
                actor_of(who),
                title=body.title,
                representative_id=body.representative_id,
                reply_due=body.reply_due,
                **options(key),
            )
        )

    @router.post("/cases/{case_id}/transfer", summary="转办 / transfer")
    async def transfer(
        case_id: str,
        body: TransferBody,
        who: Coordinator,
        service: Service,
        key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        return view(
            await service.transfer(
                who.district_id,
                case_id,
                actor_of(who),
                reason=body.reason,
                to_representative_id=body.to_representative_id,
                to_station_code=body.to_station_code,
                to_district_id=body.to_district_id,
                **options(key),
            )
        )

    @router.post("/cases/{case_id}/classify", summary="分类定级 / classify, set the priority")
    async def classify(
        case_id: str,
        body: ClassifyBody,
        who: Coordinator,
        service: Service,
        key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        return view(
            await service.classify(
                who.district_id,
                case_id,
                actor_of(who),
                reason=body.reason,
                category_code=body.category_code,
                priority=body.priority,
                **options(key),
            )
        )

    @router.post("/cases/{case_id}/close", summary="核实结项 / close after verification")
    async def close(
        case_id: str,
        body: CloseBody,
        who: Coordinator,
        service: Service,
        key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        return view(
            await service.close(who.district_id, case_id, actor_of(who), body.note, **options(key))
        )

    @router.post("/cases/{case_id}/reopen", summary="重新办理 / reopen")
    async def reopen(
        case_id: str,
        body: ReopenBody,
        who: Coordinator,
        service: Service,
        key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        return view(
            await service.reopen(
                who.district_id, case_id, actor_of(who), body.reason, **options(key)
            )
        )

    @router.post("/cases/{case_id}/merge", summary="并案 / merge into another case")
    async def merge(
        case_id: str,
        body: MergeBody,
        who: Coordinator,
        service: Service,
        key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        return view(
            await service.merge(
                who.district_id,
                case_id,
                actor_of(who),
                into_case_id=body.into_case_id,
                reason=body.reason,
                **options(key),
            )
        )

    @router.post("/cases/{case_id}/link", summary="关联 / link to another case")
    async def link(
        case_id: str,
        body: LinkBody,
        who: Coordinator,
        service: Service,
        key: IdempotencyKey = None,
    ) -> dict[str, Any]:
        return view(
            await service.link(
                who.district_id,
                case_id,
                actor_of(who),
                related_case_id=body.related_case_id,
                relation=body.relation,
                reason=body.reason,
                **options(key),
            )
        )

    # ------------------------------------------------------------------ directory

    async def current(service: RoutingService, district_id: str) -> Any:
        async with service.pool.acquire() as conn:
            ctx = await service.context(conn, district_id)
        if ctx is None:
            raise Problem(
                404,
                "district-not-found",
                "本区尚未登记",
                "Your district is not registered",
                "请先导入区目录文件",
                "Import the district file first",
            )
        return ctx

    @router.get("/directory", summary="区目录 / the district's directory")
    async def directory_view(who: Reader, service: Service) -> dict[str, Any]:
        ctx = await current(service, who.district_id)
        d = ctx.directory
        return {
            "district": {
                "code": d.district_id,
                "name_zh": d.name_zh,
                "name_en": ctx.config.name_en,
                "timezone": d.timezone,
                "version": ctx.version,
            },
            "streets": [
                {
                    "code": s.code,
                    "name_zh": s.name_zh,
                    "committee_name_zh": s.committee,
                    "communities": sorted(
                        c.name for c in d.communities.values() if c.street_code == s.code
                    ),
                }
                for s in sorted(d.streets.values(), key=lambda s: s.code)
            ],
            "stations": [_station(s) for s in sorted(d.stations.values(), key=lambda s: s.code)],
            "representatives": [
                _representative(r) for r in sorted(d.representatives.values(), key=lambda r: r.id)
            ],
            "taxonomy_version": ctx.taxonomy.version if ctx.taxonomy else None,
            "calendar_version": ctx.config.calendar.version if ctx.config.calendar else None,
            "policy_version": ctx.config.policy.version if ctx.config.policy else None,
        }

    @router.get("/directory/stations/{code}", summary="联络站 / a station")
    async def station_view(code: str, who: Reader, service: Service) -> dict[str, Any]:
        ctx = await current(service, who.district_id)
        station = ctx.directory.stations.get(code)
        if station is None:
            raise Problem(404, "not-found", "联络站不存在", "No such station")
        members = [r.id for r in ctx.directory.candidates_at(code)]
        return {**_station(station), "representatives": members}

    @router.get(
        "/directory/stations/{code}/qr.svg",
        summary="联络站民情码 / the station's QR code",
        response_class=Response,
    )
    async def station_qr(code: str, who: Reader, service: Service) -> Response:
        ctx = await current(service, who.district_id)
        if ctx.directory.active_station(code) is None:
            raise Problem(404, "not-found", "联络站不存在或已撤销", "No such active station")
        url = f"{settings.public_base_url.rstrip('/')}/q/{code}"
        buffer = io.BytesIO()
        segno.make(url, error="m").save(buffer, kind="svg", scale=4, title=f"民情码 {code}")
        return Response(buffer.getvalue(), media_type="image/svg+xml")

    @router.get("/directory/representatives/{rep_id}", summary="代表 / a representative")
    async def representative_view(rep_id: str, who: Reader, service: Service) -> dict[str, Any]:
        ctx = await current(service, who.district_id)
        rep = ctx.directory.representatives.get(rep_id)
        if rep is None:
            raise Problem(404, "not-found", "代表不存在", "No such representative")
        today = ctx.today(service.now())
        days = [
            {"station_code": r.station_code, "day": r.day.isoformat()}
            for r in ctx.directory.reception_days
            if r.representative_id == rep_id and r.day >= today
        ]
        return {**_representative(rep), "reception_days": days}

    @router.get("/directory/taxonomy", summary="分类目录 / the taxonomy")
    async def taxonomy_view(who: Reader, service: Service) -> dict[str, Any]:
        ctx = await current(service, who.district_id)
        if ctx.config.taxonomy is None:
            raise Problem(404, "not-found", "尚未发布分类目录", "No taxonomy published")
        data: dict[str, Any] = ctx.config.taxonomy.model_dump(mode="json")
        return data

    async def apply(
        service: RoutingService, who: Principal, changes: DirectoryChanges, retire: bool = False
    ) -> dict[str, Any]:
        plan = await service.change_directory(
            who.district_id, changes, actor_of(who), retire_missing=retire
        )
        return {"events": len(plan.events), "summary": plan.summary}

    @router.post("/directory/import", summary="导入区目录文件 / import a district file")
    async def import_file(
        who: Admin,
        service: Service,
        request: Request,
        retire_missing: bool = False,
    ) -> dict[str, Any]:
        text = (await request.body()).decode("utf-8", "replace")
        changes = parse_district_file(text, source="request")
        return await apply(service, who, changes, retire_missing)

    @router.post("/directory/streets", summary="登记或更新街道 / register or update a street")
    async def put_street(who: Admin, service: Service, body: StreetEntry) -> dict[str, Any]:
        return await apply(service, who, DirectoryChanges(streets=[body]))

    @router.post("/directory/stations", summary="登记、更新或迁址联络站 / register a station")
    async def put_station(who: Admin, service: Service, body: StationEntry) -> dict[str, Any]:
        return await apply(service, who, DirectoryChanges(stations=[body]))

    @router.post("/directory/stations/{code}/retire", summary="撤销联络站 / retire a station")
    async def retire_station(
        code: str, who: Admin, service: Service, body: RetireBody
    ) -> dict[str, Any]:
        await service.retire_station(who.district_id, code, body.reason, actor_of(who))
        return {"station_code": code, "active": False}

    @router.post(
        "/directory/representatives", summary="登记或更新代表 / register or update a representative"
    )
    async def put_representative(
        who: Admin, service: Service, body: RepresentativeEntry
    ) -> dict[str, Any]:
        return await apply(service, who, DirectoryChanges(representatives=[body]))

    @router.post(
        "/directory/representatives/{rep_id}/retire", summary="代表离任 / retire a representative"
    )
    async def retire_representative(
        rep_id: str, who: Admin, service: Service, body: RetireBody
    ) -> dict[str, Any]:
        await service.retire_representative(who.district_id, rep_id, body.reason, actor_of(who))
        return {"representative_id": rep_id, "active": False}

    @router.put("/directory/taxonomy", summary="发布分类目录 / publish the taxonomy")
    async def put_taxonomy(who: Admin, service: Service, body: TaxonomyEntry) -> dict[str, Any]:
        return await apply(service, who, DirectoryChanges(taxonomy=body))

    @router.put("/directory/calendar", summary="发布节假日安排 / publish the holiday file")
    async def put_calendar(who: Admin, service: Service, body: CalendarEntry) -> dict[str, Any]:
        return await apply(service, who, DirectoryChanges(calendar=body))

    @router.put("/directory/policy", summary="发布分派规则 / publish the routing policy")
    async def put_policy(who: Admin, service: Service, body: PolicyEntry) -> dict[str, Any]:
        return await apply(service, who, DirectoryChanges(policy=body))

    return router


def _station(s: Any) -> dict[str, Any]:
    return {
        "code": s.code,
        "name_zh": s.name_zh,
        "kind": s.kind.value,
        "street_code": s.street_code,
        "communities": sorted(s.communities),
        "address": s.address,
        "position": {"lat": s.position[0], "long": s.position[1]} if s.position else None,
        "star_rating": s.star_rating,
        "head_representative_id": s.head_representative_id,
        "liaison_officers": sorted(s.liaison_officers),
        "active": s.active,
    }


def _representative(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "name_zh": r.name_zh,
        "level": r.level.value,
        "electoral_district": r.electoral_district,
        "residence_community": r.residence_community,
        "expertise": sorted(r.expertise),
        "contact_point": r.contact_point,
        "leading_cadre": r.leading_cadre,
        "stations": sorted(r.stations),
        "active": r.active,
    }
