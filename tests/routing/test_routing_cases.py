"""Opinions become cases, against the real database (handlers applied without Kafka)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import pytest

from contracts import (
    REGISTRY,
    Actor,
    ActorRole,
    FeedbackSubmitted,
    OpinionSubmitted,
    OpinionWithdrawn,
)
from contracts.cases import CaseOpened, CaseOverdue
from eventkit.consumer import PermanentError
from eventkit.sealed_texts import open_case_data
from eventkit.store import EventStore
from services.routing.bootstrap import Routing, bootstrap
from services.routing.case_projection import update_case
from services.routing.case_state import CaseStatus
from services.routing.classification import JiebaSegmenter
from services.routing.consumers import RoutingConsumer
from services.routing.ids import case_id_for
from services.routing.rebuild import rebuild
from services.routing.settings import RoutingSettings
from tests.every_district import every_district
from tests.routing.routing_support import SHANGHAI, Clock, Submit, act, append_event, load_case
from tests.sealed_support import opened_case_events

LIAISON = Actor(id="lo_dh_02", role=ActorRole.LIAISON)


async def case_events(store: EventStore, case_id: str) -> list[tuple[str, dict[str, object]]]:
    # As readers see them: the staff's texts and the matched words opened.
    return [(t, d) for t, d in await opened_case_events(store, case_id)]


async def test_an_opinion_scanned_at_a_station_is_opened_and_assigned_to_the_best_representative(
    demo: Routing, consumer: RoutingConsumer, submit: Submit, store: EventStore
) -> None:
    opinion = await submit(
        "小区电梯坏了三个月，物业一直不修", station_code="dh_donghu", community="东湖社区"
    )

    assert await consumer.apply(opinion)

    case_id = case_id_for("demo", opinion.data["opinion_id"])
    events = await case_events(store, case_id)
    assert [t for t, _ in events] == ["CaseOpened", "CaseAssigned"]
    opened, assigned = events[0][1], events[1][1]
    assert opened["category_code"] == "property"
    assert opened["matched_keywords"] == ["物业", "电梯"]
    assert opened["priority"] == "normal"
    assert opened["taxonomy_version"] == 1
    # property, normal: respond in 1 working day, resolve in 10; received Monday 28 Sep 2026
    # before National Day (1-7 Oct off, Saturday 10 Oct worked).
    assert opened["response_due"] == "2026-09-29T17:30:00+08:00"
    assert opened["resolution_due"] == "2026-10-16T17:30:00+08:00"
    assert opened["deadlines_provisional"] is False
    # The facts reporting counts by, as routing established them.
    assert (opened["channel"], opened["community"], opened["street_code"]) == (
        "qr",
        "东湖社区",
        "dh",
    )
    assert assigned["station_code"] == "dh_donghu"
    assert assigned["representative_id"] == "r002"
    assert assigned["queue"] == "representative"
    candidates = assigned["candidates"]
    assert isinstance(candidates, list)
    assert [c["representative_id"] for c in candidates] == ["r002", "r017", "r004"]
    assert candidates[0]["components"] == {
        "electoral_district": 3.0,
        "residence": 2.0,
        "expertise": 3.0,
        "contact_point": 1.5,
        "workload": 2.0,
        "reception": 0.0,
        "leading_cadre": 0.0,
    }
    assert candidates[0]["score"] == 11.5


async def test_applying_the_same_opinion_twice_opens_one_case(
    demo: Routing, consumer: RoutingConsumer, submit: Submit, store: EventStore
) -> None:
    opinion = await submit("路灯不亮了，晚上走路很黑", community="柳岸社区")

    assert await consumer.apply(opinion) is True
    assert await consumer.apply(opinion) is False

    case_id = case_id_for("demo", opinion.data["opinion_id"])
    assert len(await store.read_stream(f"case-{case_id}")) == 2


async def test_handling_an_opinion_again_after_an_unknown_outcome_cannot_open_a_second_case(
    demo: Routing, pool: asyncpg.Pool, submit: Submit, store: EventStore
) -> None:
    # As if the gate had been lost: the handler itself refuses to open a second case.
    opinion = await submit("楼下垃圾桶满了好几天没人清运", community="南城社区")
    event = opinion.event(REGISTRY)
    for _ in range(2):
        async with every_district(pool).acquire() as conn, conn.transaction():
            assert isinstance(event, OpinionSubmitted)
            await demo.opening.open_case(event, opinion, conn)

    case_id = case_id_for("demo", opinion.data["opinion_id"])
    assert len(await store.read_stream(f"case-{case_id}")) == 2
    count = await every_district(pool).fetchval(
        "SELECT count(*) FROM routing.cases WHERE case_id = $1", case_id
    )
    assert count == 1


async def test_an_opinion_without_a_known_category_waits_in_the_station_triage_queue(
    demo: Routing, consumer: RoutingConsumer, submit: Submit, store: EventStore
) -> None:
    opinion = await submit("想问一下社区最近有什么活动可以参加", station_code="xs_fenglin")

    await consumer.apply(opinion)

    events = await case_events(store, case_id_for("demo", opinion.data["opinion_id"]))
    opened, assigned = events[0][1], events[1][1]
    assert opened["category_code"] is None
    assert opened["matched_keywords"] == []
    assert assigned["queue"] == "triage"
    assert assigned["station_code"] == "xs_fenglin"
    assert assigned["representative_id"] is None
    assert "分拣" in str(assigned["reason"])


async def test_an_opinion_with_no_place_goes_to_the_district_triage_queue(
    demo: Routing, consumer: RoutingConsumer, submit: Submit, store: EventStore
) -> None:
    opinion = await submit("希望增加公交线路的班次", channel="online")

    await consumer.apply(opinion)

    events = await case_events(store, case_id_for("demo", opinion.data["opinion_id"]))
    assigned = events[1][1]
    assert assigned["station_code"] is None
    assert assigned["queue"] == "triage"


async def test_an_opinion_with_only_a_point_goes_to_the_nearest_station(
    demo: Routing, consumer: RoutingConsumer, submit: Submit, store: EventStore
) -> None:
    # A few metres from the 石门社区 station (30.2600, 120.1252).
    opinion = await submit("井盖缺失，晚上很危险", lat=30.2601, long=120.1254)

    await consumer.apply(opinion)

    events = await case_events(store, case_id_for("demo", opinion.data["opinion_id"]))
    assigned = events[1][1]
    assert assigned["station_code"] == "xs_shimen"
    assert "最近" in str(assigned["reason"])


async def test_an_urgent_opinion_gets_hours_not_days_and_is_never_left_in_triage(
    demo: Routing, consumer: RoutingConsumer, submit: Submit, store: EventStore
) -> None:
    opinion = await submit("三单元楼道里燃气泄漏，味道很大", community="锦绣社区")

    await consumer.apply(opinion)

    events = await case_events(store, case_id_for("demo", opinion.data["opinion_id"]))
    opened, assigned = events[0][1], events[1][1]
    assert opened["priority"] == "urgent"
    assert opened["priority_keywords"] == ["燃气泄漏"]
    assert opened["category_code"] == "safety"
    # safety, urgent: respond within 1 clock hour, even on a holiday.
    assert opened["response_due"] == "2026-09-28T11:00:00+08:00"
    assert assigned["queue"] == "representative"
    assert assigned["station_code"] == "nc_jinxiu"


async def test_a_similar_opinion_nearby_is_linked_to_the_open_case(
    demo: Routing,
    consumer: RoutingConsumer,
    submit: Submit,
    store: EventStore,
    pool: asyncpg.Pool,
) -> None:
    first = await submit("小区门口的路灯坏了一排", lat=30.2498, long=120.1602)
    same_text = await submit("小区门口的路灯坏了一排！", community="河畔社区")
    nearby = await submit("路灯不亮，夜里看不清路", lat=30.2508, long=120.1612)
    far = await submit("路灯坏了", lat=30.2765, long=120.1600)
    for opinion in (first, same_text, nearby, far):
        await consumer.apply(opinion)
    first_id = case_id_for("demo", first.data["opinion_id"])

    def links(events: list[tuple[str, dict[str, object]]]) -> list[tuple[object, object]]:
        return [(d["related_case_id"], d["relation"]) for t, d in events if t == "CaseLinked"]

    same = await case_events(store, case_id_for("demo", same_text.data["opinion_id"]))
    near = await case_events(store, case_id_for("demo", nearby.data["opinion_id"]))
    distant = await case_events(store, case_id_for("demo", far.data["opinion_id"]))
    assert (first_id, "duplicate") in links(same)
    assert (first_id, "related") in links(near)
    assert first_id not in [case for case, _ in links(distant)]
    cluster = await every_district(pool).fetchval(
        "SELECT count(*) FROM routing.case_links WHERE related_case_id = $1", first_id
    )
    assert cluster == 2


@pytest.mark.parametrize(
    ("text", "edited"),
    [
        ("幸福小区3号楼楼下的路灯坏了好几天晚上很黑", "幸福小区5号楼楼下的路灯坏了好几天晚上很黑"),
        ("小区门口旁边的垃圾桶满了没人清理气味很大", "小区门口旁边垃圾桶满了没人清理气味很大"),
    ],
)
async def test_an_opinion_one_character_apart_is_linked_as_a_duplicate(
    demo: Routing,
    consumer: RoutingConsumer,
    submit: Submit,
    store: EventStore,
    text: str,
    edited: str,
) -> None:
    first = await submit(text, community="东湖社区")
    second = await submit(edited, community="柳岸社区")
    await consumer.apply(first)
    await consumer.apply(second)

    events = await case_events(store, case_id_for("demo", second.data["opinion_id"]))
    links = [(d["related_case_id"], d["relation"]) for t, d in events if t == "CaseLinked"]
    assert (case_id_for("demo", first.data["opinion_id"]), "duplicate") in links


async def test_unhappy_feedback_reopens_the_case_for_the_same_representative(
    demo: Routing,
    consumer: RoutingConsumer,
    submit: Submit,
    store: EventStore,
    clock: Clock,
) -> None:
    opinion = await submit("楼道漏水很严重", station_code="dh_hubin", community="湖滨社区")
    await consumer.apply(opinion)
    case_id = case_id_for("demo", opinion.data["opinion_id"])
    state = await load_case(demo, case_id)
    assert state is not None
    assert state.representative_id is not None
    rep = Actor(id=state.representative_id, role=ActorRole.REPRESENTATIVE)
    await act(demo, "accept", "demo", case_id, rep)
    await act(demo, "resolve", "demo", case_id, rep, result="已联系物业修好水管")
    clock.advance(days=1)
    feedback = FeedbackSubmitted(
        district_id="demo",
        occurred_at=clock.now,
        actor=Actor(id="subj_resident", role=ActorRole.RESIDENT),
        opinion_id=opinion.data["opinion_id"],
        case_id=case_id,
        resolution_seq=1,
        satisfaction=2,
        resolved=False,
    )
    stored = await append_event(store, feedback)

    await consumer.apply(stored)
    await consumer.apply(stored)

    reopened = await load_case(demo, case_id)
    assert reopened is not None
    assert reopened.status is CaseStatus.IN_PROGRESS
    assert reopened.representative_id == state.representative_id
    types = [t for t, _ in await case_events(store, case_id)]
    assert types.count("CaseReopened") == 1
    data = (await case_events(store, case_id))[-1][1]
    assert data["representative_id"] == state.representative_id
    assert data["actor"] == {"id": "subj_resident", "role": "resident"}


async def test_satisfied_feedback_is_recorded_without_reopening(
    demo: Routing,
    consumer: RoutingConsumer,
    submit: Submit,
    store: EventStore,
    pool: asyncpg.Pool,
) -> None:
    opinion = await submit("垃圾清运不及时", community="文昌社区")
    await consumer.apply(opinion)
    case_id = case_id_for("demo", opinion.data["opinion_id"])
    await act(demo, "accept", "demo", case_id, LIAISON)
    await act(demo, "resolve", "demo", case_id, LIAISON, result="已协调环卫每日清运两次")
    feedback = FeedbackSubmitted(
        district_id="demo",
        occurred_at=datetime.now(SHANGHAI),
        actor=Actor(id="subj_resident", role=ActorRole.RESIDENT),
        opinion_id=opinion.data["opinion_id"],
        case_id=case_id,
        resolution_seq=1,
        satisfaction=5,
        resolved=True,
    )

    await consumer.apply(await append_event(store, feedback))

    state = await load_case(demo, case_id)
    assert state is not None
    assert state.status is CaseStatus.RESOLVED
    row = await every_district(pool).fetchrow(
        "SELECT satisfaction, feedback_resolved FROM routing.cases WHERE case_id = $1", case_id
    )
    assert row is not None
    assert tuple(row) == (5, True)


async def test_a_withdrawn_opinion_closes_its_case(
    demo: Routing, consumer: RoutingConsumer, submit: Submit, store: EventStore
) -> None:
    opinion = await submit("噪音扰民", community="枫林社区")
    await consumer.apply(opinion)
    withdrawn = OpinionWithdrawn(
        district_id="demo",
        occurred_at=datetime.now(SHANGHAI),
        actor=Actor(id="subj_resident", role=ActorRole.RESIDENT),
        opinion_id=opinion.data["opinion_id"],
        reason="已和邻居协商解决",
    )

    await consumer.apply(await append_event(store, withdrawn))

    case_id = case_id_for("demo", opinion.data["opinion_id"])
    state = await load_case(demo, case_id)
    assert state is not None
    assert state.status is CaseStatus.CLOSED
    last = (await case_events(store, case_id))[-1]
    assert last[0] == "CaseClosed"
    assert last[1]["withdrawn"] is True
    # The resident's own words stay with intake.
    assert "邻居" not in str(await case_events(store, case_id))


async def test_two_scanners_record_each_missed_deadline_exactly_once_and_escalate_by_the_ladder(
    demo: Routing,
    consumer: RoutingConsumer,
    submit: Submit,
    store: EventStore,
    clock: Clock,
    pool: asyncpg.Pool,
    segmenter: JiebaSegmenter,
    routing_settings: RoutingSettings,
) -> None:
    opinion = await submit("电梯经常停运", station_code="dh_donghu", community="东湖社区")
    await consumer.apply(opinion)
    case_id = case_id_for("demo", opinion.data["opinion_id"])

    # Response due Tue 29 Sep 17:30. The station head is told and gets one working day.
    at = datetime(2026, 9, 30, 9, 0, tzinfo=SHANGHAI)
    async with bootstrap(
        routing_settings, pool=pool, clock=clock, segmenter=segmenter, background=False
    ) as other:
        first = await asyncio.gather(demo.overdue.scan(at), other.overdue.scan(at))
    again = await demo.overdue.scan(at)

    assert sum(first) == 1
    assert again == 0

    async def overdue() -> list[CaseOverdue]:
        records = await store.read_stream(f"case-{case_id}")
        events = [r.envelope().event(REGISTRY) for r in records]
        return [e for e in events if isinstance(e, CaseOverdue)]

    (told,) = await overdue()
    assert told.deadline == "response"
    assert told.due == datetime(2026, 9, 29, 17, 30, tzinfo=SHANGHAI)
    # The case is r002's and r002 (李秀英) heads the station herself: telling her of her
    # own miss would be no escalation, so the street committee is told first and gets
    # one working day.
    assert told.escalation_level == "street"
    assert told.escalated_to == "东湖街道人大工委"
    assert told.next_due == datetime(2026, 9, 30, 17, 30, tzinfo=SHANGHAI)

    # The street lets it pass too: the district, the last rung, with no further deadline.
    assert await demo.overdue.scan(datetime(2026, 10, 1, 9, 0, tzinfo=SHANGHAI)) == 1
    assert await other.overdue.scan(datetime(2026, 10, 9, 9, 0, tzinfo=SHANGHAI)) == 0
    ladder = await overdue()
    assert [(o.deadline, o.escalation_level) for o in ladder] == [
        ("response", "street"),
        ("escalation", "district"),
    ]
    assert ladder[1].escalated_to == "示范区人大常委会"
    assert ladder[1].next_due is None
    row = await every_district(pool).fetchrow(
        "SELECT overdue, overdue_count FROM routing.cases WHERE case_id = $1", case_id
    )
    assert row is not None
    assert tuple(row) == (True, 2)


async def test_the_station_head_is_told_only_of_other_representatives_misses(
    demo: Routing, consumer: RoutingConsumer, submit: Submit, pool: asyncpg.Pool
) -> None:
    opinion = await submit("电梯经常停运", station_code="dh_donghu", community="东湖社区")
    await consumer.apply(opinion)
    state = await load_case(demo, case_id_for("demo", opinion.data["opinion_id"]))
    assert state is not None
    assert state.representative_id == "r002"
    async with every_district(pool).acquire() as conn:
        ctx = await demo.districts.get(conn, "demo")
    assert ctx is not None

    def ladder(representative_id: str | None, head: str | None = "r002") -> list[str]:
        station = ctx.directory.stations["dh_donghu"]
        stations = {
            **ctx.directory.stations,
            "dh_donghu": replace(station, head_representative_id=head),
        }
        config = replace(ctx.config, directory=replace(ctx.directory, stations=stations))
        rules = replace(ctx, config=config).rules(
            replace(state, representative_id=representative_id)
        )
        return [f"{r.level}:{r.name}" for r in rules.ladder]

    told_of_r017 = ["station_head:东湖社区代表联络站站长李秀英", "street:东湖街道人大工委"]
    assert ladder("r017")[:2] == told_of_r017
    assert ladder("r002")[0] == "street:东湖街道人大工委"
    assert ladder("r017", head=None)[0] == "street:东湖街道人大工委"
    assert ladder("r017", head="r_gone")[0] == "street:东湖街道人大工委"


async def test_one_failing_case_does_not_stop_the_overdue_scan(
    demo: Routing,
    consumer: RoutingConsumer,
    submit: Submit,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = await submit("电梯经常停运", station_code="dh_donghu", community="东湖社区")
    second = await submit("路灯坏了", station_code="dh_donghu", community="东湖社区")
    await consumer.apply(first)
    await consumer.apply(second)
    broken = case_id_for("demo", first.data["opinion_id"])
    record = demo.overdue._record

    async def failing(district_id: str, case_id: str, now: datetime) -> int:
        if case_id == broken:
            raise RuntimeError("boom")
        return await record(district_id, case_id, now)

    monkeypatch.setattr(demo.overdue, "_record", failing)
    at = datetime(2026, 10, 20, 9, 0, tzinfo=SHANGHAI)

    assert await demo.overdue.scan(at) >= 1
    fine = await load_case(demo, case_id_for("demo", second.data["opinion_id"]))
    assert fine is not None
    assert fine.overdue_count >= 1
    stuck = await load_case(demo, broken)
    assert stuck is not None
    assert stuck.overdue_count == 0

    # The next scan tries the failed case again.
    monkeypatch.setattr(demo.overdue, "_record", record)
    assert await demo.overdue.scan(at) >= 1
    retried = await load_case(demo, broken)
    assert retried is not None
    assert retried.overdue_count >= 1


async def test_an_older_state_does_not_overwrite_the_cases_row(
    demo: Routing, consumer: RoutingConsumer, submit: Submit, pool: asyncpg.Pool
) -> None:
    opinion = await submit("电梯经常停运", station_code="dh_donghu", community="东湖社区")
    await consumer.apply(opinion)
    case_id = case_id_for("demo", opinion.data["opinion_id"])
    before = await load_case(demo, case_id)
    assert before is not None
    await act(demo, "accept", "demo", case_id, Actor(id="r002", role=ActorRole.REPRESENTATIVE))

    # As a scanner would that loaded the case before the representative accepted it.
    async with every_district(pool).acquire() as conn:
        await update_case(conn, before)

    row = await every_district(pool).fetchrow(
        "SELECT status, version FROM routing.cases WHERE case_id = $1", case_id
    )
    assert row is not None
    assert row["status"] == CaseStatus.IN_PROGRESS.value
    assert row["version"] > before.version


async def test_a_late_step_records_the_missed_deadline_first(
    demo: Routing, consumer: RoutingConsumer, submit: Submit, store: EventStore, clock: Clock
) -> None:
    opinion = await submit("楼道灯坏了，物业不管", station_code="dh_donghu", community="东湖社区")
    await consumer.apply(opinion)
    case_id = case_id_for("demo", opinion.data["opinion_id"])
    clock.now = datetime(2026, 9, 30, 9, 0, tzinfo=SHANGHAI)

    await act(demo, "accept", "demo", case_id, Actor(id="r002", role=ActorRole.REPRESENTATIVE))
    await demo.overdue.scan(clock.now)

    types = [t for t, _ in await case_events(store, case_id)]
    assert types == ["CaseOpened", "CaseAssigned", "CaseOverdue", "CaseAccepted"]


async def test_the_read_models_rebuilt_from_the_store_equal_the_live_ones(
    demo: Routing,
    consumer: RoutingConsumer,
    submit: Submit,
    store: EventStore,
    pool: asyncpg.Pool,
) -> None:
    places: list[tuple[str, dict[str, Any]]] = [
        ("电梯坏了", {"station_code": "dh_donghu"}),
        ("路灯不亮", {"community": "柳岸社区"}),
        ("路灯不亮！", {"community": "柳岸社区"}),
        ("孩子入学问题", {"lat": 30.2468, "long": 120.1659}),
    ]
    for text, place in places:
        await consumer.apply(await submit(text, **place))
    case_id = await every_district(pool).fetchval(
        "SELECT case_id FROM routing.cases ORDER BY opened_at LIMIT 1"
    )
    await act(demo, "accept", "demo", case_id, LIAISON)
    await demo.directory.retire_representative("demo", "r060", "任期届满", LIAISON)

    async def snapshot() -> dict[str, list[tuple[object, ...]]]:
        tables = {
            "cases": "SELECT * FROM routing.cases ORDER BY case_id",
            "links": "SELECT * FROM routing.case_links ORDER BY case_id, related_case_id",
            "representatives": "SELECT * FROM routing.representatives ORDER BY representative_id",
            "stations": "SELECT * FROM routing.stations ORDER BY station_code",
            "memberships": "SELECT * FROM routing.memberships "
            "ORDER BY representative_id, station_code, joined_at",
            "days": "SELECT * FROM routing.reception_days ORDER BY 2, 3, 4",
            "districts": "SELECT district_id, name_zh, timezone, taxonomy, calendar, policy "
            "FROM routing.districts",
        }
        return {
            k: [tuple(r) for r in await every_district(pool).fetch(q)] for k, q in tables.items()
        }

    live = await snapshot()
    async with every_district(pool).acquire() as conn:
        counts = await rebuild(conn, store)

    assert counts["cases"] == 4
    assert await snapshot() == live


async def test_an_opinion_for_an_unregistered_district_is_dead_lettered_not_retried(
    consumer: RoutingConsumer, submit: Submit, store: EventStore
) -> None:
    opinion = await submit("路灯不亮", district="nowhere", community="某社区")
    with pytest.raises(PermanentError, match="nowhere"):
        await consumer.apply(opinion)
    assert (
        await store.read_stream(f"case-{case_id_for('nowhere', opinion.data['opinion_id'])}") == []
    )


async def test_case_opened_records_why_it_was_classified(
    demo: Routing, consumer: RoutingConsumer, submit: Submit, store: EventStore
) -> None:
    opinion = await submit(
        "独居老人家门口的下水道堵了，积水很深", community="西山社区", category_hint="市政设施"
    )
    await consumer.apply(opinion)

    case_id = case_id_for("demo", opinion.data["opinion_id"])
    records = await store.read_stream(f"case-{case_id}")
    [(_, first), *_] = await case_events(store, case_id)
    opened = REGISTRY.parse("CaseOpened", 1, first)
    assert isinstance(opened, CaseOpened)
    assert opened.category_code == "municipal"
    assert opened.matched_keywords == ["积水", "下水道"]
    assert opened.category_hint_matched is True
    assert opened.priority_keywords == ["老人", "独居老人"]
    assert opened.priority.value == "important"
    assert records[0].metadata["causation_id"] == str(opinion.event_id)
    assert opened.response_due is not None
    assert opened.response_due - opened.occurred_at < timedelta(days=2)


async def test_the_case_records_the_community_routing_placed_it_in_when_only_a_point_was_given(
    demo: Routing, consumer: RoutingConsumer, submit: Submit, store: EventStore
) -> None:
    opinion = await submit("路灯坏了好几天了", channel="online", lat=30.2742, long=120.1552)
    assert await consumer.apply(opinion)

    [(kind, opened), *_] = await case_events(store, case_id_for("demo", opinion.data["opinion_id"]))
    assert kind == "CaseOpened"
    assert (opened["channel"], opened["community"], opened["street_code"]) == (
        "online",
        "东湖社区",
        "dh",
    )


async def test_opinions_opened_in_one_batch_are_decided_as_if_opened_one_by_one(
    demo: Routing, pool: asyncpg.Pool, submit: Submit, store: EventStore
) -> None:
    """The consumer opens a batch's cases together (one query, one append): each case must
    still see the ones before it, their workloads and their texts, as if they had been
    opened one at a time."""
    lift = "小区3号楼电梯坏了三个月，物业一直不修，老人上下楼很困难"
    specs = [
        (lift, "dh_donghu", "东湖社区"),
        (lift + "。", "dh_donghu", "东湖社区"),  # near-identical: a duplicate
        ("东湖社区5号楼电梯经常停运，物业不管", "dh_donghu", "东湖社区"),  # related
        ("路灯不亮了，晚上走路很黑", "dh_donghu", "东湖社区"),
        ("小区里垃圾好几天没人清运，味道很大", "dh_donghu", "东湖社区"),
        ("楼道里电线裸露，孩子经常经过，很危险", "dh_donghu", "东湖社区"),
        ("路灯不亮了，晚上走路很黑！", "xs_fenglin", None),
        ("想问一下社区最近有什么活动可以参加", "xs_fenglin", None),
    ]
    stored = [
        await submit(text, station_code=station, **({"community": c} if c else {}))
        for text, station, c in specs
    ]
    opinions: list[tuple[OpinionSubmitted, Any]] = []
    for env in stored:
        event = env.event(REGISTRY)
        assert isinstance(event, OpinionSubmitted)
        opinions.append((event, env))
    case_ids = [case_id_for("demo", o.opinion_id) for o, _ in opinions]

    async def outcome(batch: bool) -> list[list[tuple[str, dict[str, object]]]]:
        async with every_district(pool).acquire() as conn:
            transaction = conn.transaction()
            await transaction.start()
            try:
                if batch:
                    await demo.opening.open_cases(opinions, conn)
                else:
                    for opinion, env in opinions:
                        await demo.opening.open_case(opinion, env, conn)
                # Compared as readers see them: the sealed texts opened (each sealing
                # has a nonce, each case a key of its own), without the ciphertexts.
                found = []
                for c in case_ids:
                    records = await store.read_stream(f"case-{c}", conn=conn)
                    opened = await open_case_data(
                        conn, demo.cases.texts, [(r.event_type, r.data) for r in records]
                    )
                    found.append(
                        [
                            (r.event_type, {k: v for k, v in d.items() if k != "sealed"})
                            for r, d in zip(records, opened, strict=True)
                        ]
                    )
                return found
            finally:
                await transaction.rollback()

    one_by_one = await outcome(batch=False)
    together = await outcome(batch=True)
    assert together == one_by_one
    # What the batch had to get right is there to get right: links to cases of the same
    # batch, and a representative's workload raised by an earlier case of the batch.
    links = [e for case in together for t, e in case if t == "CaseLinked"]
    assert {e["relation"] for e in links} == {"duplicate", "related"}
    assigned = [e["representative_id"] for case in together for t, e in case if t == "CaseAssigned"]
    assert len({r for r in assigned if r}) > 1
