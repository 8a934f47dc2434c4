"""Signing in and out of the workbench, and the first sign-in with an invitation code.

The forms shown before sign-in carry a signed CSRF token bound to a cookie of this
browser (:class:`eventkit.http.sessions.PreSessionForms`); after sign-in every form
carries the session's own. A wrong password is answered like an unknown account, and
counts towards a lock-out.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from eventkit.db import ALL_DISTRICTS, scope
from eventkit.http import read_form
from eventkit.http.sessions import CSRF_FIELD
from eventkit.refusals import Refusal
from services.routing.staff_accounts import StaffSession
from services.routing.workbench.web import FORM_LIMIT, PREFIX, Web, words


def _safe_next(target: str | None) -> str:
    """Only a path of the workbench itself (never another site)."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//"):
        return target
    return PREFIX + "/"


def sign_in_pages(web: Web) -> APIRouter:
    """The routes of signing in and out."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    def signed_in(request: Request, session: StaffSession, target: str) -> Response:
        response = RedirectResponse(_safe_next(target), 303)
        max_age = int(web.settings.routing_session_hours * 3600)
        web.session_cookie.set(request, response, session.token, max_age)
        return response

    async def districts(request: Request) -> list[tuple[str, str]]:
        routing = web.routing(request)
        async with routing.pool.acquire() as conn, conn.transaction():
            # The sign-in form offers every district by name (before sign-in nobody has a
            # district): the names only, which are public.
            await scope(conn, ALL_DISTRICTS)
            rows = await conn.fetch(
                "SELECT district_id, name_zh FROM routing.districts ORDER BY district_id"
            )
        return [(r["district_id"], r["name_zh"]) for r in rows]

    async def login_page(
        request: Request, *, status: int = 200, problems: list[str] | None = None, **values: str
    ) -> Response:
        token, fresh = web.pre_session.token(request)
        response = web.render(
            request,
            "login.html",
            status=status,
            form_token=token,
            districts=await districts(request),
            next=_safe_next(request.query_params.get("next") or values.get("next")),
            problems=problems or [],
            values=values,
            signed_out="signed_out" in request.query_params,
        )
        web.pre_session.remember(request, response, fresh)
        return response

    @router.get("")
    async def root() -> Response:
        return RedirectResponse(PREFIX + "/", 307)

    @router.get("/login")
    async def login_form(request: Request) -> Response:
        return await login_page(request)

    @router.post("/login")
    async def login(request: Request) -> Response:
        fields = await read_form(request, FORM_LIMIT)
        district = fields.get("district", "").strip()
        person = fields.get("person", "").strip()
        target = fields.get("next", "")
        try:
            web.pre_session.check(request, fields.get(CSRF_FIELD))
            session = await web.routing(request).accounts.sign_in(
                district, person, fields.get("password", "")
            )
        except Refusal as error:
            return await login_page(
                request,
                status=403 if error.code == "csrf" else 401,
                problems=words(error, web.lang(request)),
                district=district,
                person=person,
                next=target,
            )
        return signed_in(request, session, target)

    async def welcome_page(
        request: Request, code: str, *, status: int = 200, problems: list[str] | None = None
    ) -> Response:
        try:
            account = await web.routing(request).accounts.invited(code)
        except Refusal as error:
            return web.refusal(request, error)
        token, fresh = web.pre_session.token(request)
        response = web.render(
            request,
            "welcome.html",
            status=status,
            form_token=token,
            code=code,
            account=account,
            problems=problems or [],
        )
        web.pre_session.remember(request, response, fresh)
        return response

    @router.get("/welcome")
    async def welcome_form(request: Request, code: str = "") -> Response:
        return await welcome_page(request, code)

    @router.post("/welcome")
    async def welcome(request: Request) -> Response:
        fields = await read_form(request, FORM_LIMIT)
        code = fields.get("code", "")
        try:
            web.pre_session.check(request, fields.get(CSRF_FIELD))
            session = await web.routing(request).accounts.accept_invitation(
                code, fields.get("password", ""), fields.get("confirm", "")
            )
        except Refusal as error:
            if error.code == "invite-not-valid":
                return web.refusal(request, error)
            return await welcome_page(
                request,
                code,
                status=403 if error.code == "csrf" else 422,
                problems=words(error, web.lang(request)),
            )
        return signed_in(request, session, PREFIX + "/")

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        session = await web.session(request)
        if session is not None:
            await web.form(request, session)
            await web.routing(request).accounts.sign_out(session.token)
        response = RedirectResponse(f"{PREFIX}/login?{urlencode({'signed_out': '1'})}", 303)
        web.session_cookie.clear(request, response)
        return response

    return router
