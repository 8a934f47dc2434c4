"""The public feed of case events: ``minqing.public.<district>.cases.v1``.

Outside systems (a city 12345 platform, a data office) follow a district's cases here.
Each record is a case event cut down to the fields named below: facts about the case's
handling, never free text (replies, results, reasons, titles, matched keywords, names of
people or departments) and never anything about the resident. The notification service
builds the records; this module is the allow-list and the schema outside systems read.

Records are CloudEvents 1.0 in binary mode, like the internal topics: ``ce_id`` is the
original event's id, ``ce_type`` its type, key the case's stream id.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints

from contracts.base import DistrictId, Identifier
from contracts.cases import Priority
from contracts.intake import Channel

Level = Annotated[str, StringConstraints(max_length=32)]


class PublicCaseEvent(BaseModel):
    """What every public record says: which case, in which district, when."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_type: ClassVar[str]
    case_id: Identifier
    district_id: DistrictId
    occurred_at: AwareDatetime


class PublicCaseOpened(PublicCaseEvent):
    event_type: ClassVar[str] = "CaseOpened"

    category_code: Identifier | None = None
    priority: Priority
    channel: Channel | None = None
    community: Annotated[str, StringConstraints(max_length=100)] | None = None
    street_code: Identifier | None = None
    response_due: AwareDatetime | None = None
    resolution_due: AwareDatetime | None = None
    transferred_from_district_id: DistrictId | None = None


class PublicCaseClassified(PublicCaseEvent):
    event_type: ClassVar[str] = "CaseClassified"

    category_code: Identifier | None = None
    priority: Priority
    response_due: AwareDatetime | None = None
    resolution_due: AwareDatetime | None = None


class PublicCaseAssigned(PublicCaseEvent):
    event_type: ClassVar[str] = "CaseAssigned"

    station_code: Identifier | None = None
    representative_id: Identifier | None = None
    queue: Level


class PublicCaseAccepted(PublicCaseEvent):
    event_type: ClassVar[str] = "CaseAccepted"


class PublicCaseTransferred(PublicCaseEvent):
    event_type: ClassVar[str] = "CaseTransferred"

    to_district_id: DistrictId | None = None
    to_station_code: Identifier | None = None
    to_representative_id: Identifier | None = None


class PublicCaseEscalated(PublicCaseEvent):
    event_type: ClassVar[str] = "CaseEscalated"

    to_level: Level
    due: AwareDatetime | None = None
    department_code: Identifier | None = None
    whistle_seq: int | None = None
    report_due: AwareDatetime | None = None


class PublicCaseReplied(PublicCaseEvent):
    event_type: ClassVar[str] = "CaseReplied"


class PublicCaseResolved(PublicCaseEvent):
    event_type: ClassVar[str] = "CaseResolved"

    resolution_seq: int
    on_the_spot: bool = False


class PublicCaseClosed(PublicCaseEvent):
    event_type: ClassVar[str] = "CaseClosed"

    withdrawn: bool = False


class PublicCaseReopened(PublicCaseEvent):
    event_type: ClassVar[str] = "CaseReopened"

    resolution_due: AwareDatetime | None = None


class PublicCaseOverdue(PublicCaseEvent):
    event_type: ClassVar[str] = "CaseOverdue"

    deadline: Level
    due: AwareDatetime
    escalation_level: Level | None = None
    subject: Level | None = None
    department_code: Identifier | None = None
    whistle_seq: int | None = None


class PublicCaseLinked(PublicCaseEvent):
    event_type: ClassVar[str] = "CaseLinked"

    related_case_id: Identifier
    relation: Level


class PublicCaseMerged(PublicCaseEvent):
    event_type: ClassVar[str] = "CaseMerged"

    into_case_id: Identifier


class PublicCaseConvertedToSuggestion(PublicCaseEvent):
    event_type: ClassVar[str] = "CaseConvertedToSuggestion"

    reply_due: AwareDatetime | None = None


class PublicDepartmentReportedIn(PublicCaseEvent):
    event_type: ClassVar[str] = "DepartmentReportedIn"

    department_code: Identifier
    whistle_seq: int


class PublicDepartmentResponded(PublicCaseEvent):
    event_type: ClassVar[str] = "DepartmentResponded"

    department_code: Identifier
    whistle_seq: int


class PublicDepartmentRated(PublicCaseEvent):
    event_type: ClassVar[str] = "DepartmentRated"

    department_code: Identifier
    whistle_seq: int
    rating: int


class PublicCallbackRecorded(PublicCaseEvent):
    event_type: ClassVar[str] = "CallbackRecorded"

    resolution_seq: int
    satisfaction: int
    resolved: bool


class PublicSuggestionAnswered(PublicCaseEvent):
    event_type: ClassVar[str] = "SuggestionAnswered"


PUBLIC_EVENTS: dict[str, type[PublicCaseEvent]] = {
    model.event_type: model
    for model in (
        PublicCaseOpened,
        PublicCaseClassified,
        PublicCaseAssigned,
        PublicCaseAccepted,
        PublicCaseTransferred,
        PublicCaseEscalated,
        PublicCaseReplied,
        PublicCaseResolved,
        PublicCaseClosed,
        PublicCaseReopened,
        PublicCaseOverdue,
        PublicCaseLinked,
        PublicCaseMerged,
        PublicCaseConvertedToSuggestion,
        PublicDepartmentReportedIn,
        PublicDepartmentResponded,
        PublicDepartmentRated,
        PublicCallbackRecorded,
        PublicSuggestionAnswered,
    )
}
"""The public shape of each case event type; a type not here is not published."""


def public_data(event_type: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """The part of a case event's data the public feed carries (None: not published)."""
    model = PUBLIC_EVENTS.get(event_type)
    if model is None:
        return None
    public: dict[str, Any] = model.model_validate(data).model_dump(mode="json")
    return public
