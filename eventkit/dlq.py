"""Dead letters: list what landed in ``<topic>.dlq`` and send it back to its topic.

A redrive republishes each dead letter to the topic it came from with its original
key and headers; the consumers' version gates make that safe to repeat. What has been
redriven is remembered as the committed offset of the ``minqing.dlq-redrive`` group,
so a redrive never sends the same dead letter twice and ``list`` tells what is pending.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from contracts.topics import dlq_topic
from eventkit.cloudevents import header_map
from eventkit.kafka import make_producer, partitions_of
from eventkit.settings import Settings

REDRIVE_GROUP = "minqing.dlq-redrive"


@dataclass(frozen=True)
class DeadLetter:
    """One record in a dead-letter topic."""

    partition: int
    offset: int
    timestamp: datetime
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    redriven: bool

    @property
    def info(self) -> dict[str, str]:
        """The headers as text: ``dlq_error``, ``dlq_handler``, ``ce_type``…"""
        return header_map(self.headers)


async def _read(settings: Settings, topic: str) -> tuple[list[DeadLetter], AIOKafkaConsumer]:
    name = dlq_topic(settings.topic(topic))
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=settings.topic(REDRIVE_GROUP),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    letters: list[DeadLetter] = []
    tps = [TopicPartition(name, p) for p in await partitions_of(settings.kafka_bootstrap, name)]
    if not tps:
        return letters, consumer
    consumer.assign(tps)
    ends = await consumer.end_offsets(tps)
    for tp in tps:
        committed = await consumer.committed(tp) or 0
        consumer.seek(tp, 0)
        while ends[tp] > 0 and await consumer.position(tp) < ends[tp]:
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for record in batch.get(tp, []):
                if record.offset >= ends[tp]:
                    break
                letters.append(
                    DeadLetter(
                        partition=tp.partition,
                        offset=record.offset,
                        timestamp=datetime.fromtimestamp(record.timestamp / 1000, UTC),
                        key=record.key,
                        value=record.value,
                        headers=list(record.headers or ()),
                        redriven=record.offset < committed,
                    )
                )
    return letters, consumer


async def list_dead_letters(settings: Settings, topic: str) -> list[DeadLetter]:
    """Every dead letter of ``topic`` (unprefixed name), oldest first per partition."""
    letters, consumer = await _read(settings, topic)
    await consumer.stop()
    return letters


async def redrive(settings: Settings, topic: str) -> list[DeadLetter]:
    """Send every pending dead letter of ``topic`` back to the topic it failed on."""
    letters, consumer = await _read(settings, topic)
    producer = make_producer(settings)
    await producer.start()
    sent: list[DeadLetter] = []
    try:
        for letter in letters:
            if letter.redriven:
                continue
            original = letter.info.get("dlq_topic") or settings.topic(topic)
            headers = [(k, v) for k, v in letter.headers if not k.startswith("dlq_")]
            await producer.send_and_wait(
                original, value=letter.value, key=letter.key, headers=headers
            )
            tp = TopicPartition(dlq_topic(settings.topic(topic)), letter.partition)
            await consumer.commit({tp: OffsetAndMetadata(letter.offset + 1, "")})
            sent.append(letter)
    finally:
        await producer.stop()
        await consumer.stop()
    return sent
