"""The district's directory for everyone signed in (stations, representatives, reception
days), and its administration for district administrators: staff accounts (invite,
close) and importing a district file."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from contracts.base import Actor, ActorRole
from eventkit.db import district_transaction
from eventkit.identity import Role
from eventkit.refusals import Forbidden, InvalidInput, Refusal
from services.routing.directory_routes import MAX_DISTRICT_FILE_BYTES
from services.routing.district_file import parse_district_file
from services.routing.staff_accounts import StaffSession
from services.routing.workbench.web import PREFIX, Web, words

RECEPTION_DAYS_AHEAD = 60


class AdminsOnly(Forbidden):
    """The administration is the district administrators'."""

    code = "admins-only"

    def __init__(self) -> None:
        super().__init__("仅区管理员可以管理名录和账号", "Only district administrators")


def directory_pages(web: Web) -> APIRouter:
    """The routes of the directory pages."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    async def district(request: Request, session: StaffSession) -> Any:
        routing = web.routing(request)
        async with district_transaction(routing.pool, session.principal.district_id) as conn:
            await routing.staff.context(conn, session.principal)
            return await routing.districts.require(conn, session.principal.district_id)

    @router.get("/directory")
    async def directory(request: Request) -> Response:
        session = await web.session(request)
        if session is None:
            return web.to_sign_in(request)
        try:
            ctx = await district(request, session)
        except Refusal as error:
            return web.refusal(request, error, session)
        d = ctx.directory
        today = ctx.today(web.routing(request).clock())
        until = today + timedelta(days=RECEPTION_DAYS_AHEAD)
        days = [r for r in d.reception_days if today <= r.day <= until]
        return web.render(
            request,
            "directory.html",
            session=session,
            directory=d,
            streets=sorted(d.streets.values(), key=lambda s: s.code),
            stations=sorted(d.stations.values(), key=lambda s: (s.street_code, s.code)),
            representatives=sorted(d.representatives.values(), key=lambda r: r.id),
            reception_days=days,
        )

    async def admin_page(
        request: Request,
        session: StaffSession,
        *,
        status: int = 200,
        invitation: Any = None,
        problems: list[str] | None = None,
        imported: int | None = None,
    ) -> Response:
        routing = web.routing(request)
        ctx = await district(request, session)
        now = routing.clock()
        accounts = [
            {
                **a,
                "locked": a["locked_until"] is not None and a["locked_until"] > now,
                "last_sign_in": (
                    f"{ctx.calendar.local(a['last_sign_in_at']):%Y-%m-%d %H:%M}"
                    if a["last_sign_in_at"]
                    else None
                ),
            }
            for a in await routing.accounts.accounts(session.principal.district_id)
        ]
        return web.render(
            request,
            "admin.html",
            session=session,
            status=status,
            accounts=accounts,
            invitation=invitation,
            invite_url=(
                f"{web.settings.routing_workbench_url}{PREFIX}/welcome?code={invitation.code}"
                if invitation
                else None
            ),
            invite_hours=int(web.settings.routing_invite_hours),
            roles=[r.value for r in Role],
            problems=problems or [],
            imported=imported,
        )

    async def admin_session(request: Request) -> StaffSession | Response:
        session = await web.session(request)
        if session is None:
            return web.to_sign_in(request)
        if session.principal.role is not Role.DISTRICT_ADMIN:
            return web.refusal(request, AdminsOnly(), session)
        return session

    @router.get("/admin")
    async def admin(request: Request) -> Response:
        session = await admin_session(request)
        if not isinstance(session, StaffSession):
            return session
        return await admin_page(request, session)

    @router.post("/admin/invite")
    async def invite(request: Request) -> Response:
        session = await admin_session(request)
        if not isinstance(session, StaffSession):
            return session
        try:
            fields = await web.form(request, session)
            person = fields.get("person", "").strip()
            role_name = fields.get("role", "").strip()
            if role_name and role_name not in {r.value for r in Role}:
                raise InvalidInput("角色不存在", "No such role")
            invitation = await web.routing(request).accounts.invite(
                session.principal.district_id,
                person,
                Role(role_name) if role_name else None,
                _actor(session),
            )
        except Refusal as error:
            return await admin_page(
                request, session, status=422, problems=words(error, web.lang(request))
            )
        return await admin_page(request, session, invitation=invitation)

    @router.post("/admin/retire")
    async def retire(request: Request) -> Response:
        session = await admin_session(request)
        if not isinstance(session, StaffSession):
            return session
        try:
            fields = await web.form(request, session)
            await web.routing(request).accounts.retire(
                session.principal.district_id,
                fields.get("person", "").strip(),
                fields.get("reason", "").strip() or "区管理员停用",
                _actor(session),
            )
        except Refusal as error:
            return await admin_page(
                request, session, status=422, problems=words(error, web.lang(request))
            )
        return await admin_page(request, session)

    @router.post("/admin/import")
    async def import_file(request: Request) -> Response:
        session = await admin_session(request)
        if not isinstance(session, StaffSession):
            return session
        routing = web.routing(request)
        try:
            fields = await web.form(request, session, MAX_DISTRICT_FILE_BYTES)
            document = parse_district_file(fields.get("document", ""), source="form")
            if document.district.code != session.principal.district_id:
                raise AdminsOnly()
            plan = await routing.directory.change(
                session.principal.district_id, document, _actor(session)
            )
        except Refusal as error:
            return await admin_page(
                request, session, status=422, problems=words(error, web.lang(request))
            )
        return await admin_page(request, session, imported=len(plan.events))

    return router


def _actor(session: StaffSession) -> Actor:
    p = session.principal
    return Actor(id=p.subject, role=ActorRole(p.role.value))
