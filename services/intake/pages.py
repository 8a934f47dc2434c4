"""Residents' pages, rendered on the server: the QR form ``/q/<station>``, its poster,
tracking ``/t/<code>`` with the feedback form, and a home page to look a code up.

Every form works without JavaScript (it posts to the page, which answers with HTML); the
QR form's small script sends JSON to the API instead and shows the code in place.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from contracts import Channel
from eventkit.http import PAGE_HEADERS, Problem, read_form, status_for
from eventkit.refusals import NotFound, Refusal
from services.intake.api import poster_url
from services.intake.api_models import tracking_body
from services.intake.bootstrap import Intake
from services.intake.deps import (
    MAX_BODY_BYTES,
    IntakeDep,
    MetadataDep,
    limit_reads,
    limit_submissions,
)
from services.intake.directory import Station
from services.intake.errors import TrackingNotFound
from services.intake.feedback_rules import GiveFeedback
from services.intake.i18n import TEXT, Lang, lang_of
from services.intake.idempotency import IdempotencyKey
from services.intake.submission import Receipt
from services.intake.submission_rules import Contact, SubmitOpinion
from services.intake.taxonomy import Category
from services.intake.tracking_codes import format_tracking_code, normalise_tracking_code

TEMPLATES_DIR = Path(__file__).parent / "templates"

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))

# One policy for every page (eventkit.http.headers); tracking codes are in URLs: the
# referrer is never sent to another site.
_SECURITY_HEADERS = PAGE_HEADERS


def _when(value: str | None, lang: str) -> str:
    if not value:
        return ""
    moment = datetime.fromisoformat(value)
    return f"{moment:%Y年%m月%d日 %H:%M}" if lang == "zh" else f"{moment:%Y-%m-%d %H:%M}"


templates.env.filters["when"] = _when


def _switch_url(request: Request, lang: Lang) -> str:
    params = {k: v for k, v in request.query_params.items() if k != "lang"}
    if lang == "zh":
        params["lang"] = "en"
    query = urlencode(params)
    return request.url.path + (f"?{query}" if query else "")


def _render(
    request: Request, name: str, lang: Lang, *, status: int = 200, **context: Any
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        name,
        {"t": TEXT[lang], "lang": lang, "switch_url": _switch_url(request, lang), **context},
        status_code=status,
    )
    response.headers.update(_SECURITY_HEADERS)
    return response


def _notice(request: Request, lang: Lang, heading_key: str, message_key: str) -> HTMLResponse:
    t = TEXT[lang]
    return _render(
        request, "notice.html", lang, status=404, heading=t[heading_key], message=t[message_key]
    )


def _status(request: Request, error: Refusal) -> int:
    """The status ``error`` leaves the app with, for the page that shows it."""
    return status_for(request, error)


def _messages(error: Refusal, lang: Lang) -> list[str]:
    if error.errors:
        return [e.message if lang == "zh" else e.message_en for e in error.errors]
    detail = error.detail if lang == "zh" else error.detail_en
    title = error.title if lang == "zh" else error.title_en
    if not detail:
        return [title]
    return [f"{title}：{detail}" if lang == "zh" else f"{title}: {detail}"]


# --- home and lookup ------------------------------------------------------------------


@router.get("/", dependencies=[Depends(limit_reads)])
async def home(request: Request, lang: str | None = None) -> HTMLResponse:
    return _render(request, "home.html", lang_of(lang))


@router.get("/t", dependencies=[Depends(limit_reads)])
async def lookup(request: Request, code: str = "", lang: str | None = None) -> Response:
    canonical = normalise_tracking_code(code)
    if canonical is None:
        return _notice(request, lang_of(lang), "not_found_title", "code_not_found")
    suffix = "?lang=en" if lang_of(lang) == "en" else ""
    return RedirectResponse(f"/t/{canonical}{suffix}", status_code=303)


# --- the QR form --------------------------------------------------------------------------


async def _station(intake: Intake, station_code: str, district: str | None) -> Station | None:
    candidates = [
        s
        for s in await intake.directory.stations_with_code(station_code)
        if not s.retired and (district is None or s.district_id == district)
    ]
    if len(candidates) != 1:
        return None
    return await intake.directory.station(candidates[0].district_id, station_code)


def _grouped(categories: tuple[Category, ...]) -> list[tuple[str | None, list[Category]]]:
    groups: dict[str | None, list[Category]] = {}
    for category in categories:
        groups.setdefault(category.group, []).append(category)
    return list(groups.items())


async def _form_page(
    request: Request,
    intake: Intake,
    station: Station,
    lang: Lang,
    *,
    values: Mapping[str, Any] | None = None,
    errors: list[str] | None = None,
    receipt: Receipt | None = None,
    status: int = 200,
) -> HTMLResponse:
    taxonomy = await intake.taxonomy.for_district(station.district_id)
    query = urlencode({"district": station.district_id, **({"lang": "en"} if lang == "en" else {})})
    return _render(
        request,
        "qr_form.html",
        lang,
        status=status,
        station=station,
        communities=await intake.directory.communities_near(station),
        representatives=await intake.directory.representatives_of(
            station.district_id, station.station_code
        ),
        reception_days=await _coming_days(intake, station),
        categories=_grouped(taxonomy.categories),
        values=values or {},
        errors=errors or [],
        receipt=(
            {"tracking_code": format_tracking_code(receipt.tracking_code)} if receipt else None
        ),
        receipt_link=(
            f"/t/{receipt.tracking_code}" + ("?lang=en" if lang == "en" else "")
            if receipt
            else None
        ),
        form_action=f"/q/{station.station_code}?{query}",
        idempotency_key=(values or {}).get("idempotency_key") or uuid.uuid4().hex,
        proof_of_work=await intake.guard.required_bits(station.district_id, station.station_code),
    )


@router.get("/q/{station_code}", dependencies=[Depends(limit_reads)])
async def qr_form(
    request: Request,
    intake: IntakeDep,
    station_code: str,
    district: str | None = None,
    lang: str | None = None,
) -> HTMLResponse:
    station = await _station(intake, station_code, district)
    if station is None:
        return _notice(request, lang_of(lang), "not_found_title", "station_not_found")
    if not station.retired:
        await intake.scans.count(station.district_id, station.station_code)
    return await _form_page(request, intake, station, lang_of(lang))


async def _coming_days(intake: Intake, station: Station) -> list[dict[str, Any]]:
    """The station's reception days of the coming month, as the QR page lists them."""
    district = await intake.directory.district(station.district_id)
    zone = district.timezone if district else ZoneInfo("Asia/Shanghai")
    today = intake.clock().astimezone(zone).date()
    days = await intake.directory.reception_days(station.district_id, station.station_code, today)
    return [
        {
            "day": d.day,
            "weekday": d.day.isoweekday(),
            "hours": f"{d.starts_at:%H:%M}–{d.ends_at:%H:%M}" if d.starts_at and d.ends_at else "",
            "name": d.name,
            "leading_cadre": d.leading_cadre,
            "status": d.status,
            "moved_to": d.moved_to,
        }
        for d in days
    ]


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


@router.post("/q/{station_code}", dependencies=[Depends(limit_submissions)])
async def qr_form_post(
    request: Request,
    intake: IntakeDep,
    metadata: MetadataDep,
    station_code: str,
    district: str | None = None,
) -> HTMLResponse:
    """The form without JavaScript: the same submission, answered with a page."""
    fields = await _form_fields(request)
    lang = lang_of(fields.get("lang"))
    station = await _station(intake, station_code, district)
    if station is None:
        return _notice(request, lang, "not_found_title", "station_not_found")
    name, phone = fields.get("name") or None, fields.get("phone") or None
    command = SubmitOpinion(
        channel=Channel.QR,
        text=fields.get("text", ""),
        station_code=station.station_code,
        district_id=station.district_id,
        category_hint=fields.get("category_hint") or None,
        community=fields.get("community") or None,
        address=fields.get("address") or None,
        lat=_float(fields.get("lat")),
        long=_float(fields.get("long")),
        contact=Contact(name, phone) if name or phone else None,
        consent=fields.get("consent") == "yes",
    )
    payload = {k: v for k, v in fields.items() if k not in {"idempotency_key", "lang"}}
    try:
        key = (
            IdempotencyKey.of(
                "public",
                fields["idempotency_key"],
                payload,
                secret=intake.settings.intake_hash_secrets,
            )
            if fields.get("idempotency_key")
            else None
        )
        # Without script there is no proof-of-work: a guarded station says so on the form.
        receipt = await intake.guard.submit(
            intake.submissions, command, proof=None, key=key, metadata=metadata
        )
    except Refusal as error:
        page = await _form_page(
            request,
            intake,
            station,
            lang,
            values={**fields, "consent": fields.get("consent") == "yes"},
            errors=_messages(error, lang),
            status=_status(request, error),
        )
        if isinstance(error, Problem):  # the station's 429 says when to retry, as the API's
            page.headers.update(error.headers)
        return page
    return await _form_page(request, intake, station, lang, receipt=receipt, status=201)


async def _form_fields(request: Request) -> dict[str, str]:
    """The form's fields, trimmed: only the resident's text keeps its blanks (the rules
    strip it, and its length counts what was meant)."""
    fields = await read_form(request, MAX_BODY_BYTES)
    return {key: value.strip() if key != "text" else value for key, value in fields.items()}


@router.get("/q/{station_code}/poster", dependencies=[Depends(limit_reads)])
async def poster(
    request: Request,
    intake: IntakeDep,
    station_code: str,
    district: str | None = None,
    lang: str | None = None,
) -> HTMLResponse:
    """A printable poster: the station's name and its QR code."""
    station = await _station(intake, station_code, district)
    if station is None:
        return _notice(request, lang_of(lang), "not_found_title", "station_not_found")
    return _render(
        request,
        "poster.html",
        lang_of(lang),
        station=station,
        qr_src=f"/api/v1/stations/{station.station_code}/qr.svg?district={station.district_id}",
        form_url=poster_url(intake.settings, station),
    )


# --- tracking and feedback ----------------------------------------------------------------


async def _track_page(
    request: Request,
    intake: Intake,
    code: str,
    lang: Lang,
    *,
    notice: str | None = None,
    errors: list[str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    try:
        tracking = await intake.tracking.track(code)
    except TrackingNotFound:
        return _notice(request, lang, "not_found_title", "code_not_found")
    view = tracking_body(tracking)
    return _render(
        request,
        "track.html",
        lang,
        status=status,
        view=view,
        code=view.tracking_code,
        raw_code=tracking.opinion.tracking_code,
        notice=notice,
        errors=errors or [],
    )


@router.get("/t/{code}", dependencies=[Depends(limit_reads)])
async def track_page(
    request: Request,
    intake: IntakeDep,
    code: str,
    lang: str | None = None,
    feedback: str | None = None,
    withdrawn: str | None = None,
) -> HTMLResponse:
    language = lang_of(lang)
    notice = None
    if feedback == "thanks":
        notice = TEXT[language]["feedback_thanks"]
    elif withdrawn == "yes":
        notice = TEXT[language]["withdrawn_notice"]
    return await _track_page(request, intake, code, language, notice=notice)


@router.post("/t/{code}/feedback", dependencies=[Depends(limit_submissions)])
async def feedback_form(
    request: Request, intake: IntakeDep, metadata: MetadataDep, code: str
) -> Response:
    fields = await _form_fields(request)
    lang = lang_of(fields.get("lang"))
    try:
        satisfaction = int(fields.get("satisfaction", "0"))
    except ValueError:
        satisfaction = 0
    command = GiveFeedback(
        satisfaction=satisfaction,
        resolved=fields.get("resolved") == "yes",
        comment=fields.get("comment") or None,
    )
    try:
        await intake.feedback.give(code, command, metadata=metadata)
    except NotFound:
        return _notice(request, lang, "not_found_title", "code_not_found")
    except Refusal as error:
        return await _track_page(
            request,
            intake,
            code,
            lang,
            errors=_messages(error, lang),
            status=_status(request, error),
        )
    suffix = "&lang=en" if lang == "en" else ""
    canonical = normalise_tracking_code(code) or code
    return RedirectResponse(f"/t/{canonical}?feedback=thanks{suffix}", status_code=303)


@router.post("/t/{code}/withdraw", dependencies=[Depends(limit_submissions)])
async def withdraw_form(
    request: Request, intake: IntakeDep, metadata: MetadataDep, code: str
) -> Response:
    fields = await _form_fields(request)
    lang = lang_of(fields.get("lang"))
    try:
        await intake.withdrawals.withdraw(code, fields.get("reason") or None, metadata=metadata)
    except NotFound:
        return _notice(request, lang, "not_found_title", "code_not_found")
    except Refusal as error:
        return await _track_page(
            request,
            intake,
            code,
            lang,
            errors=_messages(error, lang),
            status=_status(request, error),
        )
    suffix = "&lang=en" if lang == "en" else ""
    canonical = normalise_tracking_code(code) or code
    return RedirectResponse(f"/t/{canonical}?withdrawn=yes{suffix}", status_code=303)
