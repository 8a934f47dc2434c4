"""Who is told of what: the rules, decided without I/O."""

from __future__ import annotations

from datetime import datetime

import pytest

from contracts.cases import (
    CaseEscalated,
    CaseOverdue,
    CaseReopened,
    CaseReplied,
    CaseTransferred,
)
from contracts.intake import Location, OpinionSubmitted
from services.notification.contact_book import ContactEntry, channels_for
from services.notification.rules import (
    CaseFacts,
    Facts,
    ResidentFacts,
    RuleSetting,
    StationFacts,
    plan,
)
from tests.notification.notification_support import (
    LIAISON,
    ROUTING,
    SHANGHAI,
    assigned,
)

WHEN = datetime(2026, 9, 29, 10, 0, tzinfo=SHANGHAI)
STATION = StationFacts("dh_donghu", "东湖社区代表联络站", "dh", "r002", ("lo_dh_01", "lo_dh_02"))


def case(priority: str = "normal", *, assigned_before: bool = True) -> CaseFacts:
    return CaseFacts("c1", "op1", priority, "municipal", "dh_donghu", "r017", assigned_before)


def contact(staff_id: str, *preferred: str, **addresses: str) -> ContactEntry:
    return ContactEntry.model_validate(
        {"staff_id": staff_id, "role": "liaison", "preferred": list(preferred), **addresses}
    )


CONTACTS = {
    "r017": contact("r017", "email", email="r017@x.cn"),
    "r002": contact("r002", "email", "sms", email="r002@x.cn", mobile="13900000002"),
    "lo_dh_01": contact("lo_dh_01", "wecom", wecom_robot="https://qyapi.example/w", email="a@x.cn"),
    "lo_dh_02": contact("lo_dh_02", "email", email="b@x.cn", mobile="13900000012"),
}
RESIDENT = ResidentFacts("subj_1", reachable=True, consent=True, channel="qr")


def pairs(facts: Facts, **settings: RuleSetting) -> set[tuple[str, str, str]]:
    return {(p.rule, p.recipient, p.channel) for p in plan(facts, settings)}


def test_a_case_assigned_to_a_representative_tells_them_on_their_preferred_channels() -> None:
    facts = Facts(assigned("c1", "r017"), case(assigned_before=False), STATION, contacts=CONTACTS)
    assert pairs(facts) == {("case_assigned", "r017", "email")}


def test_an_urgent_case_tells_the_station_staff_at_once_on_every_channel_they_have() -> None:
    facts = Facts(
        assigned("c1", "r017"), case("urgent", assigned_before=False), STATION, contacts=CONTACTS
    )
    assert pairs(facts) == {
        ("urgent_case", "lo_dh_01", "wecom"),
        ("urgent_case", "lo_dh_01", "email"),
        ("urgent_case", "lo_dh_02", "sms"),
        ("urgent_case", "lo_dh_02", "email"),
        ("urgent_case", "r002", "sms"),  # the station head
        ("urgent_case", "r002", "email"),
        ("case_assigned", "r017", "email"),
    }


def test_an_urgent_case_assigned_again_does_not_raise_the_alarm_again() -> None:
    facts = Facts(assigned("c1", "r017"), case("urgent", assigned_before=True), STATION)
    assert {rule for rule, _, _ in pairs(facts)} == {"case_assigned"}


def test_a_case_in_the_station_queue_tells_its_liaison_officers() -> None:
    event = assigned("c1", None, queue="liaison")
    facts = Facts(event, case(), STATION, contacts=CONTACTS)
    assert pairs(facts) == {
        ("case_assigned", "lo_dh_01", "wecom"),
        ("case_assigned", "lo_dh_02", "email"),
    }


def test_a_case_placed_nowhere_tells_the_district_admins() -> None:
    event = assigned("c1", None, station_code=None, queue="triage")
    facts = Facts(event, case(), None, district_admins=("admin_demo",))
    assert pairs(facts) == {("case_assigned", "admin_demo", "email")}


def test_someone_without_a_contact_still_gets_a_delivery_that_will_fail_and_say_why() -> None:
    facts = Facts(assigned("c1", "r999"), case(), STATION, contacts=CONTACTS)
    assert pairs(facts) == {("case_assigned", "r999", "email")}


def test_the_resident_is_told_of_a_reply_only_with_a_contact_and_their_consent() -> None:
    reply = CaseReplied(
        district_id="demo", occurred_at=WHEN, actor=LIAISON, case_id="c1", message="已修好"
    )
    told = Facts(reply, case(), STATION, resident=RESIDENT)
    assert pairs(told) == {("resident_replied", "subj_1", "sms")}
    no_consent = ResidentFacts("subj_1", reachable=True, consent=False, channel="qr")
    assert pairs(Facts(reply, case(), STATION, resident=no_consent)) == set()
    no_phone = ResidentFacts("subj_1", reachable=False, consent=True, channel="qr")
    assert pairs(Facts(reply, case(), STATION, resident=no_phone)) == set()


@pytest.mark.parametrize(
    ("channel", "receipt"),
    [("walk_in", True), ("hotline_12345", True), ("spokesperson", True), ("visit", True),
     ("qr", False), ("online", False), ("open311", False)],
)  # fmt: skip
def test_a_receipt_goes_only_for_opinions_staff_took_down(channel: str, receipt: bool) -> None:
    opinion = OpinionSubmitted(
        district_id="demo",
        occurred_at=WHEN,
        actor=LIAISON,
        opinion_id="op1",
        channel=channel,
        text="楼道灯坏了很久了",
        location=Location(station_code="dh_donghu"),
    )
    resident = ResidentFacts("subj_1", reachable=True, consent=True, channel=channel)
    assert bool(pairs(Facts(opinion, resident=resident))) is receipt


@pytest.mark.parametrize(
    ("level", "told"),
    [("station_head", {"r002"}), ("street", {"ss_dh_01"}), ("district", {"admin_demo"})],
)
def test_a_missed_deadline_tells_the_rung_routing_chose(level: str, told: set[str]) -> None:
    overdue = CaseOverdue(
        district_id="demo",
        occurred_at=WHEN,
        actor=ROUTING,
        case_id="c1",
        deadline="response",
        due=WHEN,
        escalated_to="somebody",
        escalation_level=level,
    )
    facts = Facts(
        overdue,
        case(),
        STATION,
        street_supervisors=("ss_dh_01",),
        district_admins=("admin_demo",),
    )
    assert {r for _, r, _ in pairs(facts)} == told


def test_a_whistle_tells_the_department_the_contact_book_knows_by_that_name() -> None:
    whistle = CaseEscalated(
        district_id="demo",
        occurred_at=WHEN,
        actor=LIAISON,
        case_id="c1",
        to_level="department",
        to_name="区城市管理局",
        reason="占道经营",
    )
    known = Facts(whistle, case(), STATION, departments={"区城市管理局": "dept_chengguan"})
    assert {r for _, r, _ in pairs(known)} == {"dept_chengguan"}
    assert pairs(Facts(whistle, case(), STATION)) == set()


def test_a_reopened_case_tells_its_representative() -> None:
    reopened = CaseReopened(
        district_id="demo", occurred_at=WHEN, actor=ROUTING, case_id="c1", reason="居民不满意"
    )
    assert {r for _, r, _ in pairs(Facts(reopened, case(), STATION))} == {"r017"}


def test_a_transfer_to_a_representative_tells_them() -> None:
    moved = CaseTransferred(
        district_id="demo",
        occurred_at=WHEN,
        actor=LIAISON,
        case_id="c1",
        to_representative_id="r004",
        reason="更熟悉情况",
    )
    assert {r for _, r, _ in pairs(Facts(moved, case(), STATION))} == {"r004"}


def test_a_district_may_switch_a_rule_off_or_narrow_its_channels() -> None:
    facts = Facts(assigned("c1", "r002"), case(), STATION, contacts=CONTACTS)
    assert pairs(facts) == {("case_assigned", "r002", "email"), ("case_assigned", "r002", "sms")}
    narrowed = pairs(facts, case_assigned=RuleSetting(True, ("sms",)))
    assert narrowed == {("case_assigned", "r002", "sms")}
    assert pairs(facts, case_assigned=RuleSetting(enabled=False)) == set()


def test_channels_follow_the_preference_then_what_the_person_can_be_reached_on() -> None:
    reachable_by_sms_only = contact("x", "email", mobile="13900000003")
    assert channels_for(reachable_by_sms_only, ("email", "sms")) == ("sms",)
    assert channels_for(None, ("email", "sms")) == ("email",)
    inactive = ContactEntry(staff_id="y", role="liaison", email="y@x.cn", active=False)
    assert channels_for(inactive, ("sms", "email")) == ("sms",)
