"""The dashboards: server-rendered pages in Simplified Chinese (``?lang=en`` for English),
charts drawn as SVG by the server, no script at all.

Each page shows a model the API answers too (the same view function), so the numbers on
a page are the API's. Staff sign in by pasting their token (or following a link that
carries it, as ``make up`` prints); it is kept in an HttpOnly, SameSite=Strict cookie and
read like the API's bearer token: at sign-in and at every page, its person must be known,
active staff of that role in that district (reporting's roster,
:mod:`eventkit.staff_roster`); one who is not is shown the sign-in page with the refusal.
"""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from eventkit.http import PAGE_HEADERS, principal_from_authorization, read_form, status_for
from eventkit.identity import Principal, Role
from eventkit.refusals import Refusal, Unauthenticated
from eventkit.staff_rule import NotActiveStaff
from services.reporting import archive_views, register_views, station_views, views
from services.reporting.api_routes import csv_response
from services.reporting.bootstrap import Reporting
from services.reporting.charts import stars
from services.reporting.consumers import ROSTER
from services.reporting.criteria_store import load_criteria
from services.reporting.i18n import TEXT, Lang, lang_of
from services.reporting.page_charts import day_chart, rate_trend_chart, trend_chart
from services.reporting.periods import Period, period
from services.reporting.register_models import RegisterView
from services.reporting.settings import ReportingSettings
from services.reporting.views import Context

TEMPLATES_DIR = Path(__file__).parent / "templates"
COOKIE = "minqing_staff"
FORM_LIMIT = 8 * 1024

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
templates.env.filters["stars"] = stars

_SECURITY_HEADERS = PAGE_HEADERS  # one policy for every page (eventkit.http.headers)

Build = Callable[[Context, Period], Awaitable[dict[str, Any]]]


def _links(request: Request, lang: Lang) -> Callable[..., str]:
    """``link(path, **params)``: a URL keeping the page's language and period."""
    kept = {k: v for k, v in request.query_params.items() if k in ("from", "to")}
    if lang == "en":
        kept["lang"] = "en"

    def link(path: str, **params: str | None) -> str:
        merged = {**kept, **{k: v for k, v in params.items() if v is not None}}
        for key in [k for k, v in params.items() if v is None]:
            merged.pop(key, None)
        query = urlencode(merged)
        return path + (f"?{query}" if query else "")

    return link


def _switch_url(request: Request, lang: Lang) -> str:
    params = {k: v for k, v in request.query_params.items() if k != "lang"}
    if lang == "zh":
        params["lang"] = "en"
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


def render(
    request: Request, name: str, lang: Lang, *, status: int = 200, **context: Any
) -> HTMLResponse:
    """A page, with the words of ``lang`` and the security headers of every page."""
    response = templates.TemplateResponse(
        request,
        name,
        {
            "t": TEXT[lang],
            "lang": lang,
            "switch_url": _switch_url(request, lang),
            "link": _links(request, lang),
            **context,
        },
        status_code=status,
    )
    response.headers.update(_SECURITY_HEADERS)
    return response


async def _known(request: Request, settings: ReportingSettings, token: str) -> Principal:
    """The person of ``token``, known, active staff (:class:`Unauthenticated` otherwise)."""
    caller = principal_from_authorization(settings, f"Bearer {token}")
    assert caller is not None  # required: an empty token raised
    reporting: Reporting = request.app.state.reporting
    return await ROSTER.check(reporting.pool, caller)


async def _viewer(request: Request, settings: ReportingSettings) -> Principal | None:
    """The signed-in person (None without a valid cookie); :class:`NotActiveStaff` when
    the cookie's person is no longer known, active staff."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    try:
        return await _known(request, settings, token)
    except NotActiveStaff:
        raise
    except Unauthenticated:
        return None


def _refused(request: Request, lang: Lang, error: Refusal) -> Response:
    """The sign-in page with the refusal (401), the cookie of the refused token gone."""
    response = render(
        request,
        "login.html",
        lang,
        status=401,
        error=error.detail if lang == "zh" else error.detail_en,
    )
    response.delete_cookie(COOKIE, path="/")
    return response


def _signed_in(token: str, settings: ReportingSettings, lang: Lang) -> Response:
    response = RedirectResponse("/dashboard" + ("?lang=en" if lang == "en" else ""), 303)
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(settings.jwt_ttl_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=settings.reporting_cookie_secure,
        path="/",
    )
    return response


def pages_router(settings: ReportingSettings) -> APIRouter:
    """The dashboard pages."""
    router = APIRouter(include_in_schema=False)

    async def show(request: Request, district_id: str, template: str, build: Build) -> Response:
        lang = lang_of(request.query_params.get("lang"))
        try:
            who = await _viewer(request, settings)
        except NotActiveStaff as error:
            return _refused(request, lang, error)
        if who is None:
            return RedirectResponse("/dashboard/login" + ("?lang=en" if lang == "en" else ""), 303)
        reporting: Reporting = request.app.state.reporting
        try:
            async with views.reading(reporting.pool, who, district_id) as ctx:
                when = period(
                    request.query_params.get("from"),
                    request.query_params.get("to"),
                    ctx.tz,
                    reporting.clock(),
                )
                context = await build(ctx, when)
                base: dict[str, Any] = {
                    "district": views.district_view(ctx.district),
                    "period": views.period_view(when),
                    "presets": _presets(when, reporting, ctx),
                    "who": who,
                    "wide": ctx.scope.role is not Role.REPRESENTATIVE,
                    "whole": ctx.scope.whole_district,
                }
        except Refusal as error:
            return render(
                request,
                "error.html",
                lang,
                status=status_for(request, error),
                title=error.title if lang == "zh" else error.title_en,
                detail=(error.detail if lang == "zh" else error.detail_en) or "",
            )
        return render(request, template, lang, **base, **context)

    @router.get("/")
    async def home() -> Response:
        return RedirectResponse("/dashboard", 303)

    @router.get("/dashboard/login")
    async def login_form(request: Request, lang: str | None = None) -> Response:
        token = request.query_params.get("token")
        if token:
            try:
                await _known(request, settings, token)
                return _signed_in(token, settings, lang_of(lang))
            except NotActiveStaff as error:
                return _refused(request, lang_of(lang), error)
            except Unauthenticated:
                pass  # a link with a bad token: the form, as without one
        return render(request, "login.html", lang_of(lang))

    @router.post("/dashboard/login")
    async def login(request: Request, lang: str | None = None) -> Response:
        form = await read_form(request, FORM_LIMIT)
        token = form.get("token", "").strip()
        try:
            await _known(request, settings, token)
        except Unauthenticated as error:
            return _refused(request, lang_of(lang), error)
        return _signed_in(token, settings, lang_of(lang))

    @router.get("/dashboard/logout")
    async def logout() -> Response:
        response = RedirectResponse("/dashboard/login", 303)
        response.delete_cookie(COOKIE, path="/")
        return response

    @router.get("/dashboard")
    async def start(request: Request, lang: str | None = None) -> Response:
        try:
            who = await _viewer(request, settings)
        except NotActiveStaff as error:
            return _refused(request, lang_of(lang), error)
        suffix = "?lang=en" if lang == "en" else ""
        if who is None:
            return RedirectResponse("/dashboard/login" + suffix, 303)
        if who.role is Role.REPRESENTATIVE:
            path = f"/dashboard/{who.district_id}/representatives/{who.subject}"
        else:
            path = f"/dashboard/{who.district_id}"
        return RedirectResponse(path + suffix, 303)

    @router.get("/dashboard/{district_id}")
    async def overview_page(request: Request, district_id: str) -> Response:
        async def build(ctx: Context, when: Period) -> dict[str, Any]:
            overview = await views.overview(ctx, when)
            stations = await views.stations(ctx, when)
            streets = None if ctx.scope.stations is not None else await views.streets(ctx, when)
            lang = lang_of(request.query_params.get("lang"))
            return {
                "overview": overview,
                "stations": stations.stations,
                "streets": streets.streets if streets else None,
                "trend_svg": rate_trend_chart(overview, lang),
                "scope": ctx.scope,
            }

        return await show(request, district_id, "overview.html", build)

    @router.get("/dashboard/{district_id}/stations/{station_code}")
    async def station_page(request: Request, district_id: str, station_code: str) -> Response:
        async def build(ctx: Context, when: Period) -> dict[str, Any]:
            criteria = await load_criteria(ctx.reader.conn, district_id)
            detail = await station_views.station_detail(ctx, station_code, when, criteria)
            lang = lang_of(request.query_params.get("lang"))
            return {"detail": detail, "days_svg": day_chart(detail, when, lang)}

        return await show(request, district_id, "station.html", build)

    @router.get("/dashboard/{district_id}/stations/{station_code}/registers")
    async def registers_page(request: Request, district_id: str, station_code: str) -> Response:
        async def build(ctx: Context, when: Period) -> dict[str, Any]:
            return {"index": await register_views.register_index(ctx, station_code, when)}

        return await show(request, district_id, "registers.html", build)

    @router.get("/dashboard/{district_id}/stations/{station_code}/registers/{name}")
    async def register_page(
        request: Request, district_id: str, station_code: str, name: str
    ) -> Response:
        lang = lang_of(request.query_params.get("lang"))
        wanted = name.removesuffix(".csv")
        found: list[RegisterView] = []

        async def build(ctx: Context, when: Period) -> dict[str, Any]:
            found.append(await register_views.register(ctx, station_code, wanted, when, lang))
            return {"register": found[0]}

        page = await show(request, district_id, "register.html", build)
        if name.endswith(".csv") and found:
            return csv_response(found[0])
        return page

    @router.get("/dashboard/{district_id}/representatives")
    async def representatives_page(request: Request, district_id: str) -> Response:
        async def build(ctx: Context, when: Period) -> dict[str, Any]:
            return {"reps": await archive_views.representatives(ctx, when)}

        return await show(request, district_id, "representatives.html", build)

    @router.get("/dashboard/{district_id}/representatives/{representative_id}")
    async def archive_page(request: Request, district_id: str, representative_id: str) -> Response:
        async def build(ctx: Context, when: Period) -> dict[str, Any]:
            return {"archive": await archive_views.archive(ctx, representative_id, when)}

        return await show(request, district_id, "archive.html", build)

    @router.get("/dashboard/{district_id}/hotspots")
    async def hotspots_page(request: Request, district_id: str) -> Response:
        async def build(ctx: Context, when: Period) -> dict[str, Any]:
            return {"hotspots": await views.hotspots(ctx, when)}

        return await show(request, district_id, "hotspots.html", build)

    @router.get("/dashboard/{district_id}/trends")
    async def trends_page(request: Request, district_id: str) -> Response:
        granularity = "week" if request.query_params.get("granularity") == "week" else "month"

        async def build(ctx: Context, when: Period) -> dict[str, Any]:
            found = await views.trends(ctx, when, granularity)
            lang = lang_of(request.query_params.get("lang"))
            return {"trends": found, "trend_svg": trend_chart(found, lang)}

        return await show(request, district_id, "trends.html", build)

    return router


def _presets(when: Period, reporting: Reporting, ctx: Context) -> dict[str, tuple[str, str]]:
    """This month, last month, this year: (from, to) for the quick links."""
    today = reporting.clock().astimezone(ctx.tz).date()
    first = today.replace(day=1)
    last_month_end = first - timedelta(days=1)
    return {
        "this_month": (first.isoformat(), today.isoformat()),
        "last_month": (last_month_end.replace(day=1).isoformat(), last_month_end.isoformat()),
        "this_year": (today.replace(month=1, day=1).isoformat(), today.isoformat()),
    }
