"""What a submission must be, where it belongs, who may make it and the event it becomes.

Pure: the handler (``submission.py``) looks the station and district up, passes the
clock's time and the ids in, and stores what these functions decide.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from urllib.parse import urlsplit

from pydantic import HttpUrl, TypeAdapter, ValidationError

from contracts import Actor, ActorRole, Channel, OnBehalfOf, OpinionSubmitted
from contracts.intake import Location, OnTheSpotAnswer, SubmitterRef
from eventkit.identity import Principal, Role
from eventkit.refusals import FieldError
from services.intake.errors import (
    AmbiguousStation,
    InvalidSubmission,
    NotAllowed,
    StaffTokenRequired,
    UnknownDistrict,
    UnknownStation,
)
from services.intake.text import cleaned, normalise_phone, strip_controls

PUBLIC_CHANNELS: Final = frozenset({Channel.QR, Channel.ONLINE})
"""Channels residents use themselves: no token, rate-limited per client address."""
PHONE_AS_GIVEN_CHANNELS: Final = frozenset({Channel.HOTLINE_12345, Channel.OPEN311})
"""Channels relaying numbers we do not choose the format of: a number that is not a
mainland mobile is kept as given (sealed, never an identifier) instead of refused."""

TEXT_MIN: Final = 5
TEXT_MAX: Final = 4000
MAX_ATTACHMENTS: Final = 9
MAX_URL_LENGTH: Final = 2000
NAME_MAX: Final = 50
COMMUNITY_MAX: Final = 100
ADDRESS_MAX: Final = 300
PHONE_MAX: Final = 40
CATEGORY_MAX: Final = 64
EXTERNAL_REF_MAX: Final = 64

_HTTP_URL: Final = TypeAdapter(HttpUrl)
_IDENTIFIER: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:]{0,63}$")

STAFF_ROLES_THAT_SUBMIT: Final = frozenset(
    {
        Role.LIAISON,
        Role.REPRESENTATIVE,
        Role.SPOKESPERSON,
        Role.STREET_SUPERVISOR,
        Role.DISTRICT_ADMIN,
        Role.HOTLINE,
    }
)
"""Every staff role but the auditor, who only reads."""
ON_BEHALF_ROLES: Final = frozenset({Role.SPOKESPERSON, Role.LIAISON, Role.REPRESENTATIVE})
"""Staff whose submissions are made for a resident (on_behalf_of)."""

ON_THE_SPOT_ROLES = frozenset({Role.LIAISON, Role.REPRESENTATIVE})
"""Who may answer an opinion at the desk and close it as they take it down (当场办结)."""
ON_THE_SPOT_CHANNELS = frozenset({Channel.WALK_IN, Channel.VISIT})
ON_THE_SPOT_MAX = 2000
ACTOR_ROLE: Final[dict[Role, ActorRole]] = {
    Role.LIAISON: ActorRole.LIAISON,
    Role.REPRESENTATIVE: ActorRole.REPRESENTATIVE,
    Role.SPOKESPERSON: ActorRole.SPOKESPERSON,
    Role.STREET_SUPERVISOR: ActorRole.STREET_SUPERVISOR,
    Role.DISTRICT_ADMIN: ActorRole.DISTRICT_ADMIN,
    Role.AUDITOR: ActorRole.AUDITOR,
    Role.HOTLINE: ActorRole.HOTLINE,
}


@dataclass(frozen=True)
class Contact:
    """How to reach the resident again: optional, and never stored in clear."""

    name: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class SubmitOpinion:
    """A resident's opinion as it arrives, from any channel."""

    channel: Channel
    text: str
    station_code: str | None = None
    district_id: str | None = None
    category_hint: str | None = None
    community: str | None = None
    address: str | None = None
    lat: float | None = None
    long: float | None = None
    contact: Contact | None = None
    consent: bool | None = None
    """Whether the resident agreed to the use of their contact details (public channels)."""
    on_behalf_of: OnBehalfOf | None = None
    attachments: tuple[str, ...] = ()
    external_ref: str | None = None
    occurred_at: datetime | None = None
    """When the resident raised it, if earlier than now (a 12345 call)."""
    answered_on_the_spot: str | None = None
    """What the liaison officer or representative taking it down answered at the desk
    (当场办结): the case is resolved and closed as it opens, by them."""


@dataclass(frozen=True)
class ApiClient:
    """An outside system calling with a district's Open311 ``api_key``."""

    client_id: str
    """Names the key without revealing it (``open311:`` and a digest prefix)."""
    district_id: str


Caller = Principal | ApiClient | None
"""Who submits: staff (token), an outside system (api_key) or a resident (nothing)."""


@dataclass(frozen=True)
class StationInfo:
    """A station as intake knows it from the directory."""

    district_id: str
    station_code: str
    name_zh: str
    retired: bool = False
    communities: tuple[str, ...] = ()


@dataclass(frozen=True)
class Place:
    """Where a submission belongs: its district and, when named, its station."""

    district_id: str
    station: StationInfo | None


@dataclass(frozen=True)
class CleanSubmission:
    """A submission whose every field was checked and normalised."""

    command: SubmitOpinion
    text: str
    phone: str | None
    name: str | None
    attachments: tuple[str, ...]
    category_hint: str | None
    community: str | None
    address: str | None
    phone_identified: bool = True
    """Whether ``phone`` is a normalised mainland mobile number, which identifies the
    resident (blind index, same subject on every submission). A number another system
    passed on as given (a landline from 12345, anything from Open311) is only sealed."""


def _check_url(index: int, url: str) -> FieldError | None:
    where = f"attachments.{index}"
    if len(url) > MAX_URL_LENGTH:
        return FieldError(
            where,
            "attachment-too-long",
            f"第 {index + 1} 个附件链接过长",
            f"Attachment {index + 1}: the URL is too long",
        )
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.hostname:
        return FieldError(
            where,
            "attachment-not-https",
            f"第 {index + 1} 个附件必须是 https:// 开头的链接",
            f"Attachment {index + 1} must be an https:// URL",
        )
    try:
        _HTTP_URL.validate_python(url)
    except ValidationError:
        return FieldError(
            where,
            "attachment-invalid",
            f"第 {index + 1} 个附件链接格式不正确",
            f"Attachment {index + 1} is not a valid URL",
        )
    return None


def check_submission(command: SubmitOpinion) -> CleanSubmission:
    """The submission checked field by field; :class:`InvalidSubmission` lists every error."""
    errors: list[FieldError] = []
    text = strip_controls(command.text).strip()
    if len(text) < TEXT_MIN:
        errors.append(
            FieldError(
                "text",
                "text-too-short",
                f"意见内容太短，请至少写 {TEXT_MIN} 个字",
                f"The text is too short: write at least {TEXT_MIN} characters",
            )
        )
    elif len(text) > TEXT_MAX:
        errors.append(
            FieldError(
                "text",
                "text-too-long",
                f"意见内容太长，最多 {TEXT_MAX} 个字（现有 {len(text)} 个）",
                f"The text is too long: at most {TEXT_MAX} characters (it has {len(text)})",
            )
        )
    if command.station_code is None and command.district_id is None:
        errors.append(
            FieldError(
                "station_code",
                "place-required",
                "请提供联络站编号（station_code）或所属区（district）",
                "Give the station code (station_code) or the district (district)",
            )
        )
    if command.station_code is not None and not _IDENTIFIER.match(command.station_code):
        errors.append(
            FieldError(
                "station_code",
                "invalid-station-code",
                "联络站编号格式不正确",
                "The station code is malformed",
            )
        )
    name = phone = raw_phone = None
    phone_identified = True
    if command.contact is not None:
        name = cleaned(command.contact.name)
        if name is not None and len(name) > NAME_MAX:
            errors.append(
                FieldError(
                    "contact.name",
                    "name-too-long",
                    f"联系人姓名最多 {NAME_MAX} 个字",
                    f"The contact name may have at most {NAME_MAX} characters",
                )
            )
        raw_phone = cleaned(command.contact.phone)
        if raw_phone is not None:
            phone = normalise_phone(raw_phone)
            if (
                phone is None
                and command.channel in PHONE_AS_GIVEN_CHANNELS
                and len(raw_phone) <= PHONE_MAX
            ):
                phone, phone_identified = raw_phone, False
            if phone is None:
                # Never echo the number: it is personal data, and problems get logged.
                errors.append(
                    FieldError(
                        "contact.phone",
                        "invalid-phone",
                        "手机号码格式不正确，应为 11 位大陆手机号（1 开头，第二位 3–9）",
                        "The phone number must be an 11-digit mainland mobile number "
                        "(1, then 3 to 9, then 9 digits)",
                    )
                )
    if (
        command.channel in PUBLIC_CHANNELS
        and (name is not None or raw_phone is not None)
        and not command.consent
    ):
        errors.append(
            FieldError(
                "consent",
                "consent-required",
                "留下联系方式需勾选同意：仅用于办理和回访本事项",
                "Leaving contact details needs your consent: they are used only to handle "
                "and follow up this matter",
            )
        )
    if len(command.attachments) > MAX_ATTACHMENTS:
        errors.append(
            FieldError(
                "attachments",
                "too-many-attachments",
                f"附件最多 {MAX_ATTACHMENTS} 个（现有 {len(command.attachments)} 个）",
                f"At most {MAX_ATTACHMENTS} attachments (there are {len(command.attachments)})",
            )
        )
    attachments = tuple(url.strip() for url in command.attachments)
    for index, url in enumerate(attachments):
        problem = _check_url(index, url)
        if problem is not None:
            errors.append(problem)
    category = cleaned(command.category_hint)
    if category is not None and len(category) > CATEGORY_MAX:
        errors.append(
            FieldError(
                "category_hint",
                "category-too-long",
                f"类别最多 {CATEGORY_MAX} 个字",
                f"The category may have at most {CATEGORY_MAX} characters",
            )
        )
    community = cleaned(command.community)
    if community is not None and len(community) > COMMUNITY_MAX:
        errors.append(
            FieldError(
                "location.community",
                "community-too-long",
                f"社区名称最多 {COMMUNITY_MAX} 个字",
                f"The community may have at most {COMMUNITY_MAX} characters",
            )
        )
    address = cleaned(command.address)
    if address is not None and len(address) > ADDRESS_MAX:
        errors.append(
            FieldError(
                "location.address",
                "address-too-long",
                f"地址最多 {ADDRESS_MAX} 个字",
                f"The address may have at most {ADDRESS_MAX} characters",
            )
        )
    if (command.lat is None) != (command.long is None):
        errors.append(
            FieldError(
                "location",
                "incomplete-position",
                "经度和纬度须同时提供",
                "Latitude and longitude go together",
            )
        )
    if command.lat is not None and not -90 <= command.lat <= 90:
        errors.append(
            FieldError("location.lat", "invalid-lat", "纬度应在 -90 到 90 之间", "lat: -90 to 90")
        )
    if command.long is not None and not -180 <= command.long <= 180:
        errors.append(
            FieldError(
                "location.long", "invalid-long", "经度应在 -180 到 180 之间", "long: -180 to 180"
            )
        )
    answer = command.answered_on_the_spot
    if answer is not None and not 1 <= len(answer.strip()) <= ON_THE_SPOT_MAX:
        errors.append(
            FieldError(
                "answered_on_the_spot",
                "answer-length",
                f"当场答复须为 1 至 {ON_THE_SPOT_MAX} 个字",
                f"The answer given at the desk needs 1 to {ON_THE_SPOT_MAX} characters",
            )
        )
    if command.external_ref is not None and len(command.external_ref) > EXTERNAL_REF_MAX:
        errors.append(
            FieldError(
                "external_ref",
                "external-ref-too-long",
                f"外部编号最多 {EXTERNAL_REF_MAX} 个字符",
                f"The external reference may have at most {EXTERNAL_REF_MAX} characters",
            )
        )
    if errors:
        raise InvalidSubmission(errors)
    return CleanSubmission(
        command=command,
        text=text,
        phone=phone,
        name=name,
        attachments=attachments,
        category_hint=category,
        community=community,
        address=address,
        phone_identified=phone_identified,
    )


def locate(
    command: SubmitOpinion,
    *,
    stations: Sequence[StationInfo],
    district_known: bool,
) -> Place:
    """The district and station of a submission.

    ``stations`` are the stations with the command's code in every district;
    ``district_known`` tells whether the command's district (if any) is registered.
    """
    if command.station_code is None:
        if command.district_id is None or not district_known:
            raise UnknownDistrict(command.district_id or "")
        return Place(command.district_id, None)
    candidates = [s for s in stations if not s.retired]
    if command.district_id is not None:
        if not district_known:
            raise UnknownDistrict(command.district_id)
        candidates = [s for s in candidates if s.district_id == command.district_id]
    if not candidates:
        raise UnknownStation(command.station_code)
    if len(candidates) > 1:
        raise AmbiguousStation(command.station_code, sorted(s.district_id for s in candidates))
    return Place(candidates[0].district_id, candidates[0])


def authorize(command: SubmitOpinion, principal: Caller, place: Place) -> Actor:
    """Who submits: a resident on a public channel, otherwise staff of the district (or
    an Open311 client with the district's api_key, on the ``open311`` channel).

    A staff token is needed for every channel but ``qr`` and ``online``; it must be of
    the submission's district and of a role that registers opinions.
    """
    if command.answered_on_the_spot is not None and (
        not isinstance(principal, Principal)
        or principal.role not in ON_THE_SPOT_ROLES
        or command.channel not in ON_THE_SPOT_CHANNELS
    ):
        raise NotAllowed(
            "只有联络员或代表在接待时可以当场办结",
            "Only a liaison officer or a representative receiving residents answers at the desk",
            "当场办结须由联络员或代表在来访接待或走访时登记",
            "An answer at the desk is recorded by a liaison officer or representative, "
            "on a walk-in or a visit",
            code="on-the-spot-needs-desk-staff",
        )
    if isinstance(principal, ApiClient):
        if command.channel is not Channel.OPEN311 or principal.district_id != place.district_id:
            raise NotAllowed(
                "此 api_key 只能为本区提交 Open311 请求",
                "This api_key submits Open311 requests for its own district only",
                code="api-key-scope",
            )
        return Actor(id=principal.client_id, role=ActorRole.EXTERNAL)
    if principal is None:
        if command.channel not in PUBLIC_CHANNELS:
            raise StaffTokenRequired(command.channel)
        if command.on_behalf_of is not None:
            raise NotAllowed(
                "代为提交须由工作人员登录",
                "Submitting on behalf of a resident needs a staff token",
                code="on-behalf-needs-staff",
            )
        return Actor(id="anonymous", role=ActorRole.RESIDENT)
    if principal.role not in STAFF_ROLES_THAT_SUBMIT:
        raise NotAllowed(
            "当前角色不能登记意见",
            "Your role may not register opinions",
            f"角色「{principal.role.value}」只能查看",
            f"The role {principal.role.value!r} is read-only",
            code="role-may-not-submit",
        )
    if not principal.may_act_in(place.district_id):
        raise NotAllowed(
            "无权为其他区登记意见",
            "You may not register opinions for another district",
            f"令牌属于「{principal.district_id}」，意见属于「{place.district_id}」",
            f"The token is for {principal.district_id!r}, the opinion for {place.district_id!r}",
            code="wrong-district",
        )
    behalf = command.on_behalf_of
    if (
        behalf is not None
        and behalf.staff_id != principal.subject
        and principal.role not in {Role.LIAISON, Role.DISTRICT_ADMIN, Role.STREET_SUPERVISOR}
    ):
        raise NotAllowed(
            "不能以他人名义代为提交",
            "You may not submit on behalf of another staff member",
            "只有联络员和管理人员可以登记他人收集的意见",
            "Only liaison officers and supervisors register what others collected",
            code="on-behalf-of-someone-else",
        )
    return Actor(id=principal.subject, role=ACTOR_ROLE[principal.role])


def on_behalf_of(command: SubmitOpinion, principal: Caller) -> OnBehalfOf | None:
    """The staff member who submits for the resident: as given, or the caller themself."""
    if command.on_behalf_of is not None:
        return command.on_behalf_of
    if (
        isinstance(principal, Principal)
        and principal.role in ON_BEHALF_ROLES
        and command.channel not in PUBLIC_CHANNELS
        and _IDENTIFIER.match(principal.subject)
    ):
        return OnBehalfOf(role=principal.role.value, staff_id=principal.subject)
    return None


def contact_consent(command: SubmitOpinion) -> bool:
    """Whether the resident agreed to be contacted about the opinion.

    On the public channels it is the resident's own tick (required to leave a contact).
    On the channels staff work (walk-in, visit, spokesperson, 12345, Open311) the staff
    member asks when taking the number down, as the hotline does for its callbacks: an
    explicit ``false`` is kept, nothing said counts as agreed.
    """
    if command.channel in PUBLIC_CHANNELS:
        return bool(command.consent)
    return command.consent is not False


def opinion_submitted(
    clean: CleanSubmission,
    *,
    opinion_id: str,
    place: Place,
    actor: Actor,
    submitter: SubmitterRef | None,
    behalf: OnBehalfOf | None,
    now: datetime,
    tracking_ref: str | None = None,
) -> OpinionSubmitted:
    """The event that records the accepted submission."""
    command = clean.command
    if submitter is not None and actor.role is ActorRole.RESIDENT:
        actor = Actor(id=submitter.subject_id, role=ActorRole.RESIDENT)
    occurred = command.occurred_at if command.occurred_at and command.occurred_at < now else now
    return OpinionSubmitted(
        district_id=place.district_id,
        occurred_at=occurred,
        actor=actor,
        opinion_id=opinion_id,
        channel=command.channel,
        text=clean.text,
        category_hint=clean.category_hint,
        location=Location(
            station_code=place.station.station_code if place.station else None,
            community=clean.community,
            address=clean.address,
            lat=command.lat,
            long=command.long,
        ),
        submitter=submitter,
        tracking_ref=tracking_ref,
        on_behalf_of=behalf,
        attachments=[_HTTP_URL.validate_python(url) for url in clean.attachments],
        external_ref=command.external_ref,
        on_the_spot=(
            OnTheSpotAnswer(
                answer=command.answered_on_the_spot.strip(),
                role=actor.role.value,
                staff_id=actor.id,
            )
            if command.answered_on_the_spot is not None
            else None
        ),
    )
