"""The live projections fed in batches, as the service runs, from the real broker: a
batch's events are projected together (the cases they name read once, folded in memory
from one event to the next, each case's row written once), and what they write equals
what a rebuild from the store folds (the rebuild tests find a rebuild equal to the
events projected one at a time)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from contracts import Actor, ActorRole, FeedbackSubmitted
from contracts.base import Event
from contracts.envelope import Envelope
from contracts.topics import topic_for
from eventkit import cloudevents
from eventkit.consumer import run_consumers
from eventkit.kafka import ensure_topics, make_producer
from eventkit.store import EventStore, RecordedEvent
from services.reporting.bootstrap import Reporting
from services.reporting.changes import HANDLED
from tests.reporting.history import interleaved, local, store_history
from tests.reporting.test_reporting_rebuild import march_in, snapshot


async def publish(service: Reporting, events: Sequence[RecordedEvent]) -> None:
    """The events on their topics, in this order, as the relay publishes them."""
    settings = service.settings
    await ensure_topics(settings, service.consumer.topics)
    producer = make_producer(settings)
    await producer.start()
    try:
        for event in events:
            key, value, headers = cloudevents.encode(event.envelope())
            topic = settings.topic(topic_for(event.stream_id))
            await producer.send_and_wait(topic, value=value, key=key, headers=headers)
    finally:
        await producer.stop()


async def test_batches_write_what_a_rebuild_folds(
    service: Reporting, store: EventStore, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await march_in(store, database_url)
    # The resident who raised C9 in demo rates its continuation C9X in district
    # ``other``: in a batch, the rating is written in the other district's scope.
    rating = FeedbackSubmitted(
        district_id="demo",
        occurred_at=local(3, 29),
        actor=Actor(id="subj_x", role=ActorRole.RESIDENT),
        opinion_id="op_C9",
        case_id="C9X",
        resolution_seq=1,
        satisfaction=4,
        resolved=True,
    )
    events = await store_history(store, database_url, [(local(3, 29), rating)])
    types = {model.event_type for model in HANDLED}
    handled = [e for e in events if e.event_type in types]
    runs: list[int] = []
    apply_many = service.projector.apply_many

    async def watched(conn: Any, batch: Sequence[tuple[Event, Envelope, str | None]]) -> None:
        runs.append(len(batch))
        await apply_many(conn, batch)

    monkeypatch.setattr(service.projector, "apply_many", watched)
    service.consumer.batch_size = 200
    # The rating comes once C9X is there, with the last events of other streams: a
    # resident rates a case long after it opened (the broker keeps no order across
    # topics: one at a time would count it in demo too, not knowing the case yet).
    rated = [e for e in events if e.event_type == "FeedbackSubmitted"]
    rated = [e for e in rated if e.data["case_id"] == "C9X"]
    mixed = interleaved([e for e in events if e not in rated], seed=5)
    later = [e for e in mixed[-20:] if e.district_id == "demo"] + rated
    earlier = [e for e in mixed if e not in later]
    stop = asyncio.Event()
    task = asyncio.create_task(run_consumers(service.settings, [service.consumer], stop))

    async def applied(count: int) -> None:
        deadline = asyncio.get_running_loop().time() + 60
        while service.consumer.stats.applied < count:
            assert asyncio.get_running_loop().time() < deadline, service.consumer.stats
            await asyncio.sleep(0.1)

    try:
        await publish(service, earlier)
        await applied(sum(1 for e in earlier if e.event_type in types))
        await publish(service, later)
        await applied(len(handled))
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    assert sum(runs) == len(handled)
    assert max(runs) > 10, runs  # really in batches, several cases' events at once
    in_batches = await snapshot(service.pool)
    assert len(in_batches["cases"]) == 14
    c9x = [r for r in in_batches["ratings"] if r[0] == "C9X"]
    assert [r[2] for r in c9x] == ["other"], in_batches["ratings"]

    result = await service.rebuild.run()
    assert result.equal, [c for c in result.comparisons if c.live_rows != c.shadow_rows]
    assert await snapshot(service.pool) == in_batches
