"""The JSON API's bodies: what comes in (checked, then turned into commands) and what
goes back (so that ``/openapi.json`` shows it), with the functions that write the views
into them. Times are strings in the district's offset, written as they always were."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts import Channel, OnBehalfOf
from eventkit.http import parse_model
from services.intake.directory import Station
from services.intake.progress import STAGE_WORDS, open311_status
from services.intake.submission_rules import Contact, SubmitOpinion
from services.intake.taxonomy import Category
from services.intake.tracking_codes import format_tracking_code
from services.intake.tracking_views import FeedbackGiven, TrackingView

DateTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
"""An ISO 8601 date-time with its offset."""

# --- what comes in ------------------------------------------------------------------


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
    answered_on_the_spot: str | None = None
    """当场办结: what the liaison officer or representative answered at the desk; the case
    is resolved and closed as it opens, in their name."""

    def command(self) -> SubmitOpinion:
        """The submission command (the fields to correct when ``on_behalf_of`` does not
        make a valid staff reference)."""
        location = self.location or LocationIn()
        behalf = (
            parse_model(OnBehalfOf, self.on_behalf_of.model_dump())
            if self.on_behalf_of is not None
            else None
        )
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
            answered_on_the_spot=self.answered_on_the_spot,
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


# --- what goes back -----------------------------------------------------------------


class ReceiptBody(BaseModel):
    """The answer to an accepted submission (and, the same, to its idempotent retries)."""

    opinion_id: str
    tracking_code: str
    """``ABCD-EFGH-JKMN``: the resident's credential to follow the matter."""
    tracking_url: str
    district: str
    station_code: str | None
    submitted_at: DateTime


class PositionBody(BaseModel):
    """A place in WGS84."""

    lat: float
    long: float


class StationBody(BaseModel):
    """A liaison station as residents see it."""

    district: str
    station_code: str
    name_zh: str
    kind: str
    street_code: str | None
    street_name_zh: str | None
    communities: list[str]
    address: str | None
    position: PositionBody | None
    star_rating: int | None


class StationDetailBody(StationBody):
    """A station with its representatives and the form its QR poster leads to."""

    representatives: list[str]
    form_url: str


class StationsBody(BaseModel):
    """A district's open stations."""

    district: str
    stations: list[StationBody]


class CategoryBody(BaseModel):
    """One category of the district's taxonomy."""

    code: str
    name_zh: str
    name_en: str | None
    group: str | None
    keywords: list[str]


class CategoriesBody(BaseModel):
    """A district's categories, in the published order."""

    district: str
    categories: list[CategoryBody]


class StationRef(BaseModel):
    """The station an opinion was raised at."""

    code: str
    name_zh: str | None


class CategoryRef(BaseModel):
    """The category of a matter: routing's, else the resident's choice."""

    code: str | None
    name_zh: str
    name_en: str


class StatusBody(BaseModel):
    """Where a matter stands, in words and as Open311's status."""

    stage: str
    label_zh: str
    label_en: str
    open311_status: str
    """GeoReport v2's ``open`` or ``closed``."""


class TimelineEntryBody(BaseModel):
    """One line of the timeline."""

    at: DateTime
    kind: str
    status: str
    text_zh: str
    text_en: str


class WithdrawalStateBody(BaseModel):
    """Whether the matter may still be withdrawn, and when it was."""

    open: bool
    withdrawn_at: DateTime | None


class RatingBody(BaseModel):
    """A rating the resident gave."""

    resolution_seq: int
    satisfaction: int
    resolved: bool
    comment: str | None
    submitted_at: DateTime


class FeedbackStateBody(BaseModel):
    """Whether a rating may be given now, and the ratings given."""

    open: bool
    resolution_seq: int
    given: list[RatingBody]


class MatterBody(BaseModel):
    """An opinion and its case, as its timeline tells it."""

    opinion_id: str
    district: str
    channel: str
    submitted_at: DateTime
    text: str
    station: StationRef | None
    category: CategoryRef | None
    status: StatusBody
    case_id: str | None
    resolution_due: DateTime | None
    timeline: list[TimelineEntryBody]
    withdrawal: WithdrawalStateBody
    feedback: FeedbackStateBody


class TrackingBody(MatterBody):
    """``GET /api/v1/track/<code>``: what the resident sees."""

    tracking_code: str


class ContactBody(BaseModel):
    """The resident's contact details, opened for staff (``erased`` once forgotten)."""

    subject_id: str
    erased: bool
    name: str | None
    phone: str | None


class OpinionBody(MatterBody):
    """``GET /api/v1/opinions/<id>``: what staff of the district see (never the tracking
    code, the resident's credential)."""

    contact: ContactBody | None
    contact_withheld: bool
    external_ref: str | None
    attachments: list[str]


class FeedbackBody(BaseModel):
    """The rating recorded."""

    case_id: str
    resolution_seq: int
    satisfaction: int
    resolved: bool
    submitted_at: DateTime


class WithdrawalBody(BaseModel):
    """When the matter was withdrawn."""

    withdrawn_at: DateTime


def station_body(station: Station) -> StationBody:
    """A station for the JSON API."""
    return StationBody(
        district=station.district_id,
        station_code=station.station_code,
        name_zh=station.name_zh,
        kind=station.kind,
        street_code=station.street_code,
        street_name_zh=station.street_name_zh,
        communities=list(station.communities),
        address=station.address,
        position=(
            PositionBody(lat=station.lat, long=station.long)
            if station.lat is not None and station.long is not None
            else None
        ),
        star_rating=station.star_rating,
    )


def category_body(category: Category) -> CategoryBody:
    """A category for the JSON API."""
    return CategoryBody(
        code=category.code,
        name_zh=category.name_zh,
        name_en=category.name_en,
        group=category.group,
        keywords=list(category.keywords),
    )


def _rating(given: FeedbackGiven, view: TrackingView) -> RatingBody:
    return RatingBody(
        resolution_seq=given.resolution_seq,
        satisfaction=given.satisfaction,
        resolved=given.resolved,
        comment=given.comment,
        submitted_at=given.submitted_at.astimezone(view.names.timezone).isoformat(),
    )


def matter_body(view: TrackingView) -> MatterBody:
    """What a tracking view shows of the opinion and its case, times in the district's
    offset."""
    opinion, progress = view.opinion, view.progress
    zh, en = STAGE_WORDS[view.stage]
    tz = view.names.timezone
    return MatterBody(
        opinion_id=opinion.opinion_id,
        district=opinion.district_id,
        channel=opinion.channel,
        submitted_at=opinion.submitted_at.astimezone(tz).isoformat(),
        text=opinion.text,
        station=(
            StationRef(code=opinion.station_code, name_zh=view.station_name)
            if opinion.station_code
            else None
        ),
        category=(
            CategoryRef(
                code=progress.category_code if progress else opinion.category_hint,
                name_zh=view.category[0],
                name_en=view.category[1],
            )
            if view.category
            else None
        ),
        status=StatusBody(
            stage=view.stage.value,
            label_zh=zh,
            label_en=en,
            open311_status=open311_status(view.stage),
        ),
        case_id=progress.case_id if progress else None,
        resolution_due=(
            progress.resolution_due.astimezone(tz).isoformat()
            if progress and progress.resolution_due
            else None
        ),
        timeline=[
            TimelineEntryBody(
                at=e.at.astimezone(tz).isoformat(),
                kind=e.kind,
                status=e.status,
                text_zh=e.text_zh,
                text_en=e.text_en,
            )
            for e in view.entries
        ],
        withdrawal=WithdrawalStateBody(
            open=view.withdrawal_open,
            withdrawn_at=(
                opinion.withdrawn_at.astimezone(tz).isoformat() if opinion.withdrawn_at else None
            ),
        ),
        feedback=FeedbackStateBody(
            open=view.feedback_open,
            resolution_seq=progress.resolution_seq if progress else 0,
            given=[_rating(f, view) for f in view.feedback],
        ),
    )


def tracking_body(view: TrackingView) -> TrackingBody:
    """The tracking view as the resident gets it (JSON, and the page's data)."""
    return TrackingBody(
        **dict(matter_body(view)),
        tracking_code=format_tracking_code(view.opinion.tracking_code),
    )
