"""Many writers and one tailing reader: nothing skipped, nothing twice, streams in order."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict

import asyncpg

from eventkit.db import district_transaction
from eventkit.store import START, Checkpoint, EventStore, OrderingConflict, RecordedEvent
from tests.helpers import envelope

WRITERS = 8
EVENTS_PER_WRITER = 2000
STREAMS = 200


class Rollback(Exception):
    pass


async def test_a_tailing_reader_sees_every_committed_event_once_and_in_stream_order(
    store: EventStore, pool: asyncpg.Pool
) -> None:
    streams = [f"case-{uuid.uuid4().hex[:10]}" for _ in range(STREAMS)]
    committed: set[uuid.UUID] = set()
    rolled_back: set[uuid.UUID] = set()
    inversions = 0
    done = asyncio.Event()

    async def writer(seed: int) -> None:
        nonlocal inversions
        rng = random.Random(seed)
        written = 0
        while written < EVENTS_PER_WRITER:
            roll = rng.random()
            if roll < 0.85:
                stream = rng.choice(streams)
                event = envelope(stream)
                await store.append(stream, [event])
                committed.add(event.event_id)
                written += 1
                continue
            # A transaction over two streams (it may meet the ordering guard), or one
            # that is rolled back on purpose and must leave no trace.
            first, second = rng.sample(streams, 2)
            events = [envelope(first), envelope(second)]
            abort = roll > 0.95
            try:
                async with district_transaction(pool, "demo") as conn:
                    await store.append(first, [events[0]], conn=conn)
                    await store.append(second, [events[1]], conn=conn)
                    if abort:
                        raise Rollback
            except OrderingConflict:
                inversions += 1
                continue
            except Rollback:
                rolled_back.update(e.event_id for e in events)
                continue
            committed.update(e.event_id for e in events)
            written += 2

    seen: list[RecordedEvent] = []

    async def reader() -> None:
        checkpoint: Checkpoint = START
        idle_after_done = 0
        while True:
            batch = await store.read_all(checkpoint, limit=700)
            seen.extend(batch)
            if batch:
                checkpoint = batch[-1].checkpoint
                idle_after_done = 0
            elif done.is_set():
                idle_after_done += 1
                if idle_after_done > 20:
                    return
                await asyncio.sleep(0.01)
            else:
                await asyncio.sleep(0.002)

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(i) for i in range(WRITERS)))
    done.set()
    await asyncio.wait_for(reading, 30)

    ids = [e.event_id for e in seen]
    assert len(ids) == len(set(ids)), "an event was delivered twice"
    assert set(ids) == committed, (
        f"missing {len(committed - set(ids))}, unexpected {len(set(ids) - committed)}"
    )
    assert not rolled_back & set(ids)
    by_stream: dict[str, list[int]] = defaultdict(list)
    for event in seen:
        by_stream[event.stream_id].append(event.stream_version)
    for stream, versions in by_stream.items():
        assert versions == list(range(1, len(versions) + 1)), f"{stream} out of order"
    print(
        f"\n{len(seen)} events over {len(by_stream)} streams, "
        f"{len(rolled_back)} rolled back, {inversions} ordering conflicts retried"
    )
