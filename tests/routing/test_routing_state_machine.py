"""The case state machine: decide and evolve (unit tests, no I/O)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from contracts import Actor, ActorRole, Priority, ScoredCandidate
from contracts.cases import CaseEvent, CaseOpened, CaseOverdue
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
    CaseState,
    CaseStatus,
    Whistle,
    allowed_commands,
    fold,
)
from services.routing.classification import Classification
from services.routing.deadlines import Due
from services.routing.domain import (
    SYSTEM,
    IllegalTransition,
    InvalidCommand,
    NotYourCase,
    OverdueRules,
    Rung,
    StaleFeedback,
    decide,
    overdue_events,
)
from tests.routing.routing_support import SHANGHAI

T0 = datetime(2026, 10, 12, 10, 0, tzinfo=SHANGHAI)
LIAISON = Actor(id="lo_1", role=ActorRole.LIAISON)
REP = Actor(id="r1", role=ActorRole.REPRESENTATIVE)
OTHER_REP = Actor(id="r2", role=ActorRole.REPRESENTATIVE)
RULES = OverdueRules(
    (Rung("station_head", "东湖社区联络站站长"), Rung("street", "东湖街道人大工委")),
    supervise=lambda due: due + timedelta(days=1),
)


def opened(
    queue: str = "representative", representative: str | None = "r1", category: str | None = "p"
) -> CaseState:
    events = decide(
        None,
        OpenCase(
            actor=SYSTEM,
            now=T0,
            case_id="c1",
            district_id="demo",
            opinion_id="o1",
            classification=Classification(
                category, ("电梯",) if category else (), Priority.NORMAL, ()
            ),
            response_due=Due(T0 + timedelta(days=1)),
            resolution_due=Due(T0 + timedelta(days=10)),
            assignment=Assignment(
                "donghu",
                representative,
                queue,
                "测试",
                (ScoredCandidate(representative_id="r1", score=1.0, components={"x": 1.0}),)
                if representative
                else (),
            ),
        ),
    )
    state = fold(events)
    assert state is not None
    return state


def test_the_opening_records_what_the_trained_classifier_saw() -> None:
    found = Classification(
        "p",
        (),
        Priority.URGENT,
        (),
        model_version=3,
        evidence=("漏水", "楼上"),
        confidence=0.42,
        urgency=0.91,
        urgency_evidence=("漏水",),
    )
    command = OpenCase(
        actor=SYSTEM,
        now=T0,
        case_id="c1",
        district_id="demo",
        opinion_id="o1",
        classification=found,
        response_due=Due(T0 + timedelta(hours=2)),
        resolution_due=Due(T0 + timedelta(days=1)),
        assignment=Assignment("donghu", "r1", "representative", "测试"),
    )
    case_opened = decide(None, command)[0]
    assert isinstance(case_opened, CaseOpened)
    assert (case_opened.classifier_version, case_opened.classifier_confidence) == (3, 0.42)
    assert case_opened.classifier_evidence == ["漏水", "楼上"]
    assert (case_opened.urgency_score, case_opened.urgency_evidence) == (0.91, ["漏水"])
    assert case_opened.priority is Priority.URGENT


def run(state: CaseState, *commands: Command) -> tuple[CaseState, list[CaseEvent]]:
    events: list[CaseEvent] = []
    for command in commands:
        new = decide(state, command)
        events += new
        folded = fold(new, state)
        assert folded is not None
        state = folded
    return state, events


def at(hours: float = 1) -> datetime:
    return T0 + timedelta(hours=hours)


COMMANDS: dict[str, Callable[[], Command]] = {
    "accept": lambda: Accept(actor=LIAISON, now=at()),
    "reply": lambda: Reply(actor=LIAISON, now=at(), message="已收到"),
    "classify": lambda: Classify(
        actor=LIAISON,
        now=at(),
        category_code="q",
        priority=Priority.URGENT,
        reason="升级",
        response_due=Due(at(2)),
        resolution_due=Due(at(24)),
    ),
    "transfer": lambda: Transfer(
        actor=LIAISON, now=at(), to_station_code=None, to_representative_id="r9", reason="转"
    ),
    "escalate": lambda: Escalate(
        actor=LIAISON, now=at(), to_level="department", to_name="区城管局", due=at(48), reason="吹"
    ),
    "resolve": lambda: Resolve(actor=LIAISON, now=at(), result="已修复"),
    "convert": lambda: ConvertToSuggestion(actor=LIAISON, now=at(), title="建议", reply_due=None),
    "close": lambda: Close(actor=LIAISON, now=at()),
    "reopen": lambda: Reopen(actor=LIAISON, now=at(), reason="未解决", resolution_due=None),
    "withdraw": lambda: Withdraw(actor=LIAISON, now=at()),
    "merge": lambda: Merge(actor=LIAISON, now=at(), into_case_id="c2", reason="重复"),
    "link": lambda: LinkCase(
        actor=LIAISON, now=at(), related_case_id="c2", relation="related", reason="同类"
    ),
    "department_report": lambda: ReportIn(
        actor=LIAISON, now=at(), whistle_seq=1, department_code="cg"
    ),
    "department_respond": lambda: Respond(
        actor=LIAISON, now=at(), whistle_seq=1, department_code="cg", action="已清理"
    ),
    "rate_department": lambda: RateDepartment(actor=LIAISON, now=at(), whistle_seq=1, rating=5),
    "callback": lambda: RecordCallback(actor=LIAISON, now=at(), satisfaction=5, resolved=True),
    "answer_suggestion": lambda: AnswerSuggestion(
        actor=LIAISON, now=at(), answer="已列入明年计划", answered_by="区交通运输局"
    ),
    "hand_on": lambda: HandOn(
        actor=LIAISON, now=at(), to_representative_id="r9", to_station_code=None, reason="转交"
    ),
}

WHISTLED = (
    Whistle(
        seq=1,
        to_level="department",
        to_name="区城管局",
        due=None,
        whistled_at=T0,
        whistled_by="lo_1",
        department_code="cg",
    ),
)
"""A whistle to a registered department, for the commands that act on one."""


def test_every_command_has_its_allowed_statuses() -> None:
    assert set(COMMANDS) == set(ALLOWED)


FORBIDDEN = [
    (name, status)
    for name, statuses in ALLOWED.items()
    for status in CaseStatus
    if status not in statuses
]


@pytest.mark.parametrize(("name", "status"), FORBIDDEN, ids=lambda v: str(v))
def test_an_illegal_transition_is_refused_and_says_what_is_allowed(
    name: str, status: CaseStatus
) -> None:
    state = replace(opened(), status=status, resolution_seq=1, whistles=WHISTLED)

    with pytest.raises(IllegalTransition) as refused:
        decide(state, COMMANDS[name]())

    assert refused.value.command == name
    assert refused.value.status is status
    assert refused.value.allowed == allowed_commands(status)
    assert name not in refused.value.allowed


ALLOWED_PAIRS = [
    (name, status) for name, statuses in ALLOWED.items() for status in sorted(statuses)
]


@pytest.mark.parametrize(("name", "status"), ALLOWED_PAIRS, ids=lambda v: str(v))
def test_an_allowed_transition_is_decided(name: str, status: CaseStatus) -> None:
    state = replace(opened(representative="r1"), status=status, resolution_seq=1, whistles=WHISTLED)

    events = decide(state, COMMANDS[name]())

    assert events
    assert all(e.case_id == "c1" and e.district_id == "demo" for e in events)


def test_the_whole_loop_from_opening_to_closing() -> None:
    state = opened()
    assert (state.status, state.representative_id, state.queue) == (
        CaseStatus.ASSIGNED,
        "r1",
        "representative",
    )
    assert state.next_due == T0 + timedelta(days=1)

    state, events = run(
        state,
        Accept(actor=REP, now=at(1)),
        Reply(actor=REP, now=at(2), message="您好，已联系物业"),
        Escalate(
            actor=REP,
            now=at(3),
            to_level="department",
            to_name="区住建局",
            due=at(72),
            reason="吹哨",
        ),
        Resolve(actor=REP, now=at(40), result="电梯已修复", evidence_urls=("https://x.cn/1.jpg",)),
        Close(actor=LIAISON, now=at(50), note="回访满意"),
    )

    assert [type(e).__name__ for e in events] == [
        "CaseAccepted",
        "CaseReplied",
        "CaseEscalated",
        "CaseResolved",
        "CaseClosed",
    ]
    assert state.status is CaseStatus.CLOSED
    assert state.resolution_seq == 1
    assert state.version == 7
    assert all(d.met for d in state.deadlines)
    assert state.escalations == (("department", "区住建局", at(72)),)


def test_accepting_meets_the_response_deadline_and_the_resolution_one_is_next() -> None:
    state, _ = run(opened(), Accept(actor=REP, now=at()))

    assert state.status is CaseStatus.IN_PROGRESS
    assert state.next_due == T0 + timedelta(days=10)


def test_a_representative_cannot_work_a_case_assigned_to_someone_else() -> None:
    with pytest.raises(NotYourCase):
        decide(opened(), Accept(actor=OTHER_REP, now=at()))
    state, _ = run(opened(), Accept(actor=REP, now=at()))
    with pytest.raises(NotYourCase):
        decide(state, Resolve(actor=OTHER_REP, now=at(), result="x"))


def test_a_representative_cannot_escalate_a_case_assigned_to_someone_else() -> None:
    def escalate(actor: Actor) -> Escalate:
        return Escalate(
            actor=actor,
            now=at(),
            to_level="street",
            to_name="东湖街道人大工委",
            due=at(48),
            reason="吹哨",
        )

    accepted, _ = run(opened(), Accept(actor=REP, now=at()))
    with pytest.raises(NotYourCase):
        decide(accepted, escalate(OTHER_REP))
    assert [e.to_level for e in decide(accepted, escalate(REP))] == ["street"]  # type: ignore[attr-defined]


def test_a_missed_deadline_is_recorded_once_and_climbs_the_ladder() -> None:
    state = opened()
    late = T0 + timedelta(days=1, hours=1)

    first = overdue_events(state, late, RULES)
    state = fold(first, state) or state
    again = overdue_events(state, late, RULES)

    assert len(first) == 1
    assert again == []
    assert first[0].deadline == "response"
    assert first[0].occurred_at == first[0].due == T0 + timedelta(days=1)
    assert first[0].actor == SYSTEM
    assert (first[0].escalation_level, first[0].escalated_to) == (
        "station_head",
        "东湖社区联络站站长",
    )
    assert first[0].next_due == T0 + timedelta(days=2)

    # The station head's day passes too: the street is told; it is the last rung.
    second = overdue_events(state, T0 + timedelta(days=2, hours=1), RULES)
    assert [(e.deadline, e.escalation_level, e.next_due) for e in second] == [
        ("escalation", "street", None)
    ]


def test_the_same_case_and_rules_always_give_the_same_overdue_event() -> None:
    late = T0 + timedelta(days=3)

    assert overdue_events(opened(), late, RULES) == overdue_events(opened(), late, RULES)


def test_a_step_taken_in_time_leaves_nothing_overdue() -> None:
    state, _ = run(opened(), Reply(actor=REP, now=at(), message="已收到，正在联系物业"))

    assert [e.deadline for e in overdue_events(state, T0 + timedelta(days=2), RULES)] == []


def test_a_finished_case_has_no_deadline_left_to_miss() -> None:
    state, _ = run(
        opened(),
        Accept(actor=REP, now=at()),
        Resolve(actor=REP, now=at(2), result="已修复"),
    )

    assert state.next_due is None
    assert overdue_events(state, T0 + timedelta(days=30), RULES) == []


def test_an_escalation_brings_its_own_deadline() -> None:
    state, _ = run(
        opened(),
        Accept(actor=REP, now=at()),
        Escalate(
            actor=REP, now=at(), to_level="department", to_name="区城管局", due=at(5), reason="x"
        ),
    )

    missed = overdue_events(state, at(6), RULES)

    assert [(e.deadline, e.due) for e in missed] == [("escalation", at(5))]
    assert isinstance(missed[0], CaseOverdue)


def test_reopening_after_feedback_goes_back_to_the_same_representative() -> None:
    state, _ = run(
        opened(),
        Accept(actor=REP, now=at()),
        Resolve(actor=REP, now=at(2), result="已修复"),
    )
    resident = Actor(id="subj_1", role=ActorRole.RESIDENT)

    state, events = run(
        state,
        Reopen(
            actor=resident,
            now=at(30),
            reason="不满意",
            resolution_due=Due(at(200)),
            for_resolution=1,
        ),
    )

    assert state.status is CaseStatus.IN_PROGRESS
    assert state.representative_id == "r1"
    assert events[0].model_dump()["representative_id"] == "r1"
    assert state.next_due == at(200)


def test_feedback_on_an_earlier_resolution_does_not_reopen() -> None:
    state, _ = run(
        opened(),
        Accept(actor=REP, now=at()),
        Resolve(actor=REP, now=at(2), result="已修复"),
        Reopen(actor=LIAISON, now=at(3), reason="复查", resolution_due=None),
        Resolve(actor=REP, now=at(4), result="再次修复"),
    )

    with pytest.raises(StaleFeedback):
        decide(
            state,
            Reopen(actor=LIAISON, now=at(5), reason="x", resolution_due=None, for_resolution=1),
        )


def test_classifying_a_triaged_case_routes_it() -> None:
    state = opened(queue="triage", representative=None, category=None)
    assert state.status is CaseStatus.TRIAGE

    state, events = run(
        state,
        Classify(
            actor=LIAISON,
            now=at(),
            category_code="property",
            priority=Priority.IMPORTANT,
            reason="人工分拣",
            response_due=Due(at(8)),
            resolution_due=Due(at(100)),
            assignment=Assignment("donghu", "r3", "representative", "分派给r3"),
        ),
    )

    assert [type(e).__name__ for e in events] == ["CaseClassified", "CaseAssigned"]
    assert (state.status, state.category_code, state.priority) == (
        CaseStatus.ASSIGNED,
        "property",
        Priority.IMPORTANT,
    )
    assert state.representative_id == "r3"
    assert state.next_due == at(8)


def test_classifying_without_a_change_is_refused() -> None:
    with pytest.raises(InvalidCommand):
        decide(
            opened(),
            Classify(
                actor=LIAISON,
                now=at(),
                category_code="p",
                priority=Priority.NORMAL,
                reason="x",
                response_due=Due(at(8)),
                resolution_due=Due(at(100)),
            ),
        )


def test_a_transfer_keeps_the_case_and_its_history() -> None:
    state, _ = run(opened(), Accept(actor=REP, now=at()))

    state, _ = run(
        state,
        Transfer(
            actor=LIAISON,
            now=at(2),
            to_station_code="hubin",
            to_representative_id="r7",
            reason="属地",
        ),
    )

    assert state.case_id == "c1"
    assert state.version == 4
    assert (state.station_code, state.representative_id, state.status) == (
        "hubin",
        "r7",
        CaseStatus.ASSIGNED,
    )
    with pytest.raises(InvalidCommand):
        decide(
            state,
            Transfer(
                actor=LIAISON,
                now=at(3),
                to_station_code=None,
                to_representative_id="r7",
                reason="x",
            ),
        )


def test_a_transfer_to_another_district_ends_the_work_here() -> None:
    state, _ = run(
        opened(),
        TransferToDistrict(
            actor=LIAISON, now=at(), to_district_id="other", to_case_id="c9", reason="属地"
        ),
    )

    assert state.status is CaseStatus.TRANSFERRED_OUT
    assert state.transferred_to == ("other", "c9")
    assert state.next_due is None
    with pytest.raises(InvalidCommand):
        decide(
            opened(),
            TransferToDistrict(
                actor=LIAISON, now=at(), to_district_id="demo", to_case_id="c9", reason="x"
            ),
        )


def test_a_merged_case_is_done_and_a_case_cannot_merge_into_itself() -> None:
    state, _ = run(opened(), Merge(actor=LIAISON, now=at(), into_case_id="c2", reason="重复"))

    assert (state.status, state.merged_into) == (CaseStatus.MERGED, "c2")
    with pytest.raises(IllegalTransition):
        decide(state, Accept(actor=REP, now=at()))
    with pytest.raises(InvalidCommand):
        decide(opened(), Merge(actor=LIAISON, now=at(), into_case_id="c1", reason="x"))


def test_linking_the_same_case_twice_changes_nothing() -> None:
    link = LinkCase(actor=LIAISON, now=at(), related_case_id="c2", relation="related", reason="x")
    state, _ = run(opened(), link)

    assert decide(state, link) == []


def test_a_suggestion_needs_a_representative() -> None:
    state, _ = run(opened(queue="liaison", representative=None), Accept(actor=LIAISON, now=at()))

    with pytest.raises(InvalidCommand):
        decide(state, ConvertToSuggestion(actor=LIAISON, now=at(), title="建议"))
    converted, events = run(
        state, ConvertToSuggestion(actor=LIAISON, now=at(), title="建议", representative_id="r5")
    )
    assert converted.status is CaseStatus.CONVERTED
    assert events[0].model_dump()["representative_id"] == "r5"
