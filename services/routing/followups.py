"""The liaison work that follows a case beyond its own steps: pure decisions.

A summoned department reports in (部门报到) and feeds back what it did (处理反馈); after
verification the station rates each whistle's department (一哨一评价); staff call the
resident back (回访); the body handling a representative suggestion answers it; the
representative responsible for an opinion hands it on (转交). Each decision is a function
of the case's state and the command, like :func:`services.routing.domain.decide`, which
hands these commands here with its event builder ``make``.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from contracts.base import ActorRole
from contracts.cases import (
    CallbackRecorded,
    CaseEvent,
    CaseReopened,
    CaseTransferred,
    DepartmentRated,
    DepartmentReportedIn,
    DepartmentResponded,
    SuggestionAnswered,
)
from eventkit.refusals import Forbidden, InvalidInput
from services.routing.case_commands import (
    AnswerSuggestion,
    Command,
    HandOn,
    RateDepartment,
    RecordCallback,
    ReportIn,
    Respond,
)
from services.routing.case_state import CaseState, Whistle

E = TypeVar("E", bound=CaseEvent)

UNREGISTERED = "unregistered"
"""The code a rating names for a department summoned only by its name (before the
directory had departments): the rating still names its whistle."""

REPORTED_BY_RESPONSE = "随反馈一并报到 / reported in with the feedback"


class Make(Protocol):
    """Builds an event of the case for the command at hand (``domain.decide``'s)."""

    def __call__(self, cls: type[E], **fields: Any) -> E: ...


class FollowUpRefused(InvalidInput):
    """The step does not fit the case (no such whistle, already done…)."""

    code = "invalid-command"

    def __init__(self, zh: str, en: str) -> None:
        super().__init__("操作无效", "Invalid action", zh, en)


class NotYourDepartment(Forbidden):
    """Department staff acting on a whistle to another department."""

    code = "not-your-department"

    def __init__(self, department_code: str) -> None:
        super().__init__(
            "此吹哨不是给您所在部门的",
            "This whistle was not blown to your department",
            "部门工作人员只能办理吹哨给本部门的事项",
            "Department staff may only act on whistles to their own department",
        )
        self.department_code = department_code


def follow_up(state: CaseState, command: Command, make: Make) -> list[CaseEvent]:
    """The events of a follow-up command (the status was checked by ``decide``)."""
    match command:
        case ReportIn():
            whistle = _department_whistle(state, command.whistle_seq, command.department_code)
            if whistle.reported_at is not None or whistle.responded_at is not None:
                raise FollowUpRefused("该部门已报到", "the department has already reported in")
            return [make(DepartmentReportedIn, **_ids(whistle), note=command.note)]
        case Respond():
            whistle = _department_whistle(state, command.whistle_seq, command.department_code)
            if whistle.responded_at is not None:
                raise FollowUpRefused("该部门已反馈", "the department has already fed back")
            events: list[CaseEvent] = []
            if whistle.reported_at is None:
                events.append(
                    make(DepartmentReportedIn, **_ids(whistle), note=REPORTED_BY_RESPONSE)
                )
            events.append(
                make(
                    DepartmentResponded,
                    **_ids(whistle),
                    action=command.action,
                    evidence_urls=list(command.evidence_urls),
                )
            )
            return events
        case RateDepartment():
            rated = state.whistle(command.whistle_seq)
            if rated is None or not rated.to_department:
                raise FollowUpRefused(
                    f"没有第 {command.whistle_seq} 次向部门的吹哨",
                    f"no whistle {command.whistle_seq} to a department",
                )
            if rated.rating is not None:
                raise FollowUpRefused("该次吹哨已评价", "this whistle was rated already")
            return [
                make(
                    DepartmentRated,
                    department_code=rated.department_code or UNREGISTERED,
                    whistle_seq=rated.seq,
                    rating=command.rating,
                    comment=command.comment,
                )
            ]
        case RecordCallback():
            return _callback(state, command, make)
        case AnswerSuggestion():
            if state.suggestion_answer is not None:
                raise FollowUpRefused("该建议已答复", "the suggestion was answered already")
            return [
                make(SuggestionAnswered, answer=command.answer, answered_by=command.answered_by)
            ]
        case HandOn():
            return _hand_on(state, command, make)
    raise FollowUpRefused("未知操作", f"unknown command {command.name}")  # pragma: no cover


def _ids(whistle: Whistle) -> dict[str, Any]:
    assert whistle.department_code is not None
    return {"department_code": whistle.department_code, "whistle_seq": whistle.seq}


def _department_whistle(state: CaseState, seq: int, department_code: str) -> Whistle:
    whistle = state.whistle(seq)
    if whistle is None or whistle.department_code is None:
        raise FollowUpRefused(
            f"没有第 {seq} 次向已登记部门的吹哨", f"no whistle {seq} to a registered department"
        )
    if whistle.department_code != department_code:
        raise NotYourDepartment(department_code)
    return whistle


def _callback(state: CaseState, command: RecordCallback, make: Make) -> list[CaseEvent]:
    """The rating taken down; unhappy, or not solved, reopens the case as the resident's
    own feedback would (same representative, a new resolution deadline)."""
    if state.resolution_seq < 1:
        raise FollowUpRefused("案件尚未办结，无法回访", "the case has not been resolved yet")
    events: list[CaseEvent] = [
        make(
            CallbackRecorded,
            resolution_seq=state.resolution_seq,
            satisfaction=command.satisfaction,
            resolved=command.resolved,
            comment=command.comment,
        )
    ]
    if command.satisfaction <= 2 or not command.resolved:
        why = (
            f"回访居民不满意（满意度 {command.satisfaction}/5）"
            if command.satisfaction <= 2
            else "回访居民反映问题未解决"
        )
        due = command.resolution_due
        events.append(
            make(
                CaseReopened,
                reason=why
                + " / the callback found the resident unsatisfied or the matter unsolved",
                representative_id=state.representative_id,
                resolution_due=due.at if due else None,
                deadlines_provisional=due.provisional if due else False,
            )
        )
    return events


def _hand_on(state: CaseState, command: HandOn, make: Make) -> list[CaseEvent]:
    """To another representative (at their station), or to the station's liaison queue."""
    target = command.to_representative_id
    station = command.to_station_code or state.station_code
    if target is None and state.representative_id is None:
        raise FollowUpRefused("案件已在联络员队列", "the case is with the liaison officers already")
    if target is not None and target == state.representative_id:
        raise FollowUpRefused("不能转交给自己", "a case cannot be handed on to its own holder")
    if command.actor.role is ActorRole.REPRESENTATIVE and target == command.actor.id:
        raise FollowUpRefused("不能转交给自己", "a case cannot be handed on to oneself")
    return [
        make(
            CaseTransferred,
            to_station_code=station,
            to_representative_id=target,
            reason=command.reason,
        )
    ]
