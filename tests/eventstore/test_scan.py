"""``EventStore.scan``: the lean bulk read of rebuilds gives what ``read_all`` gives."""

from __future__ import annotations

import json
import uuid

from eventkit.db import ALL_DISTRICTS, scope
from eventkit.store import NO_STREAM, START, EventStore, ScannedEvent
from tests.helpers import envelope


async def _append_streams(store: EventStore, count: int) -> list[str]:
    streams = [f"case-{uuid.uuid4().hex[:12]}" for _ in range(count)]
    for n, stream in enumerate(streams):
        events = [envelope(stream) for _ in range(1 + n % 3)]
        await store.append(stream, events, expected_version=NO_STREAM)
    return streams


async def test_scan_reads_what_read_all_reads_in_the_same_order(store: EventStore) -> None:
    mine = set(await _append_streams(store, 12))

    async with store.pool.acquire() as conn, conn.transaction():
        await scope(conn, ALL_DISTRICTS)
        full = await store.read_all(START, limit=100_000, categories=["case"], conn=conn)
        scanned: list[ScannedEvent] = []
        after = START
        while True:  # small batches: the checkpoints must chain without a gap
            batch = await store.scan(after, categories=["case"], limit=5, conn=conn)
            scanned.extend(batch)
            if len(batch) < 5:
                break
            after = batch[-1].checkpoint

    assert {e.stream_id for e in scanned} >= mine
    assert [(e.global_position, e.stream_id, e.stream_version) for e in scanned] == [
        (e.global_position, e.stream_id, e.stream_version) for e in full
    ]
    for lean, whole in zip(scanned, full, strict=True):
        assert lean.checkpoint == whole.checkpoint
        assert (lean.category, lean.event_type, lean.schema_version, lean.recorded_at) == (
            whole.category,
            whole.event_type,
            whole.schema_version,
            whole.recorded_at,
        )
        assert json.loads(lean.data) == whole.data


async def test_scan_gives_the_json_text_byte_for_byte_with_its_escapes(store: EventStore) -> None:
    # The data travel as the UTF-8 bytes of the JSON text: backslashes, quotes, control
    # characters and Chinese must come out as they went in (a ``::bytea`` cast would
    # have read the backslashes as escapes).
    stream = f"case-{uuid.uuid4().hex[:12]}"
    message = '楼道灯不亮\\n"三楼"\\\\ C:\\temp\t制表\n换行 \u0001 😀'
    await store.append(stream, [envelope(stream, message=message)], expected_version=NO_STREAM)

    async with store.pool.acquire() as conn, conn.transaction():
        await scope(conn, ALL_DISTRICTS)
        batch = await store.scan(START, categories=["case"], limit=1_000_000, conn=conn)
    mine = [e for e in batch if e.stream_id == stream]

    assert len(mine) == 1
    assert isinstance(mine[0].data, bytes)
    assert json.loads(mine[0].data)["message"] == message


async def test_scan_reads_only_the_categories_asked(store: EventStore) -> None:
    await _append_streams(store, 3)

    async with store.pool.acquire() as conn, conn.transaction():
        await scope(conn, ALL_DISTRICTS)
        none = await store.scan(START, categories=["no_such_category"], conn=conn)
        cases = await store.scan(START, categories=["case"], conn=conn)

    assert none == []
    assert cases
    assert {e.category for e in cases} == {"case"}


async def test_scan_without_a_connection_reads_every_district(store: EventStore) -> None:
    mine = set(await _append_streams(store, 2))

    seen = {e.stream_id for e in await store.scan(START, categories=["case"], limit=1_000_000)}

    assert mine <= seen
