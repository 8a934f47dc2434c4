"""End to end on the real broker: an opinion on Kafka becomes an assigned case on Kafka.

The routing app runs as in production (its lifespan: jieba, the district file, the
consumer group, the scanner); the relay runs in-process. The clock starts when the
OpinionSubmitted is on Kafka (the relay has the broker's acknowledgement).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import FastAPI

from contracts.topics import CASES, OPINIONS
from eventkit import cloudevents
from eventkit.kafka import make_producer, partitions_of
from eventkit.relay import Relay
from eventkit.store import EventStore, TailEvent
from services.routing.app import create_app
from services.routing.classification import JiebaSegmenter
from services.routing.consumers import RoutingConsumer
from services.routing.ids import case_id_for
from services.routing.settings import RoutingSettings
from tests.routing.routing_support import DEMO_FILE, Clock, Submit

WITHIN_SECONDS = 2.0


@dataclass
class Watch:
    """When each opinion reached Kafka, and when each case event came back from it."""

    published: dict[str, float] = field(default_factory=dict)
    """event id → moment the relay had the broker's acknowledgement."""
    received: dict[tuple[str, str], float] = field(default_factory=dict)
    """(stream, event type) → first moment it was read from the cases topic."""
    case_records: list[tuple[str, str]] = field(default_factory=list)

    async def on_published(self, batch: list[TailEvent]) -> None:
        now = time.monotonic()
        for event in batch:
            self.published.setdefault(str(event.event_id), now)


async def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.01)


async def follow(bootstrap: str, topic: str, watch: Watch) -> None:
    """Read ``topic`` from its start, recording when each record arrives."""
    deadline = time.monotonic() + 30
    parts: list[int] = []
    while not parts and time.monotonic() < deadline:
        parts = await partitions_of(bootstrap, topic)
        await asyncio.sleep(0.05)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in parts]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        while True:
            batch = await consumer.getmany(timeout_ms=50)
            now = time.monotonic()
            for records in batch.values():
                for record in records:
                    headers = cloudevents.header_map(record.headers)
                    key = (headers["ce_subject"], headers["ce_type"].split(".")[3])
                    watch.received.setdefault(key, now)
                    watch.case_records.append(key)
    finally:
        await consumer.stop()


@pytest.fixture
async def running(
    routing_settings: RoutingSettings,
    segmenter: JiebaSegmenter,
    store: EventStore,
    clock: Clock,
) -> AsyncIterator[tuple[FastAPI, Watch]]:
    settings = routing_settings.model_copy(
        update={"routing_district_files": [DEMO_FILE], "routing_scan_interval": 1.0}
    )
    app = create_app(settings, clock=clock, segmenter=segmenter)
    watch = Watch()
    stop = asyncio.Event()
    relay = asyncio.create_task(Relay(store, settings, on_published=watch.on_published).run(stop))
    reader = asyncio.create_task(follow(settings.kafka_bootstrap, settings.topic(CASES), watch))
    try:
        async with app.router.lifespan_context(app):
            yield app, watch
    finally:
        stop.set()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader
        with contextlib.suppress(Exception):
            await asyncio.wait_for(relay, 15)


async def test_an_opinion_on_kafka_becomes_an_assigned_case_on_kafka_within_two_seconds_once(
    running: tuple[FastAPI, Watch],
    submit: Submit,
    store: EventStore,
    routing_settings: RoutingSettings,
) -> None:
    app, watch = running
    # Warm up: the consumer group's first join takes seconds on this broker.
    warm = await submit("路灯不亮了", community="柳岸社区")
    warm_stream = f"case-{case_id_for('demo', warm.data['opinion_id'])}"
    await wait_for(lambda: (warm_stream, "CaseAssigned") in watch.received, 60, "warm-up case")

    opinion = await submit("小区电梯坏了三个月，物业一直不修", station_code="dh_donghu")
    stream = f"case-{case_id_for('demo', opinion.data['opinion_id'])}"
    await wait_for(lambda: (stream, "CaseAssigned") in watch.received, 20, "the case on Kafka")

    on_kafka = watch.published[str(opinion.event_id)]
    opened = watch.received[(stream, "CaseOpened")] - on_kafka
    assigned = watch.received[(stream, "CaseAssigned")] - on_kafka
    assert opened < WITHIN_SECONDS
    assert assigned < WITHIN_SECONDS
    stored = [r.event_type for r in await store.read_stream(stream)]
    assert stored == ["CaseOpened", "CaseAssigned"]

    # Redelivery: the same record on the topic again (a producer retry, a redrive).
    (consumer,) = app.state.routing.runtime.consumers
    assert isinstance(consumer, RoutingConsumer)
    duplicates = consumer.stats.duplicates
    key, value, headers = cloudevents.encode(opinion)
    producer = make_producer(routing_settings)
    await producer.start()
    try:
        await producer.send_and_wait(
            routing_settings.topic(OPINIONS), value=value, key=key, headers=headers
        )
    finally:
        await producer.stop()
    await wait_for(lambda: consumer.stats.duplicates > duplicates, 20, "the redelivery")

    assert [r.event_type for r in await store.read_stream(stream)] == stored
    await asyncio.sleep(0.5)  # anything the relay would publish has had time to arrive
    assert watch.case_records.count((stream, "CaseOpened")) == 1
    assert watch.case_records.count((stream, "CaseAssigned")) == 1
