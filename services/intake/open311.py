"""Open311 GeoReport v2 under ``/open311/v2/``, with mySociety's service request updates.

Formats by suffix (``services.xml``, ``requests/<id>.json``); ``jurisdiction_id`` is the
district code (optional while a deployment serves one district only); errors are
``<errors>`` documents with the HTTP codes the specification gives: 404 for what does not
exist, 403 for a missing or wrong ``api_key``, 400 for everything else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from contracts import Channel
from eventkit.db import is_database_unavailable
from eventkit.http import FORM, MULTIPART, Problem, info_of, media_type, read_form
from eventkit.logging import get_logger
from eventkit.refusals import Forbidden, NotFound, Refusal, Unauthenticated
from services.intake import open311_format as fmt
from services.intake.bootstrap import Intake
from services.intake.deps import MAX_BODY_BYTES, get_intake, rate_limit
from services.intake.directory import SHANGHAI, District
from services.intake.idempotency import IdempotencyKey
from services.intake.open311_queries import service_request_updates, service_requests
from services.intake.progress import Names
from services.intake.ratelimit import rate_limited
from services.intake.submission_rules import TEXT_MIN, ApiClient, Contact, SubmitOpinion
from services.intake.text import strip_controls
from services.intake.tracking_codes import format_tracking_code
from services.intake.tracking_views import RequestView

log = get_logger(__name__)

_FORMATS: dict[str, Any] = {"application/json": {}, "text/xml": {}}
router = APIRouter(
    prefix="/open311",
    include_in_schema=True,
    tags=["Open311"],
    # The suffix chooses JSON or XML; errors are Open311 <errors> documents, not problems.
    responses={
        200: {"content": _FORMATS},
        "4XX": {"description": "Open311 errors", "content": _FORMATS},
    },
)

DEFAULT_LIMIT: Final = 1000
FORMS: Final = (FORM, MULTIPART)
"""What POST requests may be sent as."""


class Open311Error(Exception):
    """What the specification itself refuses (a missing ``jurisdiction_id``, a wrong
    ``api_key``...), with the status it gives: answered as an ``<errors>`` document."""

    def __init__(self, status: int, description: str, headers: dict[str, str] | None = None):
        super().__init__(description)
        self.status = status
        self.description = description
        self.headers = headers or {}


def _format(value: str) -> fmt.Format:
    if value == "xml":
        return "xml"
    if value == "json":
        return "json"
    raise Open311Error(
        404,
        f"不支持的格式 {value!r}，请用 .xml 或 .json / unknown format {value!r}: use .xml or .json",
    )


def _respond(
    form: fmt.Format, body: bytes, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return Response(body, status_code=status, media_type=fmt.CONTENT_TYPE[form], headers=headers)


def _status(refusal: Refusal) -> int:
    """The status the specification gives a refusal: 403 for who is calling, 404 for what
    does not exist, 400 for everything else."""
    if isinstance(refusal, Unauthenticated | Forbidden):
        return 403
    return 404 if isinstance(refusal, NotFound) else 400


def _descriptions(refusal: Refusal, status: int) -> list[tuple[int, str]]:
    """A refusal as the ``<error>`` elements of an Open311 document: one per wrong field."""
    if refusal.errors:
        return [(status, f"{e.message} / {e.message_en} [{e.code}]") for e in refusal.errors]
    detail = " ".join(d for d in (refusal.detail, refusal.detail_en) if d)
    text = f"{refusal.title} / {refusal.title_en}" + (f": {detail}" if detail else "")
    return [(status, f"{text} [{refusal.code}]")]


async def _answer(
    request: Request,
    suffix: str,
    work: Callable[[Intake, fmt.Format], Awaitable[Response]],
    *,
    public: bool = True,
) -> Response:
    """Run ``work``; turn every refusal into the spec's error document."""
    form: fmt.Format = "json" if suffix == "json" else "xml"
    intake = get_intake(request)
    try:
        form = _format(suffix)
        if public:
            await rate_limit(intake.read_limiter, intake, request)
        return await work(intake, form)
    except Open311Error as exc:
        return _respond(
            form, fmt.render_errors(form, [(exc.status, exc.description)]), exc.status, exc.headers
        )
    except Problem as exc:  # what the edge decides: a rate limit, a body too large
        text = f"{exc.title} / {exc.title_en}"
        if exc.status == 429 and exc.detail:  # when to retry, besides Retry-After
            text = f"{text}: {exc.detail} / {exc.detail_en}"
        return _respond(
            form, fmt.render_errors(form, [(exc.status, text)]), exc.status, exc.headers
        )
    except Refusal as exc:
        status = _status(exc)
        return _respond(form, fmt.render_errors(form, _descriptions(exc, status)), status)
    except Exception as exc:  # the spec's "general service error", logged with its trace
        if is_database_unavailable(exc):
            raise  # the edge answers 503 with Retry-After, as every service does
        log.exception("open311 request failed", path=request.url.path)
        return _respond(
            form,
            fmt.render_errors(
                form,
                [
                    (
                        400,
                        "服务处理失败，请稍后再试并告知我们 / General service error: please "
                        "retry later and let us know",
                    )
                ],
            ),
            400,
        )


async def _jurisdiction(intake: Intake, jurisdiction_id: str | None) -> District:
    """The district named by ``jurisdiction_id``; optional when there is only one."""
    if not jurisdiction_id:
        districts = await intake.directory.district_ids()
        if len(districts) != 1:
            raise Open311Error(
                400, "缺少 jurisdiction_id（区编号）/ jurisdiction_id was not provided"
            )
        jurisdiction_id = districts[0]
    district = await intake.directory.district(jurisdiction_id)
    if district is None:
        raise Open311Error(
            404, f"jurisdiction_id {jurisdiction_id!r} 不存在 / jurisdiction_id not found"
        )
    return district


def _arg(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if value else None  # "empty is the same as not passed"


def _list_arg(request: Request, name: str) -> list[str] | None:
    values = [
        part.strip()
        for raw in request.query_params.getlist(name)
        for part in raw.split(",")
        if part.strip()
    ]
    return values or None


async def _names(
    intake: Intake,
    district: District,
    station_codes: list[str | None],
    representative_ids: list[str | None],
) -> Names:
    return await intake.tracking.names(district.district_id, station_codes, representative_ids)


# --- discovery and services ---------------------------------------------------------


@router.get("/discovery.{suffix}", summary="Open311 service discovery")
@router.get("/v2/discovery.{suffix}", summary="Open311 service discovery")
async def discovery(request: Request, suffix: str) -> Response:
    async def work(intake: Intake, form: fmt.Format) -> Response:
        document = fmt.discovery(
            intake.settings.public_base_url,
            intake.settings.open311_contact,
            _CHANGESET,
            SHANGHAI,
        )
        return _respond(form, fmt.render_object(form, "discovery", document))

    return await _answer(request, suffix, work)


_CHANGESET = datetime(2025, 1, 1, tzinfo=UTC)
"""When this endpoint's interface last changed (the discovery ``changeset``)."""


@router.get("/v2/services.{suffix}", summary="GET Service List")
async def services(request: Request, suffix: str) -> Response:
    async def work(intake: Intake, form: fmt.Format) -> Response:
        district = await _jurisdiction(intake, _arg(request, "jurisdiction_id"))
        taxonomy = await intake.taxonomy.for_district(district.district_id)
        items = [fmt.service(c) for c in taxonomy.categories]
        return _respond(form, fmt.render_list(form, "services", "service", items))

    return await _answer(request, suffix, work)


@router.get("/v2/services/{service_code}.{suffix}", summary="GET Service Definition")
async def service_definition(request: Request, service_code: str, suffix: str) -> Response:
    async def work(intake: Intake, form: fmt.Format) -> Response:
        district = await _jurisdiction(intake, _arg(request, "jurisdiction_id"))
        category = (await intake.taxonomy.for_district(district.district_id)).get(service_code)
        if category is None:
            raise Open311Error(
                404, f"service_code {service_code!r} 不存在 / service_code not found"
            )
        return _respond(
            form, fmt.render_object(form, "service_definition", fmt.service_definition(category))
        )

    return await _answer(request, suffix, work)


# --- requests ------------------------------------------------------------------------


def _api_client(district_id: str, api_key: str) -> ApiClient:
    digest = hashlib.sha256(api_key.encode()).hexdigest()[:10]
    return ApiClient(client_id=f"open311:{digest}", district_id=district_id)


def _float(form: dict[str, str], name: str) -> float | None:
    value = form.get(name)
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise Open311Error(400, f"{name} 不是数字 / {name} is not a number") from None


def request_text(description: str | None, service_name: str, address: str | None) -> str:
    """The opinion's text for an Open311 request: its description, or when that is missing
    or too short for our minimum (the spec makes it optional), the service's name and the
    address, with whatever short description there was."""
    given = strip_controls(description or "").strip()
    if len(given) >= TEXT_MIN:
        return given
    parts = [f"【{service_name}】", address or "", given]
    text = " ".join(p.strip() for p in parts if p and p.strip())
    if len(text) < TEXT_MIN:
        text += "（Open311 报告）"
    return text


def _media(url: str | None) -> tuple[tuple[str, ...], str | None]:
    """The attachments a ``media_url`` makes, and a notice when it was left out: the spec
    accepts any URL, we keep only https ones."""
    url = (url or "").strip()
    if not url:
        return (), None
    if urlsplit(url).scheme.lower() == "https":
        return (url,), None
    return (), (
        "media_url 不是 https:// 链接，未作为附件保存 / media_url was not kept as an "
        "attachment: only https:// URLs are"
    )


def _name(first: str | None, last: str | None) -> str | None:
    parts = [p.strip() for p in (last, first) if p and p.strip()]
    if not parts:
        return None
    if all(p.isascii() for p in parts):  # Western order for Latin names
        return " ".join(reversed(parts))
    return "".join(parts)


@router.post("/v2/requests.{suffix}", summary="POST Service Request")
async def create_request(request: Request, suffix: str) -> Response:
    async def work(intake: Intake, form: fmt.Format) -> Response:
        if media_type(request) not in FORMS:
            # Checked before read_form, which would answer 415: the spec gives 400.
            raise Open311Error(
                400,
                "请以 application/x-www-form-urlencoded 提交 / send "
                "application/x-www-form-urlencoded",
            )
        fields = await read_form(request, MAX_BODY_BYTES, media_types=FORMS)
        district = await _jurisdiction(intake, fields.get("jurisdiction_id"))
        api_key = fields.get("api_key") or _arg(request, "api_key")
        if not api_key or not intake.settings.api_key_valid(district.district_id, api_key):
            raise Open311Error(
                403,
                "api_key 缺失或无效，无法提交 / Invalid api_key received "
                "-- can't proceed with create_request.",
            )
        # Each client key has a budget shared by every replica (a keyed hash of district
        # and key, never the key, in the same buckets as addresses'): an abused or leaked
        # key is slowed down before it is removed from MINQING_OPEN311_API_KEYS.
        wait = await intake.open311_limiter.take(f"open311\x00{district.district_id}\x00{api_key}")
        if wait > 0:
            raise rate_limited(wait)
        service_code = fields.get("service_code")
        if not service_code:
            raise Open311Error(400, "缺少 service_code / service_code was not provided")
        category = (await intake.taxonomy.for_district(district.district_id)).get(service_code)
        if category is None:
            raise Open311Error(
                404, f"service_code {service_code!r} 不存在 / service_code not found"
            )
        lat, long = _float(fields, "lat"), _float(fields, "long")
        address = fields.get("address_string") or (
            f"address_id {fields['address_id']}" if fields.get("address_id") else None
        )
        if (lat is None or long is None) and not address:
            raise Open311Error(
                400,
                "请提供位置：lat 和 long，或 address_string，或 address_id / a "
                "location is required: lat & long, address_string or "
                "address_id",
            )
        attachments, media_notice = _media(fields.get("media_url"))
        name = _name(fields.get("first_name"), fields.get("last_name"))
        phone = fields.get("phone")
        command = SubmitOpinion(
            channel=Channel.OPEN311,
            text=request_text(fields.get("description"), category.name_zh, address),
            district_id=district.district_id,
            category_hint=category.code,
            address=address,
            lat=lat,
            long=long,
            contact=Contact(name, phone) if name or phone else None,
            attachments=attachments,
        )
        client = _api_client(district.district_id, api_key)
        info = info_of(request)
        payload = {k: v for k, v in fields.items() if k != "api_key"}
        key = (
            IdempotencyKey.of(
                f"open311:{district.district_id}:{client.client_id}",
                info.idempotency_key,
                payload,
                secret=intake.settings.intake_hash_secrets,
            )
            if info.idempotency_key
            else None
        )
        receipt = await intake.submissions.submit(
            command, client, key=key, metadata=info.metadata()
        )
        tracking = format_tracking_code(receipt.tracking_code)
        url = f"{intake.settings.public_base_url.rstrip('/')}/t/{receipt.tracking_code}"
        notice = (
            f"已受理，请保存查询码 {tracking}，可在 {url} 查看办理进度。 / Received: keep the "
            f"tracking code {tracking} and follow the case at {url}."
        )
        if media_notice is not None:
            notice = f"{notice} {media_notice}"
        body = fmt.render_list(
            form, "service_requests", "request", [fmt.created(receipt.opinion_id, notice)]
        )
        # 200, as the reference implementations answer (the spec names no other code).
        return _respond(form, body)

    return await _answer(request, suffix, work, public=False)


def _window(request: Request, tz: ZoneInfo, now: datetime) -> tuple[datetime, datetime]:
    """The (start, end) of a query: 90 days at most, the last 90 days by default."""
    try:
        start = fmt.parse_w3c(s, tz) if (s := _arg(request, "start_date")) else None
        end = fmt.parse_w3c(e, tz) if (e := _arg(request, "end_date")) else None
    except ValueError:
        raise Open311Error(
            400,
            "start_date / end_date 应为 W3C 日期时间，如 "
            "2010-01-01T00:00:00Z / dates must be W3C date-times",
        ) from None
    if start is not None and end is not None:
        if end < start:
            raise Open311Error(400, "end_date 早于 start_date / end_date is before start_date")
        if end - start > fmt.MAX_SPAN:
            raise Open311Error(
                400, "查询范围不能超过 90 天 / the range may not span more than 90 days"
            )
        return start, end
    if start is not None:
        return start, start + fmt.MAX_SPAN
    if end is not None:
        return end - fmt.MAX_SPAN, end
    return now - fmt.MAX_SPAN, now + timedelta(minutes=1)


@router.get("/v2/requests.{suffix}", summary="GET Service Requests")
async def list_requests(request: Request, suffix: str) -> Response:
    async def work(intake: Intake, form: fmt.Format) -> Response:
        district = await _jurisdiction(intake, _arg(request, "jurisdiction_id"))
        ids = _list_arg(request, "service_request_id")
        statuses = _list_arg(request, "status")
        if statuses and any(s not in {"open", "closed"} for s in statuses):
            raise Open311Error(400, "status 只能是 open 或 closed / status is open or closed")
        if ids is not None:
            views = await service_requests(
                intake.pool, district.district_id, ids=ids, limit=DEFAULT_LIMIT
            )
        else:
            start, end = _window(request, district.timezone, intake.clock())
            views = await service_requests(
                intake.pool,
                district.district_id,
                start=start,
                end=end,
                service_codes=_list_arg(request, "service_code"),
                statuses=statuses,
                limit=DEFAULT_LIMIT,
            )
        return _requests(
            intake,
            form,
            views,
            await _names(
                intake,
                district,
                [v.progress.station_code for v in views if v.progress],
                [v.progress.representative_id for v in views if v.progress],
            ),
        )

    return await _answer(request, suffix, work)


def _requests(intake: Intake, form: fmt.Format, views: list[RequestView], names: Names) -> Response:
    items = [
        fmt.service_request(
            v, names, publish_description=intake.settings.open311_publish_descriptions
        )
        for v in views
    ]
    return _respond(form, fmt.render_list(form, "service_requests", "request", items))


@router.get("/v2/requests/{service_request_id}.{suffix}", summary="GET Service Request")
async def get_request(request: Request, service_request_id: str, suffix: str) -> Response:
    async def work(intake: Intake, form: fmt.Format) -> Response:
        district = await _jurisdiction(intake, _arg(request, "jurisdiction_id"))
        views = await service_requests(
            intake.pool, district.district_id, ids=[service_request_id], limit=1
        )
        if not views:
            raise Open311Error(
                404,
                f"service_request_id {service_request_id!r} 不存在 / service_request_id not found",
            )
        progress = views[0].progress
        names = await _names(
            intake,
            district,
            [progress.station_code if progress else None],
            [progress.representative_id if progress else None],
        )
        return _requests(intake, form, views, names)

    return await _answer(request, suffix, work)


@router.get("/v2/servicerequestupdates.{suffix}", summary="GET Service Request Updates (mySociety)")
async def list_updates(request: Request, suffix: str) -> Response:
    async def work(intake: Intake, form: fmt.Format) -> Response:
        district = await _jurisdiction(intake, _arg(request, "jurisdiction_id"))
        start, end = _window(request, district.timezone, intake.clock())
        updates = await service_request_updates(
            intake.pool, district.district_id, start=start, end=end, limit=DEFAULT_LIMIT
        )
        names = await _names(
            intake,
            district,
            [s.station_code for _, s in updates],
            [s.representative_id for _, s in updates],
        )
        items = [fmt.request_update(opinion_id, step, names) for opinion_id, step in updates]
        return _respond(
            form, fmt.render_list(form, "service_request_updates", "request_update", items)
        )

    return await _answer(request, suffix, work)
