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

from contracts.cases import Priority
from eventkit.http import require_roles
from eventkit.http.requests import request_info
from eventkit.identity import Principal
from eventkit.refusals import Forbidden
from eventkit.requests import RequestInfo
from eventkit.settings import Settings
from services.routing import views
from services.routing.api_models import CaseDetail, CaseList, CaseView, Queue
from services.routing.bootstrap import Routing
from services.routing.staff_auth import known_staff
from services.routing.staff_commands import READERS, STAFF_COMMANDS, NoBody, StaffCommand
from services.routing.staff_scope import Scope
from services.routing.staff_work import actor_of as actor_of


def routing_of(request: Request) -> Routing:
    """Dependency: the running service of the app serving ``request``."""
    routing: Routing = request.app.state.routing
    return routing


RoutingDep = Annotated[Routing, Depends(routing_of)]
InfoDep = Annotated[RequestInfo, Depends(request_info)]


def scope_view(scope: Scope) -> dict[str, Any]:
    """What a queue says of its scope: the person's stations, their own cases, or the
    district."""
    if scope.whole_district:
        return {"district": scope.principal.district_id}
    return scope.list_filters()


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
    authenticated = known_staff(settings)
    Reader = Annotated[Principal, Depends(require_roles(authenticated, *sorted(READERS)))]

    @router.get("/queue", summary="我的待办 / my queue")
    async def my_queue(
        who: Reader,
        routing: RoutingDep,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Queue:
        found = await routing.staff.queue(who, limit=limit, offset=offset)
        if found is None:
            raise NoQueue()
        scope, cases = found
        return Queue(role=who.role.value, scope=scope_view(scope), cases=cases)

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
        cases = await routing.staff.cases(
            who,
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
        _, detail = await routing.staff.case(who, case_id)
        return detail

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
        state = await routing.staff.run(
            who, command, case_id, body if body is not None else command.body(), info
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
