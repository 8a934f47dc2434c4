"""A district file (``deploy/districts/<code>.yaml``): what it may say, read and checked.

The file describes a district as it should be: streets with their communities, stations,
representatives (with their stations and reception days), the taxonomy, the working
calendar's own holiday entries and the routing policy. The same entries are the bodies of
the directory admin API. What importing one changes is decided by
:mod:`services.routing.directory_plan`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, time
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from contracts.base import DistrictId, Identifier, LatLong
from contracts.directory import (
    ActivityKind,
    CalendarYear,
    Duration,
    EscalationLevel,
    Keyword,
    PriorityDeadlines,
    RepresentativeLevel,
    ScoreWeights,
    StaffMemberRole,
    StationKind,
    TaxonomyCategory,
)
from eventkit.documents import parse_yaml
from eventkit.refusals import InvalidInput

Name = Annotated[str, StringConstraints(min_length=1, max_length=100)]
NOT_IN_FILE = "不在区目录文件中 / not in the district file"


class FileEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DistrictEntry(FileEntry):
    """The district itself."""

    code: DistrictId
    name_zh: Name
    name_en: Annotated[str, StringConstraints(max_length=100)] | None = None
    timezone: str = "Asia/Shanghai"


class CommunityEntry(FileEntry):
    """A community of a street."""

    name: Name
    electoral_district: Annotated[str, StringConstraints(max_length=100)] | None = None
    position: LatLong | None = None


class StreetEntry(FileEntry):
    """A street, its working committee and its communities."""

    code: Identifier
    name_zh: Name
    committee_name_zh: Name | None = None
    supervisors: list[Identifier] = Field(default_factory=list)
    communities: list[CommunityEntry] = Field(default_factory=list)


class StationEntry(FileEntry):
    """A liaison station."""

    code: Identifier
    name_zh: Name
    kind: StationKind
    street: Identifier
    communities: list[Name] = Field(default_factory=list)
    address: Annotated[str, StringConstraints(max_length=300)] | None = None
    position: LatLong | None = None
    star_rating: int | None = Field(default=None, ge=1, le=5)
    head: Identifier | None = None
    """The station head's representative id."""
    liaison_officers: list[Identifier] = Field(default_factory=list)
    retired: bool = False
    retired_reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class Monthly(FileEntry):
    """The n-th given weekday of every month (e.g. the third Tuesday: week 3, weekday 2)."""

    week: int = Field(ge=1, le=5)
    weekday: int = Field(ge=1, le=7)


class Weekly(FileEntry):
    """A weekday of every week (1 Monday … 7 Sunday)."""

    weekday: int = Field(ge=1, le=7)


class ReceptionEntry(FileEntry):
    """A representative's reception day(s) at a station: one day, or a recurring rule."""

    station: Identifier
    day: date | None = None
    monthly: Monthly | None = None
    weekly: Weekly | None = None
    starts_at: time | None = None
    ends_at: time | None = None


class RepresentativeEntry(FileEntry):
    """A representative."""

    id: Identifier
    name_zh: Name
    level: RepresentativeLevel
    electoral_district: Annotated[str, StringConstraints(max_length=100)] | None = None
    residence_community: Annotated[str, StringConstraints(max_length=100)] | None = None
    expertise: list[Annotated[str, StringConstraints(max_length=50)]] = Field(default_factory=list)
    contact_point: Identifier | None = None
    leading_cadre: bool = False
    stations: list[Identifier] = Field(default_factory=list)
    reception: list[ReceptionEntry] = Field(default_factory=list)
    retired: bool = False
    retired_reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class DepartmentEntry(FileEntry):
    """A functional department the stations can summon (吹哨)."""

    code: Identifier
    name_zh: Name
    duty_staff: list[Identifier] = Field(default_factory=list)
    """Staff ids told of each whistle, who may act for the department."""
    report_in: Duration = "1wd"
    respond_in: Duration = "5wd"
    categories: list[Identifier] = Field(default_factory=list)
    retired: bool = False
    retired_reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class StaffEntry(FileEntry):
    """A community commissioner (社区专员), district office or department staff member."""

    id: Identifier
    role: StaffMemberRole
    name_zh: Name | None = None
    street: Identifier | None = None
    communities: list[Name] = Field(default_factory=list)
    department: Identifier | None = None
    retired: bool = False
    retired_reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class SpokespersonEntry(FileEntry):
    """A citizen spokesperson (群众代言员) on a station's roster."""

    id: Identifier
    station: Identifier
    name_zh: Name
    community: Name | None = None
    appointed_on: date | None = None
    retired: bool = False
    retired_reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class ActivityEntry(FileEntry):
    """Representatives' work held at a station (the registers' entries)."""

    id: Identifier
    station: Identifier
    kind: ActivityKind
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    held_on: date
    starts_at: time | None = None
    ends_at: time | None = None
    representatives: list[Identifier] = Field(default_factory=list, max_length=200)
    spokespersons: list[Identifier] = Field(default_factory=list, max_length=200)
    residents_met: int = Field(default=0, ge=0)
    opinions_taken: int = Field(default=0, ge=0)
    reception_day: date | None = None
    location: Annotated[str, StringConstraints(max_length=300)] | None = None
    summary: Annotated[str, StringConstraints(max_length=2000)] | None = None


class TaxonomyEntry(FileEntry):
    """The taxonomy, as in ``TaxonomyPublished`` without its version."""

    categories: list[TaxonomyCategory] = Field(min_length=1)
    urgent_keywords: list[Keyword] = Field(default_factory=list)
    important_keywords: list[Keyword] = Field(default_factory=list)
    urgent_category: Identifier | None = None
    default_deadlines: PriorityDeadlines


class CalendarEntry(FileEntry):
    """Office hours and the district's holiday entries (the editable holiday file)."""

    office_opens: time = time(9, 0)
    office_closes: time = time(18, 0)
    years: list[CalendarYear] = Field(default_factory=list)

    @model_validator(mode="after")
    def _office_hours(self) -> CalendarEntry:
        if self.office_opens.tzinfo is not None or self.office_closes.tzinfo is not None:
            raise ValueError(
                "办公时间是当地时间，不带时区 / office hours are local, without an offset"
            )
        if self.office_closes <= self.office_opens:
            raise ValueError("办公时间须先开始后结束 / office hours must close after they open")
        return self


class PolicyEntry(FileEntry):
    """The routing policy, as in ``RoutingPolicyPublished`` without its version."""

    weights: ScoreWeights = Field(default_factory=ScoreWeights)
    max_open_cases: int = Field(default=20, ge=1)
    reception_horizon_days: int = Field(default=14, ge=1)
    escalation_ladder: list[EscalationLevel] = Field(
        default_factory=lambda: ["station_head", "street"], min_length=1
    )
    supervision: Duration = "1wd"
    escalation_default: Duration = "5wd"
    suggestion_reply: Duration = "90d"
    duplicate_radius_m: int = Field(default=300, ge=0)
    duplicate_window_days: int = Field(default=30, ge=1)
    duplicate_text_similarity: float = Field(default=0.9, gt=0, le=1)


class DirectoryChanges(FileEntry):
    """Any part of a district's description; a district file holds all of them."""

    district: DistrictEntry | None = None
    streets: list[StreetEntry] = Field(default_factory=list)
    stations: list[StationEntry] = Field(default_factory=list)
    representatives: list[RepresentativeEntry] = Field(default_factory=list)
    departments: list[DepartmentEntry] = Field(default_factory=list)
    staff: list[StaffEntry] = Field(default_factory=list)
    spokespersons: list[SpokespersonEntry] = Field(default_factory=list)
    activities: list[ActivityEntry] = Field(default_factory=list)
    taxonomy: TaxonomyEntry | None = None
    calendar: CalendarEntry | None = None
    policy: PolicyEntry | None = None


class DistrictFile(DirectoryChanges):
    """A whole district file: the district is required."""

    district: DistrictEntry


class DistrictFileError(InvalidInput):
    """The file is not a valid district description; ``problems`` lists why."""

    code = "invalid-directory"

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(
            "目录内容有误",
            "Invalid directory description",
            "；".join(self.problems[:20]),
            "; ".join(self.problems[:20]),
            extra={"problems": self.problems},
        )


def parse_district_file(text: str, *, source: str = "<text>") -> DistrictFile:
    """A district file from YAML text; :class:`DistrictFileError` listing every problem."""
    return parse_yaml(text, DistrictFile, source=source, refuse=DistrictFileError)


def load_district_file(path: Path) -> DistrictFile:
    """A district file from disk."""
    return parse_district_file(path.read_text(encoding="utf-8"), source=str(path))
