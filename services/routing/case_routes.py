"""The case work API: queues, lists, a case with its history, and one ``POST`` route per
row of the staff command table.

Thin: each route translates the request into a call of the running service and its
answer into a model of :mod:`services.routing.api_models`. Everything is scoped to the
district in the caller's token: another district's case is simply not found. Refusals
leave as problem documents at the edge (``app.py``).

No ``from __future__ import annotations``: the routes' dependency aliases are local to
:func:`case_router`, and FastAPI can only resolve annotations that are objects.
"""

import inspect
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from contracts.base import Actor, ActorRole
from contracts.cases import Priority
from eventkit.http import bearer_principal, require_roles
from eventkit.http.requests import request_info
from eventkit.identity import Principal, Role
from eventkit.refusals import Forbidden
from eventkit.requests import RequestInfo
from eventkit.settings import Settings
from services.routing import views
from services.routing.api_models import CaseDetail, CaseList, CaseView, Queue
from services.routing.bootstrap import Routing
from services.routing.errors import CaseNotFound
from services.routing.staff_commands import READERS, STAFF_COMMANDS, NoBody, StaffCommand


def routing_of(request: Request) -> Routing:
    """Dependency: the running service of the app serving ``request``."""
    routing: Routing = request.app.state.routing
    return routing


RoutingDep = Annotated[Routing, Depends(routing_of)]
InfoDep = Annotated[RequestInfo, Depends(request_info)]


def actor_of(principal: Principal) -> Actor:
    """The event actor for a staff member."""
    return Actor(id=principal.subject, role=ActorRole(principal.role.value))


class NoQueue(Forbidden):
    """The caller's role has no queue of its own."""

    code = "no-queue"

    def __init__(self) -> None:
        super().__init__(
            "此角色没有待办队列",
            "This role has no queue",
            "请使用案件列表查询",
            "Use the case list instead",
        )


def case_router(settings: Settings) -> APIRouter:
    """The case routes, the staff commands' among them."""
    router = APIRouter(prefix="/api/v1", tags=["案件 / cases"])
    authenticated = bearer_principal(settings)
    Reader = Annotated[Principal, Depends(require_roles(authenticated, *sorted(READERS)))]

    @router.get("/queue", summary="我的待办 / my queue")
    async def my_queue(
        who: Reader,
        routing: RoutingDep,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Queue:
        district = who.district_id
        async with routing.pool.acquire() as conn:
            ctx = await routing.districts.get(conn, district)
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
                raise NoQueue()
            cases = await views.list_cases(conn, district, limit=limit, offset=offset, **filters)
        return Queue(role=who.role.value, scope=scope, cases=cases)

    @router.get("/cases", summary="案件列表 / cases of the district")
    async def list_cases(
        who: Reader,
        routing: RoutingDep,
        status: str | None = None,
        station: str | None = None,
        representative: str | None = None,
        priority: Priority | None = None,
        category: str | None = None,
        overdue: bool | None = None,
        open_only: bool = False,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> CaseList:
        async with routing.pool.acquire() as conn:
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
        return CaseList(cases=cases)

    @router.get("/cases/{case_id}", summary="案件详情及全部记录 / a case with its history")
    async def case_detail(case_id: str, who: Reader, routing: RoutingDep) -> CaseDetail:
        async with routing.pool.acquire() as conn:
            state = await routing.cases.load(conn, case_id)
            if state is None or state.district_id != who.district_id:
                raise CaseNotFound(case_id)
            ctx = await routing.districts.get(conn, who.district_id)
            return await views.case_detail(
                routing.store, conn, state, ctx.directory if ctx else None
            )

    for command in STAFF_COMMANDS:
        router.add_api_route(
            f"/cases/{{case_id}}/{command.name}",
            _command_endpoint(command, require_roles(authenticated, *sorted(command.roles))),
            methods=["POST"],
            summary=command.summary,
            response_model=CaseView,
            name=command.name,
        )
    return router


def _command_endpoint(
    command: StaffCommand[Any], allowed: Callable[..., Awaitable[Principal]]
) -> Callable[..., Awaitable[CaseView]]:
    """The route of one staff command: its body model, its roles, one call of the handler."""

    async def endpoint(
        case_id: str,
        who: Principal,
        routing: Routing,
        info: RequestInfo,
        body: Any = None,
    ) -> CaseView:
        state = await routing.casework.run(
            command,
            who.district_id,
            case_id,
            actor_of(who),
            body if body is not None else command.body(),
            info,
        )
        return views.state_view(state)

    # FastAPI reads the parameters from the signature: give it the command's own body
    # model (none for a command that needs no body) and the caller's allowed roles.
    parameters = [
        inspect.Parameter("case_id", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str),
        inspect.Parameter(
            "who",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[Principal, Depends(allowed)],
        ),
        inspect.Parameter(
            "routing", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=RoutingDep
        ),
        inspect.Parameter("info", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=InfoDep),
    ]
    if command.body is not NoBody:
        parameters.append(
            inspect.Parameter(
                "body", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=command.body
            )
        )
    endpoint.__signature__ = inspect.Signature(parameters, return_annotation=CaseView)  # type: ignore[attr-defined]
    endpoint.__name__ = f"{command.name}_case"
    return endpoint
