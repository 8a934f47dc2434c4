"""The life of a case: pure decisions.

``decide(state, command) -> events`` says what happens when staff (or the system) ask for
something; :func:`overdue_events` says which missed deadlines to record. No clock (every
command carries ``now``), no database, no logging: the application layer loads the
stream (:mod:`services.routing.case_store`), decides here, appends and projects. What a
case looks like after its events is :mod:`services.routing.case_state`.

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

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
)
from eventkit.refusals import Conflict, Forbidden, InvalidInput
from services.routing.assignment import Assignment
from services.routing.case_commands import (
    Accept,
    AnswerSuggestion,
    Classify,
    Close,
    Command,
    ConvertToSuggestion,
    Escalate,
    HandOn,
    LinkCase,
    Merge,
    OpenCase,
    RateDepartment,
    RecordCallback,
    Reopen,
    Reply,
    ReportIn,
    Resolve,
    Respond,
    Transfer,
    TransferToDistrict,
    Withdraw,
)
from services.routing.case_state import (
    ALLOWED,
    COMMAND_LABELS,
    STATUS_LABELS,
    SUPERVISED,
    CaseState,
    CaseStatus,
    allowed_commands,
    evolve,
)
from services.routing.followups import follow_up

E = TypeVar("E", bound=CaseEvent)

SYSTEM = Actor(id="routing", role=ActorRole.SYSTEM)
"""The routing service acting on its own (opening, assigning, recording overdue)."""

WITHDRAWN_NOTE = "居民撤回诉求 / withdrawn by the resident"
ON_THE_SPOT_NOTE = "当场办结 / answered at the desk"


# --------------------------------------------------------------------------- refusals


class IllegalTransition(Conflict):
    """The command is not allowed in the case's status; says which ones are."""

    code = "illegal-transition"

    def __init__(self, command: str, status: CaseStatus) -> None:
        self.command = command
        self.status = status
        self.allowed = allowed_commands(status)
        status_zh, status_en = STATUS_LABELS[status]
        allowed_zh = "、".join(COMMAND_LABELS[c] for c in self.allowed) or "无"
        super().__init__(
            "当前状态不允许此操作",
            "This action is not allowed in the case's current status",
            f"案件状态为「{status_zh}」，不能「{COMMAND_LABELS.get(command, command)}」。"
            f"可以进行的操作：{allowed_zh}",
            f"The case is {status_en}; '{command}' is not allowed. "
            f"Allowed: {', '.join(self.allowed) or 'none'}",
            extra={
                "case_status": status.value,
                "command": command,
                "allowed_transitions": self.allowed,
            },
        )


class NotYourCase(Forbidden):
    """A representative acting on a case assigned to someone else."""

    code = "not-your-case"

    def __init__(self, case_id: str, representative_id: str) -> None:
        super().__init__(
            "此案件未分派给您",
            "This case is not assigned to you",
            "代表只能办理分派给本人的案件",
            "A representative may only work the cases assigned to them",
        )
        self.case_id = case_id
        self.representative_id = representative_id


class OwnResolution(Forbidden):
    """The one who resolved a case may not also verify and close it (核实结项)."""

    code = "own-resolution"

    def __init__(self, case_id: str) -> None:
        super().__init__(
            "不能核实自己办结的案件",
            "You may not verify a resolution you recorded yourself",
            "核实结项须由办结人以外的工作人员进行",
            "Someone other than the one who resolved the case must verify and close it",
        )
        self.case_id = case_id


class InvalidCommand(InvalidInput):
    """The command contradicts the case (e.g. a transfer to where it already is)."""

    code = "invalid-command"

    def __init__(self, zh: str, en: str) -> None:
        super().__init__("操作无效", "Invalid action", zh, en)


class StaleFeedback(Conflict):
    """Feedback about an earlier resolution, or about a case no longer resolved."""

    code = "stale-feedback"

    def __init__(self, rated: int, current: int) -> None:
        super().__init__(
            "评价针对的不是最近一次办结",
            "The feedback is not about the latest resolution",
            f"评价的是第 {rated} 次办结，案件已到第 {current} 次",
            f"feedback on resolution {rated}, the case is at {current}",
        )


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
            return [make(CaseReplied, message=command.message, public=command.public)]
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
            registered = command.department_code is not None
            return [
                make(
                    CaseEscalated,
                    to_level=command.to_level,
                    to_name=command.to_name,
                    due=command.due,
                    reason=command.reason,
                    department_code=command.department_code,
                    whistle_seq=len(state.whistles) + 1,
                    report_due=command.report_due if registered else None,
                )
            ]
        case HandOn():
            _check_representative(state, command.actor)
            return follow_up(state, command, make)
        case ReportIn() | Respond() | RateDepartment() | RecordCallback() | AnswerSuggestion():
            return follow_up(state, command, make)
        case Resolve():
            _check_representative(state, command.actor)
            return [
                make(
                    CaseResolved,
                    resolution_seq=state.resolution_seq + 1,
                    result=command.result,
                    evidence_urls=list(command.evidence_urls),
                    public=command.public,
                )
            ]
        case Close():
            if state.status is CaseStatus.RESOLVED and state.resolved_by == command.actor.id:
                raise OwnResolution(state.case_id)
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
                raise StaleFeedback(command.for_resolution, state.resolution_seq)
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
        raise NotYourCase(state.case_id, actor.id)


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
    found = command.classification
    source = command.transferred_from
    collected = command.collected_by
    events: list[CaseEvent] = [
        _make(
            CaseOpened,
            *ids,
            opinion_id=command.opinion_id,
            category_code=found.category_code,
            matched_keywords=list(found.matched_keywords),
            priority=found.priority,
            response_due=command.response_due.at,
            resolution_due=command.resolution_due.at,
            deadlines_provisional=command.response_due.provisional
            or command.resolution_due.provisional,
            priority_keywords=list(found.priority_keywords),
            category_hint_matched=found.hint_matched,
            classifier_version=found.model_version,
            classifier_evidence=list(found.evidence),
            classifier_confidence=found.confidence,
            urgency_score=found.urgency,
            urgency_evidence=list(found.urgency_evidence),
            taxonomy_version=command.taxonomy_version,
            transferred_from_district_id=source[0] if source else None,
            transferred_from_case_id=source[1] if source else None,
            channel=command.channel,
            community=command.community.name[:100] if command.community else None,
            street_code=(command.community.street_code or None) if command.community else None,
            collected_by=collected.staff_id if collected else None,
            collected_by_role=collected.role if collected else None,
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
    spot = command.on_the_spot
    if spot is not None:
        # 当场办结: answered as it was taken down, by whoever answered it.
        answerer = Actor(id=spot.staff_id, role=ActorRole(spot.role))
        at_desk = replace(command, actor=answerer)
        events.append(
            _make(
                CaseResolved,
                *ids[:2],
                at_desk,
                resolution_seq=1,
                result=spot.answer,
                on_the_spot=True,
            )
        )
        events.append(_make(CaseClosed, *ids[:2], at_desk, note=ON_THE_SPOT_NOTE))
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

    Each deadline climbs a ladder of its own: its miss tells the first rung (the station
    head), which gets a supervision deadline; that one missed tells the next rung (the
    street), and so on. A missed response deadline and a missed resolution deadline (or
    a department's report-in) each start at the first rung. The event's moment is the
    deadline itself and its content depends only on the case and the rules, so that two
    scanners, or a scanner and a late step, produce the very same event (the store keeps
    one).
    """
    events: list[CaseOverdue] = []
    current = state
    while current.status in SUPERVISED:
        passed = sorted(
            (d for d in current.deadlines if d.active and d.due <= now), key=lambda d: d.due
        )
        if not passed:
            break
        deadline = passed[0]
        rung: Rung | None = None
        next_due: datetime | None = None
        if rules.ladder:
            index = min(deadline.rung, len(rules.ladder) - 1)
            rung = rules.ladder[index]
            if index < len(rules.ladder) - 1:
                next_due = rules.supervise(deadline.due)
        whistle = current.whistle(deadline.whistle_seq) if deadline.whistle_seq else None
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
            subject=deadline.subject,
            ladder_of=deadline.ladder[:100] or None,
            department_code=whistle.department_code if whistle else None,
            whistle_seq=deadline.whistle_seq,
        )
        events.append(event)
        current = evolve(current, event)
    return events
