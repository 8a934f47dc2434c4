"""What every workbench page shares: templates, the signed-in person, CSRF, language,
the security headers, and refusals shown as pages."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from eventkit.http import read_form, status_for
from eventkit.http.sessions import (
    CSRF_FIELD,
    PAGE_HEADERS,
    CsrfRefused,
    PreSessionForms,
    SessionCookie,
    same_secret,
)
from eventkit.refusals import Refusal
from services.routing.bootstrap import Routing
from services.routing.settings import RoutingSettings
from services.routing.staff_accounts import StaffSession
from services.routing.workbench.i18n import (
    CHANNEL_LABELS,
    HISTORY_FIELDS,
    KIND_LABELS,
    LEVEL_LABELS,
    ROLE_LABELS,
    SCORE_PARTS,
    TEXT,
    Lang,
    lang_of,
)

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
FORM_LIMIT = 16 * 1024
LANG_COOKIE = "minqing_lang"
PREFIX = "/workbench"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def _label(table: dict[str, tuple[str, str]], lang: Lang) -> Any:
    def label(value: str | None) -> str:
        if value is None:
            return ""
        pair = table.get(value)
        return value if pair is None else (pair[0] if lang == "zh" else pair[1])

    return label


class Web:
    """The workbench's cookies and page rendering (one per app)."""

    def __init__(self, settings: RoutingSettings) -> None:
        self.settings = settings
        self.session_cookie = SessionCookie("minqing_workbench", settings.routing_cookie_secure)
        self.pre_session = PreSessionForms(
            settings.form_keys(),
            SessionCookie("minqing_workbench_form", settings.routing_cookie_secure),
        )

    # ----------------------------------------------------------------- who

    @staticmethod
    def routing(request: Request) -> Routing:
        """The running service."""
        routing: Routing = request.app.state.routing
        return routing

    async def session(self, request: Request) -> StaffSession | None:
        """The signed-in person of ``request`` (None: nobody, or no longer valid)."""
        token = self.session_cookie.read(request)
        if token is None:
            return None
        return await self.routing(request).accounts.session(token)

    def to_sign_in(self, request: Request) -> Response:
        """Back to the sign-in form, coming back here afterwards."""
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{PREFIX}/login?{urlencode({'next': target})}", 303)

    async def form(
        self, request: Request, session: StaffSession, limit: int = FORM_LIMIT
    ) -> dict[str, str]:
        """A signed-in form's fields, refused (:class:`CsrfRefused`) without the session's
        token."""
        fields = await read_form(request, limit)
        if not same_secret(fields.get(CSRF_FIELD), session.csrf_secret):
            raise CsrfRefused()
        return fields

    # ----------------------------------------------------------------- pages

    @staticmethod
    def lang(request: Request) -> Lang:
        """The page's language: asked in the query, else remembered, else Chinese."""
        asked = request.query_params.get("lang")
        return lang_of(asked if asked is not None else request.cookies.get(LANG_COOKIE))

    def render(
        self,
        request: Request,
        name: str,
        *,
        session: StaffSession | None = None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        """A page, in the person's language, with the headers of every page."""
        lang = self.lang(request)
        who = session.principal if session else None
        switch = {k: v for k, v in request.query_params.items() if k != "lang"}
        switch["lang"] = "en" if lang == "zh" else "zh"
        response: HTMLResponse = templates.TemplateResponse(
            request,
            name,
            {
                "t": TEXT[lang],
                "lang": lang,
                "who": who,
                "csrf_field": CSRF_FIELD,
                "csrf": session.csrf_secret if session else "",
                "switch_url": f"{request.url.path}?{urlencode(switch)}",
                "role_label": _label(ROLE_LABELS, lang),
                "channel_label": _label(CHANNEL_LABELS, lang),
                "kind_label": _label(KIND_LABELS, lang),
                "level_label": _label(LEVEL_LABELS, lang),
                "field_label": _label(HISTORY_FIELDS, lang),
                "part_label": _label(SCORE_PARTS, lang),
                "here": request.url.path,
                "new_key": lambda: uuid.uuid4().hex,
                **context,
            },
            status_code=status,
        )
        response.headers.update(PAGE_HEADERS)
        if "lang" in request.query_params:
            response.set_cookie(
                LANG_COOKIE, lang, max_age=365 * 86400, path="/", samesite="lax", httponly=True
            )
        return response

    def refusal(
        self, request: Request, error: Refusal, session: StaffSession | None = None
    ) -> HTMLResponse:
        """A refusal as a page, with the status the API would give it."""
        lang = self.lang(request)
        return self.render(
            request,
            "error.html",
            session=session,
            status=status_for(request, error),
            title=error.title if lang == "zh" else error.title_en,
            detail=(error.detail if lang == "zh" else error.detail_en) or "",
        )


def words(error: Refusal, lang: Lang) -> list[str]:
    """A refusal in the person's words: each field to correct, or title and detail."""
    if error.errors:
        return [e.message if lang == "zh" else e.message_en for e in error.errors]
    title = error.title if lang == "zh" else error.title_en
    detail = error.detail if lang == "zh" else error.detail_en
    return [f"{title}：{detail}" if lang == "zh" else f"{title}: {detail}"] if detail else [title]
