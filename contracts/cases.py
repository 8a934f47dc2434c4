"""Events of the routing context, in streams ``case-<case_id>``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, HttpUrl, StringConstraints

from contracts.base import DistrictId, Event, Identifier
from contracts.intake import Channel, SealedText

Note = Annotated[str, StringConstraints(max_length=2000)]


class Priority(StrEnum):
    """小事/大事/要事: small matters on the spot, big ones escalated, important ones in time."""

    NORMAL = "normal"
    IMPORTANT = "important"
    URGENT = "urgent"


class CaseEvent(Event):
    """An event in a case's stream."""

    stream_category: ClassVar[str] = "case"
    context: ClassVar[str] = "routing"

    case_id: Identifier

    @property
    def stream_key(self) -> str:
        return self.case_id


class CaseOpened(CaseEvent):
    """An opinion became a case: classified, prioritised and given deadlines."""

    event_type: ClassVar[str] = "CaseOpened"

    opinion_id: Identifier
    category_code: Identifier | None
    """None when no category matched: the case waits in the triage queue."""
    matched_keywords: list[str] = Field(default_factory=list)
    priority: Priority
    response_due: AwareDatetime | None = None
    resolution_due: AwareDatetime | None = None
    deadlines_provisional: bool = False
    """True when a deadline falls in a year whose official holidays are not known yet."""
    priority_keywords: list[str] = Field(default_factory=list)
    """The urgent or important words (燃气泄漏, 着火…) that raised the priority."""
    category_hint_matched: bool = False
    """True when the hint given at intake named the category (a code or a name)."""
    taxonomy_version: int | None = None
    """The version of the district's taxonomy that classified the opinion."""
    transferred_from_case_id: Identifier | None = None
    """Set when the case came from another district's case (a cross-district transfer)."""
    transferred_from_district_id: DistrictId | None = None
    channel: Channel | None = None
    """How the opinion came in (the resident's channel), for the district's counts."""
    community: Annotated[str, StringConstraints(max_length=100)] | None = None
    """The community the matter is in, as routing placed it (given, or around its point)."""
    street_code: Identifier | None = None
    """The street of that community."""
    classifier_version: int | None = None
    """The version of the district's trained classifier (``ClassifierTrained``) that
    took part; None when the taxonomy's keywords alone decided."""
    classifier_evidence: list[Annotated[str, StringConstraints(max_length=30)]] = Field(
        default_factory=list, max_length=10
    )
    """The parts of the text (character n-grams) that weighed most for the category,
    strongest first."""
    classifier_confidence: float | None = None
    """The classifier's score for the category (above 0: it would pick it on its own)."""
    urgency_score: float | None = Field(default=None, ge=0, le=1)
    """The urgency model's probability that the matter is urgent."""
    urgency_evidence: list[Annotated[str, StringConstraints(max_length=30)]] = Field(
        default_factory=list, max_length=10
    )
    """When the urgency model made the matter urgent: the n-grams that weighed most."""
    collected_by: Identifier | None = None
    """The staff id of whoever took the opinion down for the resident (a citizen
    spokesperson, a representative on a visit, a liaison officer): what a
    spokesperson's intake is counted by, and who is responsible for a visit's opinion
    (谁走访谁负责)."""
    collected_by_role: (
        Annotated[str, StringConstraints(pattern=r"^(spokesperson|liaison|representative)$")] | None
    ) = None
    sealed: SealedText | None = None
    """``matched_keywords``, ``priority_keywords``, ``classifier_evidence`` and
    ``urgency_evidence`` (words and fragments of the resident's text), sealed with the
    case's text key (``eventkit.sealed_texts``); None on an event stored before sealing,
    whose words are in clear. Sealed, those four lists are empty."""


class CaseClassified(CaseEvent):
    """Staff set the category or the priority (override); the deadlines follow."""

    event_type: ClassVar[str] = "CaseClassified"

    category_code: Identifier | None
    priority: Priority
    reason: Note
    response_due: AwareDatetime | None = None
    resolution_due: AwareDatetime | None = None
    deadlines_provisional: bool = False
    sealed: SealedText | None = None
    """``reason``, sealed with the case's text key (``eventkit.sealed_texts``); None on an
    event stored before sealing, whose texts are in clear. Sealed, ``reason`` holds the
    sealed mark."""


class ScoredCandidate(BaseModel):
    """A representative considered for a case, with each part of the score."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    representative_id: Identifier
    score: float
    components: dict[str, float]


class CaseAssigned(CaseEvent):
    """The case was given to a station and, when one fits, a representative."""

    event_type: ClassVar[str] = "CaseAssigned"

    station_code: Identifier | None
    representative_id: Identifier | None
    queue: Annotated[str, StringConstraints(pattern=r"^(representative|liaison|triage)$")]
    reason: Note
    candidates: list[ScoredCandidate] = Field(default_factory=list, max_length=3)


class CaseAccepted(CaseEvent):
    """The representative or liaison officer took the case on (报到)."""

    event_type: ClassVar[str] = "CaseAccepted"


class CaseTransferred(CaseEvent):
    """The case moved to another representative, station or district; it keeps its id."""

    event_type: ClassVar[str] = "CaseTransferred"

    to_district_id: DistrictId | None = None
    to_station_code: Identifier | None = None
    to_representative_id: Identifier | None = None
    reason: Note
    to_case_id: Identifier | None = None
    """For a transfer to another district: the case that continues the work there."""
    sealed: SealedText | None = None
    """``reason``, sealed with the case's text key (``eventkit.sealed_texts``); None on an
    event stored before sealing, whose texts are in clear. Sealed, ``reason`` holds the
    sealed mark."""


class CaseEscalated(CaseEvent):
    """A whistle was blown (吹哨): a department, the street or the district is summoned."""

    event_type: ClassVar[str] = "CaseEscalated"

    to_level: Annotated[
        str, StringConstraints(pattern=r"^(department|station_head|street|district)$")
    ]
    to_name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    due: AwareDatetime | None = None
    reason: Note
    department_code: Identifier | None = None
    """The registered department summoned (``DepartmentRegistered``); None for a
    department named only in ``to_name`` and for the other levels. A whistle to a
    registered department starts the department's own deadlines: ``report_due`` to report
    in (部门报到) and ``due`` to feed back what it did (处理反馈)."""
    whistle_seq: int | None = Field(default=None, ge=1)
    """The whistle's number on the case (1, 2…): what the department's steps refer to."""
    report_due: AwareDatetime | None = None
    """When the summoned department must have reported in (部门报到)."""
    sealed: SealedText | None = None
    """``reason``, sealed with the case's text key (``eventkit.sealed_texts``); None on an
    event stored before sealing, whose texts are in clear. Sealed, ``reason`` holds the
    sealed mark."""


class CaseReplied(CaseEvent):
    """An answer (interim or final) was given to the resident."""

    event_type: ClassVar[str] = "CaseReplied"

    message: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    public: bool = False
    """The staff member marked the message fit for anyone to read (公开): shown, numbers
    masked, in the district's public Open311 list and updates. Otherwise (and in every
    event written before the mark existed) it is for the resident alone: their tracking
    page and their notification."""
    sealed: SealedText | None = None
    """``message``, sealed with the case's text key (``eventkit.sealed_texts``); None on an
    event stored before sealing, whose texts are in clear. Sealed, ``message`` holds
    ``eventkit.sealed_texts.SEALED_MARK``."""


class CaseResolved(CaseEvent):
    """The matter was handled; the result and its evidence are recorded."""

    event_type: ClassVar[str] = "CaseResolved"

    resolution_seq: int = Field(ge=1)
    result: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    evidence_urls: list[HttpUrl] = Field(default_factory=list, max_length=9)
    on_the_spot: bool = False
    """Answered at the desk (当场办结): the opinion was resolved and closed as it was taken
    down; the actor is who answered it."""
    public: bool = False
    """The staff member marked the result and its evidence fit for anyone to read (公开),
    as :attr:`CaseReplied.public`; unmarked, they are for the resident alone."""
    sealed: SealedText | None = None
    """``result`` (an answer at the desk too), sealed with the case's text key
    (``eventkit.sealed_texts``); None on an event stored before sealing, whose texts are in
    clear. Sealed, ``result`` holds the sealed mark."""


class CaseClosed(CaseEvent):
    """The result was verified and the case closed (核实结项), or the resident withdrew."""

    event_type: ClassVar[str] = "CaseClosed"

    note: Note | None = None
    withdrawn: bool = False
    """True when the case closed because the resident withdrew the opinion."""
    sealed: SealedText | None = None
    """``note``, sealed with the case's text key (``eventkit.sealed_texts``); None on an event
    stored before sealing, whose texts are in clear. Sealed, ``note`` is None."""


class CaseReopened(CaseEvent):
    """The resident was not satisfied or the matter was not solved: back to work."""

    event_type: ClassVar[str] = "CaseReopened"

    reason: Note
    representative_id: Identifier | None = None
    resolution_due: AwareDatetime | None = None
    """The new resolution deadline of the reopened case."""
    deadlines_provisional: bool = False
    sealed: SealedText | None = None
    """``reason``, sealed with the case's text key (``eventkit.sealed_texts``); None on an
    event stored before sealing, whose texts are in clear. Sealed, ``reason`` holds the
    sealed mark."""


class CaseOverdue(CaseEvent):
    """A deadline passed without the step it demanded."""

    event_type: ClassVar[str] = "CaseOverdue"

    deadline: Annotated[str, StringConstraints(pattern=r"^(response|resolution|escalation)$")]
    due: AwareDatetime
    escalated_to: Annotated[str, StringConstraints(max_length=100)] | None = None
    escalation_level: (
        Annotated[str, StringConstraints(pattern=r"^(station_head|street|district)$")] | None
    ) = None
    """The rung of the district's escalation ladder that was told (督办)."""
    next_due: AwareDatetime | None = None
    """The deadline given to that rung; when it passes too, the next rung is told."""
    subject: (
        Annotated[
            str,
            StringConstraints(
                pattern=r"^(department_report|department_response|suggestion_answer)$"
            ),
        ]
        | None
    ) = None
    """For a deadline beyond the case's own response and resolution (``deadline`` is then
    ``escalation``): what it demanded, a summoned department's report-in or feedback, or
    the answer to a representative suggestion. None for the case's own deadlines, a
    whistle to another level, and the supervision deadlines of those."""
    ladder_of: Annotated[str, StringConstraints(max_length=100)] | None = None
    """The deadline whose escalation ladder this miss climbs (``response``,
    ``resolution``, ``department:<code>:<seq>``, ``suggestion``…): each deadline climbs a
    ladder of its own, its supervision deadlines the next rungs."""
    department_code: Identifier | None = None
    """For a department's deadline: the department that missed it."""
    whistle_seq: int | None = Field(default=None, ge=1)
    """For a department's deadline: the whistle it belongs to."""


class CaseLinked(CaseEvent):
    """The case was found to duplicate or relate to another one."""

    event_type: ClassVar[str] = "CaseLinked"

    related_case_id: Identifier
    relation: Annotated[str, StringConstraints(pattern=r"^(duplicate|related|merged)$")]
    reason: Note
    sealed: SealedText | None = None
    """``reason``, sealed with the case's text key (``eventkit.sealed_texts``); None on an
    event stored before sealing, whose texts are in clear. Sealed, ``reason`` holds the
    sealed mark."""


class CaseMerged(CaseEvent):
    """Staff merged this case into another one (a duplicate); work continues there."""

    event_type: ClassVar[str] = "CaseMerged"

    into_case_id: Identifier
    reason: Note
    sealed: SealedText | None = None
    """``reason``, sealed with the case's text key (``eventkit.sealed_texts``); None on an
    event stored before sealing, whose texts are in clear. Sealed, ``reason`` holds the
    sealed mark."""


class CaseConvertedToSuggestion(CaseEvent):
    """The matter exceeds the station's remit and became a representative suggestion (代表建议)."""

    event_type: ClassVar[str] = "CaseConvertedToSuggestion"

    representative_id: Identifier
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    reply_due: AwareDatetime | None = None
    sealed: SealedText | None = None
    """``title``, sealed with the case's text key (``eventkit.sealed_texts``); None on an
    event stored before sealing, whose texts are in clear. Sealed, ``title`` holds the
    sealed mark."""


class DepartmentStep(CaseEvent):
    """A summoned department's step on a whistle of the case."""

    department_code: Identifier
    whistle_seq: int = Field(ge=1)


class DepartmentReportedIn(DepartmentStep):
    """The summoned department reported in (部门报到): it has the matter and is on it."""

    event_type: ClassVar[str] = "DepartmentReportedIn"

    note: Note | None = None
    sealed: SealedText | None = None
    """``note``, sealed with the case's text key (``eventkit.sealed_texts``); None on an
    event stored before sealing, whose texts are in clear. Sealed, ``note`` is None."""


class DepartmentResponded(DepartmentStep):
    """The department fed back what it did (处理反馈); the station verifies it next."""

    event_type: ClassVar[str] = "DepartmentResponded"

    action: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    """What the department did, in its own words (staff-written text)."""
    evidence_urls: list[HttpUrl] = Field(default_factory=list, max_length=9)
    sealed: SealedText | None = None
    """``action``, sealed with the case's text key (``eventkit.sealed_texts``); None on an
    event stored before sealing, whose texts are in clear. Sealed, ``action`` holds the
    sealed mark."""


class DepartmentRated(DepartmentStep):
    """After the case was verified (核实结项), the station rated the department's handling
    of one whistle (一哨一评价)."""

    event_type: ClassVar[str] = "DepartmentRated"

    rating: int = Field(ge=1, le=5)
    comment: Note | None = None
    sealed: SealedText | None = None
    """``comment``, sealed with the case's text key (``eventkit.sealed_texts``); None on an
    event stored before sealing, whose texts are in clear. Sealed, ``comment`` is None."""


class CallbackRecorded(CaseEvent):
    """Staff called the resident back (回访) and took down their rating of a resolution.

    It counts like the resident's own ``FeedbackSubmitted`` (a low rating, or "not
    solved", reopens the case), marked as taken by staff: the actor is the staff member.
    """

    event_type: ClassVar[str] = "CallbackRecorded"

    resolution_seq: int = Field(ge=1)
    """The resolution the rating is about."""
    satisfaction: int = Field(ge=1, le=5)
    resolved: bool
    comment: Note | None = None
    """The staff member's note of what the resident said (staff-written text: kept off
    the public feed and out of reports, like a reply)."""
    sealed: SealedText | None = None
    """``comment``, sealed with the case's text key (``eventkit.sealed_texts``); None on an
    event stored before sealing, whose texts are in clear. Sealed, ``comment`` is None."""


class SuggestionAnswered(CaseEvent):
    """The body handling a representative suggestion (承办单位) answered it (代表建议答复);
    the answer is shown to the resident."""

    event_type: ClassVar[str] = "SuggestionAnswered"

    answer: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    answered_by: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    """The body that answered (承办单位), e.g. 区交通运输局."""
    sealed: SealedText | None = None
    """``answer``, sealed with the case's text key (``eventkit.sealed_texts``); None on an
    event stored before sealing, whose texts are in clear. Sealed, ``answer`` holds the
    sealed mark."""


EVENTS: tuple[type[Event], ...] = (
    CaseOpened,
    CaseAssigned,
    CaseAccepted,
    CaseTransferred,
    CaseEscalated,
    CaseReplied,
    CaseResolved,
    CaseClosed,
    CaseReopened,
    CaseOverdue,
    CaseLinked,
    CaseConvertedToSuggestion,
    CaseClassified,
    CaseMerged,
    DepartmentReportedIn,
    DepartmentResponded,
    DepartmentRated,
    CallbackRecorded,
    SuggestionAnswered,
)
"""Every event of this context, every version; registered by ``contracts``."""
