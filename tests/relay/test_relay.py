"""The relay against the real PostgreSQL and the real broker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from cloudevents.core.bindings.kafka import KafkaMessage, from_binary_event

from contracts import REGISTRY, AuditSealed
from contracts.envelope import Envelope
from contracts.topics import AUDIT, CASES, DIRECTORY
from eventkit.audit.sealing import Sealer
from eventkit.cloudevents import decode
from eventkit.local import Broker
from eventkit.relay import Relay
from eventkit.settings import Settings
from eventkit.store import EventStore
from tests.helpers import case_opened, envelope, read_topic, versions_first_seen


@contextlib.asynccontextmanager
async def running(relay: Relay) -> AsyncIterator[asyncio.Event]:
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


async def test_events_reach_their_topic_as_cloudevents_the_sdk_reads(
    store: EventStore, settings: Settings
) -> None:
    event = case_opened()
    stored = Envelope.wrap(event)
    await store.append(event.stream_id, [stored])
    async with running(Relay(store, settings)):
        [record] = await read_topic(
            settings.kafka_bootstrap, settings.topic(CASES), until=lambda r: len(r) >= 1
        )
    assert record.key == event.stream_id.encode()
    headers = dict(record.headers)
    assert headers["content-type"] == b"application/json"
    assert headers["ce_type"] == b"cn.minqing.routing.CaseOpened.v1"
    assert headers["ce_source"] == b"/districts/demo/routing"

    cloud_event = from_binary_event(
        KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value)
    )
    assert cloud_event.get_id() == str(stored.event_id)
    assert cloud_event.get_type() == "cn.minqing.routing.CaseOpened.v1"
    assert cloud_event.get_subject() == event.stream_id
    assert cloud_event.get_extension("district") == "demo"
    assert cloud_event.get_extension("streamversion") == "1"
    assert cloud_event.get_extension("partitionkey") == event.stream_id
    [recorded] = await store.read_stream(event.stream_id)
    when = cloud_event.get_extension("recordedtime")
    assert isinstance(when, str)
    assert datetime.fromisoformat(when) == recorded.recorded_at
    assert decode(record.value, record.headers).recorded_at == recorded.recorded_at
    data = cloud_event.get_data()
    assert isinstance(data, dict)
    assert REGISTRY.parse("CaseOpened", 1, data) == event
    assert json.loads(record.value) == data


async def test_each_category_goes_to_its_own_topic(store: EventStore, settings: Settings) -> None:
    case_stream = f"case-{uuid.uuid4().hex[:8]}"
    station_stream = "station-demo.s01"
    await store.append(case_stream, [envelope(case_stream)])
    await store.append(station_stream, [envelope(station_stream)])
    async with running(Relay(store, settings)):
        cases = await read_topic(
            settings.kafka_bootstrap, settings.topic(CASES), until=lambda r: len(r) >= 1
        )
        directory = await read_topic(
            settings.kafka_bootstrap, settings.topic(DIRECTORY), until=lambda r: len(r) >= 1
        )
    assert [r.key for r in cases] == [case_stream.encode()]
    assert [r.key for r in directory] == [station_stream.encode()]


async def test_events_appended_while_running_are_published_in_stream_order(
    store: EventStore, settings: Settings
) -> None:
    streams = [f"case-{uuid.uuid4().hex[:8]}" for _ in range(10)]
    async with running(Relay(store, settings)):
        for i in range(300):
            stream = streams[i % len(streams)]
            await store.append(stream, [envelope(stream)])
        records = await read_topic(
            settings.kafka_bootstrap, settings.topic(CASES), until=lambda r: len(r) >= 300
        )
    assert len(records) == 300
    for versions in versions_first_seen(records).values():
        assert versions == list(range(1, 31))


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(0.05)


async def test_a_second_relay_waits_and_takes_over_when_the_leader_stops(
    store: EventStore, settings: Settings
) -> None:
    first, second = Relay(store, settings), Relay(store, settings)
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    first_task = asyncio.create_task(first.run(stop_first))
    await wait_until(lambda: first.is_leader)
    second_task = asyncio.create_task(second.run(stop_second))
    try:
        stream = f"case-{uuid.uuid4().hex[:8]}"
        await store.append(stream, [envelope(stream)])
        await read_topic(
            settings.kafka_bootstrap, settings.topic(CASES), until=lambda r: len(r) >= 1
        )
        await wait_until(lambda: first.published == 1)  # counted after the checkpoint
        assert not second.is_leader
        assert second.published == 0

        stop_first.set()
        await asyncio.wait_for(first_task, 15)
        await wait_until(lambda: second.is_leader)
        await store.append(stream, [envelope(stream)])
        records = await read_topic(
            settings.kafka_bootstrap, settings.topic(CASES), until=lambda r: len(r) >= 2
        )
        assert versions_first_seen(records) == {stream: [1, 2]}
        await wait_until(lambda: second.published == 1)
    finally:
        stop_first.set()
        stop_second.set()
        await asyncio.wait_for(asyncio.gather(first_task, second_task), 15)


async def test_a_new_empty_broker_is_fed_the_whole_history_again(
    store: EventStore, settings: Settings
) -> None:
    streams = [f"case-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for stream in streams:
        await store.append(stream, [envelope(stream), envelope(stream)])
    async with running(Relay(store, settings)):
        await read_topic(
            settings.kafka_bootstrap, settings.topic(CASES), until=lambda r: len(r) >= 6
        )
    fresh = Broker(port=None)
    fresh.start()
    try:
        moved = settings.model_copy(update={"kafka_bootstrap": fresh.bootstrap})
        async with running(Relay(store, moved)):
            records = await read_topic(
                fresh.bootstrap, settings.topic(CASES), until=lambda r: len(r) >= 6
            )
    finally:
        fresh.stop()
    assert sorted(versions_first_seen(records).items()) == sorted((s, [1, 2]) for s in streams)


async def test_an_idle_relay_is_woken_by_a_notification_not_by_its_poll(
    store: EventStore, settings: Settings
) -> None:
    slow_poll = settings.model_copy(update={"relay_poll_interval": 30.0})
    relay = Relay(store, slow_poll)
    async with running(relay):
        await wait_until(lambda: relay.is_leader)
        await asyncio.sleep(0.5)  # let it go idle and ask for notifications
        stream = f"case-{uuid.uuid4().hex[:8]}"
        started = asyncio.get_running_loop().time()
        await store.append(stream, [envelope(stream)])
        await read_topic(
            settings.kafka_bootstrap, settings.topic(CASES), until=lambda r: len(r) >= 1
        )
        assert asyncio.get_running_loop().time() - started < 10  # far below the 30 s poll


async def test_the_leader_seals_each_district_and_publishes_the_seals_to_the_audit_topic(
    store: EventStore, settings: Settings
) -> None:
    streams = [f"case-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    for stream in streams:
        await store.append(stream, [envelope(stream), envelope(stream)])
    relay = Relay(store, settings, sealer=Sealer(store), seal_interval=0.2)
    async with running(relay):
        [record] = await read_topic(
            settings.kafka_bootstrap, settings.topic(AUDIT), until=lambda r: len(r) >= 1
        )
        # Publishing goes on after a seal: a later event reaches its topic too.
        later = f"case-{uuid.uuid4().hex[:8]}"
        await store.append(later, [envelope(later)])
        cases = await read_topic(
            settings.kafka_bootstrap, settings.topic(CASES), until=lambda r: len(r) >= 7
        )
    headers = dict(record.headers)
    assert headers["ce_type"] == b"cn.minqing.audit.AuditSealed.v1"
    assert headers["ce_source"] == b"/districts/demo/audit"
    assert record.key == b"audit-demo"
    seal = decode(record.value, record.headers).event(REGISTRY)
    assert isinstance(seal, AuditSealed)
    assert (seal.seal_seq, seal.events) == (1, 6)
    assert sorted(s.stream_id for s in seal.streams) == sorted(streams)
    assert {r.key for r in cases} == {s.encode() for s in [*streams, later]}


async def test_an_event_that_has_no_topic_is_passed_over_and_the_rest_flows(
    store: EventStore, settings: Settings
) -> None:
    """A poison event must not hold back every event after it."""
    await store.append("misc-1", [envelope("misc-1")])
    stream = f"case-{uuid.uuid4().hex[:8]}"
    await store.append(stream, [envelope(stream)])
    relay = Relay(store, settings)
    async with running(relay):
        [record] = await read_topic(
            settings.kafka_bootstrap, settings.topic(CASES), until=lambda r: len(r) >= 1
        )
        await wait_until(lambda: relay.published == 2)
    assert record.key == stream.encode()
    assert relay.skipped == 1
