"""The rows of the staff command table for the liaison work beyond a case's own steps:
the whistle loop's department steps and rating, callbacks, a suggestion's answer, and
handing on an opinion one is responsible for. Each row's decision is in
:mod:`services.routing.followups`; :mod:`services.routing.staff_commands` lists these rows
with the others, so their routes, roles and idempotency come the same way.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, HttpUrl, StringConstraints

from contracts.base import ActorRole, Identifier
from eventkit.identity import Role
from services.routing.case_commands import (
    AnswerSuggestion,
    HandOn,
    RateDepartment,
    RecordCallback,
    ReportIn,
    Respond,
)
from services.routing.case_state import Whistle
from services.routing.casework import Planned, Step
from services.routing.command_rows import (
    CASEWORKERS,
    COORDINATORS,
    CommandBody,
    StaffCommand,
    Text,
    row,
)
from services.routing.errors import DirectoryNotFound
from services.routing.followups import FollowUpRefused, NotYourDepartment

WHISTLERS = CASEWORKERS | {Role.COMMUNITY_COMMISSIONER}
"""May blow a whistle (吹哨): those who work cases, and the community commissioners."""
FOR_DEPARTMENTS = COORDINATORS | {Role.DEPARTMENT}
"""May record a department's step: its own staff, or station staff on its behalf."""
RATERS = COORDINATORS | {Role.COMMUNITY_COMMISSIONER}
"""May rate a whistle's department (一哨一评价)."""


class DepartmentStepBody(CommandBody):
    whistle_seq: int | None = Field(default=None, ge=1)
    """Which whistle (1, 2…); the latest open one to the department when omitted."""
    note: Annotated[str, StringConstraints(max_length=2000, strip_whitespace=True)] | None = None


class DepartmentResponseBody(CommandBody):
    action: Text
    """What the department did (处理反馈)."""
    whistle_seq: int | None = Field(default=None, ge=1)
    evidence_urls: list[HttpUrl] = Field(default_factory=list, max_length=9)


class RateDepartmentBody(CommandBody):
    whistle_seq: int = Field(ge=1)
    rating: int = Field(ge=1, le=5)
    comment: Text | None = None


class CallbackBody(CommandBody):
    satisfaction: int = Field(ge=1, le=5)
    """The resident's rating, 1 (very unsatisfied) to 5 (very satisfied)."""
    resolved: bool
    """Whether the resident says the matter is solved."""
    comment: Text | None = None
    """What the resident said, as staff took it down."""


class AnswerSuggestionBody(CommandBody):
    answer: Text
    answered_by: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    """The body that answered (承办单位)."""


class HandOnBody(CommandBody):
    reason: Text
    to_representative_id: Identifier | None = None
    """Another representative; none: the station's liaison officers."""


def _open_whistle(step: Step, seq: int | None, *, responding: bool) -> Whistle:
    """The whistle a department step is about: the one named, else the latest to the
    caller's department (any registered department for station staff) still waiting for
    this step."""
    state, actor = step.state, step.actor
    mine: list[str] | None = None
    if actor.role is ActorRole.DEPARTMENT:
        mine = step.ctx.directory.departments_of(actor.id)
        if not mine:
            raise NotYourDepartment("")
    if seq is not None:
        whistle = state.whistle(seq)
        if whistle is None or whistle.department_code is None:
            raise FollowUpRefused(
                f"没有第 {seq} 次向已登记部门的吹哨", f"no whistle {seq} to a registered department"
            )
        if mine is not None and whistle.department_code not in mine:
            raise NotYourDepartment(whistle.department_code)
        return whistle
    waiting = [
        w
        for w in state.whistles
        if w.department_code is not None
        and (mine is None or w.department_code in mine)
        and (w.responded_at is None if responding else w.reported_at is None)
    ]
    if not waiting:
        raise FollowUpRefused("没有等待该步骤的部门吹哨", "no whistle waits for this step")
    return waiting[-1]


async def _department_report(step: Step, body: DepartmentStepBody) -> Planned:
    whistle = _open_whistle(step, body.whistle_seq, responding=False)
    assert whistle.department_code is not None
    return Planned(
        ReportIn(
            actor=step.actor,
            now=step.now,
            whistle_seq=whistle.seq,
            department_code=whistle.department_code,
            note=body.note,
        )
    )


async def _department_respond(step: Step, body: DepartmentResponseBody) -> Planned:
    whistle = _open_whistle(step, body.whistle_seq, responding=True)
    assert whistle.department_code is not None
    return Planned(
        Respond(
            actor=step.actor,
            now=step.now,
            whistle_seq=whistle.seq,
            department_code=whistle.department_code,
            action=body.action,
            evidence_urls=tuple(str(u) for u in body.evidence_urls),
        )
    )


async def _rate_department(step: Step, body: RateDepartmentBody) -> Planned:
    return Planned(
        RateDepartment(
            actor=step.actor,
            now=step.now,
            whistle_seq=body.whistle_seq,
            rating=body.rating,
            comment=body.comment,
        )
    )


async def _callback(step: Step, body: CallbackBody) -> Planned:
    _, resolution = step.ctx.deadlines(step.state.category_code, step.state.priority, step.now)
    return Planned(
        RecordCallback(
            actor=step.actor,
            now=step.now,
            satisfaction=body.satisfaction,
            resolved=body.resolved,
            comment=body.comment,
            resolution_due=resolution,
        )
    )


async def _answer_suggestion(step: Step, body: AnswerSuggestionBody) -> Planned:
    return Planned(
        AnswerSuggestion(
            actor=step.actor, now=step.now, answer=body.answer, answered_by=body.answered_by
        )
    )


async def _hand_on(step: Step, body: HandOnBody) -> Planned:
    """To another representative (at the case's station if they belong there, else at
    theirs), or to the station's liaison queue."""
    station = step.state.station_code
    if body.to_representative_id is not None:
        rep = step.ctx.directory.representatives.get(body.to_representative_id)
        if rep is None or not rep.active:
            raise DirectoryNotFound(
                f"代表 {body.to_representative_id} 不存在或已离任",
                f"no active representative {body.to_representative_id}",
            )
        if station is None or (station not in rep.stations and rep.contact_point != station):
            station = min(rep.stations) if rep.stations else rep.contact_point
    return Planned(
        HandOn(
            actor=step.actor,
            now=step.now,
            to_representative_id=body.to_representative_id,
            to_station_code=station,
            reason=body.reason,
        )
    )


LIAISON_COMMANDS: tuple[StaffCommand[Any], ...] = (
    row(
        "department_report",
        "部门报到 / the department reports in",
        DepartmentStepBody,
        FOR_DEPARTMENTS,
        _department_report,
    ),
    row(
        "department_respond",
        "部门处理反馈 / the department feeds back what it did",
        DepartmentResponseBody,
        FOR_DEPARTMENTS,
        _department_respond,
    ),
    row(
        "rate_department",
        "一哨一评价 / rate the department of a whistle",
        RateDepartmentBody,
        RATERS,
        _rate_department,
    ),
    row("callback", "回访 / call the resident back", CallbackBody, COORDINATORS, _callback),
    row(
        "answer_suggestion",
        "代表建议答复 / record the answer to a suggestion",
        AnswerSuggestionBody,
        COORDINATORS,
        _answer_suggestion,
    ),
    row(
        "hand_on",
        "转交 / hand the case on",
        HandOnBody,
        COORDINATORS | {Role.REPRESENTATIVE},
        _hand_on,
    ),
)
"""The liaison rows, in the order the API documents them."""
