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
    Priority,
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
    """The step that meets it: ``response`` (accept or reply) or ``resolution``."""
    met: bool = False
    overdue: bool = False

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
    escalations: tuple[tuple[str, str, datetime | None], ...] = ()
    merged_into: str | None = None
    transferred_to: tuple[str, str] | None = None
    """(district, case id) that continues the work after a cross-district transfer."""
    suggestion_title: str | None = None

    @property
    def is_open(self) -> bool:
        """Whether the case needs work."""
        return self.status in OPEN

    @property
    def next_due(self) -> datetime | None:
        """The earliest deadline still running (None when none or the case is done)."""
        if self.status not in OPEN:
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
        return self.status in OPEN and any(d.overdue and not d.met for d in self.deadlines)


def _meet(deadlines: Iterable[Deadline], *steps: str) -> tuple[Deadline, ...]:
    return tuple(replace(d, met=True) if d.demands in steps and d.active else d for d in deadlines)


def evolve(state: CaseState | None, event: CaseEvent) -> CaseState:
    """The case after ``event``."""
    if isinstance(event, CaseOpened):
        initial: list[Deadline] = []
        if event.response_due is not None:
            initial.append(Deadline("response", event.response_due, "response"))
        if event.resolution_due is not None:
            initial.append(Deadline("resolution", event.resolution_due, "resolution"))
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
                new.append(Deadline("response", event.response_due, "response"))
            if event.resolution_due is not None:
                new.append(Deadline("resolution", event.resolution_due, "resolution"))
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
                    deadlines=_meet(s.deadlines, "response", "resolution"),
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
            deadlines = s.deadlines
            if event.due is not None:
                deadlines += (Deadline("escalation", event.due, "resolution"),)
            return replace(
                s,
                status=CaseStatus.ESCALATED,
                deadlines=deadlines,
                escalations=(*s.escalations, (event.to_level, event.to_name, event.due)),
            )
        case CaseResolved():
            return replace(
                s,
                status=CaseStatus.RESOLVED,
                resolution_seq=event.resolution_seq,
                deadlines=_meet(s.deadlines, "response", "resolution"),
            )
        case CaseClosed():
            return replace(
                s,
                status=CaseStatus.CLOSED,
                deadlines=_meet(s.deadlines, "response", "resolution"),
                closed_at=event.occurred_at,
            )
        case CaseReopened():
            deadlines = s.deadlines
            if event.resolution_due is not None:
                deadlines += (Deadline("resolution", event.resolution_due, "resolution"),)
            return replace(
                s,
                status=CaseStatus.IN_PROGRESS,
                representative_id=event.representative_id or s.representative_id,
                deadlines=deadlines,
                provisional=event.deadlines_provisional,
                closed_at=None,
            )
        case CaseOverdue():
            missed: Deadline | None = None
            marked = []
            for d in s.deadlines:
                if missed is None and d.kind == event.deadline and d.due == event.due and d.active:
                    missed = d
                    d = replace(d, overdue=True)
                marked.append(d)
            deadlines = tuple(marked)
            if event.next_due is not None:
                demands = missed.demands if missed else "resolution"
                deadlines += (Deadline("escalation", event.next_due, demands),)
            return replace(s, deadlines=deadlines, overdue_count=s.overdue_count + 1)
        case CaseLinked():
            link = Link(event.related_case_id, event.relation, event.reason)
            return replace(s, links=(*s.links, link))
        case CaseMerged():
            return replace(
                s,
                status=CaseStatus.MERGED,
                merged_into=event.into_case_id,
                deadlines=_meet(s.deadlines, "response", "resolution"),
                closed_at=event.occurred_at,
            )
        case CaseConvertedToSuggestion():
            return replace(
                s,
                status=CaseStatus.CONVERTED,
                representative_id=event.representative_id,
                suggestion_title=event.title,
                deadlines=_meet(s.deadlines, "response", "resolution"),
            )
    return s


def fold(events: Iterable[CaseEvent], state: CaseState | None = None) -> CaseState | None:
    """The case after all of ``events`` (from ``state``, or from nothing)."""
    for event in events:
        state = evolve(state, event)
    return state
