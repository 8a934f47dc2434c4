"""What staff and the system ask of a case: one frozen dataclass per command.

Each carries who asks (``actor``) and when (``now``), and everything the decision needs
that the case's state does not hold (deadlines computed on the district's calendar, the
assignment scored on its directory), so that :func:`services.routing.domain.decide` stays
pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from contracts.base import Actor
from contracts.cases import Priority
from contracts.intake import Channel, OnBehalfOf, OnTheSpotAnswer
from services.routing.assignment import Assignment
from services.routing.case_state import Link
from services.routing.classification import Classification
from services.routing.deadlines import Due
from services.routing.directory import Community


@dataclass(frozen=True, kw_only=True)
class Command:
    """Something asked of a case, by someone, at a moment."""

    name: ClassVar[str]
    actor: Actor
    now: datetime


@dataclass(frozen=True, kw_only=True)
class OpenCase(Command):
    """Turn a classified opinion into a case and assign it."""

    name: ClassVar[str] = "open"
    case_id: str
    district_id: str
    opinion_id: str
    classification: Classification
    """Category, priority and why: keywords, hint, and the trained model's evidence."""
    response_due: Due
    resolution_due: Due
    assignment: Assignment
    related: tuple[Link, ...] = ()
    taxonomy_version: int | None = None
    transferred_from: tuple[str, str] | None = None
    """(district, case id) of the case this one continues."""
    channel: Channel | None = None
    """How the opinion came in."""
    community: Community | None = None
    """Where the matter is, as placed (given, or around its point)."""
    collected_by: OnBehalfOf | None = None
    """Who took the opinion down for the resident (spokesperson, visit, liaison)."""
    on_the_spot: OnTheSpotAnswer | None = None
    """Answered at the desk: the case is resolved and closed as it opens (当场办结)."""


@dataclass(frozen=True, kw_only=True)
class Accept(Command):
    """报到: the representative (or the liaison officer) takes the case on."""

    name: ClassVar[str] = "accept"


@dataclass(frozen=True, kw_only=True)
class Reply(Command):
    """An answer to the resident, interim or final."""

    name: ClassVar[str] = "reply"
    message: str
    public: bool = False
    """Marked fit for anyone to read (Open311); otherwise for the resident alone."""


@dataclass(frozen=True, kw_only=True)
class Classify(Command):
    """Staff set the category and/or the priority; deadlines are recomputed."""

    name: ClassVar[str] = "classify"
    category_code: str | None
    priority: Priority
    reason: str
    response_due: Due
    resolution_due: Due
    assignment: Assignment | None = None
    """For a case in triage at a station: where it goes now that it is classified."""


@dataclass(frozen=True, kw_only=True)
class Transfer(Command):
    """转办 inside the district: to another representative and/or station."""

    name: ClassVar[str] = "transfer"
    to_station_code: str | None
    to_representative_id: str | None
    reason: str
    assignment: Assignment | None = None
    """For a transfer to a station only: the station's scoring of its representatives."""


@dataclass(frozen=True, kw_only=True)
class TransferToDistrict(Command):
    """转办 to another district: the work continues there, in a case of its own."""

    name: ClassVar[str] = "transfer"
    to_district_id: str
    to_case_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Escalate(Command):
    """吹哨: a department, the station head, the street or the district is summoned."""

    name: ClassVar[str] = "escalate"
    to_level: str
    to_name: str
    due: datetime | None
    reason: str
    department_code: str | None = None
    """A registered department: it gets deadlines of its own."""
    report_due: datetime | None = None
    """When that department must report in."""


@dataclass(frozen=True, kw_only=True)
class Resolve(Command):
    """The matter is handled: result and evidence."""

    name: ClassVar[str] = "resolve"
    result: str
    evidence_urls: tuple[str, ...] = ()
    public: bool = False
    """The result and evidence marked fit for anyone to read (Open311)."""


@dataclass(frozen=True, kw_only=True)
class Close(Command):
    """核实结项: the result was verified."""

    name: ClassVar[str] = "close"
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class Withdraw(Command):
    """The resident withdrew the opinion."""

    name: ClassVar[str] = "withdraw"


@dataclass(frozen=True, kw_only=True)
class Reopen(Command):
    """Back to work, with the same representative and a new resolution deadline."""

    name: ClassVar[str] = "reopen"
    reason: str
    resolution_due: Due | None
    for_resolution: int | None = None
    """Set for a resident's feedback: the resolution it rates (must be the latest)."""


@dataclass(frozen=True, kw_only=True)
class ConvertToSuggestion(Command):
    """The matter exceeds the station's remit: a representative suggestion (代表建议)."""

    name: ClassVar[str] = "convert"
    title: str
    representative_id: str | None = None
    reply_due: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Merge(Command):
    """This case duplicates another: merge it there."""

    name: ClassVar[str] = "merge"
    into_case_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class LinkCase(Command):
    """Record a relation to another case (``duplicate``, ``related`` or ``merged``)."""

    name: ClassVar[str] = "link"
    related_case_id: str
    relation: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class ReportIn(Command):
    """部门报到: the summoned department has the matter."""

    name: ClassVar[str] = "department_report"
    whistle_seq: int
    department_code: str
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class Respond(Command):
    """处理反馈: the department says what it did (reporting in first, if it had not)."""

    name: ClassVar[str] = "department_respond"
    whistle_seq: int
    department_code: str
    action: str
    evidence_urls: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class RateDepartment(Command):
    """一哨一评价: after verification, the station rates a whistle's department."""

    name: ClassVar[str] = "rate_department"
    whistle_seq: int
    rating: int
    comment: str | None = None


@dataclass(frozen=True, kw_only=True)
class RecordCallback(Command):
    """回访: staff took down the resident's rating; an unhappy one reopens the case."""

    name: ClassVar[str] = "callback"
    satisfaction: int
    resolved: bool
    comment: str | None = None
    resolution_due: Due | None = None
    """The new resolution deadline, should the rating reopen the case."""


@dataclass(frozen=True, kw_only=True)
class AnswerSuggestion(Command):
    """代表建议答复: the body handling the suggestion answered it."""

    name: ClassVar[str] = "answer_suggestion"
    answer: str
    answered_by: str


@dataclass(frozen=True, kw_only=True)
class HandOn(Command):
    """转交: the representative responsible (谁走访谁负责) hands the case on, to another
    representative or to the station's liaison officers."""

    name: ClassVar[str] = "hand_on"
    to_representative_id: str | None
    to_station_code: str | None
    reason: str
