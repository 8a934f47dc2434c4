"""The liaison work against the real database: the demo district's departments, people,
spokespersons and activities; the whistle loop with a department's missed deadline
escalated by the scanner; callbacks; reception days cancelled, moved and planned ahead;
opinions collected on visits and answered at the desk."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

from contracts import (
    Actor,
    ActorRole,
    FeedbackSubmitted,
    Location,
    OnBehalfOf,
    OnTheSpotAnswer,
    OpinionSubmitted,
)
from eventkit.store import EventStore
from services.routing.bootstrap import Routing
from services.routing.case_state import CaseStatus
from services.routing.district_file import DistrictFile
from services.routing.ids import case_id_for
from services.routing.liaison_views import roster
from services.routing.rebuild import rebuild
from tests.every_district import every_district
from tests.routing.routing_support import ADMIN, Clock, act, append_event, load_case

LIAISON = Actor(id="lo_dh_01", role=ActorRole.LIAISON)
CHENGGUAN = Actor(id="cg_01", role=ActorRole.DEPARTMENT)


async def open_case(
    routing: Routing, store: EventStore, clock: Clock, text: str, **extra: Any
) -> str:
    opinion = OpinionSubmitted(
        district_id="demo",
        occurred_at=clock.now,
        actor=Actor(id="subj_" + uuid.uuid4().hex[:8], role=ActorRole.RESIDENT),
        opinion_id="op_" + uuid.uuid4().hex[:12],
        channel=extra.pop("channel", "walk_in"),
        text=text,
        location=Location(station_code="dh_home", community="东湖社区"),
        **extra,
    )
    envelope = await append_event(store, opinion)
    await routing.consumer.apply(envelope)
    return case_id_for("demo", opinion.opinion_id)


async def test_the_demo_district_brings_departments_people_spokespersons_and_activities(
    demo: Routing, demo_file: DistrictFile
) -> None:
    async with every_district(demo.pool).acquire() as conn:
        ctx = await demo.districts.require(conn, "demo")
        roles = {
            r["role"]: r["n"]
            for r in await conn.fetch(
                "SELECT role, count(*) AS n FROM routing.people WHERE district_id = 'demo' "
                "AND active GROUP BY role"
            )
        }
        held = await conn.fetchval(
            "SELECT count(*) FROM routing.activities WHERE district_id = 'demo'"
        )

    assert ctx.directory.departments["chengguan"].name_zh == "区城市管理局"
    assert ctx.directory.departments_of("cg_01") == ["chengguan"]
    assert ctx.directory.departments_of("dept_zhujian") == ["zhujian"]
    assert roles["community_commissioner"] == 4
    assert roles["district_office"] == 2
    assert roles["spokesperson"] == len(demo_file.spokespersons)
    assert roles["representative"] > 50
    assert held == len(demo_file.activities)
    # Importing the same file again changes nothing.
    again = await demo.directory.change("demo", demo_file, ADMIN)
    assert again.events == []


async def test_a_department_misses_its_report_in_the_scanner_escalates_then_it_feeds_back(
    demo: Routing, store: EventStore, clock: Clock
) -> None:
    case_id = await open_case(
        demo, store, clock, "东湖路人行道被占道经营摊位堵住了，老人只能走机动车道"
    )
    state = await load_case(demo, case_id)
    assert state is not None
    rep = Actor(id=state.representative_id or "", role=ActorRole.REPRESENTATIVE)
    await act(demo, "accept", "demo", case_id, rep)
    whistled = await act(
        demo,
        "escalate",
        "demo",
        case_id,
        rep,
        to_level="department",
        department_code="chengguan",
        reason="需城管执法",
    )
    [whistle] = whistled.whistles
    assert (whistle.to_name, whistle.department_code) == ("区城市管理局", "chengguan")
    assert whistle.report_due is not None

    # The department does not report in: the scanner records it and tells the station
    # head; a working day later, still nothing: the street.
    clock.now = whistle.report_due + timedelta(minutes=5)
    assert await demo.overdue.scan() == 1
    clock.now += timedelta(days=3)
    assert await demo.overdue.scan() >= 1
    state = await load_case(demo, case_id)
    assert state is not None
    department_misses = [
        (d.subject, d.rung)
        for d in state.deadlines
        if d.overdue and d.subject == "department_report"
    ]
    assert department_misses == [("department_report", 0), ("department_report", 1)]

    # It feeds back at last (reporting in with it), as its own staff member.
    await act(demo, "department_respond", "demo", case_id, CHENGGUAN, action="已取缔占道摊位")
    async with every_district(demo.pool).acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM routing.whistles WHERE case_id = $1", case_id)
    assert row is not None
    assert (row["reported_by"], row["responded_by"], row["action"]) == (
        "cg_01",
        "cg_01",
        "已取缔占道摊位",
    )

    await act(demo, "resolve", "demo", case_id, rep, result="人行道已恢复通行")
    await act(demo, "close", "demo", case_id, LIAISON)
    rated = await act(demo, "rate_department", "demo", case_id, LIAISON, whistle_seq=1, rating=3)
    assert rated.whistles[0].rating == 3


async def test_a_callback_changes_the_satisfaction_the_case_shows(
    demo: Routing, store: EventStore, clock: Clock
) -> None:
    case_id = await open_case(demo, store, clock, "楼道灯坏了一个月没人修")
    state = await load_case(demo, case_id)
    assert state is not None
    rep = Actor(id=state.representative_id or "", role=ActorRole.REPRESENTATIVE)
    await act(demo, "accept", "demo", case_id, rep)
    await act(demo, "resolve", "demo", case_id, rep, result="已更换灯具")
    clock.advance(hours=2)
    feedback = FeedbackSubmitted(
        district_id="demo",
        occurred_at=clock.now,
        actor=Actor(id="subj_x", role=ActorRole.RESIDENT),
        opinion_id=state.opinion_id,
        case_id=case_id,
        resolution_seq=1,
        satisfaction=3,
        resolved=True,
    )
    await demo.consumer.apply(await append_event(store, feedback))

    clock.advance(hours=2)
    after = await act(
        demo,
        "callback",
        "demo",
        case_id,
        LIAISON,
        satisfaction=1,
        resolved=False,
        comment="灯又坏了",
    )

    async with every_district(demo.pool).acquire() as conn:
        row = await conn.fetchrow(
            "SELECT satisfaction, feedback_resolved, rating_source FROM routing.cases "
            "WHERE case_id = $1",
            case_id,
        )
    assert row is not None
    assert (row["satisfaction"], row["feedback_resolved"], row["rating_source"]) == (
        1,
        False,
        "callback",
    )
    assert after.status is CaseStatus.IN_PROGRESS


async def test_a_cancelled_reception_day_is_not_planned_again_and_a_moved_one_is_kept(
    demo: Routing, clock: Clock
) -> None:
    async with every_district(demo.pool).acquire() as conn:
        ctx = await demo.districts.require(conn, "demo")
    days = sorted(d.day for d in ctx.directory.reception_days if d.representative_id == "r001")
    first, second = days[0], days[1]

    await demo.liaison.cancel_reception_day("demo", "r001", "dh_home", first, "代表外出学习", ADMIN)
    await demo.liaison.move_reception_day(
        "demo",
        "r001",
        "dh_home",
        second,
        second + timedelta(days=1),
        ADMIN,
        reason="与区人代会冲突",
    )
    assert await demo.liaison.plan_reception_days("demo") == 0

    async with every_district(demo.pool).acquire() as conn:
        ctx = await demo.districts.require(conn, "demo")
        rows = list(
            await conn.fetch(
                "SELECT day, status FROM routing.reception_days WHERE district_id = 'demo' "
                "AND representative_id = 'r001' AND day = ANY($1::date[])",
                [first, second, second + timedelta(days=1)],
            )
        )
    statuses = {r["day"]: r["status"] for r in rows}
    left = {d.day for d in ctx.directory.reception_days if d.representative_id == "r001"}
    assert statuses == {
        first: "cancelled",
        second: "moved",
        second + timedelta(days=1): "scheduled",
    }
    assert first not in left
    assert second + timedelta(days=1) in left

    # Half a year later the planner has planned the months ahead: nothing runs out.
    clock.advance(days=180)
    assert await demo.liaison.plan_reception_days("demo") > 0
    async with every_district(demo.pool).acquire() as conn:
        latest = await conn.fetchval(
            "SELECT max(day) FROM routing.reception_days WHERE representative_id = 'r001'"
        )
    assert latest > clock.now.date() + timedelta(days=90)


async def test_a_visit_s_opinion_is_the_visitor_s_and_a_desk_answer_closes_at_once(
    demo: Routing, store: EventStore, clock: Clock
) -> None:
    visit = await open_case(
        demo,
        store,
        clock,
        "走访时居民反映小区健身器材损坏",
        channel="visit",
        on_behalf_of=OnBehalfOf(role="representative", staff_id="r013"),
    )
    desk = await open_case(
        demo,
        store,
        clock,
        "咨询居住证办理需要什么材料",
        on_behalf_of=OnBehalfOf(role="liaison", staff_id="lo_dh_01"),
        on_the_spot=OnTheSpotAnswer(
            answer="已告知所需材料和办理地点", role="liaison", staff_id="lo_dh_01"
        ),
    )

    visited = await load_case(demo, visit)
    answered = await load_case(demo, desk)
    assert visited is not None
    assert answered is not None
    assert (visited.representative_id, visited.station_code) == ("r013", "dh_home")
    assert answered.status is CaseStatus.CLOSED
    assert answered.resolved_by == "lo_dh_01"

    # r013 hands it on to the station's liaison officers.
    r013 = Actor(id="r013", role=ActorRole.REPRESENTATIVE)
    handed = await act(demo, "hand_on", "demo", visit, r013, reason="需物业维修基金，转联络员协调")
    assert (handed.representative_id, handed.queue) == (None, "liaison")


async def test_a_spokesperson_s_intake_is_counted_on_the_roster(
    demo: Routing, store: EventStore, clock: Clock
) -> None:
    for text in ("小区门口积水严重", "垃圾清运不及时"):
        await open_case(
            demo,
            store,
            clock,
            text,
            channel="spokesperson",
            on_behalf_of=OnBehalfOf(role="spokesperson", staff_id="sp_dh_01"),
        )
    async with every_district(demo.pool).acquire() as conn:
        ctx = await demo.districts.require(conn, "demo")
        found = {
            s.spokesperson_id: s.opinions_collected
            for s in await roster(conn, ctx.directory, "dh_home")
        }

    assert found["sp_dh_01"] == 2
    assert found["sp_dh_02"] == 0


async def test_the_rebuild_gives_the_liaison_tables_back(
    demo: Routing, store: EventStore, clock: Clock
) -> None:
    case_id = await open_case(demo, store, clock, "东湖路人行道被占道经营摊位堵住了")
    state = await load_case(demo, case_id)
    assert state is not None
    rep = Actor(id=state.representative_id or "", role=ActorRole.REPRESENTATIVE)
    await act(demo, "accept", "demo", case_id, rep)
    await act(
        demo,
        "escalate",
        "demo",
        case_id,
        rep,
        to_level="department",
        department_code="zhujian",
        reason="x",
    )
    await demo.liaison.cancel_reception_day(
        "demo", "r002", "dh_donghu", date(2026, 10, 20), None, ADMIN
    )
    tables = (
        "whistles",
        "activities",
        "spokespersons",
        "staff_members",
        "departments",
        "reception_days",
    )

    async def snapshot() -> dict[str, Any]:
        async with every_district(demo.pool).acquire() as conn:
            return {
                t: sorted(map(tuple, await conn.fetch(f"SELECT * FROM routing.{t}")))
                for t in tables
            }

    before = await snapshot()
    async with every_district(demo.pool).acquire() as conn:
        await rebuild(conn, demo.store)
    after = await snapshot()
    for table in tables:
        assert after[table] == before[table], table
