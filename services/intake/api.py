"""The JSON API: ``/api/v1/opinions``, stations and their QR codes, tracking, feedback.

Thin: each route turns HTTP into a command and calls the handler; refusals leave as
problems through the shared edge.
"""

from __future__ import annotations

import io
from typing import Annotated

import segno
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from eventkit.db import district_transaction
from eventkit.http import info_of, parse_model, read_json
from eventkit.identity import Role
from eventkit.logging import get_logger
from eventkit.refusals import Conflict, NotFound, Refusal
from services.intake.api_models import (
    CategoriesBody,
    ContactBody,
    FeedbackBody,
    FeedbackIn,
    OpinionBody,
    OpinionIn,
    ReceiptBody,
    StationDetailBody,
    StationsBody,
    TrackingBody,
    WithdrawalBody,
    WithdrawIn,
    category_body,
    matter_body,
    station_body,
    tracking_body,
)
from services.intake.deps import (
    MAX_BODY_BYTES,
    IntakeDep,
    MetadataDep,
    StaffDep,
    get_intake,
    limit_reads,
    limit_submissions,
    optional_principal,
    rate_limit,
)
from services.intake.directory import Station
from services.intake.errors import OpinionNotFound, UnknownDistrict, UnknownStation
from services.intake.feedback_rules import GiveFeedback
from services.intake.idempotency import IdempotencyKey
from services.intake.opinions import opinion_by_id
from services.intake.proof_of_work import HEADER as POW_HEADER
from services.intake.settings import IntakeSettings

router = APIRouter(prefix="/api/v1")

#: Audit trail of who opened which resident's contact details (never the details).
audit_log = get_logger("services.intake.audit")

#: The staff roles whose work needs the resident's name and phone: the others see the
#: opinion with the contact withheld.
CONTACT_ROLES = frozenset({Role.LIAISON, Role.STREET_SUPERVISOR, Role.DISTRICT_ADMIN})


def idempotency_scope(principal_subject: str | None, district: str | None) -> str:
    """Whose keys a key is compared with: the staff member's, or the public's."""
    return f"staff:{district}:{principal_subject}" if principal_subject else "public"


def not_found(refusal: Refusal) -> NotFound:
    """``refusal`` as a 404: a path that names a station or district that does not exist
    names no resource, where a submission naming it is invalid input (422)."""
    return NotFound(
        refusal.title, refusal.title_en, refusal.detail, refusal.detail_en, code=refusal.code
    )


# --- opinions -------------------------------------------------------------------------


@router.post(
    "/opinions",
    status_code=201,
    response_model=ReceiptBody,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": OpinionIn.model_json_schema()}},
        }
    },
    summary="提交意见 / Submit an opinion",
)
async def submit_opinion(request: Request) -> JSONResponse:
    """Accept an opinion from any channel; 201 once it is in the event store."""
    intake = get_intake(request)  # the hot path: no dependency to solve
    principal = await optional_principal(intake, request)
    if principal is None:
        await rate_limit(intake.submit_limiter, intake, request)
    payload = await read_json(request, MAX_BODY_BYTES)
    body = parse_model(OpinionIn, payload)
    info = info_of(request)
    key = (
        IdempotencyKey.of(
            idempotency_scope(
                principal.subject if principal else None,
                principal.district_id if principal else None,
            ),
            info.idempotency_key,
            payload,
            secret=intake.settings.intake_hash_secrets,
        )
        if info.idempotency_key is not None
        else None
    )
    receipt = await (
        intake.submissions.submit(body.command(), principal, key=key, metadata=info.metadata())
        if principal is not None
        else intake.guard.submit(  # a resident: through the station's guard
            intake.submissions,
            body.command(),
            proof=request.headers.get(POW_HEADER),
            key=key,
            metadata=info.metadata(),
        )
    )
    headers = {"Location": f"/api/v1/track/{receipt.tracking_code}"}
    if receipt.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(
        receipt.to_json(intake.settings.public_base_url), status_code=201, headers=headers
    )


@router.get("/opinions/{opinion_id}", summary="查看意见（工作人员）/ An opinion, for staff")
async def get_opinion(intake: IntakeDep, principal: StaffDep, opinion_id: str) -> OpinionBody:
    """An opinion, for staff of its district; the resident's contact details are opened
    only for liaison officers, street supervisors and district administrators (each
    opening is written to the audit log). Other roles get ``contact_withheld: true``.

    After ``minqing privacy forget`` the contact shows as erased: the key is gone.
    """
    # In the staff member's own district: another district's opinion is not even seen.
    async with district_transaction(intake.pool, principal.district_id) as conn:
        record = await opinion_by_id(conn, opinion_id)
        events = await intake.store.read_stream(f"opinion-{opinion_id}", conn=conn)
    if record is None or not principal.may_act_in(record.district_id):
        raise OpinionNotFound()
    submitted = next((e for e in events if e.event_type == "OpinionSubmitted"), None)
    submitter = (submitted.data.get("submitter") if submitted else None) or None
    contact: ContactBody | None = None
    withheld = submitter is not None and principal.role not in CONTACT_ROLES
    if submitter is not None and not withheld:
        opened = await intake.vault.open(
            submitter["subject_id"],
            {"name": submitter.get("name_ciphertext"), "phone": submitter.get("phone_ciphertext")},
            district_id=record.district_id,
        )
        audit_log.info(
            "contact opened",
            audit=True,
            subject=principal.subject,
            role=principal.role.value,
            opinion_id=opinion_id,
            subject_id=submitter["subject_id"],
            erased=opened is None,
        )
        contact = ContactBody(
            subject_id=submitter["subject_id"],
            erased=opened is None,
            name=opened["name"] if opened else None,
            phone=opened["phone"] if opened else None,
        )
    tracking = await intake.tracking.track(record.tracking_code)
    return OpinionBody(
        **dict(matter_body(tracking)),
        contact=contact,
        contact_withheld=withheld,
        external_ref=record.external_ref,
        attachments=list(record.attachments),
    )


# --- stations and QR codes ---------------------------------------------------------------


async def resolve_station(intake: IntakeDep, station_code: str, district: str | None) -> Station:
    """The station a QR path names (404 when unknown, 409 when ambiguous)."""
    candidates = await intake.directory.stations_with_code(station_code)
    if district is not None:
        candidates = [s for s in candidates if s.district_id == district]
    candidates = [s for s in candidates if not s.retired]
    if not candidates:
        raise not_found(UnknownStation(station_code))
    if len(candidates) > 1:
        raise Conflict(
            "请注明所属区",
            "Please name the district",
            "多个区有同一编号的联络站，请加上 ?district=<区编号>",
            "Several districts have this station code: add ?district=<code>",
            code="ambiguous-station",
            extra={"districts": sorted(s.district_id for s in candidates)},
        )
    station = await intake.directory.station(candidates[0].district_id, station_code)
    assert station is not None
    return station


def poster_url(settings: IntakeSettings, station: Station) -> str:
    """Where a station's QR poster sends residents: its form, district included so that
    the code stays unambiguous however many districts join later."""
    base = settings.public_base_url.rstrip("/")
    return f"{base}/q/{station.station_code}?district={station.district_id}"


@router.get("/stations", dependencies=[Depends(limit_reads)], summary="联络站列表 / Stations")
async def list_stations(
    intake: IntakeDep, district: Annotated[str, Query(min_length=1, max_length=32)]
) -> StationsBody:
    """A district's open stations, for the form's station choice."""
    if await intake.directory.district(district) is None:
        raise not_found(UnknownDistrict(district))
    stations = await intake.directory.stations(district)
    return StationsBody(district=district, stations=[station_body(s) for s in stations])


@router.get("/categories", dependencies=[Depends(limit_reads)], summary="意见类别 / Categories")
async def list_categories(
    intake: IntakeDep, district: Annotated[str, Query(min_length=1, max_length=32)]
) -> CategoriesBody:
    """A district's categories (the form's category choice)."""
    if await intake.directory.district(district) is None:
        raise not_found(UnknownDistrict(district))
    taxonomy = await intake.taxonomy.for_district(district)
    return CategoriesBody(
        district=district, categories=[category_body(c) for c in taxonomy.categories]
    )


@router.get(
    "/stations/{station_code}", dependencies=[Depends(limit_reads)], summary="联络站 / A station"
)
async def get_station(
    intake: IntakeDep, station_code: str, district: str | None = None
) -> StationDetailBody:
    """One station, its representatives and the link its QR poster encodes."""
    station = await resolve_station(intake, station_code, district)
    return StationDetailBody(
        **dict(station_body(station)),
        representatives=await intake.directory.representatives_of(
            station.district_id, station.station_code
        ),
        form_url=poster_url(intake.settings, station),
    )


def _qr(data: str) -> segno.QRCode:
    return segno.make(data, error="m", micro=False)


@router.get(
    "/stations/{station_code}/qr.svg",
    dependencies=[Depends(limit_reads)],
    summary="民情码 SVG / QR poster code (SVG)",
)
async def station_qr_svg(
    intake: IntakeDep, station_code: str, district: str | None = None, scale: int = 8
) -> Response:
    """The station's QR code as SVG, pointing to its form at the public base URL."""
    station = await resolve_station(intake, station_code, district)
    buffer = io.BytesIO()
    _qr(poster_url(intake.settings, station)).save(
        buffer,
        kind="svg",
        scale=max(1, min(scale, 40)),
        border=4,
        xmldecl=True,
        title=f"{station.name_zh} 民情码",
    )
    return Response(
        buffer.getvalue(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get(
    "/stations/{station_code}/qr.png",
    dependencies=[Depends(limit_reads)],
    summary="民情码 PNG / QR poster code (PNG)",
)
async def station_qr_png(
    intake: IntakeDep, station_code: str, district: str | None = None, scale: int = 10
) -> Response:
    """The station's QR code as PNG, pointing to its form at the public base URL."""
    station = await resolve_station(intake, station_code, district)
    buffer = io.BytesIO()
    _qr(poster_url(intake.settings, station)).save(
        buffer, kind="png", scale=max(1, min(scale, 40)), border=4
    )
    return Response(
        buffer.getvalue(),
        media_type="image/png",
        headers={"Cache-Control": "public, max-age=3600"},
    )


# --- tracking and feedback ---------------------------------------------------------------


@router.get(
    "/track/{tracking_code}",
    dependencies=[Depends(limit_reads)],
    summary="进度查询 / Track an opinion",
)
async def track(intake: IntakeDep, tracking_code: str) -> TrackingBody:
    """The case's timeline in plain words; 404 for any code that is not a valid one."""
    return tracking_body(await intake.tracking.track(tracking_code))


@router.post(
    "/track/{tracking_code}/feedback",
    status_code=201,
    dependencies=[Depends(limit_submissions)],
    summary="评价 / Rate the resolution",
)
async def give_feedback(
    intake: IntakeDep, request: Request, metadata: MetadataDep, tracking_code: str
) -> FeedbackBody:
    """Rate the current resolution, once (409 on a second try)."""
    body = parse_model(FeedbackIn, await read_json(request, MAX_BODY_BYTES))
    given = await intake.feedback.give(
        tracking_code,
        GiveFeedback(body.satisfaction, body.resolved, body.comment),
        metadata=metadata,
    )
    return FeedbackBody(
        case_id=given.case_id,
        resolution_seq=given.resolution_seq,
        satisfaction=given.satisfaction,
        resolved=given.resolved,
        submitted_at=given.submitted_at.isoformat(),
    )


@router.post(
    "/track/{tracking_code}/withdraw",
    status_code=201,
    dependencies=[Depends(limit_submissions)],
    summary="撤回 / Withdraw the opinion",
)
async def withdraw(
    intake: IntakeDep, request: Request, metadata: MetadataDep, tracking_code: str
) -> WithdrawalBody:
    """Take the opinion back while it is not handled yet (409 afterwards, or twice)."""
    body = parse_model(WithdrawIn, await read_json(request, MAX_BODY_BYTES))
    when = await intake.withdrawals.withdraw(tracking_code, body.reason, metadata=metadata)
    return WithdrawalBody(withdrawn_at=when.isoformat())
