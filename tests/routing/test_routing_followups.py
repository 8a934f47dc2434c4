"""The liaison work's decisions: the whistle loop with the department's own deadlines,
a ladder per deadline, callbacks, suggestions supervised until answered, opinions
answered at the desk or collected on a visit (unit tests, no I/O)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from contracts import Actor, ActorRole, OnBehalfOf, OnTheSpotAnswer, Priority
from contracts.cases import CaseEvent, CaseOverdue
from contracts.directory import Monthly, ReceptionRule, RepresentativeLevel, StationKind
from services.routing.assignment import Matter, Place, assign, choose_station, responsible_for
from services.routing.case_commands import (
    Accept,
    AnswerSuggestion,
    Close,
    Command,
    ConvertToSuggestion,
    Escalate,
    HandOn,
    OpenCase,
    RateDepartment,
    RecordCallback,
    ReportIn,
    Resolve,
    Respond,
)
from services.routing.case_state import CaseState, CaseStatus, fold
from services.routing.classification import Classification
from services.routing.deadlines import Due
from services.routing.directory import Directory, DistrictConfig, Representative, Station
from services.routing.directory_plan import plan_changes
from services.routing.district_context import default_policy
from services.routing.district_file import parse_district_file
from services.routing.domain import (
    SYSTEM,
    IllegalTransition,
    NotYourCase,
    OverdueRules,
    Rung,
    decide,
    overdue_events,
)
from services.routing.followups import FollowUpRefused, NotYourDepartment
from services.routing.liaison_plan import reception_plan
from tests.routing.routing_support import SHANGHAI
from tests.routing.test_routing_state_machine import opened

T0 = datetime(2026, 10, 12, 10, 0, tzinfo=SHANGHAI)
LIAISON = Actor(id="lo_1", role=ActorRole.LIAISON)
REP = Actor(id="r1", role=ActorRole.REPRESENTATIVE)
CG = Actor(id="cg_01", role=ActorRole.DEPARTMENT)
LADDER = OverdueRules(
    (Rung("station_head", "站长"), Rung("street", "街道人大工委"), Rung("district", "区人大")),
    supervise=lambda due: due + timedelta(days=1),
)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def run(state: CaseState, *commands: Command) -> tuple[CaseState, list[CaseEvent]]:
    events: list[CaseEvent] = []
    for command in commands:
        new = decide(state, command)
        events += new
        folded = fold(new, state)
        assert folded is not None
        state = folded
    return state, events


def scan(state: CaseState, moment: datetime) -> tuple[CaseState, list[CaseOverdue]]:
    missed = overdue_events(state, moment, LADDER)
    return fold(missed, state) or state, missed


def whistled() -> CaseState:
    """Accepted, then a whistle to 城管 (report in within 8 h, feed back within 48 h)."""
    state, _ = run(
        opened(),
        Accept(actor=REP, now=at(1)),
        Escalate(
            actor=REP,
            now=at(2),
            to_level="department",
            to_name="区城市管理局",
            due=at(48),
            reason="占道经营，请城管处理",
            department_code="chengguan",
            report_due=at(8),
        ),
    )
    return state


def test_a_whistle_to_a_registered_department_starts_its_own_deadlines() -> None:
    state = whistled()

    [whistle] = state.whistles
    assert (whistle.seq, whistle.department_code, whistle.report_due, whistle.due) == (
        1,
        "chengguan",
        at(8),
        at(48),
    )
    subjects = {d.subject: d.due for d in state.deadlines if d.subject}
    assert subjects == {"department_report": at(8), "department_response": at(48)}
    assert state.status is CaseStatus.ESCALATED


def test_a_department_that_misses_its_report_in_is_supervised_up_the_ladder() -> None:
    state, first = scan(whistled(), at(9))

    assert [(e.deadline, e.subject, e.escalation_level) for e in first] == [
        ("escalation", "department_report", "station_head")
    ]
    assert (first[0].department_code, first[0].whistle_seq) == ("chengguan", 1)
    assert first[0].ladder_of == "department:chengguan:1"

    # The station head's day passes without the department reporting in: the street.
    state, second = scan(state, at(9 + 24))
    assert [(e.subject, e.escalation_level) for e in second] == [("department_report", "street")]

    # Reporting in late meets what is still running of the report-in ladder.
    state, _ = run(
        state, ReportIn(actor=CG, now=at(34), whistle_seq=1, department_code="chengguan")
    )
    assert state.whistles[0].reported_by == "cg_01"
    assert overdue_events(state, at(47), LADDER) == []


def test_feeding_back_records_the_report_in_too_and_meets_both_deadlines() -> None:
    state, events = run(
        whistled(),
        Respond(
            actor=CG,
            now=at(5),
            whistle_seq=1,
            department_code="chengguan",
            action="已清理占道摊位并加强巡查",
        ),
    )

    assert [type(e).__name__ for e in events] == ["DepartmentReportedIn", "DepartmentResponded"]
    assert all(e.actor == CG for e in events)
    assert overdue_events(state, at(500), LADDER)[0].deadline == "resolution"
    assert state.whistles[0].action == "已清理占道摊位并加强巡查"


def test_a_department_cannot_act_on_another_department_s_whistle() -> None:
    with pytest.raises(NotYourDepartment):
        decide(whistled(), ReportIn(actor=CG, now=at(3), whistle_seq=1, department_code="zhujian"))
    with pytest.raises(FollowUpRefused):
        decide(
            whistled(), ReportIn(actor=CG, now=at(3), whistle_seq=2, department_code="chengguan")
        )


def test_each_deadline_climbs_a_ladder_of_its_own() -> None:
    # Response missed at day 1: the station head. Its supervision day passes: the
    # street. The resolution deadline missed later starts again at the station head.
    state, first = scan(opened(), T0 + timedelta(days=1, hours=1))
    state, second = scan(state, T0 + timedelta(days=2, hours=1))
    state, third = scan(state, T0 + timedelta(days=10, hours=1))

    assert [(e.deadline, e.escalation_level) for e in first] == [("response", "station_head")]
    assert [(e.deadline, e.escalation_level, e.ladder_of) for e in second] == [
        ("escalation", "street", "response")
    ]
    resolution = [(e.deadline, e.escalation_level) for e in third if e.deadline == "resolution"]
    assert resolution == [("resolution", "station_head")]


def test_the_department_is_rated_once_after_the_case_is_verified() -> None:
    state, _ = run(
        whistled(),
        Respond(actor=CG, now=at(5), whistle_seq=1, department_code="chengguan", action="已处理"),
        Resolve(actor=REP, now=at(6), result="已恢复通行"),
    )
    rate = RateDepartment(actor=LIAISON, now=at(8), whistle_seq=1, rating=4, comment="响应及时")
    with pytest.raises(IllegalTransition):
        decide(state, rate)

    state, events = run(state, Close(actor=LIAISON, now=at(7)), rate)

    assert state.whistles[0].rating == 4
    assert events[-1].model_dump()["department_code"] == "chengguan"
    with pytest.raises(FollowUpRefused):
        decide(state, rate)


def resolved() -> CaseState:
    state, _ = run(
        opened(), Accept(actor=REP, now=at(1)), Resolve(actor=REP, now=at(2), result="已修复")
    )
    return state


def test_an_unhappy_callback_reopens_the_case_like_the_resident_s_own_feedback() -> None:
    state, events = run(
        resolved(),
        RecordCallback(
            actor=LIAISON,
            now=at(30),
            satisfaction=2,
            resolved=False,
            comment="居民说楼道灯还是不亮",
            resolution_due=Due(at(200)),
        ),
    )

    assert [type(e).__name__ for e in events] == ["CallbackRecorded", "CaseReopened"]
    assert events[0].actor == LIAISON
    assert state.status is CaseStatus.IN_PROGRESS
    assert state.callback is not None
    assert state.callback.satisfaction == 2
    assert state.next_due == at(200)


def test_a_satisfied_callback_only_records_the_rating() -> None:
    state, events = run(
        resolved(), RecordCallback(actor=LIAISON, now=at(30), satisfaction=5, resolved=True)
    )

    assert [type(e).__name__ for e in events] == ["CallbackRecorded"]
    assert state.status is CaseStatus.RESOLVED


def test_a_suggestion_is_supervised_until_its_answer_arrives() -> None:
    accepted, _ = run(opened(), Accept(actor=REP, now=at(1)))
    state, _ = run(
        accepted,
        ConvertToSuggestion(actor=REP, now=at(2), title="建议增设公交线路", reply_due=at(100)),
    )
    assert state.next_due == at(100)

    late, missed = scan(state, at(101))
    assert [(e.deadline, e.subject, e.escalation_level) for e in missed] == [
        ("escalation", "suggestion_answer", "station_head")
    ]

    answered, _ = run(
        late,
        AnswerSuggestion(
            actor=LIAISON, now=at(102), answer="已纳入明年线网优化", answered_by="区交通运输局"
        ),
    )
    assert answered.suggestion_answer is not None
    assert answered.suggestion_answer[1] == "区交通运输局"
    assert overdue_events(answered, at(1000), LADDER) == []
    with pytest.raises(FollowUpRefused):
        decide(answered, AnswerSuggestion(actor=LIAISON, now=at(103), answer="x", answered_by="y"))


def test_handing_a_case_on_is_the_holder_s_to_do() -> None:
    accepted, _ = run(opened(), Accept(actor=REP, now=at(1)))
    other = Actor(id="r2", role=ActorRole.REPRESENTATIVE)

    with pytest.raises(NotYourCase):
        decide(
            accepted,
            HandOn(
                actor=other, now=at(2), to_representative_id=None, to_station_code=None, reason="x"
            ),
        )
    state, events = run(
        accepted,
        HandOn(
            actor=REP,
            now=at(2),
            to_representative_id=None,
            to_station_code=None,
            reason="非本人专长",
        ),
    )
    assert (state.representative_id, state.queue) == (None, "liaison")
    assert events[0].model_dump()["to_station_code"] == "donghu"


def test_an_opinion_answered_at_the_desk_is_resolved_and_closed_by_who_answered() -> None:
    answer = OnTheSpotAnswer(answer="已当场解释医保报销流程", role="liaison", staff_id="lo_1")
    events = decide(
        None,
        OpenCase(
            actor=SYSTEM,
            now=T0,
            case_id="c9",
            district_id="demo",
            opinion_id="o9",
            classification=Classification("social_security", (), Priority.NORMAL, ()),
            response_due=Due(at(24)),
            resolution_due=Due(at(240)),
            assignment=assign(
                DIRECTORY,
                choose_station(DIRECTORY, Place("s1", None, None)),
                matter(),
                classified=True,
                open_cases={},
                policy=default_policy("demo"),
            ),
            on_the_spot=answer,
        ),
    )
    state = fold(events)

    assert [type(e).__name__ for e in events][-2:] == ["CaseResolved", "CaseClosed"]
    assert events[-2].actor == Actor(id="lo_1", role=ActorRole.LIAISON)
    assert events[-2].model_dump()["on_the_spot"] is True
    assert state is not None
    assert state.status is CaseStatus.CLOSED
    assert all(d.met for d in state.deadlines)


DIRECTORY = Directory(
    district_id="demo",
    name_zh="示范区",
    stations={
        "s1": Station("s1", "一站", StationKind.COMMUNITY, "dh", frozenset({"东湖社区"})),
        "s2": Station("s2", "二站", StationKind.COMMUNITY, "dh", frozenset({"湖滨社区"})),
    },
    representatives={
        "r1": Representative("r1", "甲", RepresentativeLevel.DISTRICT, stations=frozenset({"s1"})),
        "r2": Representative("r2", "乙", RepresentativeLevel.DISTRICT, stations=frozenset({"s2"})),
    },
)


def matter(responsible: str | None = None) -> Matter:
    return Matter(None, frozenset(), Priority.NORMAL, date(2026, 10, 12), responsible=responsible)


def test_whoever_collects_an_opinion_on_a_visit_is_responsible_for_it() -> None:
    visit = OnBehalfOf(role="representative", staff_id="r2")
    who = responsible_for(DIRECTORY, "visit", visit)

    # Scanned at s1, where r1 would win on score: r2 collected it, so it is r2's, at r2's
    # own station.
    placed = assign(
        DIRECTORY,
        choose_station(DIRECTORY, Place("s1", None, None)),
        matter(who),
        classified=True,
        open_cases={},
        policy=default_policy("demo"),
    )

    assert who == "r2"
    assert (placed.representative_id, placed.station_code, placed.queue) == (
        "r2",
        "s2",
        "representative",
    )
    assert "谁走访谁负责" in placed.reason
    assert responsible_for(DIRECTORY, "qr", visit) is None
    assert (
        responsible_for(DIRECTORY, "visit", OnBehalfOf(role="representative", staff_id="r9"))
        is None
    )


def test_reception_days_are_planned_from_the_rules_and_a_cancelled_day_stays_cancelled() -> None:
    rule = ReceptionRule(station_code="s1", monthly=Monthly(week=3, weekday=2))
    rep = Representative("r1", "甲", stations=frozenset({"s1"}), reception_rules=(rule,))
    base = {"district_id": "demo", "occurred_at": T0, "actor": SYSTEM}
    config = DistrictConfig(
        Directory("demo", "示范区", representatives={"r1": rep}),
        scheduled=frozenset({("r1", "s1", date(2026, 10, 20))}),  # planned, then cancelled
    )

    planned = reception_plan(config, base, date(2026, 10, 12))

    days = [e.model_dump()["day"] for e in planned]
    assert days == [date(2026, 11, 17), date(2026, 12, 15), date(2027, 1, 19)]
    # Months later the planner keeps going: a long-running service never runs out.
    later = reception_plan(config, base, date(2027, 6, 1))
    assert later[0].model_dump()["day"] == date(2027, 6, 15)


def test_a_deliberative_representative_is_a_level_of_its_own() -> None:
    changes = parse_district_file(
        """
district: {code: demo, name_zh: 示范区}
streets: [{code: dh, name_zh: 东湖街道}]
stations: [{code: s1, name_zh: 一站, kind: community, street: dh}]
representatives:
  - {id: y001, name_zh: 议政代表甲, level: deliberative, stations: [s1]}
"""
    )
    plan = plan_changes(
        None, changes, district_id="demo", actor=SYSTEM, now=T0, today=date(2026, 10, 12)
    )

    [registered] = [e for e in plan.events if e.event_type == "RepresentativeRegistered"]
    assert registered.model_dump()["level"] is RepresentativeLevel.DELIBERATIVE
