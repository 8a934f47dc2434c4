"""``EventStore.scan(event_types=…)``: a rebuild reads only the types it folds, and the
checkpoints still chain across what it skips."""

from __future__ import annotations

import uuid

from eventkit.db import ALL_DISTRICTS, scope
from eventkit.store import NO_STREAM, START, EventStore, ScannedEvent
from tests.helpers import envelope


async def test_scan_reads_only_the_event_types_asked_and_chains_past_the_others(
    store: EventStore,
) -> None:
    stream = f"case-{uuid.uuid4().hex[:12]}"
    kinds = ["CaseReplied", "CaseLinked", "CaseReplied", "CaseLinked", "CaseLinked"]
    events = [envelope(stream).model_copy(update={"event_type": kind}) for kind in kinds]
    await store.append(stream, events, expected_version=NO_STREAM)

    async with store.pool.acquire() as conn, conn.transaction():
        await scope(conn, ALL_DISTRICTS)
        scanned: list[ScannedEvent] = []
        after = START
        while True:  # batches of one: each checkpoint skips the types not asked
            batch = await store.scan(
                after, categories=["case"], event_types=["CaseReplied"], limit=1, conn=conn
            )
            scanned.extend(batch)
            if len(batch) < 1:
                break
            after = batch[-1].checkpoint

    mine = [(e.stream_version, e.event_type) for e in scanned if e.stream_id == stream]
    assert mine == [(1, "CaseReplied"), (3, "CaseReplied")]
    assert {e.event_type for e in scanned} == {"CaseReplied"}


async def test_scan_leaves_the_settings_of_the_callers_transaction_as_they_were(
    store: EventStore,
) -> None:
    async with store.pool.acquire() as conn, conn.transaction():
        await scope(conn, ALL_DISTRICTS)
        await conn.execute("SET LOCAL max_parallel_workers_per_gather = 1")
        await store.scan(START, categories=["case"], limit=5, conn=conn)
        sort = await conn.fetchval("SELECT current_setting('enable_sort')")
        workers = await conn.fetchval("SELECT current_setting('max_parallel_workers_per_gather')")

    assert sort == "on"
    assert workers == "1"
