"""Events of the directory: districts, stations, representatives.

Streams: ``district-<district>``, ``station-<district>.<station_code>``,
``representative-<district>.<representative_id>``.
"""

from __future__ import annotations

from datetime import date, time
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from contracts.base import Event, Identifier, LatLong
from contracts.cases import Priority

ZhName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
CommunityName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Reason = Annotated[str, StringConstraints(max_length=500)]
Keyword = Annotated[str, StringConstraints(min_length=1, max_length=30)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=50)]
Duration = Annotated[str, StringConstraints(pattern=r"^[1-9][0-9]{0,3}(h|d|wh|wd)$")]
"""A time allowance: ``4h`` clock hours, ``3d`` calendar days, ``8wh`` working hours,
``5wd`` working days (official holidays and make-up working days taken into account)."""


class StationKind(StrEnum):
    """The four kinds of liaison station."""

    HOME = "home"  # 代表之家
    COMMUNITY = "community"  # 社区联络站
    INDUSTRY = "industry"  # 行业/园区联络站
    CONTACT_POINT = "contact_point"  # 联系点


class RepresentativeLevel(StrEnum):
    """The people's congress a representative sits in."""

    NATIONAL = "national"
    PROVINCIAL = "provincial"
    MUNICIPAL = "municipal"
    DISTRICT = "district"
    DELIBERATIVE = "deliberative"
    """议政代表: a resident elected to deliberate on a street's affairs where there is no
    people's congress of that level (街道议政代表会议)."""


class ActivityKind(StrEnum):
    """What representatives did at a station, as the station's registers (六簿) file it."""

    THEME = "theme"  # 主题活动
    TRAINING = "training"  # 学习培训
    INSPECTION = "inspection"  # 调研视察
    DUTY_REPORT = "duty_report"  # 述职评议
    RECEPTION = "reception"  # 接待选民（代表进站）


class StaffMemberRole(StrEnum):
    """Roles of people the directory registers beyond representatives, liaison officers
    and street supervisors (who are named by their stations and streets)."""

    COMMUNITY_COMMISSIONER = "community_commissioner"  # 社区专员
    DISTRICT_OFFICE = "district_office"  # 区人大代表工作室/联络办工作人员
    DEPARTMENT = "department"  # 职能部门工作人员


class DirectoryEvent(Event):
    """An event of the directory context."""

    context: ClassVar[str] = "directory"


class DistrictRegistered(DirectoryEvent):
    """A district (the tenant) joined the deployment."""

    event_type: ClassVar[str] = "DistrictRegistered"
    stream_category: ClassVar[str] = "district"

    name_zh: ZhName
    name_en: Annotated[str, StringConstraints(max_length=100)] | None = None
    timezone: str = "Asia/Shanghai"

    @property
    def stream_key(self) -> str:
        return self.district_id


class StationRegistered(DirectoryEvent):
    """A liaison station opened (or its details were registered again, replacing them)."""

    event_type: ClassVar[str] = "StationRegistered"
    stream_category: ClassVar[str] = "station"

    station_code: Identifier
    name_zh: ZhName
    kind: StationKind
    street_code: Identifier
    street_name_zh: ZhName | None = None
    communities: list[Annotated[str, StringConstraints(max_length=100)]] = Field(
        default_factory=list
    )
    address: Annotated[str, StringConstraints(max_length=300)] | None = None
    position: LatLong | None = None
    star_rating: int | None = Field(default=None, ge=1, le=5)
    head_representative_id: Identifier | None = None
    """The station head (站长), a representative: the first rung of escalation."""
    liaison_officers: list[Identifier] = Field(default_factory=list)
    """Staff ids of the station's liaison officers (联络员): they work its queues."""

    @property
    def stream_key(self) -> str:
        return f"{self.district_id}.{self.station_code}"


class StationMoved(DirectoryEvent):
    """The station moved: new street, address, position or communities served."""

    event_type: ClassVar[str] = "StationMoved"
    stream_category: ClassVar[str] = "station"

    station_code: Identifier
    street_code: Identifier
    communities: list[CommunityName] = Field(default_factory=list)
    address: Annotated[str, StringConstraints(max_length=300)] | None = None
    position: LatLong | None = None

    @property
    def stream_key(self) -> str:
        return f"{self.district_id}.{self.station_code}"


class StationRetired(DirectoryEvent):
    """The station closed. Its history stays; registering it again reopens it."""

    event_type: ClassVar[str] = "StationRetired"
    stream_category: ClassVar[str] = "station"

    station_code: Identifier
    reason: Reason | None = None

    @property
    def stream_key(self) -> str:
        return f"{self.district_id}.{self.station_code}"


class RepresentativeEvent(DirectoryEvent):
    """An event in a representative's stream."""

    stream_category: ClassVar[str] = "representative"

    representative_id: Identifier

    @property
    def stream_key(self) -> str:
        return f"{self.district_id}.{self.representative_id}"


class RepresentativeRegistered(RepresentativeEvent):
    """A people's-congress representative was registered (again: their details replaced).

    Their name is public office, not a resident's personal data.
    """

    event_type: ClassVar[str] = "RepresentativeRegistered"

    name_zh: ZhName
    level: RepresentativeLevel
    electoral_district: Annotated[str, StringConstraints(max_length=100)] | None = None
    residence_community: Annotated[str, StringConstraints(max_length=100)] | None = None
    expertise: list[Annotated[str, StringConstraints(max_length=50)]] = Field(default_factory=list)
    contact_point: Identifier | None = None
    leading_cadre: bool = False


class RepresentativeRetired(RepresentativeEvent):
    """The representative's term ended (or they resigned): no new cases. History stays."""

    event_type: ClassVar[str] = "RepresentativeRetired"

    reason: Reason | None = None


class RepresentativeJoinedStation(RepresentativeEvent):
    """The representative was grouped into a station (编组进站)."""

    event_type: ClassVar[str] = "RepresentativeJoinedStation"

    station_code: Identifier


class RepresentativeLeftStation(RepresentativeEvent):
    """The representative left a station."""

    event_type: ClassVar[str] = "RepresentativeLeftStation"

    station_code: Identifier


class ReceptionDayScheduled(RepresentativeEvent):
    """The representative will receive residents at a station on a day."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str] = "ReceptionDayScheduled"

    station_code: Identifier
    day: date
    starts_at: time | None = None
    ends_at: time | None = None


class ReceptionDayCancelled(RepresentativeEvent):
    """A scheduled reception day will not take place (the residents are told on the QR
    page). It stays known, so planning never schedules it again."""

    event_type: ClassVar[str] = "ReceptionDayCancelled"

    station_code: Identifier
    day: date
    reason: Reason | None = None


class ReceptionDayMoved(RepresentativeEvent):
    """A scheduled reception day moved to another day (and hours)."""

    event_type: ClassVar[str] = "ReceptionDayMoved"

    station_code: Identifier
    day: date
    to_day: date
    starts_at: time | None = None
    ends_at: time | None = None
    reason: Reason | None = None


class Monthly(BaseModel):
    """The n-th given weekday of every month (the third Tuesday: week 3, weekday 2)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    week: int = Field(ge=1, le=5)
    weekday: int = Field(ge=1, le=7)


class Weekly(BaseModel):
    """A weekday of every week (1 Monday … 7 Sunday)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    weekday: int = Field(ge=1, le=7)


class ReceptionRule(BaseModel):
    """A recurring reception day of a representative at a station."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    station_code: Identifier
    monthly: Monthly | None = None
    weekly: Weekly | None = None
    starts_at: time | None = None
    ends_at: time | None = None


class ReceptionRulesPublished(RepresentativeEvent):
    """The representative's recurring reception days, replacing the previous rules.

    Routing plans concrete ``ReceptionDayScheduled`` days from them a few months ahead,
    and keeps planning as time passes: a long-running service never runs out of days.
    """

    event_type: ClassVar[str] = "ReceptionRulesPublished"

    rules: list[ReceptionRule] = Field(default_factory=list, max_length=20)


class StationStreamEvent(DirectoryEvent):
    """An event in a station's stream beyond its registration: its people and activities."""

    stream_category: ClassVar[str] = "station"

    station_code: Identifier

    @property
    def stream_key(self) -> str:
        return f"{self.district_id}.{self.station_code}"


class SpokespersonRegistered(StationStreamEvent):
    """A citizen spokesperson (群众代言员) joined the station's roster (again: details
    replaced). Spokespersons are appointed in public (公示), like representatives; no
    contact details are kept here."""

    event_type: ClassVar[str] = "SpokespersonRegistered"

    spokesperson_id: Identifier
    name_zh: ZhName
    community: CommunityName | None = None
    appointed_on: date | None = None


class SpokespersonRetired(StationStreamEvent):
    """The spokesperson left the station's roster; what they collected stays counted."""

    event_type: ClassVar[str] = "SpokespersonRetired"

    spokesperson_id: Identifier
    reason: Reason | None = None


Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class ActivityRecorded(StationStreamEvent):
    """Representatives' work at the station, as it was held: a theme activity, training,
    inspection or survey, duty report and review, or a reception of residents (代表进站).

    Recording the same ``activity_id`` again replaces the record (a correction).
    """

    event_type: ClassVar[str] = "ActivityRecorded"

    activity_id: Identifier
    kind: ActivityKind
    title: Title
    held_on: date
    starts_at: time | None = None
    ends_at: time | None = None
    representatives: list[Identifier] = Field(default_factory=list, max_length=200)
    """The representatives present."""
    spokespersons: list[Identifier] = Field(default_factory=list, max_length=200)
    residents_met: int = Field(default=0, ge=0)
    """Residents received or met (a count: never who)."""
    opinions_taken: int = Field(default=0, ge=0)
    """Opinions taken down at it."""
    reception_day: date | None = None
    """For a reception: the scheduled reception day it held."""
    location: Annotated[str, StringConstraints(max_length=300)] | None = None
    summary: Annotated[str, StringConstraints(max_length=2000)] | None = None
    """What was done, staff-written (never a resident's name or words)."""


class DistrictStreamEvent(DirectoryEvent):
    """An event in the district's own stream: its streets, communities and rules."""

    stream_category: ClassVar[str] = "district"

    @property
    def stream_key(self) -> str:
        return self.district_id


class StreetRegistered(DistrictStreamEvent):
    """A street (街道) of the district, with its working committee (街道工委)."""

    event_type: ClassVar[str] = "StreetRegistered"

    street_code: Identifier
    name_zh: ZhName
    committee_name_zh: ZhName | None = None
    """The street's people's-congress working committee, e.g. 东湖街道人大工委."""
    supervisors: list[Identifier] = Field(default_factory=list)
    """Staff ids of the committee's supervisors: they see the street's escalated cases."""


class CommunityRegistered(DistrictStreamEvent):
    """A community (社区) of a street, in an electoral district (选区)."""

    event_type: ClassVar[str] = "CommunityRegistered"

    community: CommunityName
    street_code: Identifier
    electoral_district: Annotated[str, StringConstraints(max_length=100)] | None = None
    position: LatLong | None = None


class DeadlinePair(BaseModel):
    """How long until the first response and until the matter is resolved."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    response: Duration
    resolution: Duration


class PriorityDeadlines(BaseModel):
    """Deadlines per priority; a missing priority falls back to the taxonomy's default."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    normal: DeadlinePair | None = None
    important: DeadlinePair | None = None
    urgent: DeadlinePair | None = None


class TaxonomyCategory(BaseModel):
    """A category of opinion: its code, name, keywords and deadlines."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    code: Identifier
    name_zh: ZhName
    name_en: Annotated[str, StringConstraints(max_length=100)] | None = None
    group: ZhName | None = None
    """The broader class it belongs to (城市建设与管理): the QR form's option group and
    Open311's ``group``."""
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    """What belongs here, in words for residents (Open311's service description)."""
    keywords: list[Keyword] = Field(min_length=1)
    expertise: list[Tag] = Field(default_factory=list)
    """Representatives' expertise tags that fit this category."""
    priority: Priority = Priority.NORMAL
    """The category's own priority (e.g. safety is important at least)."""
    deadlines: PriorityDeadlines | None = None


class TaxonomyPublished(DistrictStreamEvent):
    """The district's classification rules (分类目录), replacing the previous version."""

    event_type: ClassVar[str] = "TaxonomyPublished"

    version: int = Field(ge=1)
    categories: list[TaxonomyCategory] = Field(min_length=1)
    urgent_keywords: list[Keyword] = Field(default_factory=list)
    """Words that make a matter urgent (要事): gas leak, fire, exposed wiring…"""
    important_keywords: list[Keyword] = Field(default_factory=list)
    """Words that make a matter important (大事)."""
    urgent_category: Identifier | None = None
    """The category of an urgent matter that matched no category's keywords."""
    default_deadlines: PriorityDeadlines


class CalendarYear(BaseModel):
    """The district's own entries for one year: days off and make-up working days."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    year: int = Field(ge=2000, le=2200)
    complete: bool = False
    """True once the official schedule of the year is entered in full: not provisional."""
    days_off: list[date] = Field(default_factory=list)
    working_days: list[date] = Field(default_factory=list)
    note: Reason | None = None


class WorkCalendarPublished(DistrictStreamEvent):
    """The district's working calendar: office hours and its holiday file's entries."""

    event_type: ClassVar[str] = "WorkCalendarPublished"

    version: int = Field(ge=1)
    office_opens: time = time(9, 0)
    office_closes: time = time(18, 0)
    years: list[CalendarYear] = Field(default_factory=list)


class ScoreWeights(BaseModel):
    """The weight of each part of a representative's score for a case."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    electoral_district: float = Field(default=3.0, ge=0)
    residence: float = Field(default=2.0, ge=0)
    expertise: float = Field(default=3.0, ge=0)
    contact_point: float = Field(default=1.5, ge=0)
    workload: float = Field(default=2.0, ge=0)
    reception: float = Field(default=1.0, ge=0)
    leading_cadre: float = Field(default=2.0, ge=0)


EscalationLevel = Annotated[str, StringConstraints(pattern=r"^(station_head|street|district)$")]


class RoutingPolicyPublished(DistrictStreamEvent):
    """How the district assigns, escalates and links cases, replacing the previous version."""

    event_type: ClassVar[str] = "RoutingPolicyPublished"

    version: int = Field(ge=1)
    weights: ScoreWeights = Field(default_factory=ScoreWeights)
    max_open_cases: int = Field(default=20, ge=1)
    """A representative with this many open cases gets no more (urgent ones excepted)."""
    reception_horizon_days: int = Field(default=14, ge=1)
    escalation_ladder: list[EscalationLevel] = Field(
        default_factory=lambda: ["station_head", "street"], min_length=1
    )
    """Who is told of each successive missed deadline of a case (督办)."""
    supervision: Duration = "1wd"
    """Time given to the rung told of a missed deadline before the next one is told."""
    escalation_default: Duration = "5wd"
    """A summoned department's deadline when the whistle-blower names none."""
    suggestion_reply: Duration = "90d"
    duplicate_radius_m: int = Field(default=300, ge=0)
    duplicate_window_days: int = Field(default=30, ge=1)
    duplicate_text_similarity: float = Field(default=0.9, gt=0, le=1)


class StorePosition(BaseModel):
    """A place in the event store's order: (transaction id, global position)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    transaction_id: int = Field(ge=0)
    global_position: int = Field(ge=0)


class DepartmentRegistered(DistrictStreamEvent):
    """A functional department (职能部门) the district's stations can summon (吹哨),
    registered again to replace its details."""

    event_type: ClassVar[str] = "DepartmentRegistered"

    department_code: Identifier
    name_zh: ZhName
    duty_staff: list[Identifier] = Field(default_factory=list)
    """Staff ids the department is reached through (its duty officers, its work-order
    account): they are told of each whistle and may act for the department."""
    report_in: Duration = "1wd"
    """Time the department has to report in after a whistle (部门报到)."""
    respond_in: Duration = "5wd"
    """Time it has to feed back what it did (处理反馈), unless the whistle names one."""
    categories: list[Identifier] = Field(default_factory=list)
    """Categories of the taxonomy it usually handles (a hint for whistle-blowers)."""


class DepartmentRetired(DistrictStreamEvent):
    """The department can no longer be summoned; its whistles and ratings stay."""

    event_type: ClassVar[str] = "DepartmentRetired"

    department_code: Identifier
    reason: Reason | None = None


class StaffMemberRegistered(DistrictStreamEvent):
    """A person working for the district in a role beyond a station's liaison officer or a
    street's supervisor (again: details replaced): a community commissioner (社区专员), a
    district office's staff, a department's staff."""

    event_type: ClassVar[str] = "StaffMemberRegistered"

    staff_id: Identifier
    role: StaffMemberRole
    name_zh: ZhName | None = None
    street_code: Identifier | None = None
    """A commissioner's street."""
    communities: list[CommunityName] = Field(default_factory=list)
    """A commissioner's communities (包联社区)."""
    department_code: Identifier | None = None
    """A department's staff: their department."""


class StaffMemberRetired(DistrictStreamEvent):
    """The person no longer works in the role; what they did stays on record."""

    event_type: ClassVar[str] = "StaffMemberRetired"

    staff_id: Identifier
    reason: Reason | None = None


Digest = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A SHA-256, in hex."""


class ClassifierTrained(DistrictStreamEvent):
    """A new version of the district's text classifier is in use (分类模型).

    Every ``CaseOpened`` names the version that classified it. The model itself is kept
    by routing (its digest is here); what follows is enough to fit it again and check
    that the same model comes out: the labelled examples (by digest), the staff
    corrections (``CaseClassified`` up to a position in the store), the method and its
    hyperparameters, and the library versions that fitted it.
    """

    event_type: ClassVar[str] = "ClassifierTrained"

    version: int = Field(ge=1)
    taxonomy_version: int = Field(ge=1)
    """The taxonomy whose keywords were examples too."""
    method: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    model_digest: Digest
    hyperparameters: dict[str, float | int | str | bool] = Field(default_factory=dict)
    examples_digest: Digest
    """The labelled set, in order (its file is kept with the district's file)."""
    examples: int = Field(ge=0)
    corrections: int = Field(ge=0)
    corrections_digest: Digest
    corrections_through: StorePosition | None = None
    """The last store position read for corrections (None: the store held none)."""
    heldout_digest: Digest
    heldout_accuracy: float = Field(ge=0, le=1)
    heldout_urgent_recall: float = Field(ge=0, le=1)
    urgency_threshold: float = Field(ge=0, le=1)
    replaced_version: int | None = None
    """The version in use before (None: the taxonomy's keywords alone)."""
    libraries: dict[str, str] = Field(default_factory=dict)


EVENTS: tuple[type[Event], ...] = (
    DistrictRegistered,
    StationRegistered,
    RepresentativeRegistered,
    RepresentativeJoinedStation,
    RepresentativeLeftStation,
    ReceptionDayScheduled,
    StationMoved,
    StationRetired,
    RepresentativeRetired,
    StreetRegistered,
    CommunityRegistered,
    TaxonomyPublished,
    WorkCalendarPublished,
    RoutingPolicyPublished,
    ClassifierTrained,
    DepartmentRegistered,
    DepartmentRetired,
    StaffMemberRegistered,
    StaffMemberRetired,
    SpokespersonRegistered,
    SpokespersonRetired,
    ActivityRecorded,
    ReceptionDayCancelled,
    ReceptionDayMoved,
    ReceptionRulesPublished,
)
"""Every event of this context, every version; registered by ``contracts``."""
