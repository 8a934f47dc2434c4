"""Departments told of whistles and of the deadlines they miss, and residents of their
suggestion's answer: the rules (no I/O) and the planner on the demo district's directory
and contact book (real database)."""

from __future__ import annotations

from datetime import datetime, timedelta

from contracts import SuggestionAnswered
from contracts.cases import CaseEscalated, CaseOverdue
from eventkit.store import EventStore
from services.notification.bootstrap import Notification
from services.notification.messages import default_template, render
from services.notification.rules import CaseFacts, Facts, ResidentFacts, plan
from tests.every_district import every_district
from tests.notification.notification_support import (
    LIAISON,
    ROUTING,
    SHANGHAI,
    assigned,
    happen,
    opened,
    resident_opinion,
)
from tests.notification.test_notification_rules import CONTACTS, STATION, contact

WHEN = datetime(2026, 9, 29, 10, 0, tzinfo=SHANGHAI)
DUTY = ("dept_chengguan", "cg_01")


def whistle(code: str | None = "chengguan", to_name: str = "区城市管理局") -> CaseEscalated:
    return CaseEscalated(
        district_id="demo",
        occurred_at=WHEN,
        actor=LIAISON,
        case_id="c1",
        to_level="department",
        to_name=to_name,
        due=WHEN + timedelta(days=5),
        reason="占道经营",
        department_code=code,
        whistle_seq=1,
        report_due=WHEN + timedelta(days=1),
    )


def case() -> CaseFacts:
    return CaseFacts("c1", "op1", "normal", "municipal", "dh_donghu", "r017", True)


BOOK = {
    **CONTACTS,
    "dept_chengguan": contact("dept_chengguan", "webhook", webhook_url="https://cg.example/wo"),
    "cg_01": contact("cg_01", "email", email="cg_01@x.cn"),
}


def test_a_whistle_to_a_registered_department_tells_its_duty_staff() -> None:
    facts = Facts(whistle(), case(), STATION, department_staff=DUTY, contacts=BOOK)

    assert {(p.rule, p.recipient, p.channel) for p in plan(facts)} == {
        ("department_whistle", "dept_chengguan", "webhook"),
        ("department_whistle", "cg_01", "email"),
    }


def test_a_department_that_misses_its_deadline_is_reminded_and_the_rung_told() -> None:
    missed = CaseOverdue(
        district_id="demo",
        occurred_at=WHEN,
        actor=ROUTING,
        case_id="c1",
        deadline="escalation",
        due=WHEN,
        escalation_level="station_head",
        subject="department_report",
        department_code="chengguan",
        whistle_seq=1,
    )
    facts = Facts(missed, case(), STATION, department_staff=DUTY, contacts=BOOK)

    told = {(p.rule, p.recipient) for p in plan(facts)}
    assert ("department_reminder", "dept_chengguan") in told
    assert ("department_reminder", "cg_01") in told
    assert ("overdue", "r002") in told  # the station head, as routing chose
    # A missed deadline of the case itself reminds no department.
    own = missed.model_copy(update={"subject": None, "department_code": None})
    assert not any(p.rule == "department_reminder" for p in plan(Facts(own, case(), STATION)))


def test_the_resident_hears_the_answer_to_their_suggestion() -> None:
    answered = SuggestionAnswered(
        district_id="demo",
        occurred_at=WHEN,
        actor=LIAISON,
        case_id="c1",
        answer="已纳入明年道路改造计划",
        answered_by="区交通运输局",
    )
    resident = ResidentFacts("subj_1", reachable=True, consent=True, channel="qr")
    facts = Facts(answered, case(), STATION, resident=resident)

    assert [(p.rule, p.recipient, p.channel) for p in plan(facts)] == [
        ("resident_suggestion_answered", "subj_1", "sms")
    ]
    message = render(
        default_template("resident_suggestion_answered"),
        {"answer": answered.answer, "answered_by": "区交通运输局", "tracking_url": "https://x/t/1"},
    )
    assert "区交通运输局答复：已纳入明年道路改造计划" in message.body


async def test_the_planner_tells_the_demo_department_s_duty_staff_of_a_whistle(
    demo: Notification, store: EventStore
) -> None:
    made = await resident_opinion(demo.vault, demo.pool)
    await happen(store, demo, made)
    opening = opened(made.opinion_id, case_id="c_whistle")
    await happen(store, demo, opening)
    await happen(store, demo, assigned(opening.case_id, "r017"))
    await happen(store, demo, whistle().model_copy(update={"case_id": opening.case_id}))

    rows = await every_district(demo.pool).fetch(
        "SELECT recipient, channel, context FROM notification.deliveries "
        "WHERE rule = 'department_whistle' ORDER BY recipient, channel"
    )
    assert [(r["recipient"], r["channel"]) for r in rows] == [
        ("cg_01", "email"),
        ("cg_01", "sms"),
        ("dept_chengguan", "email"),
        ("dept_chengguan", "webhook"),
    ]
    context = rows[0]["context"]
    assert context["report_due"] == (WHEN + timedelta(days=1)).isoformat()
    assert context["department_code"] == "chengguan"
