"""The workbench's case pages: my queue, finding cases, a case with its actions, and
opening a resident's contact.

Every form posts to the page, which answers with HTML (no script needed); each carries
the session's CSRF token and an idempotency key made when the page was drawn, so a
second press of the same button (or a resubmitted page) changes nothing. A command is
the API's own call (:meth:`services.routing.staff_work.StaffWork.run` with the table's
body model), and a refusal is shown on the case in words.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from eventkit.db import district_transaction
from eventkit.http import parse_model, status_for
from eventkit.refusals import Refusal
from eventkit.requests import RequestInfo, checked_idempotency_key
from services.routing.api_models import CaseDetail
from services.routing.errors import CaseNotFound
from services.routing.staff_accounts import StaffSession
from services.routing.staff_commands import BY_NAME, NoBody, StaffCommand
from services.routing.staff_scope import CONTACT_ROLES, scope_of
from services.routing.views import PRIORITY_LABELS
from services.routing.workbench.countdown import countdown
from services.routing.workbench.i18n import COMMAND_HELP, TEXT, Lang
from services.routing.workbench.page_views import (
    actions,
    explanation,
    generic_fields,
    history_details,
    rows,
)
from services.routing.workbench.page_views import local_time as local_time_of
from services.routing.workbench.web import PREFIX, Web, words

PAGE_SIZE = 50
CONTACT_REASONS = ("contact_callback", "contact_verify", "contact_appointment")

FIELD_LABELS = {
    "message": "message",
    "result": "result",
    "evidence_urls": "evidence",
    "reason": "reason",
    "to_name": "to_name",
    "to_level": "to_level",
    "title": "title",
    "into_case_id": "into_case",
    "related_case_id": "related_case",
    "note": "note",
}


def body_of(command: StaffCommand[Any], fields: dict[str, str]) -> Any:
    """The command's request body from a form's fields (empty fields left out)."""
    if command.body is NoBody:
        return NoBody()
    data: dict[str, Any] = {}
    for name in command.body.model_fields:
        raw = fields.get(name, "").strip()
        if not raw:
            continue
        data[name] = [u for u in raw.split() if u] if name == "evidence_urls" else raw
    return parse_model(command.body, data)


def case_pages(web: Web) -> APIRouter:
    """The routes of the case pages."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    @router.get("/")
    async def queue(request: Request) -> Response:
        session = await web.session(request)
        if session is None:
            return web.to_sign_in(request)
        routing = web.routing(request)
        try:
            found = await routing.staff.queue(session.principal, limit=200)
            ctx = await _district(web, request, session)
        except Refusal as error:
            return web.refusal(request, error, session)
        listed = found[1] if found else []
        return web.render(
            request,
            "queue.html",
            session=session,
            has_queue=found is not None,
            rows=rows(listed, ctx.calendar, ctx.directory, _categories(ctx), routing.clock()),
            district_name=ctx.directory.name_zh,
        )

    @router.get("/search")
    async def search(request: Request) -> Response:
        session = await web.session(request)
        if session is None:
            return web.to_sign_in(request)
        routing = web.routing(request)
        q = request.query_params
        page = int(q.get("page", "1")) if q.get("page", "1").isdigit() else 1
        filters: dict[str, Any] = {
            "status": q.get("status") or None,
            "stations": [q["station"]] if q.get("station") else None,
            "representative_id": q.get("representative") or None,
            "category_code": q.get("category") or None,
            "priority": q.get("priority") or None,
            "overdue": True if q.get("overdue") else None,
            "open_only": bool(q.get("open_only")),
            "channel": q.get("channel") or None,
            "text": (q.get("text") or "").strip() or None,
            "limit": PAGE_SIZE + 1,
            "offset": (page - 1) * PAGE_SIZE,
        }
        case_id = (q.get("case_id") or "").strip().removeprefix("case-")
        code = (q.get("tracking_code") or "").strip()
        code_unknown = False
        try:
            ctx = await _district(web, request, session)
            if case_id:
                await routing.staff.case(session.principal, case_id)
                return RedirectResponse(f"{PREFIX}/cases/{case_id}", 303)
            if code:
                try:
                    found_id = await routing.staff.case_of_tracking_code(session.principal, code)
                    return RedirectResponse(f"{PREFIX}/cases/{found_id}", 303)
                except CaseNotFound:
                    code_unknown = True  # said on the page; the filters still apply
            found = await routing.staff.cases(session.principal, **filters)
        except Refusal as error:
            return web.refusal(request, error, session)
        more = len(found) > PAGE_SIZE
        scope = scope_of(session.principal, ctx.directory)
        stations = sorted(
            (
                s
                for s in ctx.directory.stations.values()
                if scope.covers(s.code, None)
                or scope.representative_id is not None
                or scope.stations is None
            ),
            key=lambda s: s.code,
        )
        kept = {k: v for k, v in q.items() if k != "page"}
        return web.render(
            request,
            "search.html",
            session=session,
            rows=rows(
                found[:PAGE_SIZE], ctx.calendar, ctx.directory, _categories(ctx), routing.clock()
            ),
            q=q,
            page=page,
            prev_url=f"?{urlencode({**kept, 'page': page - 1})}" if page > 1 else None,
            next_url=f"?{urlencode({**kept, 'page': page + 1})}" if more else None,
            stations=stations,
            representatives=sorted(ctx.directory.representatives.values(), key=lambda r: r.id),
            categories=_categories(ctx),
            code_unknown=code_unknown,
        )

    @router.get("/cases/{case_id}")
    async def case_page(request: Request, case_id: str) -> Response:
        session = await web.session(request)
        if session is None:
            return web.to_sign_in(request)
        done = request.query_params.get("done")
        return await _show_case(web, request, session, case_id, done=done)

    @router.post("/cases/{case_id}/do/{name}")
    async def act(request: Request, case_id: str, name: str) -> Response:
        session = await web.session(request)
        if session is None:
            return web.to_sign_in(request)
        command = BY_NAME.get(name)
        lang = web.lang(request)
        try:
            fields = await web.form(request, session)
            if command is None:
                return await _show_case(web, request, session, case_id, status=404)
            body = body_of(command, fields)
            info = RequestInfo(
                correlation_id=getattr(request.state, "correlation_id", None),
                idempotency_key=checked_idempotency_key(fields.get("idempotency_key") or None),
            )
            await web.routing(request).staff.run(session.principal, command, case_id, body, info)
        except Refusal as error:
            problems = words(error, lang)
            if error.errors:
                t = TEXT[lang]
                problems = [
                    _field_words(e.field, e.code, t) or text
                    for e, text in zip(error.errors, problems, strict=True)
                ]
            return await _show_case(
                web,
                request,
                session,
                case_id,
                status=_status(web, request, error),
                failed=name,
                problems=problems,
                values=fields if "fields" in locals() else {},
            )
        return RedirectResponse(f"{PREFIX}/cases/{case_id}?{urlencode({'done': name})}", 303)

    @router.post("/cases/{case_id}/contact")
    async def contact(request: Request, case_id: str) -> Response:
        session = await web.session(request)
        if session is None:
            return web.to_sign_in(request)
        lang = web.lang(request)
        try:
            fields = await web.form(request, session)
            key = fields.get("reason", "")
            reason = TEXT["zh"].get(key, "") if key in CONTACT_REASONS else ""
            if not reason:
                reason = TEXT["zh"]["contact_callback"]
            shown = await web.routing(request).staff.open_contact(
                session.principal, case_id, reason
            )
        except Refusal as error:
            return await _show_case(
                web,
                request,
                session,
                case_id,
                status=_status(web, request, error),
                failed="contact",
                problems=words(error, lang),
            )
        return await _show_case(web, request, session, case_id, contact=shown)

    return router


def _status(web: Web, request: Request, error: Refusal) -> int:
    return status_for(request, error)


def _field_words(field: str, kind: str, t: dict[str, str]) -> str | None:
    label_key = FIELD_LABELS.get(field)
    if label_key is None:
        return None
    label = t[label_key]
    if t["html_lang"] == "zh-CN":
        return f"请填写「{label}」" if kind == "missing" else f"「{label}」格式不正确"
    return f"Please fill in “{label}”" if kind == "missing" else f"“{label}” is not valid"


async def _district(web: Web, request: Request, session: StaffSession) -> Any:
    routing = web.routing(request)
    async with district_transaction(routing.pool, session.principal.district_id) as conn:
        return await routing.districts.require(conn, session.principal.district_id)


def _history_labels(ctx: Any, lang: Lang) -> dict[str, dict[str, str]]:
    """Words for the codes a case's history names: stations and representatives by name
    (with the code, which staff also use), categories, priorities, link relations."""
    stations = {c: f"{s.name_zh}（{c}）" for c, s in ctx.directory.stations.items()}
    people = {i: f"{r.name_zh}（{i}）" for i, r in ctx.directory.representatives.items()}
    text = TEXT[lang]
    return {
        "station_code": stations,
        "to_station_code": stations,
        "representative_id": people,
        "to_representative_id": people,
        "category_code": _categories(ctx),
        "priority": {v: zh if lang == "zh" else en for v, (zh, en) in PRIORITY_LABELS.items()},
        "relation": {"related": text["related"], "duplicate": text["duplicate"]},
    }


def _categories(ctx: Any) -> dict[str, str]:
    if ctx.taxonomy is None:
        return {}
    return {code: c.name_zh for code, c in ctx.taxonomy.categories.items()}


async def _show_case(
    web: Web,
    request: Request,
    session: StaffSession,
    case_id: str,
    *,
    status: int = 200,
    done: str | None = None,
    failed: str | None = None,
    problems: list[str] | None = None,
    values: dict[str, str] | None = None,
    contact: Any = None,
) -> Response:
    routing = web.routing(request)
    principal = session.principal
    try:
        _, detail = await routing.staff.case(principal, case_id)
        ctx = await _district(web, request, session)
    except Refusal as error:
        return web.refusal(request, error, session)
    scope = scope_of(principal, ctx.directory)
    names = {r.id: r.name_zh for r in ctx.directory.representatives.values()}
    calendar = ctx.calendar
    now = routing.clock()
    lang = web.lang(request)
    labels = _history_labels(ctx, lang)
    return web.render(
        request,
        "case.html",
        session=session,
        status=status,
        case=detail,
        deadlines=_deadlines(detail, calendar, now),
        actions=actions(detail, principal.role.value, scope.may_act),
        why=explanation(detail.history, names),
        history=[
            (e, history_details(e, labels), local_time_of(calendar, e.occurred_at))
            for e in detail.history
        ],
        names=names,
        category_name=_categories(ctx).get(detail.category_code or ""),
        categories=_categories(ctx),
        stations=sorted(ctx.directory.stations.values(), key=lambda s: s.code),
        departments=sorted(
            (d for d in ctx.directory.departments.values() if d.active), key=lambda d: d.code
        ),
        generic_fields=generic_fields,
        representatives=sorted(ctx.directory.representatives.values(), key=lambda r: r.id),
        command_help=COMMAND_HELP,
        done=COMMAND_HELP.get(done or "", (None, None))[0 if lang == "zh" else 1],
        failed=failed,
        problems=problems or [],
        values=values or {},
        may_open_contact=principal.role in CONTACT_ROLES and scope.may_act,
        contact_reasons=CONTACT_REASONS,
        contact=contact,
        opened_at=local_time_of(calendar, detail.opened_at),
    )


def _deadlines(detail: CaseDetail, calendar: Any, now: Any) -> list[dict[str, Any]]:
    shown = []
    for d in detail.deadlines:
        due = datetime.fromisoformat(d.due)
        shown.append(
            {
                "kind": d.kind,
                "met": d.met,
                "overdue": d.overdue,
                "countdown": None if d.met else countdown(calendar, now, due),
                "due": local_time_of(calendar, d.due),
            }
        )
    return shown
