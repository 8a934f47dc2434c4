"""The life of a case: a pure state machine.

``decide(state, command) -> events`` says what happens when staff (or the system) ask for
something; ``evolve(state, event) -> state`` says what a case looks like after an event.
No clock (every command carries ``now``), no database, no logging: the application
layer (:mod:`services.routing.service`) loads the stream, decides, appends, projects.

States and the commands each allows (``ALLOWED``)::

    triage ─classify/transfer─▶ assigned ─accept─▶ in_progress ─escalate─▶ escalated
                                                     │  ▲                     │
                                   resolve / convert │  └──── reopen ─────┐   │ resolve
                                                     ▼                    │   ▼
                                     converted   resolved ──close──▶ closed
                                         └──close──────────────────────▶

plus ``merged`` (into another case) and ``transferred_out`` (to another district), both
final. A missed deadline is recorded (``CaseOverdue``) exactly once, by
:func:`overdue_events`, before anything else happens to the case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from contracts.base import Actor, ActorRole
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
from services.routing.assignment import Assignment
from services.routing.deadlines import Due

E = TypeVar("E", bound=CaseEvent)

SYSTEM = Actor(id="routing", role=ActorRole.SYSTEM)
"""The routing service acting on its own (opening, assigning, recording overdue)."""


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


# --------------------------------------------------------------------------- errors


class CaseError(Exception):
    """A command the case refuses."""


class IllegalTransition(CaseError):
    """The command is not allowed in the case's status."""

    def __init__(self, command: str, status: CaseStatus) -> None:
        self.command = command
        self.status = status
        self.allowed = allowed_commands(status)
        super().__init__(
            f"{command} is not allowed when the case is {status.value}; "
            f"allowed: {', '.join(self.allowed) or 'nothing'}"
        )


class NotYourCase(CaseError):
    """A representative acting on a case assigned to someone else."""


class InvalidCommand(CaseError):
    """The command contradicts the case (e.g. a transfer to where it already is)."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh = zh
        self.en = en


class StaleFeedback(CaseError):
    """Feedback about an earlier resolution, or about a case no longer resolved."""


# --------------------------------------------------------------------------- state


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


# --------------------------------------------------------------------------- commands


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
    category_code: str | None
    matched_keywords: tuple[str, ...]
    priority: Priority
    priority_keywords: tuple[str, ...] = ()
    hint_matched: bool = False
    response_due: Due
    resolution_due: Due
    assignment: Assignment
    related: tuple[Link, ...] = ()
    taxonomy_version: int | None = None
    transferred_from: tuple[str, str] | None = None
    """(district, case id) of the case this one continues."""


@dataclass(frozen=True, kw_only=True)
class Accept(Command):
    """报到: the representative (or the liaison officer) takes the case on."""

    name: ClassVar[str] = "accept"


@dataclass(frozen=True, kw_only=True)
class Reply(Command):
    """An answer to the resident, interim or final."""

    name: ClassVar[str] = "reply"
    message: str


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


@dataclass(frozen=True, kw_only=True)
class Resolve(Command):
    """The matter is handled: result and evidence."""

    name: ClassVar[str] = "resolve"
    result: str
    evidence_urls: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Close(Command):
    """核实结项: the result was verified."""

    name: ClassVar[str] = "close"
    note: str | None = None


@dataclass(frozen=True, kw_only=True)
class Withdraw(Command):
    """The resident withdrew the opinion."""

    name: ClassVar[str] = "withdraw"


WITHDRAWN_NOTE = "居民撤回诉求 / withdrawn by the resident"


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


# --------------------------------------------------------------------------- decide


def decide(state: CaseState | None, command: Command) -> list[CaseEvent]:
    """The events that ``command`` causes on a case in ``state`` (None: no case yet).

    Raises :class:`IllegalTransition` when the status does not allow the command,
    :class:`NotYourCase` when a representative acts on someone else's case,
    :class:`InvalidCommand` or :class:`StaleFeedback` otherwise.
    """
    if isinstance(command, OpenCase):
        if state is not None:
            raise InvalidCommand("该意见已立案", "a case already exists for this opinion")
        return _open(command)
    if state is None:
        raise InvalidCommand("案件不存在", "no such case")
    if state.status not in ALLOWED[command.name]:
        raise IllegalTransition(command.name, state.status)

    def make(cls: type[E], **fields: Any) -> E:
        return _make(cls, state.district_id, state.case_id, command, **fields)

    match command:
        case Accept():
            _check_representative(state, command.actor)
            return [make(CaseAccepted)]
        case Reply():
            _check_representative(state, command.actor)
            return [make(CaseReplied, message=command.message)]
        case Classify():
            return _classify(state, command)
        case Transfer():
            return _transfer(state, command)
        case TransferToDistrict():
            if command.to_district_id == state.district_id:
                raise InvalidCommand("不能转给本区", "a transfer to another district names another")
            return [
                make(
                    CaseTransferred,
                    to_district_id=command.to_district_id,
                    reason=command.reason,
                    to_case_id=command.to_case_id,
                )
            ]
        case Escalate():
            _check_representative(state, command.actor)
            return [
                make(
                    CaseEscalated,
                    to_level=command.to_level,
                    to_name=command.to_name,
                    due=command.due,
                    reason=command.reason,
                )
            ]
        case Resolve():
            _check_representative(state, command.actor)
            return [
                make(
                    CaseResolved,
                    resolution_seq=state.resolution_seq + 1,
                    result=command.result,
                    evidence_urls=list(command.evidence_urls),
                )
            ]
        case Close():
            return [make(CaseClosed, note=command.note)]
        case Withdraw():
            # The resident's own words stay with intake: case events carry no free text
            # written by residents.
            return [make(CaseClosed, note=WITHDRAWN_NOTE, withdrawn=True)]
        case Reopen():
            if (
                command.for_resolution is not None
                and command.for_resolution != state.resolution_seq
            ):
                raise StaleFeedback(
                    f"feedback on resolution {command.for_resolution}, "
                    f"the case is at {state.resolution_seq}"
                )
            due = command.resolution_due
            return [
                make(
                    CaseReopened,
                    reason=command.reason,
                    representative_id=state.representative_id,
                    resolution_due=due.at if due else None,
                    deadlines_provisional=due.provisional if due else False,
                )
            ]
        case ConvertToSuggestion():
            _check_representative(state, command.actor)
            representative = command.representative_id or state.representative_id
            if command.actor.role is ActorRole.REPRESENTATIVE:
                representative = command.actor.id
            if representative is None:
                raise InvalidCommand(
                    "代表建议须由一位代表提出", "a suggestion needs a representative to make it"
                )
            return [
                make(
                    CaseConvertedToSuggestion,
                    representative_id=representative,
                    title=command.title,
                    reply_due=command.reply_due,
                )
            ]
        case Merge():
            if command.into_case_id == state.case_id:
                raise InvalidCommand("不能并入自身", "a case cannot be merged into itself")
            return [make(CaseMerged, into_case_id=command.into_case_id, reason=command.reason)]
        case LinkCase():
            if command.related_case_id == state.case_id:
                raise InvalidCommand("不能关联自身", "a case cannot be linked to itself")
            if any(
                link.case_id == command.related_case_id and link.relation == command.relation
                for link in state.links
            ):
                return []
            return [
                make(
                    CaseLinked,
                    related_case_id=command.related_case_id,
                    relation=command.relation,
                    reason=command.reason,
                )
            ]
    raise InvalidCommand("未知操作", f"unknown command {command.name}")  # pragma: no cover


def _make(cls: type[E], district_id: str, case_id: str, command: Command, **fields: Any) -> E:
    return cls(
        district_id=district_id,
        case_id=case_id,
        occurred_at=command.now,
        actor=command.actor,
        **fields,
    )


def _check_representative(state: CaseState, actor: Actor) -> None:
    if actor.role is ActorRole.REPRESENTATIVE and state.representative_id != actor.id:
        raise NotYourCase(f"case {state.case_id} is not assigned to {actor.id}")


def _assigned(district_id: str, case_id: str, command: Command, a: Assignment) -> CaseAssigned:
    return _make(
        CaseAssigned,
        district_id,
        case_id,
        command,
        station_code=a.station_code,
        representative_id=a.representative_id,
        queue=a.queue,
        reason=a.reason[:2000],
        candidates=list(a.candidates),
    )


def _open(command: OpenCase) -> list[CaseEvent]:
    ids = (command.district_id, command.case_id, command)
    source = command.transferred_from
    events: list[CaseEvent] = [
        _make(
            CaseOpened,
            *ids,
            opinion_id=command.opinion_id,
            category_code=command.category_code,
            matched_keywords=list(command.matched_keywords),
            priority=command.priority,
            response_due=command.response_due.at,
            resolution_due=command.resolution_due.at,
            deadlines_provisional=command.response_due.provisional
            or command.resolution_due.provisional,
            priority_keywords=list(command.priority_keywords),
            category_hint_matched=command.hint_matched,
            taxonomy_version=command.taxonomy_version,
            transferred_from_district_id=source[0] if source else None,
            transferred_from_case_id=source[1] if source else None,
        ),
        _assigned(*ids, command.assignment),
    ]
    for link in command.related:
        events.append(
            _make(
                CaseLinked,
                *ids,
                related_case_id=link.case_id,
                relation=link.relation,
                reason=link.reason[:2000],
            )
        )
    return events


def _classify(state: CaseState, command: Classify) -> list[CaseEvent]:
    ids = (state.district_id, state.case_id, command)
    if command.category_code == state.category_code and command.priority == state.priority:
        raise InvalidCommand(
            "分类和优先级均未改变", "neither the category nor the priority changes"
        )
    events: list[CaseEvent] = [
        _make(
            CaseClassified,
            *ids,
            category_code=command.category_code,
            priority=command.priority,
            reason=command.reason,
            response_due=command.response_due.at,
            resolution_due=command.resolution_due.at,
            deadlines_provisional=command.response_due.provisional
            or command.resolution_due.provisional,
        )
    ]
    if command.assignment is not None and state.status is CaseStatus.TRIAGE:
        events.append(_assigned(*ids, command.assignment))
    return events


def _transfer(state: CaseState, command: Transfer) -> list[CaseEvent]:
    ids = (state.district_id, state.case_id, command)
    if command.to_station_code is None and command.to_representative_id is None:
        raise InvalidCommand("请指定转办的代表或联络站", "name a representative or a station")
    station = command.to_station_code or state.station_code
    if (
        command.to_representative_id is not None
        and command.to_representative_id == state.representative_id
        and station == state.station_code
    ):
        raise InvalidCommand("案件已由该代表办理", "the case is already with that representative")
    if command.to_representative_id is None and station == state.station_code:
        raise InvalidCommand("案件已在该联络站", "the case is already at that station")
    events: list[CaseEvent] = [
        _make(
            CaseTransferred,
            *ids,
            to_station_code=station,
            to_representative_id=command.to_representative_id,
            reason=command.reason,
        )
    ]
    if command.to_representative_id is None and command.assignment is not None:
        events.append(_assigned(*ids, command.assignment))
    return events


# --------------------------------------------------------------------------- overdue


@dataclass(frozen=True, slots=True)
class Rung:
    """A rung of the escalation ladder: who is told of a missed deadline."""

    level: str
    """``station_head``, ``street`` or ``district``."""
    name: str


@dataclass(frozen=True)
class OverdueRules:
    """How missed deadlines escalate: the ladder's rungs and the time each one gets."""

    ladder: Sequence[Rung] = ()
    supervise: Callable[[datetime], datetime] = field(default=lambda due: due)
    """The deadline given to a rung told of a deadline missed at the argument."""


def overdue_events(state: CaseState, now: datetime, rules: OverdueRules) -> list[CaseOverdue]:
    """``CaseOverdue`` for every deadline passed by ``now`` and not yet recorded.

    Each missed deadline tells the next rung of the ladder (the first miss the station
    head, the next the street…) and gives it a deadline of its own, which can be missed
    in turn. The event's moment is the deadline itself and its content depends only on
    the case and the rules, so that two scanners, or a scanner and a late step, produce
    the very same event (the store keeps one).
    """
    events: list[CaseOverdue] = []
    current = state
    while current.status in OPEN:
        passed = sorted(
            (d for d in current.deadlines if d.active and d.due <= now), key=lambda d: d.due
        )
        if not passed:
            break
        deadline = passed[0]
        rung: Rung | None = None
        next_due: datetime | None = None
        if rules.ladder:
            index = min(current.overdue_count, len(rules.ladder) - 1)
            rung = rules.ladder[index]
            if index < len(rules.ladder) - 1:
                next_due = rules.supervise(deadline.due)
        event = CaseOverdue(
            district_id=current.district_id,
            case_id=current.case_id,
            occurred_at=deadline.due,
            actor=SYSTEM,
            deadline=deadline.kind,
            due=deadline.due,
            escalated_to=rung.name[:100] if rung else None,
            escalation_level=rung.level if rung else None,
            next_due=next_due,
        )
        events.append(event)
        current = evolve(current, event)
    return events


# --------------------------------------------------------------------------- evolve


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
