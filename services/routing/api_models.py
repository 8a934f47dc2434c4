"""What routing's API answers, as models: the OpenAPI document shows every field.

Built by :mod:`services.routing.views` from the domain's state and the read model;
unknown fields are refused, so a view and its model cannot drift apart unnoticed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Answer(BaseModel):
    """A response body: every field declared."""

    model_config = ConfigDict(extra="forbid")


class Label(Answer):
    """A name for people, in Chinese and English."""

    zh: str
    en: str


class DeadlineView(Answer):
    kind: str
    """``response``, ``resolution`` or ``escalation``."""
    due: str
    demands: str
    met: bool
    overdue: bool


class EscalationView(Answer):
    to_level: str
    to_name: str
    due: str | None


class TransferredTo(Answer):
    district_id: str
    case_id: str


class AllowedAction(Answer):
    command: str
    label: str


class WhistleView(Answer):
    """A whistle (吹哨) and what the summoned body did with it (吹哨全留痕)."""

    seq: int
    to_level: str
    to_name: str
    department_code: str | None
    whistled_at: str
    whistled_by: str
    report_due: str | None
    due: str | None
    reported_at: str | None
    reported_by: str | None
    responded_at: str | None
    responded_by: str | None
    action: str | None
    rating: int | None
    rated_at: str | None


class CallbackView(Answer):
    """The latest callback (回访): the rating staff took down."""

    resolution_seq: int
    satisfaction: int
    resolved: bool
    at: str
    by: str


class SuggestionAnswerView(Answer):
    """The answer to the case's representative suggestion (代表建议答复)."""

    answer: str
    answered_by: str
    at: str


class CaseView(Answer):
    """A case as the domain sees it, with what may be done next."""

    case_id: str
    district_id: str
    opinion_id: str
    status: str
    status_label: Label
    priority: str
    priority_label: Label
    category_code: str | None
    matched_keywords: list[str]
    station_code: str | None
    representative_id: str | None
    queue: str
    next_due: str | None
    deadlines: list[DeadlineView]
    deadlines_provisional: bool
    overdue: bool
    overdue_count: int
    resolution_seq: int
    escalations: list[EscalationView]
    merged_into: str | None
    transferred_to: TransferredTo | None
    suggestion_title: str | None
    opened_at: str
    updated_at: str
    closed_at: str | None
    version: int
    allowed_actions: list[AllowedAction]
    whistles: list[WhistleView] = []
    """Every whistle with what the summoned body did (吹哨全留痕)."""
    callback: CallbackView | None = None
    suggestion_answer: SuggestionAnswerView | None = None


class OpinionView(Answer):
    """What the case keeps of the resident's opinion (never who submitted it)."""

    channel: str | None
    text: str
    community: str | None
    address: str | None
    lat: float | None
    long: float | None


class FeedbackView(Answer):
    satisfaction: int
    resolved: bool | None


class ClusterEntry(Answer):
    """A case linked to this one (duplicate, related, merged)."""

    case_id: str
    relation: str
    reason: str
    status: str
    linked_at: str


class HistoryEntry(Answer):
    """One event of the case: who did what, when (吹哨全留痕)."""

    version: int
    event_id: str
    type: str
    label: str
    occurred_at: str
    recorded_at: str
    actor: dict[str, Any]
    data: dict[str, Any]


class TransferredFrom(Answer):
    """The case another district handed over, with its record."""

    district_id: str | None
    case_id: str
    history: list[HistoryEntry]


class CaseDetail(CaseView):
    """A case with its opinion, names, cluster and full history."""

    opinion: OpinionView | None = None
    feedback: FeedbackView | None = None
    station_name: str | None = None
    representative_name: str | None = None
    cluster: list[ClusterEntry]
    history: list[HistoryEntry]
    transferred_from: TransferredFrom | None = None


class CaseSummary(Answer):
    """A case in a list."""

    case_id: str
    opinion_id: str
    status: str
    status_label: Label
    priority: str
    priority_label: Label
    category_code: str | None
    station_code: str | None
    representative_id: str | None
    queue: str
    community: str | None
    excerpt: str
    next_due: str | None
    response_due: str | None
    resolution_due: str | None
    deadlines_provisional: bool
    overdue: bool
    opened_at: str | None
    updated_at: str | None


class CaseList(Answer):
    cases: list[CaseSummary]


class Queue(Answer):
    """A staff member's queue: what their role and scope put before them."""

    role: str
    scope: dict[str, Any]
    cases: list[CaseSummary]


class Position(Answer):
    lat: float
    long: float


class StationView(Answer):
    code: str
    name_zh: str
    kind: str
    street_code: str | None
    communities: list[str]
    address: str | None
    position: Position | None
    star_rating: int | None
    head_representative_id: str | None
    liaison_officers: list[str]
    active: bool


class StationWithMembers(StationView):
    representatives: list[str]


class RepresentativeView(Answer):
    id: str
    name_zh: str
    level: str
    electoral_district: str | None
    residence_community: str | None
    expertise: list[str]
    contact_point: str | None
    leading_cadre: bool
    stations: list[str]
    active: bool


class ReceptionDayView(Answer):
    station_code: str
    day: str


class RepresentativeWithDays(RepresentativeView):
    reception_days: list[ReceptionDayView]


class DistrictView(Answer):
    code: str
    name_zh: str
    name_en: str | None
    timezone: str
    version: int


class StreetView(Answer):
    code: str
    name_zh: str
    committee_name_zh: str
    communities: list[str]


class DirectoryView(Answer):
    """The district's directory as routing knows it now."""

    district: DistrictView
    streets: list[StreetView]
    stations: list[StationView]
    representatives: list[RepresentativeView]
    taxonomy_version: int | None
    calendar_version: int | None
    policy_version: int | None


class DirectoryChangeResult(Answer):
    """How many directory events a change emitted, by type (none: already so)."""

    events: int
    summary: dict[str, int]


class StationRetiredView(Answer):
    station_code: str
    active: bool


class RepresentativeRetiredView(Answer):
    representative_id: str
    active: bool
