"""A case as its events describe it: statuses, deadlines, and ``evolve``.

Pure: ``evolve(state, event) -> state`` folds a case's stream into a :class:`CaseState`;
which commands each status allows (``ALLOWED``) lives here too, beside the statuses, so
that the state machine and its labels for people are read in one place. Decisions are in
:mod:`services.routing.domain`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from contracts.cases import (
    CallbackRecorded,
    CaseAccepted,
    CaseAssigned,
    CaseClassified,
    CaseClosed,
    CaseConvertedToSuggestion,
    CaseEscalated,
    CaseEvent,
    CaseLinked,
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
    Priority,
    SuggestionAnswered,
)


class CaseStatus(StrEnum):
    """Where a case stands."""

    TRIAGE = "triage"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CONVERTED = "converted"
    MERGED = "merged"
    TRANSFERRED_OUT = "transferred_out"


STATUS_LABELS: dict[CaseStatus, tuple[str, str]] = {
    CaseStatus.TRIAGE: ("待分拣", "awaiting triage"),
    CaseStatus.ASSIGNED: ("待报到", "assigned, awaiting acceptance"),
    CaseStatus.IN_PROGRESS: ("办理中", "in progress"),
    CaseStatus.ESCALATED: ("已吹哨", "escalated to a department"),
    CaseStatus.RESOLVED: ("待核实", "resolved, awaiting verification"),
    CaseStatus.CLOSED: ("已结项", "closed"),
    CaseStatus.CONVERTED: ("已转代表建议", "converted to a representative suggestion"),
    CaseStatus.MERGED: ("已并案", "merged into another case"),
    CaseStatus.TRANSFERRED_OUT: ("已转外区", "transferred to another district"),
}

OPEN = frozenset(
    {CaseStatus.TRIAGE, CaseStatus.ASSIGNED, CaseStatus.IN_PROGRESS, CaseStatus.ESCALATED}
)
"""Statuses in which the case needs work (and counts in a representative's workload)."""

SUPERVISED = OPEN | {CaseStatus.CONVERTED}
"""Statuses in which deadlines run: a suggestion's answer is supervised too."""

WORKING = frozenset({CaseStatus.ASSIGNED, CaseStatus.IN_PROGRESS, CaseStatus.ESCALATED})
"""Statuses in which a summoned department works on its whistle."""

_S = CaseStatus
ALLOWED: dict[str, frozenset[CaseStatus]] = {
    "accept": frozenset({_S.ASSIGNED}),
    "reply": OPEN | {_S.RESOLVED, _S.CONVERTED},
    "classify": OPEN,
    "transfer": OPEN,
    "escalate": frozenset({_S.IN_PROGRESS, _S.ESCALATED}),
    "resolve": frozenset({_S.IN_PROGRESS, _S.ESCALATED}),
    "convert": frozenset({_S.IN_PROGRESS, _S.ESCALATED}),
    "close": frozenset({_S.RESOLVED, _S.CONVERTED}),
    "reopen": frozenset({_S.RESOLVED, _S.CLOSED}),
    "withdraw": OPEN | {_S.RESOLVED, _S.CONVERTED},
    "merge": OPEN,
    "link": OPEN | {_S.RESOLVED, _S.CONVERTED, _S.CLOSED},
    "department_report": WORKING,
    "department_respond": WORKING,
    "rate_department": frozenset({_S.CLOSED}),
    "callback": frozenset({_S.RESOLVED, _S.CLOSED}),
    "answer_suggestion": frozenset({_S.CONVERTED}),
    "hand_on": WORKING,
}
"""For each command, the statuses it is allowed in."""

COMMAND_LABELS: dict[str, str] = {
    "accept": "报到",
    "reply": "答复",
    "classify": "分类/定级",
    "transfer": "转办",
    "escalate": "吹哨",
    "resolve": "办结",
    "convert": "转代表建议",
    "close": "核实结项",
    "reopen": "重新办理",
    "withdraw": "撤回",
    "merge": "并案",
    "link": "关联",
    "department_report": "部门报到",
    "department_respond": "部门反馈",
    "rate_department": "一哨一评价",
    "callback": "回访",
    "answer_suggestion": "建议答复",
    "hand_on": "转交",
}


def allowed_commands(status: CaseStatus) -> list[str]:
    """The commands allowed in ``status``, in a stable order."""
    return [name for name, statuses in ALLOWED.items() if status in statuses]


@dataclass(frozen=True, slots=True)
class Deadline:
    """A promise with a time: respond, resolve, or (for a summoned rung) see it done."""

    kind: str
    """``response``, ``resolution`` or ``escalation`` (as in ``CaseOverdue.deadline``)."""
    due: datetime
    demands: str
    """The step that meets it: ``response`` (accept or reply), ``resolution``,
    ``department:<seq>:report`` or ``department:<seq>:response`` (a summoned department's
    report-in or feedback), ``suggestion`` (the suggestion's answer)."""
    met: bool = False
    overdue: bool = False
    subject: str | None = None
    """As in ``CaseOverdue.subject``: ``department_report``, ``department_response``,
    ``suggestion_answer``, or None for the case's own deadlines."""
    ladder: str = ""
    """The deadline whose escalation ladder this one is a rung of (itself for a first
    deadline): every deadline climbs a ladder of its own."""
    rung: int = 0
    """How many rungs of its ladder were told before this deadline was set: 0 for a
    first deadline, 1 for the supervision deadline of its first miss…"""
    whistle_seq: int | None = None
    """For a department's deadline: its whistle."""

    @property
    def active(self) -> bool:
        """Neither met nor already recorded as missed."""
        return not self.met and not self.overdue


@dataclass(frozen=True, slots=True)
class Link:
    """A relation to another case, as recorded on this case's stream."""

    case_id: str
    relation: str
    reason: str


@dataclass(frozen=True, slots=True)
class Whistle:
    """A whistle blown on the case (吹哨) and what the summoned body did with it."""

    seq: int
    to_level: str
    to_name: str
    due: datetime | None
    whistled_at: datetime
    whistled_by: str
    department_code: str | None = None
    report_due: datetime | None = None
    reported_at: datetime | None = None
    reported_by: str | None = None
    responded_at: datetime | None = None
    responded_by: str | None = None
    action: str | None = None
    rating: int | None = None
    rated_at: datetime | None = None
    rated_by: str | None = None

    @property
    def to_department(self) -> bool:
        """Whether a department was summoned (registered or named only)."""
        return self.to_level == "department"


@dataclass(frozen=True, slots=True)
class Callback:
    """A resident's rating taken down by staff (回访)."""

    resolution_seq: int
    satisfaction: int
    resolved: bool
    at: datetime
    by: str


@dataclass(frozen=True)
class CaseState:
    """A case as its events describe it."""

    case_id: str
    district_id: str
    opinion_id: str
    status: CaseStatus
    priority: Priority
    opened_at: datetime
    updated_at: datetime
    category_code: str | None = None
    matched_keywords: tuple[str, ...] = ()
    station_code: str | None = None
    representative_id: str | None = None
    queue: str = "triage"
    deadlines: tuple[Deadline, ...] = ()
    provisional: bool = False
    resolution_seq: int = 0
    overdue_count: int = 0
    version: int = 0
    closed_at: datetime | None = None
    links: tuple[Link, ...] = ()
    whistles: tuple[Whistle, ...] = ()
    merged_into: str | None = None
    transferred_to: tuple[str, str] | None = None
    """(district, case id) that continues the work after a cross-district transfer."""
    suggestion_title: str | None = None
    resolved_by: str | None = None
    """Who recorded the latest resolution: they may not also verify it (核实结项)."""
    suggestion_answer: tuple[str, str, datetime] | None = None
    """(answer, the body that answered, when) of the case's representative suggestion."""
    callback: Callback | None = None
    """The latest callback (回访)."""

    @property
    def escalations(self) -> tuple[tuple[str, str, datetime | None], ...]:
        """(level, name, due) of every whistle, in order."""
        return tuple((w.to_level, w.to_name, w.due) for w in self.whistles)

    def whistle(self, seq: int) -> Whistle | None:
        """The whistle numbered ``seq``."""
        return next((w for w in self.whistles if w.seq == seq), None)

    def whistled_to(self, departments: Iterable[str]) -> list[Whistle]:
        """The whistles to any of ``departments`` (registered department codes)."""
        codes = set(departments)
        return [w for w in self.whistles if w.department_code in codes]

    @property
    def is_open(self) -> bool:
        """Whether the case needs work."""
        return self.status in OPEN

    @property
    def next_due(self) -> datetime | None:
        """The earliest deadline still running (None when none or the case is done)."""
        if self.status not in SUPERVISED:
            return None
        dues = [d.due for d in self.deadlines if d.active]
        return min(dues) if dues else None

    def latest(self, kind: str) -> Deadline | None:
        """The most recently set deadline of ``kind``."""
        found = [d for d in self.deadlines if d.kind == kind]
        return found[-1] if found else None

    @property
    def overdue(self) -> bool:
        """Whether any deadline was missed while the case is still open."""
        return self.status in SUPERVISED and any(d.overdue and not d.met for d in self.deadlines)


def _meet(deadlines: Iterable[Deadline], *steps: str) -> tuple[Deadline, ...]:
    return tuple(replace(d, met=True) if d.demands in steps and d.active else d for d in deadlines)


def _settle(deadlines: Iterable[Deadline]) -> tuple[Deadline, ...]:
    """Every deadline met: the case's work is done (resolved, closed, merged, moved on),
    a summoned department's included."""
    return tuple(replace(d, met=True) if d.active else d for d in deadlines)


def _departments_met(deadlines: Iterable[Deadline]) -> tuple[Deadline, ...]:
    return tuple(
        replace(d, met=True) if d.demands.startswith("department:") and d.active else d
        for d in deadlines
    )


def _with_whistle(state: CaseState, seq: int, **changes: object) -> tuple[Whistle, ...]:
    return tuple(replace(w, **changes) if w.seq == seq else w for w in state.whistles)  # type: ignore[arg-type]


def evolve(state: CaseState | None, event: CaseEvent) -> CaseState:
    """The case after ``event``."""
    if isinstance(event, CaseOpened):
        initial: list[Deadline] = []
        if event.response_due is not None:
            initial.append(Deadline("response", event.response_due, "response", ladder="response"))
        if event.resolution_due is not None:
            initial.append(
                Deadline("resolution", event.resolution_due, "resolution", ladder="resolution")
            )
        return CaseState(
            case_id=event.case_id,
            district_id=event.district_id,
            opinion_id=event.opinion_id,
            status=CaseStatus.TRIAGE,
            priority=event.priority,
            opened_at=event.occurred_at,
            updated_at=event.occurred_at,
            category_code=event.category_code,
            matched_keywords=tuple(event.matched_keywords),
            deadlines=tuple(initial),
            provisional=event.deadlines_provisional,
            version=1,
        )
    if state is None:
        raise ValueError(f"{event.event_type} before CaseOpened in case {event.case_id}")
    s = replace(state, version=state.version + 1, updated_at=event.occurred_at)
    match event:
        case CaseAssigned():
            return replace(
                s,
                station_code=event.station_code,
                representative_id=event.representative_id,
                queue=event.queue,
                status=CaseStatus.TRIAGE if event.queue == "triage" else CaseStatus.ASSIGNED,
            )
        case CaseClassified():
            kept = tuple(
                d for d in s.deadlines if not (d.kind in ("response", "resolution") and d.active)
            )
            responded = any(d.kind == "response" and d.met for d in s.deadlines)
            new = []
            if event.response_due is not None and not responded:
                new.append(Deadline("response", event.response_due, "response", ladder="response"))
            if event.resolution_due is not None:
                new.append(
                    Deadline("resolution", event.resolution_due, "resolution", ladder="resolution")
                )
            return replace(
                s,
                category_code=event.category_code,
                priority=event.priority,
                deadlines=kept + tuple(new),
                provisional=event.deadlines_provisional,
            )
        case CaseAccepted():
            return replace(
                s, status=CaseStatus.IN_PROGRESS, deadlines=_meet(s.deadlines, "response")
            )
        case CaseReplied():
            return replace(s, deadlines=_meet(s.deadlines, "response"))
        case CaseTransferred():
            if event.to_district_id is not None and event.to_district_id != s.district_id:
                return replace(
                    s,
                    status=CaseStatus.TRANSFERRED_OUT,
                    deadlines=_settle(s.deadlines),
                    transferred_to=(event.to_district_id, event.to_case_id or ""),
                    closed_at=event.occurred_at,
                )
            return replace(
                s,
                station_code=event.to_station_code or s.station_code,
                representative_id=event.to_representative_id,
                queue="representative" if event.to_representative_id else "liaison",
                status=CaseStatus.ASSIGNED,
            )
        case CaseEscalated():
            return _escalated(s, event)
        case DepartmentReportedIn():
            return replace(
                s,
                deadlines=_meet(s.deadlines, f"department:{event.whistle_seq}:report"),
                whistles=_with_whistle(
                    s, event.whistle_seq, reported_at=event.occurred_at, reported_by=event.actor.id
                ),
            )
        case DepartmentResponded():
            seq = event.whistle_seq
            return replace(
                s,
                deadlines=_meet(
                    s.deadlines, f"department:{seq}:report", f"department:{seq}:response"
                ),
                whistles=_with_whistle(
                    s,
                    seq,
                    responded_at=event.occurred_at,
                    responded_by=event.actor.id,
                    action=event.action,
                ),
            )
        case DepartmentRated():
            return replace(
                s,
                whistles=_with_whistle(
                    s,
                    event.whistle_seq,
                    rating=event.rating,
                    rated_at=event.occurred_at,
                    rated_by=event.actor.id,
                ),
            )
        case CallbackRecorded():
            callback = Callback(
                event.resolution_seq,
                event.satisfaction,
                event.resolved,
                event.occurred_at,
                event.actor.id,
            )
            return replace(s, callback=callback)
        case SuggestionAnswered():
            return replace(
                s,
                deadlines=_meet(s.deadlines, "suggestion"),
                suggestion_answer=(event.answer, event.answered_by, event.occurred_at),
            )
        case CaseResolved():
            return replace(
                s,
                status=CaseStatus.RESOLVED,
                resolution_seq=event.resolution_seq,
                resolved_by=event.actor.id,
                deadlines=_departments_met(_meet(s.deadlines, "response", "resolution")),
            )
        case CaseClosed():
            return replace(
                s,
                status=CaseStatus.CLOSED,
                deadlines=_settle(s.deadlines),
                closed_at=event.occurred_at,
            )
        case CaseReopened():
            deadlines = s.deadlines
            if event.resolution_due is not None:
                deadlines += (
                    Deadline("resolution", event.resolution_due, "resolution", ladder="resolution"),
                )
            return replace(
                s,
                status=CaseStatus.IN_PROGRESS,
                representative_id=event.representative_id or s.representative_id,
                deadlines=deadlines,
                provisional=event.deadlines_provisional,
                closed_at=None,
            )
        case CaseOverdue():
            return _overdue(s, event)
        case CaseLinked():
            link = Link(event.related_case_id, event.relation, event.reason)
            return replace(s, links=(*s.links, link))
        case CaseMerged():
            return replace(
                s,
                status=CaseStatus.MERGED,
                merged_into=event.into_case_id,
                deadlines=_settle(s.deadlines),
                closed_at=event.occurred_at,
            )
        case CaseConvertedToSuggestion():
            deadlines = _settle(s.deadlines)
            if event.reply_due is not None:
                answer = Deadline(
                    "escalation",
                    event.reply_due,
                    "suggestion",
                    subject="suggestion_answer",
                    ladder="suggestion",
                )
                deadlines += (answer,)
            return replace(
                s,
                status=CaseStatus.CONVERTED,
                representative_id=event.representative_id,
                suggestion_title=event.title,
                deadlines=deadlines,
            )
    return s


def _escalated(s: CaseState, event: CaseEscalated) -> CaseState:
    """A whistle: a registered department gets deadlines of its own (report in, feed
    back); another body's deadline is met when the case is resolved."""
    seq = event.whistle_seq or len(s.whistles) + 1
    deadlines = s.deadlines
    if event.department_code is not None:
        ladder = f"department:{event.department_code}:{seq}"
        if event.report_due is not None:
            deadlines += (
                Deadline(
                    "escalation",
                    event.report_due,
                    f"department:{seq}:report",
                    subject="department_report",
                    ladder=ladder,
                    whistle_seq=seq,
                ),
            )
        if event.due is not None:
            deadlines += (
                Deadline(
                    "escalation",
                    event.due,
                    f"department:{seq}:response",
                    subject="department_response",
                    ladder=ladder,
                    whistle_seq=seq,
                ),
            )
    elif event.due is not None:
        deadlines += (Deadline("escalation", event.due, "resolution", ladder=f"escalation:{seq}"),)
    whistle = Whistle(
        seq=seq,
        to_level=event.to_level,
        to_name=event.to_name,
        due=event.due,
        whistled_at=event.occurred_at,
        whistled_by=event.actor.id,
        department_code=event.department_code,
        report_due=event.report_due,
    )
    return replace(
        s, status=CaseStatus.ESCALATED, deadlines=deadlines, whistles=(*s.whistles, whistle)
    )


def _overdue(s: CaseState, event: CaseOverdue) -> CaseState:
    """The missed deadline marked; the rung told gets a supervision deadline of its own,
    one rung up the missed deadline's ladder."""
    missed: Deadline | None = None
    marked = []
    for d in s.deadlines:
        if (
            missed is None
            and d.kind == event.deadline
            and d.due == event.due
            and d.subject == event.subject
            and d.active
        ):
            missed = d
            d = replace(d, overdue=True)
        marked.append(d)
    deadlines = tuple(marked)
    if event.next_due is not None:
        supervision = Deadline(
            "escalation",
            event.next_due,
            missed.demands if missed else "resolution",
            subject=missed.subject if missed else None,
            ladder=missed.ladder if missed else event.deadline,
            rung=missed.rung + 1 if missed else s.overdue_count + 1,
            whistle_seq=missed.whistle_seq if missed else None,
        )
        deadlines += (supervision,)
    return replace(s, deadlines=deadlines, overdue_count=s.overdue_count + 1)


def fold(events: Iterable[CaseEvent], state: CaseState | None = None) -> CaseState | None:
    """The case after all of ``events`` (from ``state``, or from nothing)."""
    for event in events:
        state = evolve(state, event)
    return state
