"""HTTP entry points of a station's guard: the challenge the QR form's script solves, and
the district admin's switch (``/api/v1/stations/{code}/proof-of-work``).

Intake owns the guard rather than routing's directory: it is a defence of intake's
public form, decided and read on intake's hot path (and switched on by intake itself
when a station's limit trips); in the directory it would reach intake only through an
event, a consumer's lag after the attack began.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from eventkit.http import parse_model, read_json
from eventkit.identity import Principal, Role
from eventkit.refusals import Forbidden
from services.intake.api import not_found, resolve_station
from services.intake.deps import MAX_BODY_BYTES, IntakeDep, StaffDep, limit_reads
from services.intake.directory import Station
from services.intake.errors import UnknownStation
from services.intake.proof_of_work import MAX_BITS
from services.intake.station_guard import GuardState

router = APIRouter(prefix="/api/v1")


class ChallengeBody(BaseModel):
    """A challenge for the station's form, when the station is guarded."""

    model_config = ConfigDict(extra="forbid")

    district: str
    station_code: str
    required: bool
    """Whether a submission through the station must carry a solution now."""
    challenge: str | None = None
    difficulty: int = 0
    """How many zero bits SHA-256(challenge || nonce) must start with."""
    expires_at: str | None = None
    algorithm: str = "sha256-leading-zero-bits"


class GuardIn(BaseModel):
    """A district admin switching a station's guard on."""

    model_config = ConfigDict(extra="forbid")

    difficulty: int = Field(ge=1, le=MAX_BITS)
    """Zero bits the solution's SHA-256 must start with: 14 takes a phone about a
    second; each bit more doubles it."""
    hours: float | None = Field(default=None, gt=0, le=24 * 90)
    """How long it stays on; none: until switched off."""


class GuardBody(BaseModel):
    """A station's guard."""

    model_config = ConfigDict(extra="forbid")

    district: str
    station_code: str
    on: bool
    difficulty: int | None = None
    mode: str | None = None
    """``manual`` (a district admin) or ``auto`` (the station's limit tripped)."""
    until: str | None = None
    set_by: str | None = None
    set_at: str | None = None


def _guard_body(station: Station, state: GuardState | None, on: bool) -> GuardBody:
    if state is None or not on:
        return GuardBody(district=station.district_id, station_code=station.station_code, on=False)
    return GuardBody(
        district=station.district_id,
        station_code=station.station_code,
        on=True,
        difficulty=state.difficulty,
        mode=state.mode,
        until=state.until.isoformat() if state.until else None,
        set_by=state.set_by,
        set_at=state.set_at.isoformat(),
    )


@router.get(
    "/stations/{station_code}/challenge",
    dependencies=[Depends(limit_reads)],
    summary="防刷验证题 / A proof-of-work challenge for the QR form",
)
async def challenge(
    intake: IntakeDep, response: Response, station_code: str, district: str | None = None
) -> ChallengeBody:
    """A fresh challenge when the station is guarded (signed, for this station only,
    good once, for ``MINQING_POW_CHALLENGE_SECONDS``); ``required: false`` otherwise."""
    station = await resolve_station(intake, station_code, district)
    bits = await intake.guard.required_bits(station.district_id, station.station_code)
    response.headers["Cache-Control"] = "no-store"  # each one is good once
    if not bits:
        return ChallengeBody(
            district=station.district_id, station_code=station.station_code, required=False
        )
    fresh = intake.guard.challenge(station.district_id, station.station_code, bits)
    return ChallengeBody(
        district=station.district_id,
        station_code=station.station_code,
        required=True,
        challenge=fresh["challenge"],
        difficulty=fresh["difficulty"],
        expires_at=fresh["expires_at"],
    )


async def _admins_station(
    intake: IntakeDep, principal: Principal, station_code: str, district: str | None
) -> Station:
    if principal.role is not Role.DISTRICT_ADMIN:
        raise Forbidden(
            "只有区管理员可以设置站点防刷",
            "Only a district admin may guard a station",
            code="role-not-allowed",
        )
    station = await resolve_station(intake, station_code, district or principal.district_id)
    if not principal.may_act_in(station.district_id):
        raise not_found(UnknownStation(station_code))
    return station


GUARD = "/stations/{station_code}/proof-of-work"


@router.get(GUARD, summary="站点防刷状态 / A station's guard")
async def get_guard(
    intake: IntakeDep,
    principal: StaffDep,
    station_code: str,
    district: Annotated[str | None, Query(max_length=32)] = None,
) -> GuardBody:
    """Whether the station's QR form asks for a proof-of-work, since when and why."""
    station = await _admins_station(intake, principal, station_code, district)
    state = await intake.guard.state(station.district_id, station.station_code)
    return _guard_body(station, state, state is not None and state.active(intake.clock()))


@router.put(
    GUARD,
    summary="开启站点防刷 / Switch a station's guard on",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": GuardIn.model_json_schema()}},
        }
    },
)
async def put_guard(
    intake: IntakeDep,
    principal: StaffDep,
    request: Request,
    station_code: str,
    district: Annotated[str | None, Query(max_length=32)] = None,
) -> GuardBody:
    """Every submission through the station's QR form must carry a proof-of-work of
    this difficulty, until switched off (or for ``hours``)."""
    station = await _admins_station(intake, principal, station_code, district)
    body = parse_model(GuardIn, await read_json(request, MAX_BODY_BYTES))
    state = await intake.guard.switch_on(
        station.district_id, station.station_code, body.difficulty, body.hours, principal.subject
    )
    return _guard_body(station, state, True)


@router.delete(GUARD, summary="关闭站点防刷 / Switch a station's guard off")
async def delete_guard(
    intake: IntakeDep,
    principal: StaffDep,
    station_code: str,
    district: Annotated[str | None, Query(max_length=32)] = None,
) -> GuardBody:
    """The station's form asks for no proof-of-work any more (until its limit trips)."""
    station = await _admins_station(intake, principal, station_code, district)
    await intake.guard.switch_off(station.district_id, station.station_code, principal.subject)
    return _guard_body(station, None, False)
