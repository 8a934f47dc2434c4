"""Planning and sending a batch at a time, on the real PostgreSQL and the real broker: a
batch of two districts is planned in each one's scope, a redelivered batch plans nothing
twice, a batch that fails midway loses nothing, a batch plans exactly what one event at a
time would, and a district's setup kept between batches is read afresh when it changes
(also after a transaction that changed it rolled back)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any

import asyncpg
import pytest

from contracts import REGISTRY
from contracts.base import Event
from contracts.cases import CaseReplied, CaseTransferred, Priority
from contracts.directory import StationRegistered
from contracts.envelope import Envelope
from contracts.topics import CASES
from eventkit import cloudevents
from eventkit.consumer import run_consumers
from eventkit.db import scope
from eventkit.kafka import ensure_topics, make_producer
from eventkit.store import EventStore
from minqing.sink import Sink
from minqing.system import DEMO_CONTACTS_FILE, DEMO_DISTRICT_FILE
from services.notification import contacts
from services.notification.bootstrap import Notification
from services.notification.contact_book import parse_contact_file
from services.routing.directory_plan import plan_changes
from services.routing.district_file import load_district_file
from tests.every_district import every_district
from tests.notification.notification_support import (
    ADMIN,
    LIAISON,
    Clock,
    assigned,
    happen,
    opened,
    resident_opinion,
)

Planned = tuple[str, str, str, str, str]
"""(district, case, rule, recipient, channel) of a delivery."""


@pytest.fixture
async def north(demo: Notification, store: EventStore, sink: Sink) -> Notification:
    """A second district, 北区 (``north``), laid out as the demo district, with its own
    contact book (addresses at north.minqing.local)."""
    demo_file = load_district_file(DEMO_DISTRICT_FILE)
    assert demo_file.district is not None
    district = demo_file.model_copy(
        update={
            "district": demo_file.district.model_copy(update={"code": "north", "name_zh": "北区"})
        }
    )
    now = datetime.fromisoformat("2026-09-01T09:00:00+08:00")
    plan = plan_changes(None, district, district_id="north", actor=ADMIN, now=now, today=now.date())
    for event in plan.events:
        await store.append(event.stream_id, [Envelope.wrap(event)])
    for record in await store.read_all(limit=10_000, district_id="north"):
        await demo.consumer.apply(record.envelope())
    text = (
        DEMO_CONTACTS_FILE.read_text(encoding="utf-8")
        .replace("district: demo", "district: north")
        .replace("@demo.minqing.local", "@north.minqing.local")
        .replace("http://127.0.0.1:8025", f"http://127.0.0.1:{sink.http_port}")
    )
    await contacts.import_book(demo.pool, parse_contact_file(text), "test", now)
    return demo


def in_district(event: Any, district: str) -> Any:
    return event.model_copy(update={"district_id": district})


async def case_events(
    store: EventStore, district: str, *, representative: str = "r017"
) -> list[Envelope]:
    """A case opened and assigned in ``district``, appended as routing would."""
    case = in_district(opened("op_" + uuid.uuid4().hex[:12]), district)
    events = [case, in_district(assigned(case.case_id, representative), district)]
    await store.append(case.stream_id, [Envelope.wrap(e) for e in events])
    return [r.envelope() for r in await store.read_stream(case.stream_id)]


async def planned(pool: asyncpg.Pool) -> list[Planned]:
    rows = await every_district(pool).fetch(
        "SELECT district_id, case_id, rule, recipient, channel FROM notification.deliveries"
        " ORDER BY 1, 2, 3, 4, 5"
    )
    return [tuple(r.values()) for r in rows]


async def publish(notification: Notification, envelopes: Sequence[Envelope]) -> None:
    topic = notification.settings.topic(CASES)
    await ensure_topics(notification.settings, [topic])
    producer = make_producer(notification.settings)
    await producer.start()
    try:
        for envelope in envelopes:
            key, value, headers = cloudevents.encode(envelope)
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def consuming(notification: Notification) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_consumers(notification.settings, [notification.consumer], stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


async def until(condition: Callable[[], bool], timeout: float = 40.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


def watch_batches(
    notification: Notification, monkeypatch: pytest.MonkeyPatch
) -> list[list[tuple[str, str]]]:
    """Each call of the planner's batch: (district, event type) of its events, then
    ("scope", the district its transaction declared)."""
    calls: list[list[tuple[str, str]]] = []
    plan_batch = notification.planner.plan_batch

    async def watched(conn: Any, batch: Sequence[tuple[Event, Envelope]]) -> None:
        scoped = await conn.fetchval("SELECT current_setting('minqing.district')")
        calls.append([(e.district_id, e.event_type) for e, _ in batch] + [("scope", scoped)])
        await plan_batch(conn, batch)

    monkeypatch.setattr(notification.planner, "plan_batch", watched)
    # In batches, as the service runs (the tests' shared settings handle one by one).
    notification.consumer.batch_size = 100
    return calls


async def test_a_batch_of_two_districts_is_planned_per_district_and_a_redelivery_plans_nothing(
    north: Notification, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = [await case_events(store, d) for d in ("demo", "north", "demo", "north")]
    # On Kafka as routing's events would arrive: the districts' cases interleaved, each
    # case's opening and assignment one after the other (routing appends them together,
    # and they share a partition). Interleaving the events themselves, as this test once
    # did, left a partition holding two districts' cases with runs of one event only,
    # whichever partitions the random case ids fell in.
    records = [e for case in cases for e in case]
    calls = watch_batches(north, monkeypatch)
    before = north.consumer.stats.applied
    await publish(north, records)
    async with consuming(north):
        await until(lambda: north.consumer.stats.applied - before == len(records))
        first = await planned(north.pool)
        await publish(north, records)  # the whole batch again
        await until(lambda: north.consumer.stats.duplicates >= len(records))

    assert await planned(north.pool) == first
    expected = sorted(
        (c[0].district_id, c[0].stream_id.removeprefix("case-"), "case_assigned", "r017", "email")
        for c in cases
    )
    assert first == expected
    for *events, (_, scoped) in calls:
        assert {d for d, _ in events} == {scoped}  # one district, in its scope
    assert {call[0][0] for call in calls} == {"demo", "north"}
    assert max(len(call) - 1 for call in calls) > 1  # opened and assigned planned together
    assert sum(len(call) - 1 for call in calls) == len(records)  # the redelivery: nothing


async def test_a_batch_that_fails_midway_is_rolled_back_and_planned_record_by_record(
    demo: Notification, store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = [await case_events(store, "demo") for _ in range(3)]
    calls = watch_batches(demo, monkeypatch)
    planning = demo.planner.plan_batch
    crashed: list[int] = []

    async def crash_once(conn: Any, batch: Sequence[tuple[Event, Envelope]]) -> None:
        await planning(conn, batch)  # the deliveries are written in the transaction...
        if len(batch) > 1 and not crashed:
            crashed.append(len(batch))
            raise ConnectionResetError("the database went away mid-batch")  # ...then lost

    monkeypatch.setattr(demo.planner, "plan_batch", crash_once)
    before = demo.consumer.stats.applied
    await publish(demo, [e for case in good for e in case])
    async with consuming(demo):
        await until(lambda: demo.consumer.stats.applied - before == 6)

    assert crashed  # a batch of several events failed after planning some of them
    cases = sorted(c[0].stream_id.removeprefix("case-") for c in good)
    assert [p[1] for p in await planned(demo.pool)] == cases  # one mail each, nothing twice
    assert sum(len(call) - 1 for call in calls) > 6  # the failed batch's events planned again
    assert demo.consumer.stats.dead_lettered == 0
    gates = await every_district(demo.pool).fetch(
        "SELECT stream_id, stream_version FROM consumers.stream_positions"
        " WHERE stream_id LIKE 'case-%'"
    )
    assert sorted((g["stream_id"].removeprefix("case-"), g["stream_version"]) for g in gates) == [
        (c, 2) for c in cases
    ]


async def test_a_batch_plans_what_one_event_at_a_time_would(
    demo: Notification, store: EventStore, clock: Clock
) -> None:
    async def scenario() -> list[Event]:
        opinion = await resident_opinion(demo.vault, demo.pool, channel="walk_in")
        case = opened(opinion.opinion_id, priority=Priority.URGENT)
        return [
            opinion,
            case,
            assigned(case.case_id, "r017"),
            CaseReplied(
                district_id="demo",
                occurred_at=clock(),
                actor=LIAISON,
                case_id=case.case_id,
                message="已联系城管",
            ),
            CaseTransferred(
                district_id="demo",
                occurred_at=clock(),
                actor=LIAISON,
                case_id=case.case_id,
                to_representative_id="r002",
                reason="专长",
            ),
        ]

    async def outcome(case_id: str) -> tuple[list[tuple[str, str, str]], Any]:
        rows = await every_district(demo.pool).fetch(
            "SELECT rule, recipient_kind, recipient, channel FROM notification.deliveries"
            " WHERE case_id = $1 OR opinion_id = (SELECT opinion_id FROM notification.cases"
            " WHERE case_id = $1)",
            case_id,
        )
        made = sorted(
            (r["rule"], r["recipient"] if r["recipient_kind"] != "resident" else "resident",
             r["channel"])
            for r in rows
        )  # fmt: skip
        row = await every_district(demo.pool).fetchrow(
            "SELECT station_code, representative_id, queue FROM notification.cases"
            " WHERE case_id = $1",
            case_id,
        )
        return made, tuple(row.values()) if row else None

    one_by_one = await scenario()
    for event in one_by_one:
        await happen(store, demo, event)
    together = await scenario()
    envelopes = []
    for event in together:
        await store.append(event.stream_id, [Envelope.wrap(event)])
        envelopes.append((event, (await store.read_stream(event.stream_id))[-1].envelope()))
    async with demo.pool.acquire() as conn, conn.transaction():
        await scope(conn, "demo")
        await demo.planner.plan_batch(conn, envelopes)

    alone = await outcome(one_by_one[1].case_id)  # type: ignore[attr-defined]
    batched = await outcome(together[1].case_id)  # type: ignore[attr-defined]
    assert batched == alone
    rules = {rule for rule, _, _ in alone[0]}
    assert {"receipt", "urgent_case", "case_assigned", "resident_replied"} <= rules
    assert "case_transferred" in rules
    assert alone[1] == ("dh_donghu", "r002", "representative")


async def test_a_station_changed_in_a_transaction_that_rolled_back_is_not_kept(
    demo: Notification, store: EventStore
) -> None:
    [registered] = [
        r.envelope().event(REGISTRY)
        for r in await store.read_all(limit=10_000, categories=["station"])
        if r.event_type == "StationRegistered" and r.data.get("station_code") == "dh_donghu"
        and r.district_id == "demo"
    ]  # fmt: skip
    assert isinstance(registered, StationRegistered)
    case = opened("op_" + uuid.uuid4().hex[:12], priority=Priority.URGENT)
    first = [case, assigned(case.case_id, "r017")]
    await store.append(case.stream_id, [Envelope.wrap(e) for e in first])
    recorded = [r.envelope() for r in await store.read_stream(case.stream_id)]
    async with demo.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await scope(conn, "demo")
        moved = registered.model_copy(update={"liaison_officers": ["lo_elsewhere"]})
        await demo.planner.on_directory(moved, conn)
        await demo.planner.plan_batch(conn, list(zip(first, recorded, strict=True)))
        await transaction.rollback()
    for envelope in recorded:
        await demo.consumer.apply(envelope)

    told = {p[3] for p in await planned(demo.pool) if p[2] == "urgent_case"}
    assert told == {"lo_dh_02", "r002"}  # the committed station's staff


async def test_the_sender_records_each_district_apart_and_reads_a_changed_contact_afresh(
    north: Notification, store: EventStore, sink: Sink, clock: Clock
) -> None:
    for district in ("demo", "north"):
        for envelope in await case_events(store, district):
            await north.consumer.apply(envelope)
    assert await north.sender.send_due() == 2
    mails = sorted(m.path for m in sink.received if m.kind == "mail")
    assert mails == ["r017@demo.minqing.local", "r017@north.minqing.local"]
    sent = await store.read_all(limit=100, categories=["notification"])
    assert sorted(r.district_id for r in sent) == ["demo", "north"]

    async with north.pool.acquire() as conn, conn.transaction():
        await scope(conn, "north")
        entry = await contacts.one(conn, "north", "r017")
        changed = entry.model_copy(update={"email": "r017-new@north.minqing.local"})
        await contacts.save(conn, "north", [changed], "admin_north", clock())
    for envelope in await case_events(store, "north"):
        await north.consumer.apply(envelope)
    assert await north.sender.send_due() == 1
    assert [m.path for m in sink.received if m.kind == "mail"][-1] == (
        "r017-new@north.minqing.local"
    )
