"""Small builders shared by the tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from contracts import Actor, ActorRole, CaseOpened, Priority
from contracts.envelope import Envelope
from contracts.topics import dlq_topic
from eventkit import cloudevents
from eventkit.kafka import ensure_topics, make_producer, partitions_of
from eventkit.settings import Settings


def case_opened(case_id: str | None = None, district: str = "demo", **extra: Any) -> CaseOpened:
    """A valid CaseOpened event."""
    return CaseOpened(
        district_id=district,
        occurred_at=datetime.now(UTC),
        actor=Actor(id="routing", role=ActorRole.SYSTEM),
        case_id=case_id or uuid.uuid4().hex[:12],
        opinion_id=uuid.uuid4().hex[:12],
        category_code="property",
        matched_keywords=["电梯"],
        priority=Priority.NORMAL,
        **extra,
    )


def envelope(stream_id: str, district: str = "demo", **data: Any) -> Envelope:
    """An envelope of a plain test event on ``stream_id`` (not validated by a model)."""
    return Envelope(
        event_type="CaseReplied",
        schema_version=1,
        stream_id=stream_id,
        district_id=district,
        occurred_at=datetime.now(UTC),
        data={
            "district_id": district,
            "occurred_at": datetime.now(UTC).isoformat(),
            "actor": {"id": "tester", "role": "liaison"},
            "case_id": stream_id.partition("-")[2],
            "message": "已联系物业处理",
            **data,
        },
    )


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    until: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
    timeout: float = 20.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` from the start, read until ``until(records)`` holds.

    Partitions are assigned directly (no consumer group: joining one takes seconds).
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        partitions: list[int] = []
        while not partitions:
            partitions = await partitions_of(bootstrap, topic)
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"topic {topic} does not exist")
            if not partitions:
                await asyncio.sleep(0.1)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while not until(records):
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{topic}: condition not met with {len(records)} records")
            batch = await consumer.getmany(timeout_ms=200)
            for tp_records in batch.values():
                records.extend(tp_records)
        return records
    finally:
        await consumer.stop()


def versions_first_seen(records: list[ConsumerRecord[bytes, bytes]]) -> dict[str, list[int]]:
    """Per stream, the versions in the order a deduplicating consumer first meets them."""
    seen: dict[str, list[int]] = {}
    for record in records:
        headers = dict(record.headers)
        stream = headers["ce_subject"].decode()
        version = int(headers["ce_streamversion"].decode())
        versions = seen.setdefault(stream, [])
        if version not in versions:
            versions.append(version)
    return seen


async def publish(settings: Settings, topic: str, envelopes: Iterable[Envelope]) -> None:
    """Put ``envelopes`` on ``topic`` (and its dead-letter topic made) as the relay
    would: binary CloudEvents keyed by stream, in the order given."""
    await ensure_topics(settings, [topic, dlq_topic(topic)])
    producer = make_producer(settings)
    await producer.start()
    try:
        for env in envelopes:
            key, value, headers = cloudevents.encode(env)
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
    finally:
        await producer.stop()
