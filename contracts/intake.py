"""Events of the intake context, in streams ``opinion-<opinion_id>``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints

from contracts.base import Event, Identifier


class Channel(StrEnum):
    """How an opinion reached us."""

    QR = "qr"
    WALK_IN = "walk_in"
    SPOKESPERSON = "spokesperson"
    VISIT = "visit"
    HOTLINE_12345 = "hotline_12345"
    ONLINE = "online"
    OPEN311 = "open311"


Community = Annotated[str, StringConstraints(max_length=100)]
Address = Annotated[str, StringConstraints(max_length=300)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


class Location(BaseModel):
    """Where the matter is: a station's QR code, a community, an address, a point."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    station_code: Identifier | None = None
    community: Community | None = None
    address: Address | None = None
    lat: Latitude | None = None
    long: Longitude | None = None


class SubmitterRef(BaseModel):
    """A reference to the resident, never their personal data in clear.

    ``name_ciphertext`` and ``phone_ciphertext`` are sealed with the resident's own key
    (``subject_id``); deleting that key makes them unreadable everywhere.
    """

    # Fields this code does not know are ignored, like on events: a consumer deployed
    # before a newer intake still reads its opinions.
    model_config = ConfigDict(frozen=True, extra="ignore")

    subject_id: Identifier
    name_ciphertext: str | None = None
    phone_ciphertext: str | None = None
    tracking_code_ciphertext: str | None = None
    """The opinion's tracking code, sealed with the same key: a message to the resident
    can carry their tracking link, and forgetting the resident shreds it too."""
    contact_consent: bool = False
    """Whether the resident agreed to be contacted about the opinion (SMS, call)."""


class OnBehalfOf(BaseModel):
    """A spokesperson, liaison officer or representative submitting for a resident."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Annotated[str, StringConstraints(pattern=r"^(spokesperson|liaison|representative)$")]
    staff_id: Identifier


class OnTheSpotAnswer(BaseModel):
    """An opinion answered at the desk as it was taken down (当场办结): the answer and who
    gave it. Routing records the case resolved and closed in one step."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    answer: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    """What the resident was told (staff-written text)."""
    role: Annotated[str, StringConstraints(pattern=r"^(liaison|representative)$")]
    staff_id: Identifier
    """Who answered it: a liaison officer or a representative receiving residents."""


class SealedText(BaseModel):
    """Free texts sealed with a matter's text key (AES-256-GCM), never the texts in clear.

    ``key_id`` names the key in ``privacy.text_keys`` (an opinion's id: one key per
    matter); ``ciphertext`` is ``mq1.<base64url(nonce || ciphertext || tag)>`` of a JSON
    object of the sealed fields, bound to the key and to the event's field. Once the key is
    deleted (a request to be forgotten, the end of the retention period) no copy opens.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key_id: Identifier
    ciphertext: Annotated[
        str, StringConstraints(pattern=r"^mq1\.[A-Za-z0-9_-]+$", max_length=65536)
    ]


class OpinionEvent(Event):
    """An event in an opinion's stream."""

    stream_category: ClassVar[str] = "opinion"
    context: ClassVar[str] = "intake"

    opinion_id: Identifier

    @property
    def stream_key(self) -> str:
        return self.opinion_id


class OpinionSubmittedV1(OpinionEvent):
    """The first shape of ``OpinionSubmitted``: the location's parts lay flat on the event.

    Kept so that events stored in this shape can still be validated; readers never see
    it, the upcaster turns it into the current shape.
    """

    event_type: ClassVar[str] = "OpinionSubmitted"
    schema_version: ClassVar[int] = 1

    channel: Channel
    text: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    category_hint: str | None = None
    station_code: Identifier | None = None
    community: Community | None = None
    address: Address | None = None
    lat: Latitude | None = None
    long: Longitude | None = None
    submitter: SubmitterRef | None = None
    on_behalf_of: OnBehalfOf | None = None
    attachments: list[HttpUrl] = Field(default_factory=list, max_length=9)


class OpinionSubmittedV2(OpinionEvent):
    """The second shape of ``OpinionSubmitted``: the text, the address, the point and the
    attachments in clear. Kept so that events stored in this shape can still be validated;
    readers see them upcast to the current shape, marked ``legacy_clear``."""

    event_type: ClassVar[str] = "OpinionSubmitted"
    schema_version: ClassVar[int] = 2

    channel: Channel
    text: Annotated[str, StringConstraints(min_length=1, max_length=4000)]
    category_hint: str | None = None
    location: Location = Field(default_factory=Location)
    submitter: SubmitterRef | None = None
    on_behalf_of: OnBehalfOf | None = None
    attachments: list[HttpUrl] = Field(default_factory=list, max_length=9)
    external_ref: Annotated[str, StringConstraints(max_length=64)] | None = None
    """The outside system's number for the same matter (a 12345 work order, an Open311 id)."""
    on_the_spot: OnTheSpotAnswer | None = None
    """Set when staff answered the opinion at the desk as they took it down (当场办结)."""
    tracking_ref: Annotated[str, StringConstraints(pattern=r"^t1\.[0-9a-f]{32}$")] | None = None
    """A keyed hash of the opinion's tracking code (``PersonalDataVault.tracking_ref``),
    never the code: staff find the case a resident's code names. Not on the public feed."""


class OpinionSubmitted(OpinionEvent):
    """A resident raised a problem or a suggestion (民意/诉求).

    The resident's words travel sealed: ``sealed`` holds the text, the address, the point
    and the attachments, encrypted with the opinion's own text key
    (``eventkit.sealed_texts``); ``text``, ``location.address``/``lat``/``long`` and
    ``attachments`` are then empty on the wire, and a reader that opens ``sealed`` gets a
    copy of the event with them filled in (or with the erased mark, once the key was
    deleted by a request to be forgotten or by the district's retention). Events stored
    before sealing existed (v1, v2) are upcast with their texts in clear and
    ``legacy_clear`` set: the upcaster cannot encrypt.
    """

    event_type: ClassVar[str] = "OpinionSubmitted"
    schema_version: ClassVar[int] = 3

    channel: Channel
    text: Annotated[str, StringConstraints(max_length=4000)] = ""
    """Empty when ``sealed`` holds the text; in clear only on a legacy event."""
    category_hint: str | None = None
    location: Location = Field(default_factory=Location)
    """The station and the community in clear (routing places the case by them); the
    address and the point are in ``sealed``."""
    submitter: SubmitterRef | None = None
    on_behalf_of: OnBehalfOf | None = None
    attachments: list[HttpUrl] = Field(default_factory=list, max_length=9)
    """Empty when ``sealed`` holds them."""
    external_ref: Annotated[str, StringConstraints(max_length=64)] | None = None
    """The outside system's number for the same matter (a 12345 work order, an Open311 id)."""
    on_the_spot: OnTheSpotAnswer | None = None
    """Set when staff answered the opinion at the desk as they took it down (当场办结)."""
    tracking_ref: Annotated[str, StringConstraints(pattern=r"^t1\.[0-9a-f]{32}$")] | None = None
    """A keyed hash of the opinion's tracking code (``PersonalDataVault.tracking_ref``),
    never the code: staff find the case a resident's code names. Not on the public feed."""
    sealed: SealedText | None = None
    """The text, address, point and attachments, sealed with the opinion's text key."""
    legacy_clear: bool = False
    """Set by the upcaster on an event stored before sealing (v1, v2): its texts are in
    clear in the store, and no key deletion reaches them."""


def upcast_opinion_submitted_v2(data: dict[str, Any]) -> dict[str, Any]:
    """v2 → v3: nothing moves (the upcaster cannot encrypt); the event is marked as one
    whose texts are in clear."""
    return {**data, "legacy_clear": True}


def upcast_opinion_submitted_v1(data: dict[str, Any]) -> dict[str, Any]:
    """v1 → v2: gather the flat location fields into ``location``."""
    out = dict(data)
    location = {
        key: out.pop(key)
        for key in ("station_code", "community", "address", "lat", "long")
        if key in out
    }
    out["location"] = {k: v for k, v in location.items() if v is not None}
    return out


class OpinionWithdrawn(OpinionEvent):
    """The resident took the opinion back before it was resolved."""

    event_type: ClassVar[str] = "OpinionWithdrawn"

    reason: Annotated[str, StringConstraints(max_length=500)] | None = None
    """In clear only on events stored before reasons were sealed: ``sealed`` holds it."""
    sealed: SealedText | None = None
    """The resident's reason, sealed with their opinion's text key (``key_id`` is the
    opinion's id): shredded with the opinion's words."""


class FeedbackSubmitted(OpinionEvent):
    """The resident rated how a resolved case was handled (一哨一评价)."""

    event_type: ClassVar[str] = "FeedbackSubmitted"

    case_id: Identifier
    resolution_seq: int = Field(ge=1)
    """Which resolution of the case this rates: one feedback per resolution."""
    satisfaction: int = Field(ge=1, le=5)
    resolved: bool
    comment: Annotated[str, StringConstraints(max_length=1000)] | None = None
    """In clear only on events stored before comments were sealed: ``sealed`` holds it."""
    sealed: SealedText | None = None
    """The resident's comment, sealed with their opinion's text key (``key_id`` is the
    opinion's id): deleting that key, when they are forgotten or the matter's retention
    ends, shreds it with the opinion's words."""


class QrScansRecorded(Event):
    """How often a station's QR page (民情码) was opened on a local day, and how many
    opinions were submitted from it that day: the day's totals so far (扫码量 against
    opinions submitted). Intake counts the page views in its own schema and records the
    totals every few minutes while they change; the latest event of a day holds them.

    Stream ``qrscans-<district>.<station_code>``.
    """

    event_type: ClassVar[str] = "QrScansRecorded"
    stream_category: ClassVar[str] = "qrscans"
    context: ClassVar[str] = "intake"

    station_code: Identifier
    day: date
    """The local day of the district."""
    scans: int = Field(ge=0)
    opinions: int = Field(ge=0)

    @property
    def stream_key(self) -> str:
        return f"{self.district_id}.{self.station_code}"


EVENTS: tuple[type[Event], ...] = (
    OpinionSubmittedV1,
    OpinionSubmittedV2,
    OpinionSubmitted,
    OpinionWithdrawn,
    FeedbackSubmitted,
    QrScansRecorded,
)
"""Every event of this context, every version; registered by ``contracts``."""

UPCASTERS: tuple[tuple[str, int, Callable[[dict[str, Any]], dict[str, Any]]], ...] = (
    ("OpinionSubmitted", 1, upcast_opinion_submitted_v1),
    ("OpinionSubmitted", 2, upcast_opinion_submitted_v2),
)
"""(event type, from version, function) for each step from an old shape to the next."""
