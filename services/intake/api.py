"""The JSON API: ``/api/v1/opinions``, stations and their QR codes, tracking, feedback.

Thin: each route turns HTTP into a command, calls the handler, turns the result or the
refusal back into HTTP.
"""

from __future__ import annotations

import io
from typing import Annotated, Any, Literal

import segno
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, ValidationError

from contracts import Channel, OnBehalfOf
from eventkit.auth import Role
from eventkit.http import Problem
from eventkit.logging import get_logger
from services.intake.deps import (
    IntakeDep,
    StaffDep,
    get_intake,
    invalid_fields,
    limit_reads,
    limit_submissions,
    optional_principal,
    problem,
    rate_limit,
    read_json,
    request_metadata,
)
from services.intake.directory import Station
from services.intake.domain import (
    Contact,
    GiveFeedback,
    IntakeError,
    SubmitOpinion,
    UnknownDistrict,
    UnknownStation,
)
from services.intake.idempotency import IdempotencyKey
from services.intake.opinions import opinion_by_id
from services.intake.settings import IntakeSettings

router = APIRouter(prefix="/api/v1")

#: Audit trail of who opened which resident's contact details (never the details).
audit_log = get_logger("services.intake.audit")

#: The staff roles whose work needs the resident's name and phone: the others see the
#: opinion with the contact withheld.
CONTACT_ROLES = frozenset({Role.LIAISON, Role.STREET_SUPERVISOR, Role.DISTRICT_ADMIN})


# --- bodies ---------------------------------------------------------------------------


class LocationIn(BaseModel):
    """Where the matter is (WGS84 for lat/long)."""

    model_config = ConfigDict(extra="forbid")

    community: str | None = None
    address: str | None = None
    lat: float | None = None
    long: float | None = None


class ContactIn(BaseModel):
    """How to reach the resident: optional (anonymous submissions are welcome)."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    name: str | None = None
    phone: str | None = None


class OnBehalfIn(BaseModel):
    """The staff member submitting for a resident."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["spokesperson", "liaison", "representative"]
    staff_id: str


class OpinionIn(BaseModel):
    """``POST /api/v1/opinions``."""

    model_config = ConfigDict(extra="forbid")

    text: str
    channel: Channel
    station_code: str | None = None
    district: str | None = None
    category_hint: str | None = None
    location: LocationIn | None = None
    contact: ContactIn | None = None
    consent: bool | None = None
    on_behalf_of: OnBehalfIn | None = None
    attachments: list[str] = []
    external_ref: str | None = None

    def command(self) -> SubmitOpinion:
        """The submission command."""
        location = self.location or LocationIn()
        behalf = None
        if self.on_behalf_of is not None:
            try:
                behalf = OnBehalfOf(
                    role=self.on_behalf_of.role, staff_id=self.on_behalf_of.staff_id
                )
            except ValidationError as exc:
                raise invalid_fields(exc) from exc
        return SubmitOpinion(
            channel=self.channel,
            text=self.text,
            station_code=self.station_code,
            district_id=self.district,
            category_hint=self.category_hint,
            community=location.community,
            address=location.address,
            lat=location.lat,
            long=location.long,
            contact=(Contact(self.contact.name, self.contact.phone) if self.contact else None),
            consent=self.consent,
            on_behalf_of=behalf,
            attachments=tuple(self.attachments),
            external_ref=self.external_ref,
        )


class WithdrawIn(BaseModel):
    """``POST /api/v1/track/<code>/withdraw``."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = None


class FeedbackIn(BaseModel):
    """``POST /api/v1/track/<code>/feedback``."""

    model_config = ConfigDict(extra="forbid")

    satisfaction: int
    resolved: bool
    comment: str | None = None


def idempotency_scope(principal_subject: str | None, district: str | None) -> str:
    """Whose keys a key is compared with: the staff member's, or the public's."""
    return f"staff:{district}:{principal_subject}" if principal_subject else "public"


# --- opinions -------------------------------------------------------------------------


@router.post(
    "/opinions",
    status_code=201,
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
    principal = optional_principal(intake, request)
    if principal is None:
        rate_limit(intake.submit_limiter, intake, request)
    payload = await read_json(request)
    try:
        body = OpinionIn.model_validate(payload)
    except ValidationError as exc:
        raise problem(invalid_fields(exc)) from exc
    header = request.headers.get("idempotency-key")
    try:
        key = (
            IdempotencyKey.of(
                idempotency_scope(
                    principal.subject if principal else None,
                    principal.district_id if principal else None,
                ),
                header,
                payload,
                secret=intake.settings.intake_hash_secret,
            )
            if header is not None
            else None
        )
        receipt = await intake.submissions.submit(
            body.command(), principal, key=key, metadata=request_metadata(request)
        )
    except IntakeError as exc:
        raise problem(exc) from exc
    headers = {"Location": f"/api/v1/track/{receipt.tracking_code}"}
    if receipt.replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(
        receipt.to_json(intake.settings.public_base_url), status_code=201, headers=headers
    )


@router.get("/opinions/{opinion_id}", summary="查看意见（工作人员）/ An opinion, for staff")
async def get_opinion(intake: IntakeDep, principal: StaffDep, opinion_id: str) -> dict[str, Any]:
    """An opinion, for staff of its district; the resident's contact details are opened
    only for liaison officers, street supervisors and district administrators (each
    opening is written to the audit log). Other roles get ``contact_withheld: true``.

    After ``minqing privacy forget`` the contact shows as erased: the key is gone.
    """
    record = await opinion_by_id(intake.pool, opinion_id)
    if record is None or not principal.may_act_in(record.district_id):
        raise Problem(404, "opinion-not-found", "意见不存在", "No such opinion")
    events = await intake.store.read_stream(f"opinion-{opinion_id}")
    submitted = next((e for e in events if e.event_type == "OpinionSubmitted"), None)
    submitter = (submitted.data.get("submitter") if submitted else None) or None
    contact: dict[str, Any] | None = None
    withheld = submitter is not None and principal.role not in CONTACT_ROLES
    if submitter is not None and not withheld:
        opened = await intake.vault.open(
            submitter["subject_id"],
            {"name": submitter.get("name_ciphertext"), "phone": submitter.get("phone_ciphertext")},
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
        contact = {
            "subject_id": submitter["subject_id"],
            "erased": opened is None,
            "name": opened["name"] if opened else None,
            "phone": opened["phone"] if opened else None,
        }
    tracking = await intake.tracking.track(record.tracking_code)
    view = tracking.to_json()
    view.pop("tracking_code")  # the resident's credential, not staff's business
    view["contact"] = contact
    view["contact_withheld"] = withheld
    view["external_ref"] = record.external_ref
    view["attachments"] = list(record.attachments)
    return view


# --- stations and QR codes ---------------------------------------------------------------


async def resolve_station(intake: IntakeDep, station_code: str, district: str | None) -> Station:
    """The station a QR path names (404 when unknown, 409 when ambiguous)."""
    candidates = await intake.directory.stations_with_code(station_code)
    if district is not None:
        candidates = [s for s in candidates if s.district_id == district]
    candidates = [s for s in candidates if not s.retired]
    if not candidates:
        raise problem(_not_found(UnknownStation(station_code)))
    if len(candidates) > 1:
        raise Problem(
            409,
            "ambiguous-station",
            "请注明所属区",
            "Please name the district",
            "多个区有同一编号的联络站，请加上 ?district=<区编号>",
            "Several districts have this station code: add ?district=<code>",
            districts=sorted(s.district_id for s in candidates),
        )
    station = await intake.directory.station(candidates[0].district_id, station_code)
    assert station is not None
    return station


def _not_found(error: IntakeError) -> IntakeError:
    error.status = 404
    return error


def poster_url(settings: IntakeSettings, station: Station) -> str:
    """Where a station's QR poster sends residents: its form, district included so that
    the code stays unambiguous however many districts join later."""
    base = settings.public_base_url.rstrip("/")
    return f"{base}/q/{station.station_code}?district={station.district_id}"


@router.get("/stations", dependencies=[Depends(limit_reads)], summary="联络站列表 / Stations")
async def list_stations(
    intake: IntakeDep, district: Annotated[str, Query(min_length=1, max_length=32)]
) -> dict[str, Any]:
    """A district's open stations, for the form's station choice."""
    if await intake.directory.district(district) is None:
        raise problem(_not_found(UnknownDistrict(district)))
    stations = await intake.directory.stations(district)
    return {"district": district, "stations": [s.to_json() for s in stations]}


@router.get("/categories", dependencies=[Depends(limit_reads)], summary="意见类别 / Categories")
async def list_categories(
    intake: IntakeDep, district: Annotated[str, Query(min_length=1, max_length=32)]
) -> dict[str, Any]:
    """A district's categories (the form's category choice)."""
    if await intake.directory.district(district) is None:
        raise problem(_not_found(UnknownDistrict(district)))
    taxonomy = await intake.taxonomy.for_district(district)
    return {
        "district": district,
        "categories": [
            {
                "code": c.code,
                "name_zh": c.name_zh,
                "name_en": c.name_en,
                "group": c.group,
                "keywords": list(c.keywords),
            }
            for c in taxonomy.categories
        ],
    }


@router.get(
    "/stations/{station_code}", dependencies=[Depends(limit_reads)], summary="联络站 / A station"
)
async def get_station(
    intake: IntakeDep, station_code: str, district: str | None = None
) -> dict[str, Any]:
    """One station, its representatives and the link its QR poster encodes."""
    station = await resolve_station(intake, station_code, district)
    view = station.to_json()
    view["representatives"] = await intake.directory.representatives_of(
        station.district_id, station.station_code
    )
    view["form_url"] = poster_url(intake.settings, station)
    return view


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
async def track(intake: IntakeDep, tracking_code: str) -> dict[str, Any]:
    """The case's timeline in plain words; 404 for any code that is not a valid one."""
    try:
        tracking = await intake.tracking.track(tracking_code)
    except IntakeError as exc:
        raise problem(exc) from exc
    return tracking.to_json()


@router.post(
    "/track/{tracking_code}/feedback",
    status_code=201,
    dependencies=[Depends(limit_submissions)],
    summary="评价 / Rate the resolution",
)
async def give_feedback(intake: IntakeDep, request: Request, tracking_code: str) -> dict[str, Any]:
    """Rate the current resolution, once (409 on a second try)."""
    payload = await read_json(request)
    try:
        body = FeedbackIn.model_validate(payload)
    except ValidationError as exc:
        raise problem(invalid_fields(exc)) from exc
    try:
        given = await intake.tracking.give_feedback(
            tracking_code,
            GiveFeedback(body.satisfaction, body.resolved, body.comment),
            metadata=request_metadata(request),
        )
    except IntakeError as exc:
        raise problem(exc) from exc
    return {
        "case_id": given.case_id,
        "resolution_seq": given.resolution_seq,
        "satisfaction": given.satisfaction,
        "resolved": given.resolved,
        "submitted_at": given.submitted_at.isoformat(),
    }


@router.post(
    "/track/{tracking_code}/withdraw",
    status_code=201,
    dependencies=[Depends(limit_submissions)],
    summary="撤回 / Withdraw the opinion",
)
async def withdraw(intake: IntakeDep, request: Request, tracking_code: str) -> dict[str, Any]:
    """Take the opinion back while it is not handled yet (409 afterwards, or twice)."""
    payload = await read_json(request)
    try:
        body = WithdrawIn.model_validate(payload)
    except ValidationError as exc:
        raise problem(invalid_fields(exc)) from exc
    try:
        when = await intake.tracking.withdraw(
            tracking_code, body.reason, metadata=request_metadata(request)
        )
    except IntakeError as exc:
        raise problem(exc) from exc
    return {"withdrawn_at": when.isoformat()}
