"""A case as a report sees it: its facts, folded from its own stream, and its steps.

Pure. :func:`fold_case` applies one event of a case's stream, recorded at ``at`` (when
the store learnt it: every period is cut on these times), to the case's
:class:`CaseFacts` and returns the :class:`Step` rows the event adds: each step is
credited to whoever held the case at that moment (station, representative), which is
what the representatives' archives and the stations' days count.

Timeliness is routing's decision, not ours: routing records a ``CaseOverdue`` for every
deadline it finds missed, in the same append as a late step. So a response is on time
when no response deadline was recorded as missed before it, and a resolution is on time
when no resolution deadline of its cycle (since the case was opened or last reopened)
was. Nothing here compares a time with a deadline, except for the reply to a
suggestion, which routing gives a due date but does not supervise.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from operator import attrgetter
from typing import Any, Final, NamedTuple

from contracts.cases import (
    CallbackRecorded,
    CaseAccepted,
    CaseAssigned,
    CaseClassified,
    CaseClosed,
    CaseConvertedToSuggestion,
    CaseEscalated,
    CaseEvent,
    CaseMerged,
    CaseOpened,
    CaseOverdue,
    CaseReopened,
    CaseReplied,
    CaseResolved,
    CaseTransferred,
    DepartmentRated,
    DepartmentReportedIn,
    DepartmentResponded,
    SuggestionAnswered,
)
from services.reporting.tables import CASE_STEPS, CASES

OPEN_STATUSES: Final = frozenset({"triage", "assigned", "in_progress", "escalated"})
"""Statuses in which a case still needs work (routing's, with the same names)."""


class StepKind:
    """The kinds of step (``case_steps.kind``)."""

    ASSIGNED = "assigned"
    """The case came to a station or representative (assignment, transfer, reassignment)."""
    ACCEPTED = "accepted"
    REPLIED = "replied"
    RESPONDED = "responded"
    """The first response of the case (accept, reply, resolve, convert or close), with
    ``on_time``: the step the response rate counts."""
    TRANSFERRED = "transferred"
    """Transferred away within the district: credited to the holder it left."""
    TRANSFERRED_OUT = "transferred_out"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    CLOSED = "closed"
    WITHDRAWN = "withdrawn"
    REOPENED = "reopened"
    OVERDUE = "overdue"
    MERGED = "merged"
    CONVERTED = "converted"
    """Became a representative suggestion (代表建议): credited to its representative."""
    ANSWERED = "answered"
    """The suggestion was answered (its answer, or its first reply or close after the
    conversion, whichever came first)."""
    CALLBACK = "callback"
    """Staff called the resident back and took down a rating (回访): ``note`` is the
    rating (1–5), ``on_time`` whether the resident said the matter is solved."""
    DEPARTMENT_REPORTED = "department_reported"
    """A summoned department reported in (部门报到); ``counterpart`` is the department."""
    DEPARTMENT_RESPONDED = "department_responded"
    """A summoned department fed back what it did (处理反馈)."""
    DEPARTMENT_RATED = "department_rated"
    """The station rated a whistle's department (一哨一评价); ``note`` the rating."""


@dataclass(slots=True)
class CaseFacts:
    """One case, as ``reporting.cases`` keeps it (fields in the table's column order)."""

    case_id: str
    district_id: str
    opinion_id: str
    channel: str | None
    community: str | None
    street_code: str | None
    """The street of the matter's community, as routing placed it."""
    category_code: str | None
    priority: str
    station_code: str | None
    representative_id: str | None
    queue: str
    status: str
    withdrawn: bool
    opened_at: datetime
    first_assigned_at: datetime | None = None
    accepted_at: datetime | None = None
    first_response_at: datetime | None = None
    response_due: datetime | None = None
    response_missed: bool = False
    responded_on_time: bool | None = None
    resolution_due: datetime | None = None
    resolution_missed: bool = False
    """A resolution deadline of the current cycle was recorded as missed."""
    first_resolved_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_on_time: bool | None = None
    """Of the latest resolution."""
    resolution_seq: int = 0
    closed_at: datetime | None = None
    """When the case left active work: closed, withdrawn, merged, transferred out."""
    reopened_count: int = 0
    overdue_count: int = 0
    escalated_count: int = 0
    transferred_count: int = 0
    transferred_from_district: str | None = None
    transferred_to_district: str | None = None
    merged_into: str | None = None
    converted_at: datetime | None = None
    suggestion_reply_due: datetime | None = None
    suggestion_answered_at: datetime | None = None
    updated_at: datetime | None = None
    version: int = 0
    callback_seq: int | None = None
    """The resolution the latest callback (回访) rated."""
    callback_satisfaction: int | None = None
    callback_resolved: bool | None = None
    callback_at: datetime | None = None
    """When the store recorded the latest callback."""
    suggestion_answered_by: str | None = None
    """The body that answered the case's suggestion (承办单位)."""

    def row(self) -> tuple[Any, ...]:
        """The case as a row of ``reporting.cases``."""
        return _ROW(self)

    @classmethod
    def from_row(cls, row: Any) -> CaseFacts:
        """The case from a row of ``reporting.cases`` (a record or a tuple in order)."""
        return cls(*(row[i] for i in range(len(CASES.columns))))


_ROW = attrgetter(*(f.name for f in fields(CaseFacts)))
assert tuple(f.name for f in fields(CaseFacts)) == CASES.columns


class Step(NamedTuple):
    """A row of ``reporting.case_steps``: a tuple in the table's column order, so a rebuild
    copies it as it is (a frozen dataclass made and then turned into a tuple cost a
    rebuild more than a microsecond per step)."""

    case_id: str
    version: int
    kind: str
    district_id: str
    recorded_at: datetime
    station_code: str | None
    representative_id: str | None
    counterpart: str | None = None
    """Who or what else: the new holder of a transfer, the level of an escalation, the
    kind of a missed deadline, the district a case went to."""
    on_time: bool | None = None
    resolution_seq: int | None = None
    note: str | None = None
    """Staff-written text (a reply, a result, a suggestion's title, the summoned body):
    shown to staff only, never in the monthly report."""

    def row(self) -> tuple[Any, ...]:
        """The step as a row of ``reporting.case_steps``."""
        return self


assert Step._fields == CASE_STEPS.columns


def open_case(event: CaseOpened, at: datetime, version: int) -> CaseFacts:
    """The facts of a case just opened."""
    return CaseFacts(
        case_id=event.case_id,
        district_id=event.district_id,
        opinion_id=event.opinion_id,
        channel=event.channel.value if event.channel is not None else None,
        community=event.community,
        street_code=event.street_code,
        category_code=event.category_code,
        priority=event.priority.value,
        station_code=None,
        representative_id=None,
        queue="triage",
        status="triage",
        withdrawn=False,
        opened_at=at,
        response_due=event.response_due,
        resolution_due=event.resolution_due,
        transferred_from_district=event.transferred_from_district_id,
        updated_at=at,
        version=version,
    )


def fold_case(
    facts: CaseFacts | None, event: CaseEvent, at: datetime, version: int
) -> tuple[CaseFacts, list[Step]]:
    """Apply ``event`` (version ``version`` of the case's stream, recorded at ``at``).

    ``facts`` is updated in place and returned (a rebuild folds a million events:
    copying each case at every step would double its time); with ``None`` the event
    must be the ``CaseOpened``.
    """
    if isinstance(event, CaseOpened):
        # No step: who received it, and when, is the case's own row (nobody holds it yet).
        return open_case(event, at, version), []
    if facts is None:
        raise ValueError(f"{event.event_type} before CaseOpened in case {event.case_id}")
    steps: list[Step] = []
    f = facts
    match event:
        case CaseAssigned():
            changed = (event.station_code, event.representative_id) != (
                f.station_code,
                f.representative_id,
            )
            f.station_code = event.station_code
            f.representative_id = event.representative_id
            f.queue = event.queue
            f.status = "triage" if event.queue == "triage" else "assigned"
            if event.queue != "triage":
                if f.first_assigned_at is None:
                    f.first_assigned_at = at
                if changed:
                    steps.append(_step(f, StepKind.ASSIGNED, at, version))
        case CaseClassified():
            f.category_code = event.category_code
            f.priority = event.priority.value
            if f.first_response_at is None and event.response_due is not None:
                f.response_due = event.response_due
            if event.resolution_due is not None:
                f.resolution_due = event.resolution_due
        case CaseAccepted():
            f.status = "in_progress"
            if f.accepted_at is None:
                f.accepted_at = at
            steps += _respond(f, at, version)
            steps.append(_step(f, StepKind.ACCEPTED, at, version, on_time=not f.response_missed))
        case CaseReplied():
            steps += _respond(f, at, version)
            steps.append(_step(f, StepKind.REPLIED, at, version, note=event.message))
            steps += _answer(f, at, version)
        case CaseTransferred():
            if event.to_district_id is not None and event.to_district_id != f.district_id:
                f.status = "transferred_out"
                f.transferred_to_district = event.to_district_id
                f.closed_at = at
                steps.append(
                    _step(
                        f, StepKind.TRANSFERRED_OUT, at, version, counterpart=event.to_district_id
                    )
                )
            else:
                to = event.to_representative_id or event.to_station_code
                steps.append(_step(f, StepKind.TRANSFERRED, at, version, counterpart=to))
                f.station_code = event.to_station_code or f.station_code
                f.representative_id = event.to_representative_id
                f.queue = "representative" if event.to_representative_id else "liaison"
                f.status = "assigned"
                f.transferred_count += 1
                steps.append(_step(f, StepKind.ASSIGNED, at, version))
        case CaseEscalated():
            f.status = "escalated"
            f.escalated_count += 1
            steps.append(
                _step(
                    f,
                    StepKind.ESCALATED,
                    at,
                    version,
                    counterpart=event.to_level,
                    note=event.to_name,
                )
            )
        case CaseResolved():
            steps += _respond(f, at, version)
            f.status = "resolved"
            f.resolution_seq = event.resolution_seq
            f.resolved_at = at
            if f.first_resolved_at is None:
                f.first_resolved_at = at
            f.resolved_on_time = not f.resolution_missed
            steps.append(
                _step(
                    f,
                    StepKind.RESOLVED,
                    at,
                    version,
                    on_time=f.resolved_on_time,
                    resolution_seq=event.resolution_seq,
                    note=event.result,
                )
            )
        case CaseClosed():
            if event.withdrawn:
                f.withdrawn = True
                steps.append(_step(f, StepKind.WITHDRAWN, at, version))
            else:
                steps += _respond(f, at, version)
                steps.append(_step(f, StepKind.CLOSED, at, version, note=event.note))
                steps += _answer(f, at, version)
            f.status = "closed"
            f.closed_at = at
        case CaseReopened():
            f.status = "in_progress"
            f.withdrawn = False
            f.representative_id = event.representative_id or f.representative_id
            f.resolution_due = event.resolution_due
            f.resolution_missed = False
            f.resolved_on_time = None
            f.reopened_count += 1
            f.closed_at = None
            steps.append(_step(f, StepKind.REOPENED, at, version, note=event.reason))
        case CaseOverdue():
            f.overdue_count += 1
            if event.deadline == "response":
                f.response_missed = True
            elif event.deadline == "resolution":
                f.resolution_missed = True
            steps.append(
                _step(
                    f,
                    StepKind.OVERDUE,
                    at,
                    version,
                    counterpart=event.deadline,
                    note=event.escalation_level,
                )
            )
        case CaseMerged():
            f.status = "merged"
            f.merged_into = event.into_case_id
            f.closed_at = at
            steps.append(_step(f, StepKind.MERGED, at, version, counterpart=event.into_case_id))
        case CaseConvertedToSuggestion():
            steps += _respond(f, at, version)
            f.status = "converted"
            f.representative_id = event.representative_id
            f.converted_at = at
            f.suggestion_reply_due = event.reply_due
            steps.append(_step(f, StepKind.CONVERTED, at, version, note=event.title))
        case SuggestionAnswered():
            f.suggestion_answered_by = event.answered_by
            steps += _answer(f, at, version)
        case CallbackRecorded():
            f.callback_seq = event.resolution_seq
            f.callback_satisfaction = event.satisfaction
            f.callback_resolved = event.resolved
            f.callback_at = at
            # The step keeps the rating (a number, never the resident's words) so that
            # every callback counts among the ratings of its period.
            steps.append(
                _step(
                    f,
                    StepKind.CALLBACK,
                    at,
                    version,
                    on_time=event.resolved,
                    resolution_seq=event.resolution_seq,
                    note=str(event.satisfaction),
                )
            )
        case DepartmentReportedIn():
            steps.append(
                _step(
                    f, StepKind.DEPARTMENT_REPORTED, at, version, counterpart=event.department_code
                )
            )
        case DepartmentResponded():
            steps.append(
                _step(
                    f, StepKind.DEPARTMENT_RESPONDED, at, version, counterpart=event.department_code
                )
            )
        case DepartmentRated():
            steps.append(
                _step(
                    f,
                    StepKind.DEPARTMENT_RATED,
                    at,
                    version,
                    counterpart=event.department_code,
                    note=str(event.rating),
                )
            )
        case _:
            pass  # CaseLinked: a relation, no fact of the case itself
    f.updated_at = at
    f.version = version
    return f, steps


def _step(
    f: CaseFacts,
    kind: str,
    at: datetime,
    version: int,
    *,
    counterpart: str | None = None,
    on_time: bool | None = None,
    resolution_seq: int | None = None,
    note: str | None = None,
) -> Step:
    return Step(
        f.case_id,
        version,
        kind,
        f.district_id,
        at,
        f.station_code,
        f.representative_id,
        counterpart,
        on_time,
        resolution_seq,
        note,
    )


def _respond(f: CaseFacts, at: datetime, version: int) -> list[Step]:
    """The case's first response, if this is it."""
    if f.first_response_at is not None:
        return []
    f.first_response_at = at
    f.responded_on_time = not f.response_missed
    return [_step(f, StepKind.RESPONDED, at, version, on_time=f.responded_on_time)]


def _answer(f: CaseFacts, at: datetime, version: int) -> list[Step]:
    """The answer to the case's suggestion, if this is it."""
    if f.converted_at is None or f.suggestion_answered_at is not None:
        return []
    f.suggestion_answered_at = at
    on_time = f.suggestion_reply_due is None or at <= f.suggestion_reply_due
    return [_step(f, StepKind.ANSWERED, at, version, on_time=on_time)]
