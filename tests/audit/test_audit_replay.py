"""Replay: a district's history re-published to a topic of the real broker, in order,
with the original CloudEvents ids and the ``ce_replay`` marker."""

from __future__ import annotations

from collections import Counter

import pytest
from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event

from eventkit.audit.replay import ReplayRefused, ReplayRequest, replay
from eventkit.audit.sealing import Sealer
from eventkit.db import Conn
from eventkit.settings import Settings
from eventkit.store import EventStore
from tests.audit.support import generate_history
from tests.helpers import read_topic, versions_first_seen


async def test_a_replay_re_publishes_the_district_in_order_with_original_ids_marked_as_replay(
    store: EventStore, sealer: Sealer, settings: Settings, conn: Conn
) -> None:
    await generate_history(store, matters=4)
    await generate_history(store, "haidian", matters=1)
    await sealer.seal_all()
    topic = settings.topic("subscriber.feed")

    summary = await replay(store, settings, ReplayRequest(district_id="demo", to_topic=topic))
    records = await read_topic(settings.kafka_bootstrap, topic, until=lambda r: len(r) >= 28)

    assert summary.events == len(records) == 28
    headers = [dict(r.headers) for r in records]
    assert {h["ce_replay"].decode() for h in headers} == {summary.replay_id}
    assert {h["ce_district"] for h in headers} == {b"demo"}
    stored = await conn.fetch(
        "SELECT event_id::text AS id FROM eventstore.events "
        "WHERE district_id = 'demo' AND category <> 'audit'"
    )
    assert sorted(h["ce_id"].decode() for h in headers) == sorted(r["id"] for r in stored)
    for versions in versions_first_seen(records).values():
        assert versions == list(range(1, len(versions) + 1))
    # Within a partition, in the store's order.
    by_partition: dict[int, list[int]] = {}
    for record, h in zip(records, headers, strict=True):
        by_partition.setdefault(record.partition, []).append(int(h["ce_position"]))
    for positions in by_partition.values():
        assert positions == sorted(positions)
    event = from_binary_event(
        KafkaMessage(headers=dict(records[0].headers), key=records[0].key, value=records[0].value)
    )
    assert event.get_extension("replay") == summary.replay_id


async def test_a_replay_keeps_to_its_period_and_its_types(
    store: EventStore, settings: Settings, conn: Conn
) -> None:
    await generate_history(store, matters=2)
    since = await conn.fetchval("SELECT clock_timestamp()")
    await generate_history(store, matters=3)
    until = await conn.fetchval("SELECT clock_timestamp()")
    await generate_history(store, matters=1)

    window = await replay(
        store,
        settings,
        ReplayRequest("demo", settings.topic("window"), since=since, until=until),
        dry_run=True,
    )
    assert window.events == 21
    closures = await replay(
        store,
        settings,
        ReplayRequest("demo", settings.topic("window"), event_types=["CaseClosed", "CaseOpened"]),
        dry_run=True,
    )
    assert closures.by_type == Counter({"CaseClosed": 6, "CaseOpened": 6})


async def test_a_dry_run_sends_nothing(store: EventStore, settings: Settings) -> None:
    await generate_history(store, matters=1)
    topic = settings.topic("never")
    summary = await replay(store, settings, ReplayRequest("demo", topic), dry_run=True)
    assert summary.events == 7
    with pytest.raises(TimeoutError):
        await read_topic(settings.kafka_bootstrap, topic, until=lambda r: bool(r), timeout=2)


async def test_a_replay_to_a_public_feed_is_refused(store: EventStore, settings: Settings) -> None:
    with pytest.raises(ReplayRefused, match="public"):
        await replay(store, settings, ReplayRequest("demo", "minqing.public.demo.cases.v1"))
