"""A history too large to load at once is verified in constant memory, and fast."""

from __future__ import annotations

import time
import tracemalloc

import asyncpg

from eventkit.audit.sealing import Sealer
from eventkit.audit.verification import verify_store
from eventkit.db import Conn
from eventkit.store import EventStore
from tests.audit.support import bulk_history

STREAMS, VERSIONS, PAYLOAD = 1000, 40, 500
"""40,000 events of some 1.6 kB of JSON each: about 65 MB of rows."""


async def test_verifying_a_large_history_holds_one_batch_in_memory_not_the_history(
    store: EventStore, pool: asyncpg.Pool, conn: Conn
) -> None:
    started = time.perf_counter()
    await bulk_history(pool, "demo", streams=STREAMS, versions=VERSIONS, payload=PAYLOAD)
    generated = time.perf_counter()
    seals = await Sealer(store).seal("demo")
    sealed = time.perf_counter()
    assert sum(s.events for s in seals) == STREAMS * VERSIONS
    size = await conn.fetchval("SELECT sum(pg_column_size(data)) FROM eventstore.events")

    tracemalloc.start()
    try:
        report = await verify_store(conn, batch_size=2000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    verified = time.perf_counter()
    print(
        f"\n{STREAMS * VERSIONS} events, {size / 1e6:.0f} MB of data: generated in "
        f"{generated - started:.1f}s, sealed in {sealed - generated:.1f}s ({len(seals)} seals), "
        f"verified in {verified - sealed:.1f}s with a peak of {peak / 1e6:.1f} MB"
    )
    assert report.intact
    assert report.events == STREAMS * VERSIONS + len(seals)
    assert report.seals == len(seals)
    assert peak < 8e6

    # The yardstick: a quarter of the rows loaded at once shows in the same measure.
    tracemalloc.start()
    try:
        rows = await conn.fetch("SELECT data FROM eventstore.events LIMIT 10000")
        _, quarter = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(rows) == 10000
    assert quarter > 12e6 > 8 * peak
