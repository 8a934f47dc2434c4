"""The consumer runtime on the real broker and the real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Sequence

import asyncpg
import pytest
from prometheus_client import REGISTRY

from contracts import CaseAccepted, CaseClosed, CaseReplied
from contracts.topics import CASES, dlq_topic
from eventkit.consumer import Consumer, HandlerContext, run_consumers
from eventkit.dlq import list_dead_letters, redrive
from eventkit.kafka import ensure_topics, make_producer
from eventkit.relay import Relay
from eventkit.settings import Settings
from eventkit.store import EventStore
from tests.helpers import envelope, publish, read_topic


async def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running(settings: Settings, *consumers: Consumer) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_consumers(settings, list(consumers), stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


@contextlib.asynccontextmanager
async def relaying(store: EventStore, settings: Settings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(Relay(store, settings).run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


def recording_consumer(
    settings: Settings,
    pool: asyncpg.Pool,
    *,
    fail: Callable[[CaseReplied], bool] = lambda e: False,
    batch_size: int = 1,
) -> Consumer:
    consumer = Consumer("recorder", settings=settings, pool=pool, batch_size=batch_size)

    @consumer.handles(CaseReplied)
    async def record(event: CaseReplied, ctx: HandlerContext) -> None:
        await ctx.conn.execute(
            "INSERT INTO public.effects (event_id, stream_id, stream_version) VALUES ($1, $2, $3)",
            ctx.envelope.event_id,
            ctx.envelope.stream_id,
            ctx.envelope.stream_version,
        )
        if fail(event):
            raise RuntimeError(f"cannot handle {event.message}")

    return consumer


async def effects(pool: asyncpg.Pool) -> list[tuple[str, int]]:
    rows = await pool.fetch(
        "SELECT stream_id, stream_version FROM public.effects ORDER BY applied_at"
    )
    return [(r["stream_id"], r["stream_version"]) for r in rows]


@pytest.mark.parametrize("batch_size", [1, 20])
async def test_each_event_is_applied_once_in_stream_order(
    store: EventStore, settings: Settings, pool: asyncpg.Pool, effects_table: str, batch_size: int
) -> None:
    streams = [f"case-{uuid.uuid4().hex[:8]}" for _ in range(5)]
    for i in range(50):
        stream = streams[i % 5]
        await store.append(stream, [envelope(stream, message=f"回复{i}")])
    consumer = recording_consumer(settings, pool, batch_size=batch_size)
    async with relaying(store, settings), running(settings, consumer):
        await wait_until(lambda: consumer.stats.applied >= 50)
    applied = await effects(pool)
    assert len(applied) == 50
    for stream in streams:
        assert [v for s, v in applied if s == stream] == list(range(1, 11))


async def test_a_redelivered_record_changes_nothing(
    store: EventStore, settings: Settings, pool: asyncpg.Pool, effects_table: str
) -> None:
    stream = f"case-{uuid.uuid4().hex[:8]}"
    await store.append(stream, [envelope(stream), envelope(stream)])
    [first, second] = [r.envelope() for r in await store.read_stream(stream)]
    consumer = recording_consumer(settings, pool)
    assert await consumer.apply(first) is True
    assert await consumer.apply(second) is True
    assert await consumer.apply(first) is False
    assert await consumer.apply(second) is False
    assert await effects(pool) == [(stream, 1), (stream, 2)]
    assert consumer.stats.duplicates == 2


async def test_a_record_after_a_gap_first_applies_the_missing_events_from_the_store(
    store: EventStore, settings: Settings, pool: asyncpg.Pool, effects_table: str
) -> None:
    """Kafka carries v1 and v3 only: the runtime reads v2 from the store, then v3."""
    stream = f"case-{uuid.uuid4().hex[:8]}"
    await store.append(stream, [envelope(stream) for _ in range(3)])
    stored = [r.envelope() for r in await store.read_stream(stream)]
    await publish(settings, settings.topic(CASES), (stored[0], stored[2]))
    consumer = recording_consumer(settings, pool)
    async with running(settings, consumer):
        await wait_until(lambda: consumer.stats.applied >= 2)
    assert await effects(pool) == [(stream, 1), (stream, 2), (stream, 3)]
    assert consumer.stats.gap_filled == 1


async def test_a_failing_handler_is_retried_and_its_effect_rolled_back_each_time(
    store: EventStore, settings: Settings, pool: asyncpg.Pool, effects_table: str
) -> None:
    stream = f"case-{uuid.uuid4().hex[:8]}"
    await store.append(stream, [envelope(stream, message="第一次失败")])
    failures = iter([True, True])
    consumer = recording_consumer(settings, pool, fail=lambda e: next(failures, False))
    async with relaying(store, settings), running(settings, consumer):
        await wait_until(lambda: consumer.stats.applied >= 1)
    assert consumer.stats.retries == 2
    assert await effects(pool) == [(stream, 1)]


@pytest.mark.parametrize("batch_size", [1, 20])
async def test_a_poison_record_goes_to_the_dlq_and_the_partition_keeps_flowing(
    store: EventStore, settings: Settings, pool: asyncpg.Pool, effects_table: str, batch_size: int
) -> None:
    settings = settings.model_copy(update={"kafka_partitions": 1})
    poison = f"case-{uuid.uuid4().hex[:8]}"
    healthy = f"case-{uuid.uuid4().hex[:8]}"
    await store.append(poison, [envelope(poison, message="毒")])
    for _ in range(5):
        await store.append(healthy, [envelope(healthy)])
    broken = True
    consumer = recording_consumer(
        settings, pool, fail=lambda e: broken and e.message == "毒", batch_size=batch_size
    )
    async with relaying(store, settings), running(settings, consumer):
        await wait_until(lambda: consumer.stats.applied >= 5)
        await wait_until(lambda: consumer.stats.dead_lettered == 1)
        assert await effects(pool) == [(healthy, v) for v in range(1, 6)]

        [letter] = await list_dead_letters(settings, CASES)
        info = letter.info
        assert info["dlq_handler"] == "recorder"
        assert "RuntimeError: cannot handle 毒" in info["dlq_error"]
        assert info["dlq_attempts"] == str(settings.consumer_max_attempts)
        assert info["ce_subject"] == poison
        assert info["ce_streamversion"] == "1"
        assert info["dlq_topic"] == settings.topic(CASES)
        assert not letter.redriven

        broken = False  # the handler is fixed; send the dead letter back
        assert len(await redrive(settings, CASES)) == 1
        await wait_until(lambda: consumer.stats.applied >= 6)
    assert (poison, 1) in await effects(pool)
    [again] = await list_dead_letters(settings, CASES)
    assert again.redriven
    assert await redrive(settings, CASES) == []


async def test_a_record_that_is_not_a_cloudevent_is_dead_lettered_with_the_reason(
    settings: Settings, pool: asyncpg.Pool, effects_table: str
) -> None:
    topic = settings.topic(CASES)
    await ensure_topics(settings, [topic])
    producer = make_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=b"not json", key=b"case-x", headers=[])
    finally:
        await producer.stop()
    consumer = recording_consumer(settings, pool)
    async with running(settings, consumer):
        await wait_until(lambda: consumer.stats.dead_lettered == 1)
    [record] = await read_topic(
        settings.kafka_bootstrap, dlq_topic(topic), until=lambda r: len(r) >= 1
    )
    assert b"undecodable record" in dict(record.headers)["dlq_error"]
    assert record.value == b"not json"


def test_a_consumer_without_handlers_refuses_to_attach(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    from faststream.kafka import KafkaBroker

    consumer = Consumer("empty", settings=settings, pool=pool)
    with pytest.raises(ValueError, match="handles no event type"):
        consumer.attach(KafkaBroker(settings.kafka_bootstrap))


async def test_the_lag_gauge_counts_what_waits_and_falls_to_zero_once_caught_up(
    store: EventStore, settings: Settings, pool: asyncpg.Pool, effects_table: str
) -> None:
    settings = settings.model_copy(update={"kafka_partitions": 1})
    stream = f"case-{uuid.uuid4().hex[:8]}"
    await store.append(stream, [envelope(stream, message=f"回复{i}") for i in range(30)])
    gate = asyncio.Event()
    consumer = Consumer("laggard", settings=settings, pool=pool)

    @consumer.handles(CaseReplied)
    async def slow(event: CaseReplied, ctx: HandlerContext) -> None:
        await gate.wait()

    def lag() -> float | None:
        return REGISTRY.get_sample_value(
            "minqing_consumer_lag_records",
            {"consumer": "laggard", "topic": settings.topic(CASES)},
        )

    async with relaying(store, settings), running(settings, consumer):
        await wait_until(lambda: (lag() or 0) > 0)
        waiting = lag()
        gate.set()
        await wait_until(lambda: consumer.stats.applied >= 30)
    assert waiting is not None
    assert 0 < waiting <= 29
    assert lag() == 0


async def test_a_batch_handler_gets_consecutive_events_at_once_each_stream_in_order(
    store: EventStore, settings: Settings, pool: asyncpg.Pool, effects_table: str
) -> None:
    """Replies go to a batch handler, acceptances to a plain one, in one batch: each event
    once, each stream in order, a redelivered record skipped and a gap filled from the
    store; the batch handler is called for runs of replies, not reply by reply."""
    settings = settings.model_copy(update={"kafka_partitions": 1})
    streams = [f"case-{uuid.uuid4().hex[:8]}" for _ in range(4)]
    for stream in streams:
        await store.append(
            stream,
            [
                envelope(stream, message="一"),
                envelope(stream, message="二"),
                envelope(stream).model_copy(update={"event_type": "CaseAccepted"}),
                envelope(stream, message="四"),
            ],
        )
    stored = {s: [r.envelope() for r in await store.read_stream(s)] for s in streams}
    # On Kafka: the first two replies of every stream, then their acceptances, then the
    # last replies, except the gapped stream whose acceptance never made it to Kafka, and
    # the first record of all sent again.
    gapped = streams[3]
    sent = [stored[s][v] for v in (0, 1) for s in streams]
    sent += [stored[s][2] for s in streams if s != gapped]
    sent += [stored[s][3] for s in streams]
    sent.append(stored[streams[0]][0])
    topic = settings.topic(CASES)
    await publish(settings, topic, sent)

    calls: list[int] = []
    consumer = Consumer("batcher", settings=settings, pool=pool, batch_size=50)

    async def effect(ctx: HandlerContext) -> None:
        await ctx.conn.execute(
            "INSERT INTO public.effects (event_id, stream_id, stream_version) VALUES ($1, $2, $3)",
            ctx.envelope.event_id,
            ctx.envelope.stream_id,
            ctx.envelope.stream_version,
        )

    @consumer.handles_many(CaseReplied)
    async def replies(events: Sequence[tuple[CaseReplied, HandlerContext]]) -> None:
        calls.append(len(events))
        for _, ctx in events:
            await effect(ctx)

    @consumer.handles(CaseAccepted)
    async def accepted(event: CaseAccepted, ctx: HandlerContext) -> None:
        await effect(ctx)

    async with running(settings, consumer):
        await wait_until(lambda: consumer.stats.applied >= 15)
    applied = await effects(pool)
    assert len(applied) == 16  # 15 records applied, the gapped acceptance from the store
    for stream in streams:
        assert [v for s, v in applied if s == stream] == [1, 2, 3, 4]
    assert consumer.stats.gap_filled == 1
    assert consumer.stats.duplicates >= 1
    assert sum(calls) == 12
    assert max(calls) > 1, calls
    positions = await pool.fetch(
        "SELECT stream_id, stream_version FROM consumers.stream_positions WHERE consumer = $1",
        "batcher",
    )
    assert {r["stream_id"]: r["stream_version"] for r in positions} == dict.fromkeys(streams, 4)


async def test_a_step_registered_with_also_runs_after_the_handler_or_alone(
    store: EventStore, settings: Settings, pool: asyncpg.Pool, effects_table: str
) -> None:
    """``Consumer.also``: after the service's batch handler of replies, after its plain
    handler of acceptances, and alone for a type the service does not handle; each in the
    handler's transaction (a failing step rolls the handler's effect back and is retried),
    each event once."""
    settings = settings.model_copy(update={"kafka_partitions": 1})
    stream = f"case-{uuid.uuid4().hex[:8]}"
    await store.append(
        stream,
        [
            envelope(stream, message="一"),
            envelope(stream).model_copy(update={"event_type": "CaseAccepted"}),
            envelope(stream, message="三"),
            envelope(stream).model_copy(update={"event_type": "CaseClosed"}),
        ],
    )
    await publish(
        settings, settings.topic(CASES), [r.envelope() for r in await store.read_stream(stream)]
    )
    order: list[str] = []
    failed_once: set[int] = set()
    consumer = Consumer("also", settings=settings, pool=pool, batch_size=50)

    @consumer.handles_many(CaseReplied)
    async def replies(events: Sequence[tuple[CaseReplied, HandlerContext]]) -> None:
        order.extend(f"reply {ctx.envelope.stream_version}" for _, ctx in events)

    @consumer.handles(CaseAccepted)
    async def accepted(event: CaseAccepted, ctx: HandlerContext) -> None:
        order.append(f"accept {ctx.envelope.stream_version}")

    @consumer.also(CaseReplied, CaseAccepted, CaseClosed)
    async def after(event: object, ctx: HandlerContext) -> None:
        version = ctx.envelope.stream_version
        assert version is not None
        if version == 2 and version not in failed_once:
            failed_once.add(version)
            raise RuntimeError("the step fails once")
        await ctx.conn.execute(
            "INSERT INTO public.effects (event_id, stream_id, stream_version) VALUES ($1, $2, $3)",
            ctx.envelope.event_id,
            ctx.envelope.stream_id,
            version,
        )
        order.append(f"after {version}")

    with pytest.raises(ValueError, match="already handles"):
        consumer.handles(CaseAccepted)(accepted)

    async with running(settings, consumer):
        await wait_until(lambda: consumer.stats.applied >= 4)

    assert [v for _, v in await effects(pool)] == [1, 2, 3, 4]  # each once, none lost
    assert order.index("reply 1") < order.index("after 1")
    assert order.index("accept 2") < order.index("after 2")
    assert order.index("reply 3") < order.index("after 3") < order.index("after 4")
    assert order.count("after 2") == 1  # the failed step's transaction was rolled back
    assert order.count("accept 2") >= 2  # and the handler ran again with it
    assert not any(step.endswith(" 4") for step in order if not step.startswith("after"))
